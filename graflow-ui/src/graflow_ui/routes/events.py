"""``/api/events/...``: Server-Sent Events that keep the pages live.

The stores have no change feed, so each stream looks at the store every
``poll_interval`` seconds (in a worker thread: the stores' clients block) and sends an
event only when what it looks at changed, plus a comment line now and then so proxies
keep the connection open. A page reloads what it shows from the JSON API on each event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from graflow.exceptions import StateStoreError
from graflow.state.records import RunStatus
from graflow_ui.dashboard import Dashboard
from graflow_ui.models import Problem
from graflow_ui.routes import dashboard

__all__ = ["router"]

router = APIRouter(prefix="/api/events", tags=["live"])
Board = Annotated[Dashboard, Depends(dashboard)]
#: Seconds between keep-alive comments on a stream with nothing new.
KEEP_ALIVE: Final = 15.0
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "a stream of Server-Sent Events"}
}


@router.get(
    "/runs",
    response_class=StreamingResponse,
    responses=_STREAM,
    summary="`runs` events: the page of runs (as GET /api/runs) each time it changes",
)
async def runs_events(
    request: Request,
    board: Board,
    status: RunStatus | None = None,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> StreamingResponse:
    def look() -> Any:
        return board.runs(status, workflow, offset, limit).model_dump()

    return _stream(request, "runs", look, board.settings.poll_interval)


@router.get(
    "/runs/{run_id}",
    response_class=StreamingResponse,
    responses={**_STREAM, 404: {"model": Problem, "description": "no such run"}},
    summary="`pulse` events: a run's status, counts, questions and running tasks each time they change",
)
async def run_events(request: Request, board: Board, run_id: str) -> StreamingResponse:
    await run_in_threadpool(board.store.run, run_id)  # an unknown run is a 404, not an empty stream

    def look() -> Any:
        return board.pulse(run_id)

    return _stream(request, "pulse", look, board.settings.poll_interval)


def _stream(request: Request, event: str, look: Callable[[], Any], every: float) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        last: str | None = None
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            try:
                data = json.dumps(await run_in_threadpool(look), sort_keys=True)
            except (LookupError, StateStoreError) as exc:  # the run expired, the store went away
                yield f"event: problem\ndata: {json.dumps({'detail': str(exc)})}\n\n"
                return
            if data != last:
                last, quiet_since = data, time.monotonic()
                yield f"event: {event}\ndata: {data}\n\n"
            elif time.monotonic() - quiet_since > KEEP_ALIVE:
                quiet_since = time.monotonic()
                yield ": still here\n\n"
            await asyncio.sleep(every)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
