"""Redis clients from Graflow config: where to connect, how to retry, one pool per URL.

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
from typing import Any, Final, TypeVar
from urllib.parse import quote

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from graflow_redis.backoff import Backoff
from graflow_redis.errors import RedisUnavailableError

__all__ = [
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
    "shared_client",
    "url_of",
]

T = TypeVar("T")

#: Where to connect when neither config nor the environment says.
DEFAULT_URL: Final = "redis://localhost:6379/0"
#: Errors that mean "Redis cannot be reached right now": retry, nothing is wrong with the data.
CONNECTION_ERRORS: Final = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
#: Read timeout of clients built here; blocking reads are kept well below it.
SOCKET_TIMEOUT: Final = 15.0

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_binary: weakref.WeakKeyDictionary[redis.Redis, redis.Redis] = weakref.WeakKeyDictionary()
_refs: weakref.WeakValueDictionary[str, redis.Redis] = weakref.WeakValueDictionary()


def resolve_url(config: Mapping[str, Any]) -> str:
    """``config["redis_url"]``, else ``$REDIS_URL``, else ``$REDIS_HOST``/``$REDIS_PORT``, else localhost."""
    url = config.get("redis_url") or os.environ.get("REDIS_URL")
    if url:
        return str(url)
    host, port = os.environ.get("REDIS_HOST"), os.environ.get("REDIS_PORT")
    if host or port:
        return f"redis://{host or 'localhost'}:{port or 6379}/0"
    return DEFAULT_URL


def _new_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=5),
        retry_on_error=list(CONNECTION_ERRORS),
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=30,
    )


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
    kwargs = client.connection_pool.connection_kwargs
    if not kwargs.get("decode_responses"):
        return client
    with _lock:
        sibling = _binary.get(client)
        if sibling is None:
            pool = redis.ConnectionPool(
                connection_class=client.connection_pool.connection_class,
                **{**kwargs, "decode_responses": False},
            )
            sibling = _binary[client] = redis.Redis(connection_pool=pool)
    return sibling


def client_from_config(config: Mapping[str, Any]) -> redis.Redis:
    """The client a backend uses: ``config["redis_client"]`` if given, else a shared one for the URL."""
    client = config.get("redis_client")
    if client is not None:
        if not isinstance(client, redis.Redis):
            from graflow.exceptions import ConfigError

            raise ConfigError(
                f"config['redis_client'] must be a redis.Redis client, got {type(client).__name__}; "
                "or pass config={'redis_url': 'redis://host:6379/0'}"
            )
        return _binary_client(client)
    ref = config.get("client_ref")
    if ref is not None:
        found = _refs.get(str(ref))
        if found is not None:
            return found
    return shared_client(resolve_url(config))


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
    """A URL that reaches the same server and database as ``client`` (with its credentials)."""
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


def describe(client: redis.Redis) -> str:
    """``url_of(client)`` without credentials, for messages and logs."""
    url = url_of(client)
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return f"{scheme}://{rest}"


def block_seconds(client: redis.Redis, wanted: float) -> float:
    """How long a blocking read may wait: ``wanted``, kept below the client's read timeout."""
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if timeout:
        wanted = min(wanted, max(float(timeout) - 1.0, float(timeout) / 2))
    return max(wanted, 0.01)


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
