"""``/api/workers``, ``/api/queues``, ``/api/dead-letters``: the worker fleet of a Redis store.

Over a store without a fleet (a local one) each answers 404, saying where a fleet is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from graflow_ui.dashboard import Dashboard
from graflow_ui.models import Action, DeadLetterPage, Problem, QueueView, WorkerView
from graflow_ui.routes import dashboard

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["fleet"])
Board = Annotated[Dashboard, Depends(dashboard)]
_NO_FLEET: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "the store has no worker fleet"}
}
_NO_LETTER: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no fleet, or no such dead letter"}
}


@router.get("/workers", response_model=list[WorkerView], responses=_NO_FLEET, summary="the live workers")
def list_workers(board: Board) -> list[WorkerView]:
    return board.workers()


@router.get(
    "/queues",
    response_model=list[QueueView],
    responses=_NO_FLEET,
    summary="queue depth, now and over the last minutes",
)
def list_queues(board: Board) -> list[QueueView]:
    return board.queues()


@router.get(
    "/dead-letters", response_model=DeadLetterPage, responses=_NO_FLEET, summary="newest dead letters first"
)
def list_dead_letters(board: Board, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DeadLetterPage:
    return board.dead_letters(limit)


@router.post(
    "/dead-letters/{dead_id}/requeue",
    response_model=Action,
    responses=_NO_LETTER,
    summary="put a dead letter back on the queue, as a new submission",
)
def requeue(board: Board, dead_id: str) -> Action:
    return board.requeue(dead_id)


@router.post(
    "/dead-letters/{dead_id}/discard",
    response_model=Action,
    responses=_NO_LETTER,
    summary="delete a dead letter",
)
def discard(board: Board, dead_id: str) -> Action:
    return board.discard(dead_id)
