"""What a task asked the run to do, as one value shared by the engine, the envelope and the remote runner.

A task steers its run through its :class:`~graflow.core.context.TaskExecutionContext`
(``next_task``, ``next_iteration``, ``terminate_workflow``, ``cancel_workflow``). Those
calls only write a :class:`TaskRequests`; the engine carries them out once the attempt
succeeded. A task that ran in another process sends the same value back inside its
:class:`~graflow.remote.envelope.TaskOutcome`, so requests mean the same thing wherever
the task ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graflow.core.dsl import Executable

__all__ = ["TaskRequests"]


@dataclass(slots=True)
class TaskRequests:
    """Everything one successful attempt of a task asked for."""

    #: ``(executable, goto)`` for every ``next_task`` call, in call order.
    next_tasks: list[tuple[Executable, bool]] = field(default_factory=list)
    #: Whether a ``next_task(..., goto=True)`` asked to skip the normal successors.
    goto: bool = False
    #: Whether ``next_iteration`` was called.
    iterate: bool = False
    #: The ``data`` of ``next_iteration``.
    iteration_data: Any = None
    #: The message of ``terminate_workflow``, if it was called.
    terminate: str | None = None
    #: The message of ``cancel_workflow``, if it was called.
    cancel: str | None = None
    #: ``(path, metadata)`` of ``checkpoint()``, if it was called.
    checkpoint: tuple[str | None, dict[str, Any]] | None = None

    def add_next(self, executable: Executable, goto: bool) -> None:
        self.next_tasks.append((executable, goto))
        self.goto = self.goto or goto

    def merge(self, other: TaskRequests) -> None:
        """Add ``other``'s requests to these (a remote attempt's requests, adopted here)."""
        for executable, goto in other.next_tasks:
            self.add_next(executable, goto)
        if other.iterate:
            self.iterate = True
            self.iteration_data = other.iteration_data
        if other.terminate is not None:
            self.terminate = other.terminate
        if other.cancel is not None:
            self.cancel = other.cancel
        if other.checkpoint is not None:
            self.checkpoint = other.checkpoint
