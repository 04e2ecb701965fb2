"""Where feedback requests wait for their answers: a part of the run's state store.

A store that keeps runs keeps their questions too (:meth:`StateStore.feedback
<graflow.state.store.StateStore.feedback>`), so anything that reaches the store can list
and answer them: the task that asked, ``graflow feedback`` in another process, the
dashboard. A backend records each request once, takes the first answer atomically and
lets the asking task wait for it without spinning.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod

from graflow.hitl.types import (
    FeedbackAlreadyAnsweredError,
    FeedbackNotFoundError,
    FeedbackRequest,
    FeedbackResponse,
)

__all__ = ["FeedbackBackend", "InProcessFeedback"]


class FeedbackBackend(ABC):
    """The feedback requests of a store's runs."""

    #: Whether requests outlive the wait (a durable store's do: a resumed run finds them).
    keeps: bool = True

    def forget(self, feedback_id: str) -> None:
        """Drop a request nobody can resume (only stores that do not keep them need this)."""

    @abstractmethod
    def create(self, request: FeedbackRequest) -> tuple[FeedbackRequest, bool]:
        """Record ``request`` unless one with its id exists; ``(the stored request, whether it is new)``.

        A task that asks again after a resume gets the request (and the answer) it had.
        """

    @abstractmethod
    def get(self, feedback_id: str) -> FeedbackRequest:
        """One request, answered or not (:class:`FeedbackNotFoundError` if unknown)."""

    @abstractmethod
    def pending(self, run_id: str | None = None) -> list[FeedbackRequest]:
        """The requests without an answer, oldest first (of one run, or of every run)."""

    @abstractmethod
    def answer(self, feedback_id: str, response: FeedbackResponse) -> FeedbackRequest:
        """Store the answer if the request has none (atomically: the first answer wins) and wake its waiter.

        Raises :class:`FeedbackNotFoundError` or :class:`FeedbackAlreadyAnsweredError`.
        """

    @abstractmethod
    def wait(self, feedback_id: str, timeout: float) -> FeedbackResponse | None:
        """The answer, waiting at most ``timeout`` seconds for it; ``None`` when none came."""


class InProcessFeedback(FeedbackBackend):
    """Requests in this process's memory; a waiting task sleeps on a condition until answered.

    The runs of the in-process store end with their process, so a request is dropped
    once its task stops waiting: answered, or timed out (a failure, for such a run).
    """

    keeps = False

    def __init__(self) -> None:
        self._requests: dict[str, FeedbackRequest] = {}
        self._changed = threading.Condition()

    def create(self, request: FeedbackRequest) -> tuple[FeedbackRequest, bool]:
        with self._changed:
            stored = self._requests.get(request.feedback_id)
            if stored is not None:
                return stored, False
            self._requests[request.feedback_id] = request
            return request, True

    def forget(self, feedback_id: str) -> None:
        with self._changed:
            self._requests.pop(feedback_id, None)

    def get(self, feedback_id: str) -> FeedbackRequest:
        with self._changed:
            try:
                return self._requests[feedback_id]
            except KeyError:
                raise unknown(feedback_id, "this process") from None

    def pending(self, run_id: str | None = None) -> list[FeedbackRequest]:
        with self._changed:
            found = [
                r
                for r in self._requests.values()
                if not r.answered and (run_id is None or r.run_id == run_id)
            ]
        return sorted(found, key=lambda r: r.created_at)

    def answer(self, feedback_id: str, response: FeedbackResponse) -> FeedbackRequest:
        with self._changed:
            request = self.get(feedback_id)
            if request.response is not None:
                raise already_answered(request)
            request.response = response
            self._changed.notify_all()
            return request

    def wait(self, feedback_id: str, timeout: float) -> FeedbackResponse | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                response = self.get(feedback_id).response
                left = deadline - time.monotonic()
                if response is not None or left <= 0:
                    return response
                self._changed.wait(left)


def unknown(feedback_id: str, where: str) -> FeedbackNotFoundError:
    return FeedbackNotFoundError(
        f"no feedback request {feedback_id!r} in {where}; `graflow feedback list` shows the pending ones "
        "(point it at the run's store: --state-dir DIR, or --redis-url URL --key-prefix P)"
    )


def already_answered(request: FeedbackRequest) -> FeedbackAlreadyAnsweredError:
    answer = request.response
    by = f" by {answer.responded_by}" if answer is not None and answer.responded_by else ""
    return FeedbackAlreadyAnsweredError(
        f"feedback request {request.feedback_id!r} was answered already{by}; the first answer stands"
    )
