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
        auth = ""
        if self.password:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        elif self.username:
            auth = f"{quote(self.username, safe='')}@"
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)
        query = (
            f"?sentinel_password={quote(self.sentinel_password, safe='')}" if self.sentinel_password else ""
        )
        return f"{SCHEME}://{auth}{hosts}/{quote(self.service, safe='')}/{self.db}{query}"


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names a primary through Sentinel (``redis+sentinel://...``)."""
    return url.lower().startswith(f"{SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a ``redis+sentinel://`` URL; :class:`RedisURLError` says what is wrong and the form expected."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise _malformed(url, f"its scheme is {parts.scheme!r}, not {SCHEME!r}")
    auth, _, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise _malformed(url, "it names no sentinel")
    sentinels = tuple(_host_port(url, item) for item in hosts.split(","))
    path = [unquote(p) for p in parts.path.strip("/").split("/") if p]
    if not path:
        raise _malformed(url, "it names no service (the name the sentinels monitor the primary under)")
    if len(path) > 2:
        raise _malformed(url, f"its path {parts.path!r} has more than SERVICE/DB")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise _malformed(url, f"its database {path[1]!r} is not a number")
        db = int(path[1])
    username, password = None, None
    if auth:
        user, has_password, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"sentinel_password"})
    if unknown:
        raise _malformed(url, f"it has unknown options {unknown} (only sentinel_password is known)")
    sentinel_password = query.get("sentinel_password", [None])[-1]
    return SentinelURL(sentinels, path[0], db, username, password, sentinel_password)


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


def _host_port(url: str, item: str) -> tuple[str, int]:
    host, port = item, str(DEFAULT_SENTINEL_PORT)
    if item.startswith("["):  # IPv6 literal
        host, _, rest = item[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host:
        raise _malformed(url, f"the sentinel {item!r} has no host")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _malformed(url, f"the sentinel {item!r} has no valid port")
    return host, int(port)


def _malformed(url: str, why: str) -> RedisURLError:
    shown = url
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        shown = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return RedisURLError(
        f"the Sentinel URL {shown!r} is malformed: {why}. Write it as {_FORM}, for example "
        "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
    )
