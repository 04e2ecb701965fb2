"""Human in the loop: what a task asks a person, what the person answers, and what waiting costs.

The names are the existing Graflow releases' (``FeedbackType``, ``FeedbackResponse``,
``FeedbackTimeoutError``), so their users' code moves over. A request and its answer are
plain data (``to_json``/``from_json``), so every way of answering (Python, the CLI, HTTP)
speaks the same language, and a store can keep them as JSON.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from graflow.exceptions import GraflowError

__all__ = [
    "FeedbackAlreadyAnsweredError",
    "FeedbackError",
    "FeedbackNotFoundError",
    "FeedbackRequest",
    "FeedbackResponse",
    "FeedbackTimeoutError",
    "FeedbackType",
    "InvalidFeedbackError",
    "suspends",
]


class FeedbackType(str, Enum):
    """What kind of answer a request wants; its string works too (``"approval"``)."""

    APPROVAL = "approval"
    TEXT = "text"
    SELECTION = "selection"
    MULTI_SELECTION = "multi_selection"
    CUSTOM = "custom"

    def __str__(self) -> str:
        return self.value


@dataclass
class FeedbackRequest:
    """A question a task asked: kept in the run's state store until it is answered."""

    feedback_id: str
    run_id: str
    task_id: str
    feedback_type: FeedbackType
    prompt: str
    options: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Seconds the task waits for the answer before the run suspends (or, not durable, fails).
    timeout: float = 180.0
    #: The channel key the answer is written to (as a dict), for later tasks to read.
    channel_key: str | None = None
    created_at: float = field(default_factory=time.time)
    #: The answer, once there is one (the first valid answer stands).
    response: FeedbackResponse | None = None

    @property
    def answered(self) -> bool:
        return self.response is not None

    def to_json(self) -> dict[str, Any]:
        """What ``graflow feedback list --json`` and the HTTP API show."""
        return {
            "feedback_id": self.feedback_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "feedback_type": str(self.feedback_type),
            "prompt": self.prompt,
            "options": self.options,
            "metadata": self.metadata,
            "timeout": self.timeout,
            "channel_key": self.channel_key,
            "created_at": _iso(self.created_at),
            "status": "answered" if self.answered else "pending",
            "response": self.response.to_json() if self.response is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedbackRequest:
        response = data.get("response")
        return cls(
            feedback_id=str(data["feedback_id"]),
            run_id=str(data["run_id"]),
            task_id=str(data["task_id"]),
            feedback_type=FeedbackType(data["feedback_type"]),
            prompt=str(data["prompt"]),
            options=list(data["options"]) if data.get("options") is not None else None,
            metadata=dict(data.get("metadata") or {}),
            timeout=float(data.get("timeout", 180.0)),
            channel_key=data.get("channel_key"),
            created_at=_epoch(data.get("created_at")),
            response=FeedbackResponse.from_json(response) if response else None,
        )


@dataclass
class FeedbackResponse:
    """A person's answer. Fill the field the request's type asks for; the rest stay ``None``."""

    feedback_id: str = ""
    response_type: FeedbackType | str = FeedbackType.APPROVAL
    #: APPROVAL: yes or no (with an optional ``reason``).
    approved: bool | None = None
    reason: str | None = None
    #: TEXT.
    text: str | None = None
    #: SELECTION: one of the request's options.
    selected: str | None = None
    #: MULTI_SELECTION: some of the request's options.
    selected_multiple: list[str] | None = None
    #: CUSTOM: any JSON object.
    custom_data: dict[str, Any] | None = None
    responded_by: str | None = None
    responded_at: float | None = None

    @property
    def value(self) -> Any:
        """The answer itself: the field its type fills (``approved``, ``text``, ``selected``, ...)."""
        kind = FeedbackType(self.response_type)
        return {
            FeedbackType.APPROVAL: self.approved,
            FeedbackType.TEXT: self.text,
            FeedbackType.SELECTION: self.selected,
            FeedbackType.MULTI_SELECTION: self.selected_multiple,
            FeedbackType.CUSTOM: self.custom_data,
        }[kind]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["response_type"] = str(self.response_type)
        data["responded_at"] = _iso(self.responded_at)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedbackResponse:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "responded_at" in known:
            known["responded_at"] = _epoch(known["responded_at"]) if known["responded_at"] else None
        return cls(**known)


class FeedbackTimeoutError(GraflowError):
    """No answer came within the request's timeout.

    In a durable run this *suspends* the run: its state is kept, the waiting task is
    neither failed nor retried, and ``graflow resume`` after an answer carries on (the
    task asks again and gets the answer at once). In a run that is not durable it is the
    task's failure (not retried either: nobody answered, and asking again would wait again).
    """

    retriable = False

    def __init__(self, feedback_id: str, run_id: str, timeout: float, *, durable: bool = True) -> None:
        self.feedback_id = feedback_id
        self.run_id = run_id
        self.timeout = timeout
        self.durable = durable
        if durable:
            what = (
                f"no answer to feedback request {feedback_id!r} within {timeout:g}s: run {run_id!r} is "
                f"suspended. Answer it (`graflow feedback respond {feedback_id} ...`), then "
                f"`graflow resume {run_id}`"
            )
        else:
            what = (
                f"no answer to feedback request {feedback_id!r} within {timeout:g}s. This run is not "
                "durable, so the wait is the task's failure; run it with durable=True (or `graflow run "
                "--durable`) to suspend instead and resume once someone answers"
            )
        super().__init__(what)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_timeout, (self.feedback_id, self.run_id, self.timeout, self.durable))


def suspends(exc: BaseException) -> bool:
    """Whether ``exc`` suspends its run rather than failing it (a feedback timeout in a durable run)."""
    return isinstance(exc, FeedbackTimeoutError) and exc.durable


def _rebuild_timeout(feedback_id: str, run_id: str, timeout: float, durable: bool) -> FeedbackTimeoutError:
    return FeedbackTimeoutError(feedback_id, run_id, timeout, durable=durable)


class FeedbackError(GraflowError, ValueError):
    """An answer that cannot be taken; the message says why, and the request is unchanged."""


class FeedbackNotFoundError(FeedbackError, LookupError):
    """No request with this id in the store that was asked."""


class FeedbackAlreadyAnsweredError(FeedbackError):
    """The request has an answer already: the first answer stands."""


class InvalidFeedbackError(FeedbackError):
    """The answer does not fit the request (another kind, an option it does not offer)."""


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
    return time.time()
