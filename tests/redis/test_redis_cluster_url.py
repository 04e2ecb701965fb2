"""``redis+cluster://`` URLs and ``redis_cluster=True`` (SPEC 21): what they name, what a malformed one is told."""

from __future__ import annotations

import pytest

from graflow.exceptions import ConfigError
from graflow_redis.cluster import ClusterURL, as_cluster_url, is_cluster_url, parse_cluster_url
from graflow_redis.errors import RedisURLError


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
        ("redis+cluster://", "it names no host"),
        ("redis+cluster://node-1/0", "the host 'node-1' has no valid port"),
        ("redis+cluster://node-1:7000/3", "a cluster has database 0 only"),
        ("redis+cluster://node-1:7000?ssl=true", "it has options ('ssl=true'); none are known"),
    ],
)
def test_a_malformed_cluster_url_says_what_is_wrong_and_the_form_to_write(url: str, why: str) -> None:
    with pytest.raises(RedisURLError) as raised:
        parse_cluster_url(url)

    assert isinstance(raised.value, ConfigError)
    assert why in str(raised.value)
    assert "redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/0]" in str(raised.value)
