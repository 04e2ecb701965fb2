"""Task handlers: the strategy that actually runs a task (in process, in a container, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable

__all__ = ["TaskHandler", "TaskResult"]


class TaskHandler(ABC):
    """Runs one task. Subclass it and register it by name::

        class GPUHandler(TaskHandler):
            def execute_task(self, task, context):
                with gpu_lock:
                    return task.run()

        engine.register_handler("gpu", GPUHandler())      # or via a plugin's hook

    The handler's return value becomes the task's result unless it stores one itself
    with ``context.set_result(task.task_id, value)``. Handlers compose: one may wrap
    another and call its ``execute_task``.
    """

    #: Whether this handler does nothing but call ``task.run()``, so that a remote
    #: coordinator (MULTIPROCESSING, a worker fleet) may run the task elsewhere instead.
    #: Handlers that do their own placement (Docker, GPU locks) leave it False.
    relocatable: bool = False

    @abstractmethod
    def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
        """Run ``task`` (usually ``task.run()``) and return its result."""

    def get_name(self) -> str:
        """A name for logs and summaries."""
        return type(self).__name__


@dataclass
class TaskResult:
    """The outcome of one group member, as the group's policy sees it."""

    task_id: str
    success: bool
    result: Any = None
    error_message: str | None = None
    #: Seconds from start to end of the member.
    duration: float = 0.0
    #: The exception itself, when the member failed in this process.
    error: BaseException | None = None
