"""The ``direct`` handler: run the task's function in the engine's own thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graflow.core.handler import TaskHandler
from graflow.plugins import hookimpl

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable

__all__ = ["DirectTaskHandler"]


class DirectTaskHandler(TaskHandler):
    """The default handler: a plain in-process call."""

    relocatable = True

    def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
        return task.run()  # type: ignore[attr-defined]


@hookimpl
def graflow_task_handlers() -> Mapping[str, Callable[[], TaskHandler]]:
    return {"direct": DirectTaskHandler}
