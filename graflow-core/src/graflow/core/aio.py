"""Async tasks: where their coroutines run, and how a timeout stops them.

The engine stays synchronous: a step calls ``task.run()`` and gets a value. An ``async
def`` task's coroutine runs on **one event loop per run**, in a background thread the
run starts the first time it needs it (:class:`RunLoop`). A step's thread hands its
coroutine over and waits, so the members of a THREADING group, each on its own thread,
overlap their awaits on that one loop, and the caller's own event loop (a notebook's) is
never used or blocked from inside: ``execute`` works from a running loop too.

Outside a run (``t.run()`` in a script, a worker process, a container) a coroutine runs
on a fresh loop of its own, as :func:`asyncio.run` would, in a helper thread if the
calling thread already runs a loop.

A coroutine runs in the context (:mod:`contextvars`) of the thread that handed it over,
so ``current_task_context()`` and tracing work inside async tasks as in sync ones. With a
timeout it is *cancelled* when the time is up, and the step fails with
:class:`~graflow.exceptions.TaskTimeoutError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, Final

from graflow.exceptions import TaskTimeoutError

__all__ = ["RunLoop", "run_coroutine", "run_loop"]

#: The event loop of the run this thread is executing (set by the engine for each run).
run_loop: Final[contextvars.ContextVar[RunLoop | None]] = contextvars.ContextVar(
    "graflow_run_loop", default=None
)


class RunLoop:
    """An event loop in a daemon thread, started on first use, stopped by :meth:`close`."""

    def __init__(self, name: str = "graflow-run-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _started(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def run(
        self, coroutine: Coroutine[Any, Any, Any], timeout: float | None = None, *, task_id: str = ""
    ) -> Any:
        """Run ``coroutine`` on this loop in the caller's context; block until it is done."""
        loop = self._started()
        context = contextvars.copy_context()
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def start() -> None:
            task = loop.create_task(_bounded(coroutine, timeout, task_id), context=context)
            task.add_done_callback(lambda finished: _settle(finished, done))

        loop.call_soon_threadsafe(start)
        return done.result()

    def close(self) -> None:
        """Stop the loop (tasks still pending are cancelled) and its thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(5.0)
        if not thread.is_alive():
            loop.close()


def run_coroutine(
    coroutine: Coroutine[Any, Any, Any], timeout: float | None = None, *, task_id: str = ""
) -> Any:
    """The value of ``coroutine``: on the current run's loop, else on a loop of its own."""
    loop = run_loop.get()
    if loop is not None:
        return loop.run(coroutine, timeout, task_id=task_id)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the simple case
        return asyncio.run(_bounded(coroutine, timeout, task_id))
    # This thread runs a loop already (t.run() from a notebook): never block it from inside.
    helper = RunLoop("graflow-task-loop")
    try:
        return helper.run(coroutine, timeout, task_id=task_id)
    finally:
        helper.close()


async def _bounded(coroutine: Coroutine[Any, Any, Any], timeout: float | None, task_id: str) -> Any:
    if timeout is None:
        return await coroutine
    try:
        return await asyncio.wait_for(coroutine, timeout)
    except asyncio.TimeoutError:
        raise TaskTimeoutError(task_id or "?", timeout, "its coroutine was cancelled") from None


def _settle(finished: asyncio.Future[Any], done: concurrent.futures.Future[Any]) -> None:
    if finished.cancelled():
        done.set_exception(concurrent.futures.CancelledError())
        return
    error = finished.exception()
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(finished.result())
