"""``redis+cluster://`` URLs: a Redis Cluster, reached through redis-py's :class:`~redis.cluster.RedisCluster`.

The form is ``redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/0]``: a few
nodes to learn the cluster's layout from (any of them will do; the client finds the others
and follows failovers and resharding). A cluster has database 0 only. In a run's config,
``{"redis_url": "redis://HOST:PORT/0", "redis_cluster": True}`` means the same::

    graflow-worker --redis-url redis+cluster://10.0.0.1:7000,10.0.0.2:7000

redis-py itself names a cluster with a plain ``redis://`` URL given to
``RedisCluster.from_url``; a scheme of its own lets one ``--redis-url`` option say which
client to build. Every key and script of Graflow keeps to one slot where it must
(:mod:`graflow_redis.keys`).

:class:`RedisCluster` has the command methods of :class:`redis.Redis` without being one;
Graflow uses only commands both have, and this module is the one place that says so
(:func:`cluster_client` hands the cluster on typed as :class:`redis.Redis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from graflow_redis.errors import RedisURLError
from graflow_redis.urls import credentials, host_list, hosts_text, malformed, userinfo

__all__ = [
    "SCHEME",
    "ClusterURL",
    "as_cluster_url",
    "cluster_client",
    "connection_options",
    "is_cluster",
    "is_cluster_url",
    "parse_cluster_url",
    "url_of_cluster_client",
]

#: The URL scheme of a Redis Cluster.
SCHEME: Final = "redis+cluster"
_FORM: Final = "redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/0]"


@dataclass(frozen=True)
class ClusterURL:
    """A parsed ``redis+cluster://`` URL."""

    #: ``(host, port)`` of the nodes to start from, in the URL's order.
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None

    def url(self) -> str:
        """The URL again, credentials included: what another process connects with."""
        return f"{SCHEME}://{userinfo(self.username, self.password)}{hosts_text(self.nodes)}/0"


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://...``)."""
    return url.lower().startswith(f"{SCHEME}://")


def as_cluster_url(url: str) -> str:
    """``url`` (``redis://HOST:PORT/0``, as with ``redis_cluster=True``) as a ``redis+cluster://`` URL."""
    if is_cluster_url(url):
        return url
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "redis" or not sep:
        raise RedisURLError(
            f"redis_cluster=True needs a redis:// URL of one of the cluster's nodes, not {scheme!r}; "
            f"write it as redis://HOST:PORT/0, or as {_FORM}"
        )
    return f"{SCHEME}://{rest}"


def parse_cluster_url(url: str) -> ClusterURL:
    """Parse a ``redis+cluster://`` URL; :class:`RedisURLError` says what is wrong and the form expected."""

    def fail(why: str) -> RedisURLError:
        return malformed(url, "Redis Cluster", why, _FORM, "redis+cluster://10.0.0.1:7000,10.0.0.2:7000")

    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise fail(f"its scheme is {parts.scheme!r}, not {SCHEME!r}")
    auth, _, hosts = parts.netloc.rpartition("@")
    nodes = host_list(hosts, None, fail)
    if parts.path.strip("/") not in ("", "0"):
        raise fail(f"a cluster has database 0 only, and its path is {parts.path!r}")
    if parts.query:
        raise fail(f"it has options ({parts.query!r}); none are known")
    return ClusterURL(nodes, *credentials(auth))


def cluster_client(target: ClusterURL, **options: Any) -> redis.Redis:
    """A cluster client starting from ``target``'s nodes; ``options`` (timeouts, retries) apply to every node.

    Raises :class:`redis.exceptions.ConnectionError` when none of the nodes answers.
    """
    options = dict(options)
    options.pop("retry_on_error", None)  # the cluster retries what it knows to retry (redirects, failovers)
    nodes = [ClusterNode(host, port) for host, port in target.nodes]  # type: ignore[no-untyped-call]
    try:
        cluster = RedisCluster(
            startup_nodes=nodes, username=target.username, password=target.password, **options
        )
    except RedisClusterException as exc:
        # Unlike a server's client, a cluster's asks for the layout at once; no node answering
        # is an outage to wait through, like any connection error.
        if "cannot be connected" in str(exc):
            raise redis.exceptions.ConnectionError(str(exc)) from exc
        raise
    return cast(redis.Redis, cluster)


def is_cluster(client: object) -> bool:
    """Whether ``client`` is a :class:`RedisCluster` (typed as :class:`redis.Redis` or not)."""
    return isinstance(client, RedisCluster)


def url_of_cluster_client(client: object) -> str | None:
    """The ``redis+cluster://`` URL of a cluster client (its primaries now), else ``None``."""
    if not isinstance(client, RedisCluster):
        return None
    kwargs = client.nodes_manager.connection_kwargs
    nodes = tuple((str(node.host), int(node.port)) for node in client.get_primaries())  # type: ignore[no-untyped-call]
    return ClusterURL(nodes, kwargs.get("username"), kwargs.get("password")).url()


def connection_options(client: object) -> dict[str, Any]:
    """The options every node connection of a cluster client is made with (timeouts, credentials)."""
    assert isinstance(client, RedisCluster)
    return dict(client.nodes_manager.connection_kwargs)
