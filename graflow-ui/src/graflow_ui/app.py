"""``create_app``: the dashboard as an ASGI application (FastAPI), over one store.

``graflow ui`` serves it with uvicorn; an application can mount it in its own server::

    from graflow.state.opening import store_for
    from graflow_ui import UISettings, create_app

    settings = UISettings(store_config={"state_dir": "/srv/flows/state"}, token="s3cret")
    app = create_app(settings)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from graflow.log import get_logger
from graflow.state.opening import store_for
from graflow.state.store import StateStore
from graflow_ui import __version__
from graflow_ui.dashboard import Dashboard
from graflow_ui.errors import install_error_handlers
from graflow_ui.routes import events, feedback, fleet, pages, runs, schedules
from graflow_ui.security import Guard
from graflow_ui.settings import UISettings

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"

_DESCRIPTION = """\
The JSON API of a Graflow dashboard over one state store: runs and their tasks, questions
to answer, and (over a Redis store) the worker fleet and its dead letters. The dashboard's
own pages use it.

With a token, every request carries `Authorization: Bearer TOKEN`. A POST also needs the
header `X-Graflow-Request: 1` unless it carries `Authorization`: a browser does not send
either across sites, which keeps other sites from acting through it.
"""


def create_app(settings: UISettings, store: StateStore | None = None) -> FastAPI:
    """The dashboard over ``store`` (default: the one ``settings.store_config`` points at)."""
    board = Dashboard(settings, store if store is not None else store_for(settings.store_config))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sampler = asyncio.create_task(_sample_depth(board)) if board.fleet is not None else None
        try:
            yield
        finally:
            if sampler is not None:
                sampler.cancel()

    app = FastAPI(
        title="Graflow dashboard",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.dashboard = board
    install_error_handlers(app)
    for module in (events, runs, feedback, fleet, schedules, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, settings=settings)
    return app


async def _sample_depth(board: Dashboard) -> None:
    """Read queue depth every ``depth_interval`` seconds, for the fleet page's chart."""
    fleet = board.fleet
    assert fleet is not None
    while True:
        try:
            await run_in_threadpool(fleet.sample)
        except Exception as exc:  # Redis away for a while: a gap in the chart, not a dead dashboard
            get_logger("graflow.ui").warning("queue_depth_unread", error=repr(exc))
        await asyncio.sleep(board.settings.depth_interval)
