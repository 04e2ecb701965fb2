"""What a state store keeps about runs: one :class:`RunInfo` per run, one :class:`Completion` per step.

A run's history is the list of its completions. Replaying them through the engine's
scheduling (without running the tasks again) rebuilds everything the run had decided:
which tasks are ready, which wait, iteration data, tasks added at run time. So a store
never has to save the engine's internal tables, and any process that can read the
history can carry on the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from graflow.channels.recording import ChannelOp
    from graflow.core.requests import TaskRequests

__all__ = ["ROOT_FLOW", "Completion", "Failure", "RunInfo", "RunStatus", "StepKey", "step_key"]

#: The flow key of a run's top-level graph (a group member's branch has its own key).
ROOT_FLOW: Final = ""


class RunStatus(str, Enum):
    """Where a run stands; ``graflow runs --status`` takes these names."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUSPENDED = "suspended"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """Whether nothing is left to do (a suspended or failed run can still be resumed)."""
        return self in (RunStatus.SUCCEEDED, RunStatus.CANCELED)


#: ``flow|task_id|occurrence``: one execution of one task in one flow of a run.
StepKey = str


def step_key(flow: str, task_id: str, occurrence: int) -> StepKey:
    """The key of the ``occurrence``-th execution (1-based) of ``task_id`` in ``flow``."""
    return f"{flow}|{task_id}|{occurrence}"


@dataclass
class Completion:
    """One step that succeeded: what it asked for, and what it wrote to the channel.

    Its result is kept apart, in the store's results (one per task id: the latest).
    """

    key: StepKey
    task_id: str
    #: What the step asked for (tasks added at run time travel here, by value).
    requests: TaskRequests | None = None
    #: The step's channel writes, for stores that keep the channel themselves.
    channel_ops: list[ChannelOp] = field(default_factory=list)
    #: ``host:pid`` of the process that ran it (``""``: the driver).
    worker: str = ""
    duration: float = 0.0
    attempts: int = 1
    finished_at: float = field(default_factory=time.time)


@dataclass
class Failure:
    """One attempt of a task that raised: what a dashboard shows of a retry or of the run's error.

    Kept beside the completions, never replayed: a resumed run runs a failed task again
    whatever its failures were.
    """

    task_id: str
    #: 1 for the first attempt; a retried task has one failure per attempt that raised.
    attempt: int
    #: The exception's type name and message (``"ValueError"``, ``"bad row 3"``).
    error_type: str
    message: str
    #: The traceback text, from where the attempt ran (a worker's or a container's, for a remote task).
    traceback: str
    started_at: float
    finished_at: float
    #: ``host:pid`` of the process that ran the attempt (``""``: the driver).
    worker: str = ""
    #: Whether the task gave up with it (no retry left, or an error that is never retried).
    final: bool = False


@dataclass
class RunInfo:
    """One row of ``graflow runs``: the JSON of ``--json`` is :meth:`to_json`."""

    run_id: str
    workflow: str
    status: RunStatus
    started_at: float
    finished_at: float | None = None
    tasks_done: int = 0
    tasks_total: int = 0
    #: ``"Type: message"`` of what failed the run, if it failed.
    error: str | None = None
    #: Who drives the run now (``host:pid``), while its lease is fresh.
    holder: str | None = None
    #: Where the run's queue and channel were (names), so it is resumed on the same backends.
    queue_backend: str = "memory"
    channel_backend: str = "memory"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": str(self.status),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "tasks_done": self.tasks_done,
            "tasks_total": self.tasks_total,
            "error": self.error,
        }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
