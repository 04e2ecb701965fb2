"""One attempt of a task under the lifecycle hooks, and the retry loop around attempts.

The engine (for tasks it runs or ships elsewhere) and the remote runner (for the one
attempt it was sent) both go through :func:`run_attempt`, so plugins that wrap
``graflow_run_task`` (tracing, progress, metrics) see every attempt the same way,
wherever it runs. Retries are decided where the run is driven: :func:`run_with_retries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graflow.exceptions import GraflowError, attach_task_id
from graflow.log import get_logger
from graflow.plugins import hookimpl

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext, TaskExecutionContext
    from graflow.core.task import TaskWrapper
    from graflow.plugins.manager import GraflowPluginManager

__all__ = ["run_attempt", "run_with_retries"]


def run_attempt(
    task: TaskWrapper,
    context: ExecutionContext,
    attempt: int,
    call: Callable[[], Any],
    manager: GraflowPluginManager | None,
) -> Any:
    """``call()`` as attempt number ``attempt`` of ``task``, inside the plugins' task wrappers.

    ``manager`` is ``None`` when no plugin wraps tasks in this run (asked once per run):
    the attempt is then a plain call.
    """
    if manager is None:
        return call()
    return manager.hook.graflow_run_task(task=task, context=context, attempt=attempt, run=call)


def run_with_retries(
    task: TaskWrapper,
    tctx: TaskExecutionContext,
    call: Callable[[], Any],
    manager: GraflowPluginManager | None,
) -> Any:
    """Attempts of ``call`` until one succeeds or the task's retry policy gives up.

    A failed attempt's requests are forgotten before the next one. Graflow's own errors
    (bad arguments, cycle limits) are never retried; the last attempt's exception
    propagates as itself, with a note saying how many attempts were made.
    """
    context = tctx.execution_context
    policy = task.retry_policy
    explicit = context.explicit_results
    attempt = 0
    while True:
        attempt += 1
        tctx.retry_count = attempt - 1
        explicit.discard(task.task_id)
        try:
            return run_attempt(task, context, attempt, call, manager)
        except Exception as exc:
            if policy is None or attempt > policy.max_retries or isinstance(exc, GraflowError):
                note = (
                    f"graflow task {task.task_id!r} failed after {attempt} attempts" if attempt > 1 else None
                )
                attach_task_id(exc, task.task_id, note)
                raise
            tctx.reset_requests()
            delay = policy.delay(attempt)
            get_logger().warning(
                "task_retry",
                task_id=task.task_id,
                attempt=attempt,
                max_retries=policy.max_retries,
                delay=round(delay, 3),
                error=f"{type(exc).__name__}: {exc}",
            )
            time.sleep(delay)
        except BaseException as exc:
            attach_task_id(exc, task.task_id)
            raise


@hookimpl(trylast=True)
def graflow_run_task(run: Callable[[], Any]) -> Any:
    """The kernel's own implementation: do the work. Plugins wrap it."""
    return run()
