"""``/api/runs``: the runs of the store, one run with its tasks, its drawn graph, results, resume and rerun."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from graflow.state.records import RunStatus
from graflow_ui.dashboard import Dashboard
from graflow_ui.models import Action, GraphView, Problem, ResultView, RunDetail, RunPage
from graflow_ui.routes import dashboard

__all__ = ["router"]

router = APIRouter(prefix="/api/runs", tags=["runs"])
Board = Annotated[Dashboard, Depends(dashboard)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such run"}}


class RerunRequest(BaseModel):
    #: The first task to run again; it and everything downstream of it run as a new run.
    from_task: str


@router.get("", response_model=RunPage, summary="runs, newest first (the objects of `graflow runs --json`)")
def list_runs(
    board: Board,
    status: RunStatus | None = None,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunPage:
    return board.runs(status, workflow, offset, limit)


@router.get("/{run_id}", response_model=RunDetail, responses=_NOT_FOUND, summary="one run with its tasks")
def get_run(board: Board, run_id: str) -> RunDetail:
    return board.run(run_id)


@router.get(
    "/{run_id}/graph", response_model=GraphView, responses=_NOT_FOUND, summary="the run's graph, laid out"
)
def get_graph(board: Board, run_id: str) -> GraphView:
    return board.graph(run_id)


@router.get(
    "/{run_id}/results/{task_id}",
    response_model=ResultView,
    responses={404: {"model": Problem, "description": "no such run, or the task has no result"}},
    summary="a task's whole result, as text",
)
def get_result(board: Board, run_id: str, task_id: str) -> ResultView:
    return board.result(run_id, task_id)


@router.post(
    "/{run_id}/resume",
    response_model=Action,
    responses={**_NOT_FOUND, 409: {"model": Problem, "description": "finished, or driven by a live process"}},
    summary="carry the run on (`graflow resume`, in a process of its own)",
)
def resume_run(board: Board, run_id: str) -> Action:
    return board.resume(run_id)


@router.post(
    "/{run_id}/rerun",
    response_model=Action,
    responses={404: {"model": Problem, "description": "no such run or task"}},
    summary="run a task and what follows it again, as a new run (`graflow rerun --from`)",
)
def rerun_run(board: Board, run_id: str, body: RerunRequest) -> Action:
    return board.rerun(run_id, body.from_task)
