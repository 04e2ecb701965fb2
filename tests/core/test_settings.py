"""graflow.settings: one reading of each setting for every process, and one check of each number."""

from __future__ import annotations

import math

import pytest

from graflow import settings
from graflow.exceptions import ConfigError


def test_the_key_prefix_comes_from_config_then_the_environment_then_the_default() -> None:
    env = {"GRAFLOW_KEY_PREFIX": "newcomer"}
    assert settings.key_prefix({"key_prefix": "given"}, env) == "given"
    assert settings.key_prefix({}, env) == "newcomer"
    assert settings.key_prefix({"key_prefix": None}, env) == "newcomer"
    assert settings.key_prefix({}, {}) == "graflow"
    assert settings.key_prefix({}, {"GRAFLOW_KEY_PREFIX": ""}) == "graflow"


@pytest.mark.parametrize("value", ["", 3])
def test_a_key_prefix_that_is_not_a_non_empty_string_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="key_prefix must be a non-empty string"):
        settings.key_prefix({"key_prefix": value}, {})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1, 0, True, "nan", "inf", "soon", None])
def test_seconds_must_be_finite_and_positive(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^visibility_timeout must be a (finite )?number of seconds"):
        settings.seconds("visibility_timeout", value)


def test_seconds_accept_numbers_and_their_text() -> None:
    assert settings.seconds("t", 2) == 2.0
    assert settings.seconds("t", " 0.5 ") == 0.5
    assert settings.seconds("t", 0, zero_ok=True) == 0.0


@pytest.mark.parametrize("value", [0, -3, 1.5, True, "x", "70000"])
def test_whole_numbers_must_be_in_range(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^port must be a whole number between 1 and 65535, got"):
        settings.whole("port", value, maximum=65535)


def test_whole_numbers_accept_ints_and_their_text() -> None:
    assert settings.whole("n", "7") == 7
    assert settings.whole("n", 0, minimum=0) == 0
