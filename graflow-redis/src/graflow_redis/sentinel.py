"""``redis+sentinel://`` URLs: a primary found through Redis Sentinel, followed across failovers.

The form is ``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]``:
the sentinels to ask, the name they monitor the primary under (``sentinel monitor SERVICE
...``), and the database (default 0). ``USER``/``PASSWORD`` are the primary's; a
``?sentinel_password=...`` query gives the sentinels' own when they need one::

    redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster/0

The client asks the sentinels for the primary on every new connection, so after a failover
the next reconnect (which the retries of :mod:`graflow_redis.connection` make) reaches the
replica the sentinels promoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from graflow_redis.errors import RedisURLError
from graflow_redis.urls import credentials, host_list, hosts_text, malformed, userinfo

__all__ = [
    "SCHEME",
    "SentinelURL",
    "is_sentinel_url",
    "parse_sentinel_url",
    "sentinel_client",
    "url_of_sentinel_client",
]

#: The URL scheme of a primary found through Sentinel.
SCHEME: Final = "redis+sentinel"
#: What a sentinel listens on when the URL names none.
DEFAULT_SENTINEL_PORT: Final = 26379
_FORM: Final = "redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"


@dataclass(frozen=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    #: ``(host, port)`` of every sentinel to ask, in the URL's order.
    sentinels: tuple[tuple[str, int], ...]
    #: The name the sentinels monitor the primary under.
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    #: The sentinels' own password, when they need one (``?sentinel_password=``).
    sentinel_password: str | None = None

    def url(self) -> str:
        """The URL again, credentials included: what another process connects with."""
        auth, hosts = userinfo(self.username, self.password), hosts_text(self.sentinels)
        query = (
            f"?sentinel_password={quote(self.sentinel_password, safe='')}" if self.sentinel_password else ""
        )
        return f"{SCHEME}://{auth}{hosts}/{quote(self.service, safe='')}/{self.db}{query}"


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names a primary through Sentinel (``redis+sentinel://...``)."""
    return url.lower().startswith(f"{SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a ``redis+sentinel://`` URL; :class:`RedisURLError` says what is wrong and the form expected."""

    def fail(why: str) -> RedisURLError:
        return malformed(
            url, "Sentinel", why, _FORM, "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
        )

    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise fail(f"its scheme is {parts.scheme!r}, not {SCHEME!r}")
    auth, _, hosts = parts.netloc.rpartition("@")
    sentinels = host_list(hosts, DEFAULT_SENTINEL_PORT, fail)
    path = [unquote(p) for p in parts.path.strip("/").split("/") if p]
    if not path:
        raise fail("it names no service (the name the sentinels monitor the primary under)")
    if len(path) > 2:
        raise fail(f"its path {parts.path!r} has more than SERVICE/DB")
    if len(path) == 2 and not path[1].isdigit():
        raise fail(f"its database {path[1]!r} is not a number")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"sentinel_password"})
    if unknown:
        raise fail(f"it has unknown options {unknown} (only sentinel_password is known)")
    username, password = credentials(auth)
    db = int(path[1]) if len(path) == 2 else 0
    return SentinelURL(sentinels, path[0], db, username, password, query.get("sentinel_password", [None])[-1])


def sentinel_client(target: SentinelURL, **options: Any) -> redis.Redis:
    """A client of ``target``'s primary; ``options`` (timeouts, retries) apply to every connection.

    The sentinels themselves are asked with the same socket timeouts.
    """
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    manager = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        target.service, db=target.db, username=target.username, password=target.password, **options
    )
    return client


def url_of_sentinel_client(client: redis.Redis) -> str | None:
    """The ``redis+sentinel://`` URL of a client made by :meth:`Sentinel.master_for`, else ``None``."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return None
    kwargs = pool.connection_kwargs
    sentinels = tuple(
        (str(s.connection_pool.connection_kwargs["host"]), int(s.connection_pool.connection_kwargs["port"]))
        for s in pool.sentinel_manager.sentinels
    )
    sentinel_password = pool.sentinel_manager.sentinel_kwargs.get("password")
    target = SentinelURL(
        sentinels,
        pool.service_name,
        int(kwargs.get("db") or 0),
        kwargs.get("username"),
        kwargs.get("password"),
        sentinel_password,
    )
    return target.url()
