"""One attempt of a task under the lifecycle hooks, and the retry loop around attempts.

The engine (for tasks it runs or ships elsewhere) and the remote runner (for the one
attempt it was sent) both go through :func:`run_attempt`, so plugins that wrap
``graflow_run_task`` (tracing, progress, metrics) see every attempt the same way,
wherever it runs. Retries are decided where the run is driven: :func:`run_with_retries`.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from graflow.core.context import task_context
from graflow.exceptions import GraflowError, TaskTimeoutError, attach_task_id
from graflow.hitl.types import suspends
from graflow.log import get_logger
from graflow.plugins import hookimpl
from graflow.remote.envelope import RemoteTaskError
from graflow.state.records import Failure
from graflow.tracebacks import user_traceback

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext, TaskExecutionContext
    from graflow.core.task import TaskWrapper
    from graflow.plugins.manager import GraflowPluginManager

__all__ = ["call_with_timeout", "run_attempt", "run_with_retries"]


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
    propagates as itself, with a note saying how many attempts were made. A durable run
    keeps every failed attempt (:class:`~graflow.state.records.Failure`) for people to read.
    """
    context = tctx.execution_context
    policy = task.retry_policy
    explicit = context.explicit_results
    attempt = 0
    while True:
        attempt += 1
        tctx.retry_count = attempt - 1
        explicit.discard(task.task_id)
        started = time.time()
        try:
            return run_attempt(task, context, attempt, call, manager)
        except Exception as exc:
            gives_up = (
                policy is None
                or attempt > policy.max_retries
                or (isinstance(exc, GraflowError) and not exc.retriable)
            )
            if context.journal is not None and not suspends(exc):
                context.journal.record_failure(
                    _failure(task.task_id, context, attempt, started, exc, gives_up)
                )
            if policy is None or gives_up:
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


def _failure(
    task_id: str, context: ExecutionContext, attempt: int, started: float, exc: Exception, final: bool
) -> Failure:
    """What a durable run keeps of an attempt that raised; a remote one's traceback is the far side's."""
    if isinstance(exc, RemoteTaskError):
        error_type, message, text = exc.error_type, str(exc).partition(": ")[2], exc.remote_traceback
    else:
        error_type, message = type(exc).__name__, str(exc)
        # The task's own frames; with none (a limit Graflow enforced, an error rebuilt from another
        # process, whose note holds the far side's traceback), the exception and its notes.
        text = user_traceback(exc) or "".join(traceback.format_exception_only(exc))
    worker = context.task_workers.get(task_id, "")
    return Failure(task_id, attempt, error_type, message, text, started, time.time(), worker, final)


def call_with_timeout(call: Callable[[], Any], tctx: TaskExecutionContext, timeout: float) -> Any:
    """``call()`` for at most ``timeout`` seconds, or :class:`TaskTimeoutError`.

    Python cannot stop a thread, so a synchronous attempt runs in a helper thread that is
    *abandoned* when the time is up: it may finish in the background (a daemon thread,
    which never holds up the interpreter's exit), but what it returns or asks for then
    reaches nobody. Its channel writes, if it makes any after the timeout, do happen.
    Where an attempt can be stopped (its own process: see :func:`alarm`), that is used instead.
    """
    attempt = tctx.for_attempt()
    context = contextvars.copy_context()
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def work() -> None:
        token = task_context.set(attempt)
        try:
            outcome.set_result(call())
        except BaseException as exc:  # handed to the waiting thread
            outcome.set_exception(exc)
        finally:
            task_context.reset(token)

    threading.Thread(
        target=context.run, args=(work,), name=f"graflow-timed-{tctx.task_id}", daemon=True
    ).start()
    try:
        result = outcome.result(timeout)
    except concurrent.futures.TimeoutError:
        raise TaskTimeoutError(
            tctx.task_id, timeout, "the attempt was abandoned to finish on its own"
        ) from None
    tctx.adopt_attempt(attempt)
    return result


@contextmanager
def alarm(task_id: str, timeout: float | None) -> Iterator[None]:
    """Stop the code in this block with :class:`TaskTimeoutError` after ``timeout`` seconds.

    For a process that runs one attempt in its main thread (a MULTIPROCESSING pool process,
    a container): ``SIGALRM`` interrupts Python code, and sleeps and most blocking calls,
    unlike a thread. Elsewhere (not the main thread, no ``SIGALRM``) it does nothing.
    """
    usable = (
        timeout is not None
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    seconds = float(timeout or 0.0)

    def expire(signum: int, frame: object) -> None:
        raise TaskTimeoutError(task_id, seconds, "it was stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@hookimpl(trylast=True)
def graflow_run_task(run: Callable[[], Any]) -> Any:
    """The kernel's own implementation: do the work. Plugins wrap it."""
    return run()
