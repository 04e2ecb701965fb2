"""Redis URLs beyond one server (SPEC 21): ``redis+sentinel://``, ``redis+cluster://`` and ``redis_cluster=True``.

What each names, and what a malformed one is told: what is wrong and the form to write.
"""

from __future__ import annotations

import pytest

from graflow.exceptions import ConfigError
from graflow_redis.cluster import ClusterURL, as_cluster_url, is_cluster_url, parse_cluster_url
from graflow_redis.errors import RedisURLError
from graflow_redis.sentinel import SentinelURL, is_sentinel_url, parse_sentinel_url

SENTINEL_FORM = "redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
CLUSTER_FORM = "redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/0]"


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


def test_a_malformed_sentinel_url_is_reported_without_its_password() -> None:
    with pytest.raises(RedisURLError) as raised:
        parse_sentinel_url("redis+sentinel://app:hunter2@h:26379")

    assert "hunter2" not in str(raised.value)
    assert "redis+sentinel://***@h:26379" in str(raised.value)


def test_a_cluster_url_names_the_nodes_to_start_from_and_the_credentials() -> None:
    parsed = parse_cluster_url("redis+cluster://app:p%40ss@10.0.0.1:7000,[::1]:7001/0")

    assert parsed == ClusterURL((("10.0.0.1", 7000), ("::1", 7001)), "app", "p@ss")
    assert parse_cluster_url(parsed.url()) == parsed


def test_redis_cluster_true_reads_a_redis_url_as_one_node_of_the_cluster() -> None:
    assert as_cluster_url("redis://:secret@node-1:7000/0") == "redis+cluster://:secret@node-1:7000/0"
    assert is_cluster_url(as_cluster_url("redis://node-1:7000"))
    with pytest.raises(RedisURLError, match="redis_cluster=True needs a redis:// URL"):
        as_cluster_url("rediss+sentinel://s:26379/mymaster")


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
        ("redis+cluster://", "it names no host"),
        ("redis+cluster://node-1/0", "the host 'node-1' has no valid port"),
        ("redis+cluster://node-1:7000/3", "a cluster has database 0 only"),
        ("redis+cluster://node-1:7000?ssl=true", "it has options ('ssl=true')"),
    ],
)
def test_a_malformed_url_says_what_is_wrong_and_the_form_to_write(url: str, why: str) -> None:
    sentinel = is_sentinel_url(url)
    parse = parse_sentinel_url if sentinel else parse_cluster_url

    with pytest.raises(RedisURLError) as raised:
        parse(url)

    assert isinstance(raised.value, ConfigError)
    assert why in str(raised.value)
    assert (SENTINEL_FORM if sentinel else CLUSTER_FORM) in str(raised.value)
