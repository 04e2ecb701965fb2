"""The coordinator contract and the names of the well-known backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from graflow.core.handler import TaskResult

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable, ParallelGroup
    from graflow.remote.executor import RemoteExecutor

__all__ = ["CoordinationBackend", "Coordinator", "MemberRunner"]

#: Runs one member's whole branch (the member and the tasks it adds) from the calling
#: thread; never raises for a member failure, it returns a failed :class:`TaskResult`.
#: With an executor, tasks whose handler is relocatable run there instead of in process.
MemberRunner = Callable[["Executable", "RemoteExecutor | None"], "TaskResult"]


class CoordinationBackend(str, Enum):
    """Names of the coordination backends; ``with_execution(backend=...)`` takes these or plain names."""

    DIRECT = "direct"
    THREADING = "threading"
    MULTIPROCESSING = "multiprocessing"
    REDIS = "redis"

    def __str__(self) -> str:
        return self.value


class Coordinator(ABC):
    """Runs the members of one parallel group and returns one outcome per member.

    A coordinator never decides whether the group failed (the group's policy does) and
    never lets a member's exception escape: each member ends as a :class:`TaskResult`.
    """

    @abstractmethod
    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        """Outcomes of ``group.members``, in member order."""

    def close(self) -> None:
        """Release what the coordinator holds (pools, connections); called when the run ends."""


def timed_out(member: Executable, timeout: float) -> TaskResult:
    """The outcome of a member still running when its group's timeout expired."""
    return TaskResult(
        member.task_id,
        success=False,
        error_message=f"TimeoutError: still running after the group's timeout of {timeout}s",
        duration=timeout,
        error=TimeoutError(f"member {member.task_id!r} timed out after {timeout}s"),
    )
