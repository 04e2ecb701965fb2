"""Redis clients from Graflow config: where to connect, how to retry, one pool per URL.

A URL is ``redis://``, ``rediss://`` or ``unix://`` (redis-py's own forms), or
``redis+sentinel://`` for a primary found through Redis Sentinel (:mod:`graflow_redis.sentinel`),
or ``redis+cluster://`` for a Redis Cluster (:mod:`graflow_redis.cluster`).

Short blips are retried inside redis-py (:class:`redis.retry.Retry` with exponential
backoff); longer outages, such as a Redis restart, are ridden out by
:func:`call_with_retry` and by the loops of the driver and the worker, each waiting
through a :class:`~graflow_redis.backoff.Backoff` while the error is one of
:data:`CONNECTION_ERRORS`, so neither dies because Redis went away for a while.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast
from urllib.parse import quote

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool

from graflow.exceptions import ConfigError
from graflow_redis.backoff import Backoff
from graflow_redis.cluster import (
    SCHEME,
    as_cluster_url,
    cluster_client,
    connection_options,
    is_cluster,
    is_cluster_url,
    parse_cluster_url,
    url_of_cluster_client,
)
from graflow_redis.errors import RedisUnavailableError
from graflow_redis.sentinel import (
    is_sentinel_url,
    parse_sentinel_url,
    sentinel_client,
    url_of_sentinel_client,
)
from graflow_redis.urls import hosts_text

__all__ = [
    "CLIENT_KEYS",
    "CONNECTION_ERRORS",
    "DEFAULT_URL",
    "block_seconds",
    "call_with_retry",
    "client_from_config",
    "describe",
    "lookup_client",
    "register_client",
    "registered_clients",
    "resolve_url",
    "script_pipeline",
    "server_id",
    "shared_client",
    "url_of",
]

T = TypeVar("T")

#: Where to connect when neither config nor the environment says.
DEFAULT_URL: Final = "redis://localhost:6379/0"
#: Errors that mean "Redis cannot be reached right now": retry, nothing is wrong with the data.
#: On a cluster also the moments of a failover: a slot without a primary (``CLUSTERDOWN``,
#: ``TRYAGAIN``, or none known to the client yet).
CONNECTION_ERRORS: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)
#: How long a process waits for a node of a Redis Cluster to answer before giving up on it.
CLUSTER_CONNECT_TIMEOUT: Final = 60.0
#: The config keys that say which client to use (what :func:`client_from_config` reads).
CLIENT_KEYS: Final = ("redis_client", "redis_url", "redis_cluster", "client_ref")
#: Read timeout of clients built here; blocking reads are kept well below it.
SOCKET_TIMEOUT: Final = 15.0

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_binary: weakref.WeakKeyDictionary[redis.Redis, redis.Redis] = weakref.WeakKeyDictionary()
_refs: weakref.WeakValueDictionary[str, redis.Redis] = weakref.WeakValueDictionary()


def resolve_url(config: Mapping[str, Any]) -> str:
    """``config["redis_url"]``, else ``$REDIS_URL``, else ``$REDIS_HOST``/``$REDIS_PORT``/``$REDIS_DB``,
    else localhost: what ``graflow-worker`` reads too, so a driver and its workers agree."""
    url = config.get("redis_url") or os.environ.get("REDIS_URL")
    if url:
        return str(url)
    host, port, db = (os.environ.get(name) for name in ("REDIS_HOST", "REDIS_PORT", "REDIS_DB"))
    if host or port or db:
        if db and not db.isdigit():
            raise ConfigError(f"REDIS_DB must be a database number (0, 1, ...), got {db!r}")
        return f"redis://{host or 'localhost'}:{port or 6379}/{db or 0}"
    return DEFAULT_URL


def _options() -> dict[str, Any]:
    """Timeouts and retries of every connection made here, whatever the URL's kind."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        "retry_on_error": list(CONNECTION_ERRORS),
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
        "health_check_interval": 30,
    }


def _new_client(url: str) -> redis.Redis:
    if is_sentinel_url(url):
        return sentinel_client(parse_sentinel_url(url), **_options())
    if is_cluster_url(url):
        target = parse_cluster_url(url)
        return call_with_retry(
            lambda: cluster_client(target, **_options()),
            what="learning the Redis Cluster's layout",
            where=f"{SCHEME}://{hosts_text(target.nodes)}",
            timeout=CLUSTER_CONNECT_TIMEOUT,
        )
    return redis.Redis.from_url(url, **_options())


def shared_client(url: str) -> redis.Redis:
    """One client (one connection pool) per URL and process.

    Workers open the run's channel for every task; sharing the pool makes that a dict
    lookup instead of a new connection.
    """
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = _new_client(url)
    return client


def _binary_client(client: redis.Redis) -> redis.Redis:
    """``client``, or a sibling on the same server that returns bytes (payloads are pickles)."""
    if is_cluster(client):
        if not connection_options(client).get("decode_responses"):
            return client
        # The user's cluster client, read as bytes: the same nodes and credentials, Graflow's
        # timeouts; one per cluster URL, as for any URL (shared_client takes the lock).
        return shared_client(url_of(client))
    kwargs = client.connection_pool.connection_kwargs
    if not kwargs.get("decode_responses"):
        return client
    with _lock:
        sibling = _binary.get(client)
        if sibling is None:
            pool = client.connection_pool
            binary = {**kwargs, "decode_responses": False}
            if isinstance(pool, SentinelConnectionPool):
                binary.pop("connection_pool", None)  # the pool's own proxy, made again by the new pool
                pool = SentinelConnectionPool(pool.service_name, pool.sentinel_manager, **binary)  # type: ignore[no-untyped-call]
            else:
                pool = redis.ConnectionPool(connection_class=pool.connection_class, **binary)
            sibling = _binary[client] = redis.Redis(connection_pool=pool)
    return sibling


def client_from_config(config: Mapping[str, Any]) -> redis.Redis:
    """The client a backend uses: ``config["redis_client"]`` if given, else a shared one for the URL.

    ``config["redis_cluster"]`` makes a ``redis://`` URL name one node of a Redis Cluster.
    """
    client = config.get("redis_client")
    if client is not None:
        if not isinstance(client, redis.Redis) and not is_cluster(client):
            raise ConfigError(
                f"config['redis_client'] must be a redis.Redis or redis.cluster.RedisCluster client, got "
                f"{type(client).__name__}; or pass config={{'redis_url': 'redis://host:6379/0'}}"
            )
        return _binary_client(client)
    ref = config.get("client_ref")
    if ref is not None:
        found = _refs.get(str(ref))
        if found is not None:
            return found
    url = resolve_url(config)
    if config.get("redis_cluster"):
        url = as_cluster_url(url)
    try:
        return shared_client(url)
    except ConfigError:  # a malformed Sentinel or Cluster URL: its message gives the form
        raise
    except ValueError as exc:  # redis-py's word for a malformed URL
        raise ConfigError(
            f"{_without_password(url)!r} is not a Redis URL ({exc}); give one like redis://host:6379/0 "
            "(config redis_url, --redis-url or REDIS_URL)"
        ) from None


def register_client(client: redis.Redis, ref: str | None = None) -> str:
    """A name for ``client`` that :func:`client_from_config` resolves in this process (``client_ref``).

    ``ref`` gives it a name chosen elsewhere: a worker's pool process takes on its worker's
    names (see :mod:`graflow_redis.handover`). The registry holds clients weakly.
    """
    ref = ref or f"client-{id(client):x}"
    _refs[ref] = client
    return ref


def registered_clients() -> dict[str, redis.Redis]:
    """Every client registered in this process and still alive, by name."""
    return dict(_refs.items())


def lookup_client(ref: str) -> redis.Redis | None:
    """The client registered as ``ref``, if it is still alive."""
    return _refs.get(ref)


def url_of(client: redis.Redis) -> str:
    """A URL that reaches the same server and database as ``client`` (with its credentials).

    For a client of a primary found through Sentinel, the ``redis+sentinel://`` URL of its
    sentinels, so that whoever connects with it follows failovers too.
    """
    other = url_of_cluster_client(client) or url_of_sentinel_client(client)
    if other is not None:
        return other
    kwargs = client.connection_pool.connection_kwargs
    username, password = kwargs.get("username"), kwargs.get("password")
    auth = ""
    if password:
        auth = f"{quote(str(username or ''), safe='')}:{quote(str(password), safe='')}@"
    elif username:
        auth = f"{quote(str(username), safe='')}@"
    db = kwargs.get("db", 0) or 0
    path = kwargs.get("path")
    if path:
        return f"unix://{auth}{path}?db={db}"
    scheme = "rediss" if issubclass(client.connection_pool.connection_class, redis.SSLConnection) else "redis"
    host = kwargs.get("host", "localhost")
    if ":" in str(host):  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{auth}{host}:{kwargs.get('port', 6379)}/{db}"


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url


def describe(client: redis.Redis) -> str:
    """``url_of(client)`` without credentials, for messages and logs."""
    url = url_of(client)
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    if "password=" in rest:  # a sentinel's password, in the query
        rest = rest.split("?", 1)[0]
    return f"{scheme}://{rest}"


def block_seconds(client: redis.Redis, wanted: float) -> float:
    """How long a blocking read may wait: ``wanted``, kept below the client's read timeout."""
    kwargs = connection_options(client) if is_cluster(client) else client.connection_pool.connection_kwargs
    timeout = kwargs.get("socket_timeout")
    if timeout:
        wanted = min(wanted, max(float(timeout) - 1.0, float(timeout) / 2))
    return max(wanted, 0.01)


def script_pipeline(client: redis.Redis) -> Any:
    """A non-transactional pipeline for a batch that runs scripts (``evalsha``).

    On one server, the client's own: the batch is one round trip. redis-py's cluster
    pipelines refuse scripts, so on a cluster each command is sent when it is added (a
    round trip each) and :meth:`execute` returns their answers in order, as a pipeline does.
    """
    if is_cluster(client):
        return _OneByOne(client)
    return client.pipeline(transaction=False)


class _OneByOne:
    """The part of a pipeline's interface :func:`script_pipeline` needs, each command sent at once."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._answers: list[Any] = []

    def __getattr__(self, command: str) -> Callable[..., Any]:
        method = getattr(self._client, command)
        if command == "script_load":
            # Sent by a Script given this as its client, after NOSCRIPT: not an answer of the batch.
            return method  # type: ignore[no-any-return]

        def send(*args: Any, **kwargs: Any) -> _OneByOne:
            self._answers.append(method(*args, **kwargs))
            return self

        return send

    def execute(self) -> list[Any]:
        answers, self._answers = self._answers, []
        return answers


def server_id(client: redis.Redis, key: str) -> str:
    """The run id of the server that holds ``key``: it changes when that server restarts or fails over.

    On a cluster, the primary serving the key's slot now.
    """
    if is_cluster(client):
        node = cast(Any, client).get_node_from_key(key)
        info = cast(Any, client).info("server", target_nodes=node)
    else:
        info = client.info("server")
    return str(info.get("run_id", ""))


def call_with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    where: str,
    timeout: float,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``fn()``, retried with exponential backoff while Redis is unreachable, for up to ``timeout`` s.

    Raises :class:`RedisUnavailableError` (saying where and for how long) when the budget is spent.
    """
    deadline = time.monotonic() + timeout
    backoff = Backoff()
    while True:
        try:
            return fn()
        except CONNECTION_ERRORS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RedisUnavailableError(
                    f"{what}: Redis at {where} did not answer for {timeout:.0f}s "
                    f"({type(exc).__name__}: {exc}). Check that it is running and reachable, or "
                    "point the run at another server with config={'redis_url': ...}."
                ) from exc
            pause = min(backoff.next(), left)
            if on_retry is not None:
                on_retry(exc, pause)
            time.sleep(pause)
