"""``/api/feedback``: questions tasks asked people, and answering them (SPEC 17).

A thin layer over :class:`~graflow.hitl.FeedbackManager`: JSON in, ``provide_feedback``,
JSON out, so an answer is checked here exactly as in Python and on the command line.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from graflow_ui.dashboard import Dashboard
from graflow_ui.models import FeedbackAnswer, FeedbackRequestView, Problem
from graflow_ui.routes import dashboard

__all__ = ["router"]

router = APIRouter(prefix="/api/feedback", tags=["feedback"])
Board = Annotated[Dashboard, Depends(dashboard)]


@router.get(
    "", response_model=list[FeedbackRequestView], summary="questions waiting for an answer, oldest first"
)
def list_pending(
    board: Board, run_id: Annotated[str | None, Query(description="only this run's")] = None
) -> list[FeedbackRequestView]:
    return board.pending_feedback(run_id)


@router.get(
    "/{feedback_id}",
    response_model=FeedbackRequestView,
    responses={404: {"model": Problem, "description": "no such question"}},
    summary="one question, answered or not",
)
def get_request(board: Board, feedback_id: str) -> FeedbackRequestView:
    return board.feedback_request(feedback_id)


@router.post(
    "/{feedback_id}",
    response_model=FeedbackRequestView,
    responses={
        404: {"model": Problem, "description": "no such question"},
        409: {"model": Problem, "description": "answered already: the first answer stands"},
        422: {"model": Problem, "description": "the answer does not fit the question"},
    },
    summary="answer a question (a FeedbackResponse as JSON, without feedback_id)",
)
def answer(board: Board, feedback_id: str, body: FeedbackAnswer, request: Request) -> FeedbackRequestView:
    client = request.client.host if request.client is not None else "unknown"
    return board.answer(feedback_id, body, who=f"dashboard ({client})")
