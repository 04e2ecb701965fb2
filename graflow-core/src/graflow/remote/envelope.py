"""The two messages of remote execution: the envelope out, the outcome back.

Only the message types live here; how they become bytes is :mod:`graflow.remote.codec`'s job.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graflow.channels.recording import ChannelOp, replay
from graflow.exceptions import GraflowRuntimeError

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext, TaskExecutionContext
    from graflow.core.dsl import Executable
    from graflow.core.requests import TaskRequests
    from graflow.core.routing import Routing

__all__ = [
    "ChannelOp",
    "RemoteTaskError",
    "TaskEnvelope",
    "TaskOutcome",
    "apply_outcome",
    "failure",
    "worker_name",
]


class RemoteTaskError(GraflowRuntimeError):
    """A remote task failed with an exception that could not be rebuilt here.

    Carries the original type name, message and traceback text from the remote side.
    It stands for the task's own exception, so a retry policy retries it as it would
    that exception (Graflow's own errors are otherwise never retried).
    """

    retriable = True

    def __init__(self, task_id: str, error_type: str, message: str, remote_traceback: str) -> None:
        self.task_id = task_id
        self.error_type = error_type
        self.remote_traceback = remote_traceback
        super().__init__(f"{error_type}: {message}")


@dataclass
class TaskEnvelope:
    """What travels out with a task."""

    task: Executable
    session_id: str
    workflow_name: str
    cycle_count: int = 1
    max_cycles: int = 100
    attempt: int = 1
    #: ``(True, data)`` when this run of the task was started by ``next_iteration(data)``.
    iteration: tuple[bool, Any] = (False, None)
    #: A copy of the channel's data, for a channel the remote side cannot reach
    #: (memory); ``None`` when it reconnects with :attr:`channel_backend`.
    channel_snapshot: dict[str, Any] | None = None
    #: Name and config of a shared channel backend the remote side can reach (e.g. Redis).
    channel_backend: tuple[str, dict[str, Any]] | None = None
    #: Results of earlier tasks, for ``get_result``, when the remote side cannot read the
    #: run's store itself (else empty, see :attr:`results_store`).
    results: dict[str, Any] = field(default_factory=dict)
    #: Name and config of the run's state store, which the remote side reads results from
    #: when it asks for them (``None``: :attr:`results` holds what it may read).
    results_store: tuple[str, dict[str, Any]] | None = None
    #: The step this attempt is, when the placement records steps in the run's store itself
    #: (a Redis worker does, atomically with the outcome); ``None`` otherwise.
    step: str | None = None
    #: Plugin state that must travel (``graflow_inject_carrier``), e.g. a trace context.
    carrier: dict[str, str] = field(default_factory=dict)
    #: Where and how fast it may run: its queue, priority and limits, with its group's queue
    #: and its run's priority applied (``None``: the defaults, no limits).
    routing: Routing | None = None

    @property
    def task_id(self) -> str:
        return self.task.task_id


@dataclass
class TaskOutcome:
    """What comes back: result or error, channel writes, requests, timing."""

    task_id: str
    success: bool
    result: Any = None
    #: The exception itself, unless it could not travel (then see :attr:`error_type`).
    error: BaseException | None = None
    error_type: str | None = None
    error_message: str | None = None
    remote_traceback: str | None = None
    channel_ops: list[ChannelOp] = field(default_factory=list)
    #: What the attempt asked for (``next_task``, ``next_iteration``, ...), if anything.
    requests: TaskRequests | None = None
    started_at: float = 0.0
    duration: float = 0.0
    #: ``host:pid`` of the process that ran the task.
    worker: str = ""
    #: The handler stored its own result (``set_result``) instead of returning it.
    explicit_result: bool = False
    #: Whoever ran the attempt recorded its step in the run's store (see :attr:`TaskEnvelope.step`).
    step_recorded: bool = False

    def raise_error(self) -> None:
        """Re-raise the remote failure here: the original type when it could be rebuilt."""
        if self.success:
            return
        error = self.error
        if error is None:
            error = RemoteTaskError(
                self.task_id,
                self.error_type or "Exception",
                self.error_message or "",
                self.remote_traceback or "",
            )
        if self.remote_traceback and hasattr(error, "add_note"):
            error.add_note(f"remote traceback ({self.worker}):\n{self.remote_traceback.rstrip()}")
        raise error


def worker_name() -> str:
    """``host:pid`` of this process, for summaries and traces."""
    return f"{socket.gethostname()}:{os.getpid()}"


def failure(task_id: str, exc: BaseException, started_at: float, **fields: Any) -> TaskOutcome:
    """An outcome for ``exc``; the codec drops the exception object if it cannot travel."""
    return TaskOutcome(
        task_id,
        success=False,
        error=exc,
        error_type=type(exc).__qualname__,
        error_message=str(exc),
        remote_traceback="".join(traceback.format_exception(exc)),
        started_at=started_at,
        duration=time.time() - started_at,
        worker=worker_name(),
        **fields,
    )


def apply_outcome(outcome: TaskOutcome, context: ExecutionContext, tctx: TaskExecutionContext | None) -> Any:
    """Make a remote run count here: replay its channel writes, adopt its requests, return or raise.

    Channel writes are replayed even when the task failed, as they would have been
    visible had it run in process. Requests are adopted only on success.
    """
    if outcome.worker:
        context.task_workers[outcome.task_id] = outcome.worker
    replay(context.channel, outcome.channel_ops)
    if not outcome.success:
        outcome.raise_error()
    requests = outcome.requests
    if tctx is not None and requests is not None:
        graph = context.graph
        requests.next_tasks = [(graph.same_task(ex), goto) for ex, goto in requests.next_tasks]
        tctx.adopt_requests(requests)
    if outcome.explicit_result:
        context.set_result(outcome.task_id, outcome.result)
    return outcome.result
