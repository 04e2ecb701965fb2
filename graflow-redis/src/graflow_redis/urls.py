"""What ``redis+sentinel://`` and ``redis+cluster://`` URLs share: several hosts, credentials, errors.

redis-py parses one host per URL; these schemes name several (``HOST:PORT,HOST:PORT``),
so their modules (:mod:`graflow_redis.sentinel`, :mod:`graflow_redis.cluster`) parse them
with the helpers below.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, unquote

from graflow_redis.errors import RedisURLError

__all__ = ["credentials", "host_list", "hosts_text", "malformed", "userinfo"]

#: Builds the error for what is wrong with a URL, said in words.
Fail = Callable[[str], RedisURLError]


def host_list(hosts: str, default_port: int | None, fail: Fail) -> tuple[tuple[str, int], ...]:
    """``"a:1,[::1]:2"`` as ``(("a", 1), ("::1", 2))``; a missing port is ``default_port``, or fails."""
    if not hosts:
        raise fail("it names no host")
    return tuple(_host_port(item, default_port, fail) for item in hosts.split(","))


def hosts_text(hosts: tuple[tuple[str, int], ...]) -> str:
    """Inverse of :func:`host_list`."""
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts)


def credentials(auth: str) -> tuple[str | None, str | None]:
    """``(username, password)`` of a URL's ``USER:PASSWORD`` part (each ``None`` when absent)."""
    if not auth:
        return None, None
    user, has_password, secret = auth.partition(":")
    return unquote(user) or None, unquote(secret) if has_password else None


def userinfo(username: str | None, password: str | None) -> str:
    """``USER:PASSWORD@`` for a URL, quoted; empty without credentials."""
    if password:
        return f"{quote(username or '', safe='')}:{quote(password, safe='')}@"
    if username:
        return f"{quote(username, safe='')}@"
    return ""


def malformed(url: str, kind: str, why: str, form: str, example: str) -> RedisURLError:
    """The error for a malformed URL of ``kind``: what is wrong, the form to write, an example; no password."""
    shown = url
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        shown = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return RedisURLError(
        f"the {kind} URL {shown!r} is malformed: {why}. Write it as {form}, for example {example}"
    )


def _host_port(item: str, default_port: int | None, fail: Fail) -> tuple[str, int]:
    host, port = item, "" if default_port is None else str(default_port)
    if item.startswith("["):  # IPv6 literal
        host, _, rest = item[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host:
        raise fail(f"the host {item!r} has no name")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(f"the host {item!r} has no valid port")
    return host, int(port)
