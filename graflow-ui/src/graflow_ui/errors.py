"""How errors become HTTP answers: a status and one message that says what to do, never a traceback.

=====================================================  ======
the error                                              status
=====================================================  ======
an unknown run, question, task, dead letter, schedule  404
an answer that does not fit its question               422
a question answered already; a run driven elsewhere    409
an action the run's state refuses (:class:`Refused`)   409
the store cannot be read (Redis down, a damaged file)  503
anything else                                          500, "see the dashboard's log"
=====================================================  ======
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from graflow.exceptions import RunInUseError, StateStoreError
from graflow.hitl.types import FeedbackAlreadyAnsweredError, InvalidFeedbackError
from graflow.log import get_logger

__all__ = ["Refused", "install_error_handlers"]


class Refused(Exception):
    """An action the run's state does not allow now (resuming a run that succeeded)."""


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidFeedbackError, 422),
    (FeedbackAlreadyAnsweredError, 409),
    (RunInUseError, 409),
    (Refused, 409),
    (LookupError, 404),  # RunNotFoundError, FeedbackNotFoundError and the dashboard's own
    (StateStoreError, 503),
)


def install_error_handlers(app: FastAPI) -> None:
    for error, status in _STATUS:
        app.add_exception_handler(error, _answer_with(status))
    app.add_exception_handler(Exception, _internal)


def _answer_with(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def answer(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return answer


async def _internal(request: Request, exc: Exception) -> Response:
    get_logger("graflow.ui").error(
        "request_failed", method=request.method, path=request.url.path, error=repr(exc), exc_info=exc
    )
    return JSONResponse(
        {"detail": "the dashboard failed to answer this request; its log says why"}, status_code=500
    )
