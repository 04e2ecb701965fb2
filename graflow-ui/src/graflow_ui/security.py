"""Safe by default: who may ask, from where, and which requests may change anything.

* **Host**: bound to loopback (the default), only requests addressed to a loopback name
  are served, so a web page cannot reach the dashboard by pointing a DNS name of its own
  at 127.0.0.1 (DNS rebinding). Anywhere else, a token is required anyway.
* **Token** (``--token`` or ``GRAFLOW_UI_TOKEN``): every route but the login page and the
  static assets needs it, as ``Authorization: Bearer TOKEN`` (scripts) or as the cookie the
  login form sets (pages). The cookie holds a digest of the token, not the token, and is
  ``HttpOnly`` and ``SameSite=Strict``.
* **Cross-site requests**: a POST must say it comes from the dashboard or a script: the
  header ``X-Graflow-Request`` (the pages send it) or ``Authorization``, neither of which a
  cross-site form can send, and an ``Origin``/``Sec-Fetch-Site`` naming another site is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

from graflow_ui.settings import UISettings, is_loopback

__all__ = ["COOKIE", "CSRF_HEADER", "Guard", "session_value"]

#: The cookie the login form sets.
COOKIE: Final = "graflow_ui_session"
#: The header a POST carries to show it comes from the dashboard's pages (or a script).
CSRF_HEADER: Final = "x-graflow-request"
#: What anyone may fetch: the login page and the assets every page loads (no data in them).
_OPEN: Final = ("/login", "/static/")
_CHANGES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def session_value(token: str) -> str:
    """The login cookie's value for ``token``: a digest, so the cookie never holds the token itself."""
    return hmac.new(token.encode(), b"graflow-ui session", hashlib.sha256).hexdigest()


class Guard:
    """ASGI middleware enforcing the rules in this module's doc before any route runs."""

    def __init__(self, app: ASGIApp, settings: UISettings) -> None:
        self.app = app
        self.token = settings.token
        self.session = session_value(settings.token) if settings.token else None
        #: Host names served: loopback names when bound to loopback, any with a token elsewhere.
        self.loopback_only = is_loopback(settings.host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        refusal = self._refusal(scope["method"], path, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        if (
            status == 401
            and not path.startswith("/api/")
            and scope["method"] == "GET"
            and path != "/openapi.json"
        ):
            await _redirect(send, f"/login?next={quote(path)}")
            return
        await _json(send, status, message, bearer=status == 401)

    def _refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.loopback_only and not is_loopback(_hostname(host)):
            return 400, f"this dashboard answers to loopback names only, not {host!r}"
        if method in _CHANGES:
            cross_site = self._cross_site(headers)
            if cross_site:
                return 403, cross_site
            if path != "/login" and CSRF_HEADER not in headers and "authorization" not in headers:
                return 403, (
                    "a POST needs the header X-Graflow-Request: 1 (the pages send it) or an Authorization "
                    "header: this keeps other sites from acting through your browser"
                )
        if self.token is None or path.startswith(_OPEN):
            return None
        if self._authorized(headers):
            return None
        return 401, "this dashboard needs its token: `Authorization: Bearer TOKEN`, or log in at /login"

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.token is not None and self.session is not None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return True
        cookie = _cookies(headers.get("cookie", "")).get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session.encode())

    @staticmethod
    def _cross_site(headers: dict[str, str]) -> str | None:
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request refused (Sec-Fetch-Site: {site})"
        origin = headers.get("origin")
        if origin is not None and origin != "null" and urlsplit(origin).netloc != headers.get("host"):
            return f"cross-site request refused (Origin: {origin})"
        if origin == "null":
            return "cross-site request refused (Origin: null)"
        return None


def _hostname(host: str) -> str:
    """``127.0.0.1`` of ``127.0.0.1:8265``, ``::1`` of ``[::1]:8265``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _cookies(header: str) -> dict[str, str]:
    found = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        found[name] = value
    return found


async def _json(send: Send, status: int, message: str, *, bearer: bool) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
