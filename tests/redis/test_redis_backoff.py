"""Backoff: the one pause schedule every retry loop of graflow-redis and graflow-worker uses."""

from __future__ import annotations

import pytest

from graflow_redis.backoff import Backoff


def test_pauses_double_after_each_failure_up_to_the_cap() -> None:
    backoff = Backoff(first=0.1, cap=0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_a_success_brings_the_first_pause_back() -> None:
    backoff = Backoff(first=0.1, cap=5.0)
    backoff.next()
    backoff.next()
    backoff.reset()
    assert backoff.next() == 0.1


def test_the_default_schedule_is_the_drivers() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]


@pytest.mark.parametrize(("first", "cap"), [(0, 1.0), (-1, 1.0), (2.0, 1.0)])
def test_a_schedule_that_never_waits_or_shrinks_is_refused(first: float, cap: float) -> None:
    with pytest.raises(ValueError, match="0 < first <= cap"):
        Backoff(first=first, cap=cap)
