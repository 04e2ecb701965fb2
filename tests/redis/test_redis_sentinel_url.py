"""``redis+sentinel://`` URLs (SPEC 21): what they name, and what a malformed one is told."""

from __future__ import annotations

import pytest

from graflow.exceptions import ConfigError
from graflow_redis.errors import RedisURLError
from graflow_redis.sentinel import SentinelURL, is_sentinel_url, parse_sentinel_url


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    parsed = parse_sentinel_url("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,[::1]:26381/mymaster/3")

    assert parsed == SentinelURL((("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381)), "mymaster", 3)


def test_a_sentinel_url_defaults_to_database_0_and_the_sentinel_port() -> None:
    assert parse_sentinel_url("redis+sentinel://sentinel-a,sentinel-b/mymaster") == SentinelURL(
        (("sentinel-a", 26379), ("sentinel-b", 26379)), "mymaster", 0
    )


def test_credentials_are_the_primarys_and_the_query_gives_the_sentinels_own() -> None:
    parsed = parse_sentinel_url("redis+sentinel://app:p%40ss@h:26379/svc/1?sentinel_password=s%2Fecret")

    assert (parsed.username, parsed.password, parsed.sentinel_password) == ("app", "p@ss", "s/ecret")
    assert parse_sentinel_url(parsed.url()) == parsed


def test_only_redis_sentinel_urls_are_sentinel_urls() -> None:
    assert is_sentinel_url("redis+sentinel://h:26379/svc")
    assert is_sentinel_url("REDIS+SENTINEL://h:26379/svc")
    assert not is_sentinel_url("redis://h:6379/0")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+sentinel://h:26379", "it names no service"),
        ("redis+sentinel:///svc/0", "it names no host"),
        ("redis+sentinel://h:26379/svc/zero", "its database 'zero' is not a number"),
        ("redis+sentinel://h:26379/svc/0/extra", "has more than SERVICE/DB"),
        ("redis+sentinel://h:port/svc", "the host 'h:port' has no valid port"),
        ("redis+sentinel://:99999/svc", "the host ':99999' has no name"),
        ("redis+sentinel://h:26379/svc?ssl=true", "it has unknown options ['ssl']"),
    ],
)
def test_a_malformed_sentinel_url_says_what_is_wrong_and_the_form_to_write(url: str, why: str) -> None:
    with pytest.raises(RedisURLError) as raised:
        parse_sentinel_url(url)

    assert isinstance(raised.value, ConfigError)
    assert why in str(raised.value)
    assert "redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]" in str(raised.value)


def test_a_malformed_sentinel_url_is_reported_without_its_password() -> None:
    with pytest.raises(RedisURLError) as raised:
        parse_sentinel_url("redis+sentinel://app:hunter2@h:26379")

    assert "hunter2" not in str(raised.value)
    assert "redis+sentinel://***@h:26379" in str(raised.value)
