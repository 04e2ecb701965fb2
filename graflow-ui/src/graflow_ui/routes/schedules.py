"""``/api/schedules``: the store's schedules, their next fire time, pause and resume (see :mod:`graflow_ui.schedules`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from graflow_ui.dashboard import Dashboard
from graflow_ui.models import Problem, Schedule, ScheduleList
from graflow_ui.routes import dashboard

__all__ = ["router"]

router = APIRouter(prefix="/api/schedules", tags=["schedules"])
Board = Annotated[Dashboard, Depends(dashboard)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such schedule, or a store that keeps none"}
}


@router.get("", response_model=ScheduleList, summary="the schedules, or why there are none")
def list_schedules(board: Board) -> ScheduleList:
    return board.schedule_list()


@router.post("/{name}/pause", response_model=Schedule, responses=_NOT_FOUND, summary="stop firing a schedule")
def pause(board: Board, name: str) -> Schedule:
    return board.pause(name)


@router.post("/{name}/resume", response_model=Schedule, responses=_NOT_FOUND, summary="fire a schedule again")
def resume(board: Board, name: str) -> Schedule:
    return board.unpause(name)
