"""The workflow engine: the handlers a user registers, and the entry point that runs a context.

One engine can run many workflows; the state of one execution lives in its
:class:`~graflow.core.context.ExecutionContext` and in a :class:`~graflow.core.run.Run`,
which schedules ready nodes, runs them through their handlers and releases successors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graflow.core import scope
from graflow.core.handler import TaskHandler
from graflow.core.resume import rerun_context, resume_context
from graflow.core.run import DEFAULT_HANDLER, Run
from graflow.exceptions import GraphCompilationError
from graflow.plugins import hookimpl
from graflow.plugins.manager import get_plugin_manager

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext

__all__ = ["DEFAULT_HANDLER", "WorkflowEngine"]


class WorkflowEngine:
    """Runs workflows. Handlers registered here take precedence over plugin-provided ones::

    engine = WorkflowEngine()
    engine.register_handler("gpu", GPUHandler())
    last_result = engine.execute(context)
    """

    def __init__(self) -> None:
        self._handlers: dict[str, TaskHandler] = {}

    def register_handler(self, name: str, handler: TaskHandler) -> None:
        """Make ``@task(handler=name)`` run through ``handler`` in this engine's runs."""
        if not isinstance(handler, TaskHandler):
            raise TypeError(
                f"register_handler({name!r}, ...) needs a TaskHandler instance, got {type(handler).__name__}"
            )
        self._handlers[name] = handler

    def execute(self, context: ExecutionContext, start_task_id: str | None = None) -> Any:
        """Run the workflow of ``context`` to the end; return the last executed task's result.

        A task's exception propagates as itself, with ``exc.graflow_task_id`` set.
        """
        if start_task_id is not None:
            if start_task_id not in context.graph.nodes:
                raise GraphCompilationError(
                    f"unknown start task {start_task_id!r}; known nodes: {', '.join(context.graph.nodes)}. "
                    "Pass one of them, or None to start at every node without predecessors."
                )
            context.start_nodes = [start_task_id]
        run = Run(self._handlers, context)
        manager = get_plugin_manager()
        # Tasks and compositions made while the run executes belong to the run, never to
        # the workflow being defined around the call to execute().
        try:
            with scope.detached():
                if manager.wraps("graflow_run_workflow"):
                    return manager.hook.graflow_run_workflow(context=context, run=run.execute)
                return run.execute()
        finally:
            run.close()

    async def execute_async(self, context: ExecutionContext, start_task_id: str | None = None) -> Any:
        """:meth:`execute` from a coroutine: the run goes on in a thread, so the caller's loop stays free.

        Async tasks run on the run's own loop either way, never on the caller's.
        """
        return await asyncio.to_thread(self.execute, context, start_task_id)

    def resume(self, run_id: str, config: Mapping[str, Any] | None = None) -> Any:
        """Carry on run ``run_id`` from its state store; return its result.

        ``config`` points at the store (``{"state_dir": ...}``, or the Redis settings) and
        may override the run's own settings. Recorded steps are not run again; a run that
        succeeded returns its result and runs nothing.
        """
        return self.execute(resume_context(run_id, config))

    def rerun(self, run_id: str, from_task: str, config: Mapping[str, Any] | None = None) -> Any:
        """Run ``from_task`` and everything downstream of it again, as a new run reusing every other result.

        To learn the new run's id before it runs, build the context with
        :func:`graflow.core.resume.rerun_context` and execute that (``graflow rerun`` does).
        """
        return self.execute(rerun_context(run_id, from_task, config))


@hookimpl(trylast=True)
def graflow_run_workflow(run: Callable[[], Any]) -> Any:
    """The kernel's own implementation: do the work. Plugins wrap it."""
    return run()


@hookimpl(trylast=True)
def graflow_run_group(run: Callable[[], Any]) -> Any:
    """The kernel's own implementation: do the work. Plugins wrap it."""
    return run()
