"""Human in the loop: tasks that ask a person, wait for the answer, and suspend their run when none comes.

A task asks through its context (``ctx.request_approval("Deploy v1.2?")``,
:meth:`~graflow.core.context.TaskExecutionContext.request_feedback`); the request lives
in the run's state store, so whatever reaches that store answers it: a
:class:`FeedbackManager` (``context.feedback_manager``), ``graflow feedback respond``,
the dashboard. In a durable run, a question nobody answers in time suspends the run;
``graflow resume`` after the answer carries it on.
"""

from graflow.hitl.backend import FeedbackBackend, InProcessFeedback
from graflow.hitl.manager import FeedbackManager
from graflow.hitl.types import (
    FeedbackAlreadyAnsweredError,
    FeedbackError,
    FeedbackNotFoundError,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackTimeoutError,
    FeedbackType,
    InvalidFeedbackError,
)

__all__ = [
    "FeedbackAlreadyAnsweredError",
    "FeedbackBackend",
    "FeedbackError",
    "FeedbackManager",
    "FeedbackNotFoundError",
    "FeedbackRequest",
    "FeedbackResponse",
    "FeedbackTimeoutError",
    "FeedbackType",
    "InProcessFeedback",
    "InvalidFeedbackError",
]
