"""The pages: small HTML shells whose scripts draw everything from the JSON API.

Every page is the same shell (navigation, a main element, its script); what it shows comes
from ``/api/...`` like any other client's, so the API covers everything the pages do.
The login form is the one page that works without a script.
"""

from __future__ import annotations

import hmac
import html
import json
from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from graflow_ui import __version__
from graflow_ui.security import COOKIE, session_value

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Scripts a page loads besides common.js and its own.
_EXTRA_SCRIPTS: Final = {"run": ("draw",)}
#: Page name -> (title, navigation label or None when not in the navigation).
_PAGES: Final = {
    "runs": ("Runs", "Runs"),
    "run": ("Run", None),
    "feedback": ("Questions", "Questions"),
    "fleet": ("Fleet", "Fleet"),
    "dead-letters": ("Dead letters", "Dead letters"),
    "schedules": ("Schedules", "Schedules"),
}

_SHELL: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Graflow</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/app.css?v={version}">
</head>
<body>
<header class="top">
  <a class="brand" href="/runs">graflow</a>
  <nav>{nav}</nav>
  <span class="where" id="where"></span>
</header>
<main id="app" data-page="{page}" data-args="{args}"></main>
<script src="/static/common.js?v={version}"></script>
{scripts}
</body>
</html>
"""

_LOGIN: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Graflow</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/app.css?v={version}">
</head>
<body class="login">
<form method="post" action="/login" class="card login-card">
  <h1>graflow</h1>
  <p>This dashboard needs its token (the <code>--token</code> it was started with).</p>
  {error}
  <label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
  <input type="hidden" name="next" value="{next}">
  <button type="submit">Log in</button>
</form>
</body>
</html>
"""


def _page(page: str, **args: str) -> HTMLResponse:
    title, _ = _PAGES[page]
    here = "runs" if page == "run" else page
    nav = "".join(
        f'<a href="/{name}" class="here">{label}</a>' if name == here else f'<a href="/{name}">{label}</a>'
        for name, (_, label) in _PAGES.items()
        if label is not None
    )
    body = _SHELL.format(
        title=html.escape(title),
        nav=nav,
        page=page,
        args=html.escape(json.dumps(args)),
        scripts="\n".join(
            f'<script src="/static/{name}.js?v={__version__}"></script>'
            for name in (*_EXTRA_SCRIPTS.get(page, ()), page)
        ),
        version=__version__,
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/")
def home() -> Response:
    return RedirectResponse("/runs", status_code=303)


@router.get("/runs")
def runs_page() -> HTMLResponse:
    return _page("runs")


@router.get("/runs/{run_id}")
def run_page(run_id: str) -> HTMLResponse:
    return _page("run", run_id=run_id)


@router.get("/feedback")
def feedback_page() -> HTMLResponse:
    return _page("feedback")


@router.get("/fleet")
def fleet_page() -> HTMLResponse:
    return _page("fleet")


@router.get("/dead-letters")
def dead_letters_page() -> HTMLResponse:
    return _page("dead-letters")


@router.get("/schedules")
def schedules_page() -> HTMLResponse:
    return _page("schedules")


@router.get("/login")
def login_page(next: str = "/runs") -> HTMLResponse:
    return _login(_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    # The form is read here rather than declared: it is two fields, not worth a multipart parser.
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = form.get("token", [""])[0]
    next_path = _safe_next(form.get("next", ["/runs"])[0])
    expected = request.app.state.dashboard.settings.token
    if expected is None:
        return RedirectResponse(next_path, status_code=303)
    if not hmac.compare_digest(session_value(token), session_value(expected)):
        return _login(next_path, error="That token is not this dashboard's: try again.", status=401)
    answer = RedirectResponse(next_path, status_code=303)
    answer.set_cookie(COOKIE, session_value(expected), httponly=True, samesite="strict", path="/")
    return answer


@router.post("/logout")
def logout() -> Response:
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


def _login(next_path: str, error: str | None, status: int = 200) -> HTMLResponse:
    shown = f'<p class="error">{html.escape(error)}</p>' if error else ""
    body = _LOGIN.format(version=__version__, error=shown, next=html.escape(next_path))
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _safe_next(path: str) -> str:
    """Only a path of this site: never an open redirect to another."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/runs"
