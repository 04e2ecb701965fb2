"""The ``direct`` handler: run the task's function in the engine's own thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graflow.core.handler import TaskHandler

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.task import Executable

__all__ = ["DirectTaskHandler"]


class DirectTaskHandler(TaskHandler):
    """The default handler: a plain in-process call."""

    relocatable = True

    def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
        return task.run()  # type: ignore[attr-defined]
