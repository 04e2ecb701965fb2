"""``FeedbackManager``: ask, list, answer. The one door to a store's feedback requests.

Python code, ``graflow feedback`` and the dashboard's HTTP API all answer through
:meth:`FeedbackManager.provide_feedback`, so an answer is checked the same way
everywhere: the right kind for the request, a selection among its options, the first
answer only. HTTP is then a thin layer: JSON in (:meth:`FeedbackResponse.from_json`),
:meth:`provide_feedback`, JSON out.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from graflow.exceptions import ConfigError
from graflow.hitl.backend import FeedbackBackend
from graflow.hitl.types import (
    FeedbackRequest,
    FeedbackResponse,
    FeedbackType,
    InvalidFeedbackError,
)
from graflow.log import get_logger
from graflow.state.opening import store_for

__all__ = ["FeedbackManager", "feedback_id", "validate"]

#: Seconds one webhook POST may take, and the pauses before its retries.
WEBHOOK_TIMEOUT: Final = 5.0
WEBHOOK_RETRIES: Final = (0.5, 2.0, 5.0)


class FeedbackManager:
    """Feedback requests of one store (``context.feedback_manager`` gives the run's)."""

    def __init__(self, backend: FeedbackBackend) -> None:
        self.backend = backend

    @classmethod
    def for_store(cls, config: Mapping[str, Any] | None = None) -> FeedbackManager:
        """The requests of the durable store ``config`` points at, from any process.

        ``{"state_dir": DIR}`` (default: ``$GRAFLOW_STATE_DIR``, else ``./.graflow``) or
        ``{"redis_url": URL, "key_prefix": P}``: the options of ``graflow feedback``.
        """
        backend = store_for(config).feedback()
        if backend is None:
            raise ConfigError(f"the store {config!r} points at keeps no feedback requests")
        return cls(backend)

    # --- answering ---------------------------------------------------------------------------

    def list_pending_requests(self, run_id: str | None = None) -> list[FeedbackRequest]:
        """Requests waiting for an answer, oldest first (of one run, or all)."""
        return self.backend.pending(run_id)

    def get_request(self, feedback_id: str) -> FeedbackRequest:
        """One request, answered or not."""
        return self.backend.get(feedback_id)

    def provide_feedback(self, feedback_id: str, response: FeedbackResponse) -> FeedbackRequest:
        """Answer a request: checked against it, stamped (``responded_at``), the first answer only.

        Raises :class:`~graflow.hitl.types.InvalidFeedbackError` for an answer that does
        not fit, :class:`~graflow.hitl.types.FeedbackNotFoundError` and
        :class:`~graflow.hitl.types.FeedbackAlreadyAnsweredError`; the request is unchanged then.
        """
        request = self.backend.get(feedback_id)
        answer = validate(request, response)
        return self.backend.answer(feedback_id, answer)

    # --- asking (what TaskExecutionContext.request_feedback does) -------------------------------

    def ask(
        self,
        request: FeedbackRequest,
        notification: Mapping[str, Any] | None = None,
        announce: Callable[[FeedbackRequest], None] | None = None,
    ) -> FeedbackResponse | None:
        """Record ``request`` (or find it, when a resumed task asks again), notify, wait for the answer.

        A request answered already (while its run was suspended) returns at once;
        otherwise ``announce`` is told before the wait, and a new request's
        ``notification`` webhook is called.
        """
        stored, new = self.backend.create(request)
        if stored.response is not None:
            return stored.response
        if announce is not None:
            announce(stored)
        if new and notification:
            notify(stored, notification)
        try:
            return self.backend.wait(stored.feedback_id, stored.timeout)
        finally:
            if not self.backend.keeps:  # nobody can resume the run: nothing to answer later
                self.backend.forget(stored.feedback_id)


def feedback_id(run_id: str, task_id: str, cycle: int, number: int) -> str:
    """The id of the ``number``-th request of ``task_id``'s ``cycle``-th run in ``run_id``.

    Derived, not random: a task that runs again after a resume (or a retry) asks its
    questions again, and must find the requests it made, with their answers.
    """
    return hashlib.sha256(f"{run_id}|{task_id}|{cycle}|{number}".encode()).hexdigest()[:20]


def validate(request: FeedbackRequest, response: FeedbackResponse) -> FeedbackResponse:
    """``response`` made to fit ``request`` (its id, type and time filled), or :class:`InvalidFeedbackError`."""
    kind = request.feedback_type
    given = response.response_type
    try:
        given_kind = FeedbackType(given)
    except ValueError:
        raise _invalid(request, f"unknown response type {given!r}") from None
    explicitly_typed = given_kind is not FeedbackType.APPROVAL or response.approved is not None
    if given_kind is not kind and explicitly_typed and not _fits(kind, response):
        raise _invalid(request, f"it asks for {_kind_text(kind)}, and the answer is {_kind_text(given_kind)}")
    if kind is FeedbackType.APPROVAL and not isinstance(response.approved, bool):
        raise _invalid(request, "an approval needs approved=True or approved=False (--approve / --reject)")
    if kind is FeedbackType.TEXT and not isinstance(response.text, str):
        raise _invalid(request, "a text request needs text=... (--text T)")
    if kind is FeedbackType.SELECTION:
        if response.selected not in (request.options or []):
            raise _invalid(
                request, f"selected={response.selected!r} is not one of its options {request.options}"
            )
    if kind is FeedbackType.MULTI_SELECTION:
        chosen = response.selected_multiple
        if not isinstance(chosen, list) or not set(chosen) <= set(request.options or []):
            raise _invalid(
                request, f"selected_multiple={chosen!r} must be a list of its options {request.options}"
            )
    if kind is FeedbackType.CUSTOM and not isinstance(response.custom_data, dict):
        raise _invalid(request, "a custom request needs custom_data={...} (a JSON object)")
    response.feedback_id = request.feedback_id
    response.response_type = kind
    response.responded_at = response.responded_at or time.time()
    return response


def _kind_text(kind: FeedbackType) -> str:
    return {
        FeedbackType.APPROVAL: "an approval",
        FeedbackType.TEXT: "a text",
        FeedbackType.SELECTION: "a selection",
        FeedbackType.MULTI_SELECTION: "a multi-selection",
        FeedbackType.CUSTOM: "custom data",
    }[kind]


def _fits(kind: FeedbackType, response: FeedbackResponse) -> bool:
    """Whether an answer typed otherwise still carries exactly what ``kind`` needs."""
    field = {
        FeedbackType.APPROVAL: response.approved,
        FeedbackType.TEXT: response.text,
        FeedbackType.SELECTION: response.selected,
        FeedbackType.MULTI_SELECTION: response.selected_multiple,
        FeedbackType.CUSTOM: response.custom_data,
    }[kind]
    return field is not None


def _invalid(request: FeedbackRequest, why: str) -> InvalidFeedbackError:
    return InvalidFeedbackError(
        f"the answer to feedback request {request.feedback_id!r} ({request.prompt!r}) was refused: {why}; "
        "the request is still open"
    )


def notify(request: FeedbackRequest, notification: Mapping[str, Any]) -> None:
    """POST the request as JSON to ``notification["webhook_url"]``, in the background.

    A webhook that is down never fails the task: each POST has a timeout, is retried a
    few times, and then given up with a warning.
    """
    url = notification.get("webhook_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"notification needs a 'webhook_url' (http:// or https://), got {notification!r}")
    body = json.dumps(request.to_json()).encode()
    thread = threading.Thread(
        target=_post, args=(url, body, request.feedback_id), name="graflow-webhook", daemon=True
    )
    thread.start()


def _post(url: str, body: bytes, feedback_id: str) -> None:
    import urllib.request  # lazy: only runs that notify pay for urllib's import

    log = get_logger("graflow.hitl")
    for attempt, pause in enumerate((0.0, *WEBHOOK_RETRIES), start=1):
        time.sleep(pause)
        try:
            call = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(call, timeout=WEBHOOK_TIMEOUT) as answer:  # noqa: S310 - the user's URL
                if answer.status < 300:
                    return
                error = f"HTTP {answer.status}"
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        log.warning("feedback_webhook_failed", feedback_id=feedback_id, url=url, attempt=attempt, error=error)
    log.warning("feedback_webhook_given_up", feedback_id=feedback_id, url=url)
