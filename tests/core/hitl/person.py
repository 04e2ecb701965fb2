"""A person, played by a thread: waits for a run's questions and answers them through its manager."""

from __future__ import annotations

import threading
from collections.abc import Callable

from graflow.core.context import ExecutionContext
from graflow.hitl import FeedbackRequest, FeedbackResponse
from tests.support.waiting import wait_until


def answer_when_asked(
    context: ExecutionContext, respond: Callable[[FeedbackRequest], FeedbackResponse], count: int = 1
) -> threading.Thread:
    """Answer the run's next ``count`` questions from another thread, as a person would."""

    def person() -> None:
        manager = context.feedback_manager
        for _ in range(count):
            request = wait_until(
                lambda: next(iter(manager.list_pending_requests(context.session_id)), None),
                timeout=20,
                what="a question",
            )
            manager.provide_feedback(request.feedback_id, respond(request))

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    return thread
