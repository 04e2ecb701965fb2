"""``CoordinationBackend.MULTIPROCESSING``: members' tasks run in a pool of worker processes.

Each member's branch is scheduled from a thread in the engine's process; every task
whose handler is relocatable (the default ``direct`` one) is shipped to a child
process as a :class:`~graflow.remote.envelope.TaskEnvelope` (cloudpickle, so closures
and lambdas travel) and its :class:`~graflow.remote.envelope.TaskOutcome` is applied
here: result, channel writes, ``next_task``/``next_iteration`` requests. So a member
behaves exactly as it would in process, only its CPU time is spent elsewhere.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from graflow.coordination.coordinator import Coordinator, MemberRunner
from graflow.coordination.threaded import DEFAULT_MAX_WORKERS, run_in_threads
from graflow.exceptions import ExecutorUnavailableError
from graflow.plugins import hookimpl
from graflow.remote.codec import ByValue, dumps_envelope, loads
from graflow.remote.envelope import TaskEnvelope
from graflow.remote.runner import run_payload

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from multiprocessing.context import BaseContext

    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import ParallelGroup
    from graflow.core.handler import TaskResult
    from graflow.remote.envelope import TaskOutcome
    from graflow.remote.executor import RemoteExecutor

__all__ = ["MultiprocessingCoordinator", "pool_executor"]

#: What the fork server imports before forking pool processes (see :mod:`._preload`).
_PRELOAD = "graflow.coordination._preload"
#: Seconds a warm pool waits for its processes; past that its members start anyway.
_START_PATIENCE = 60.0


class _PoolExecutor:
    """Runs envelopes on a process pool (the :class:`RemoteExecutor` of this backend)."""

    #: Limits of tasks sent to the pool are counted by the driver, which sends them.
    enforces_limits = False

    def __init__(self, pool: ProcessPoolExecutor, by_value: ByValue) -> None:
        self._pool = pool
        self._by_value = by_value

    def execute(self, envelope: TaskEnvelope) -> TaskOutcome:
        payload = dumps_envelope(envelope, self._by_value)
        try:
            outcome: TaskOutcome = loads(self._pool.submit(run_payload, payload).result())
        except BrokenProcessPool as exc:
            raise ExecutorUnavailableError(
                "the MULTIPROCESSING pool's processes died before they could run "
                f"{envelope.task_id!r}. If the workflow is started from a script, run it under "
                '`if __name__ == "__main__":` (pool processes import the script again); '
                "otherwise look for a task that kills its process (os._exit, a crash in C code)."
            ) from exc
        return outcome


class MultiprocessingCoordinator(Coordinator):
    """Process pools for one run: shared by its groups of one size, private to a timed group.

    A pool has ``max_workers`` processes (default: the CPU count). Its processes are
    forked from a fork server (``forkserver``; ``spawn`` where that does not exist), so
    they are safe beside the engine's threads and start in a few milliseconds with
    Graflow and its plugins already imported; each takes the engine's environment as it
    is when the pool starts, as a spawned process would.

    A group with a timeout gets a pool of its own, started before its clock starts.
    When the timeout expires that pool is killed, which stops the hung members and
    nothing else: groups running at the same time (nested in other members) keep theirs.
    """

    def __init__(self) -> None:
        self._pools: dict[int, ProcessPoolExecutor] = {}
        self._lock = threading.Lock()
        self._by_value = _pool_by_value()

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        _check_picklable(group, self._by_value)
        size = group.max_workers or os.cpu_count() or 1
        threads = min(len(group.members), max(DEFAULT_MAX_WORKERS, size))
        if group.timeout is None:
            outcomes, _ = run_in_threads(
                group, run_member, threads, _PoolExecutor(self._shared_pool(size), self._by_value)
            )
            return outcomes
        pool = _start_pool(size, warm=True)
        timed_out = True
        try:
            outcomes, timed_out = run_in_threads(
                group, run_member, threads, _PoolExecutor(pool, self._by_value)
            )
        finally:
            if timed_out:
                _kill(pool)
            else:
                pool.shutdown(wait=True)
        return outcomes

    def _shared_pool(self, size: int) -> ProcessPoolExecutor:
        with self._lock:
            pool = self._pools.get(size)
            if pool is None:
                pool = self._pools[size] = _start_pool(size)
            return pool

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def pool_executor(size: int) -> Iterator[RemoteExecutor]:
    """The executor a MULTIPROCESSING group sends its tasks through, on a pool of ``size`` processes.

    The pool starts as this backend starts its pools and is shut down when the block
    ends. For code that runs envelopes itself (the executor contract's tests, benchmarks)::

        with pool_executor(2) as executor:
            outcome = executor.execute(TaskEnvelope(task, "run-1", "etl"))
    """
    pool = _start_pool(size)
    try:
        yield _PoolExecutor(pool, _pool_by_value())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool_by_value() -> ByValue:
    """Pool processes share this interpreter's packages; the user's own modules (a script
    the pool cannot import again, a notebook's cells) travel by value."""
    return ByValue("another process", advice="or run this group with CoordinationBackend.THREADING")


def _start_pool(size: int, *, warm: bool = False) -> ProcessPoolExecutor:
    """A pool of ``size`` processes; ``warm``: return once every one of them is running.

    Processes otherwise start on demand, as calls arrive. A group's timeout must not be
    spent starting them, so a timed group waits for a warm pool: ``size`` calls that
    each wait at a barrier for all ``size`` processes to be up, so no process can take
    two of them and every process has to start.
    """
    context = _process_context()
    barrier = context.Barrier(size) if warm else None
    pool = ProcessPoolExecutor(
        max_workers=size, mp_context=context, initializer=_start_process, initargs=(dict(os.environ), barrier)
    )
    if barrier is not None:
        wait([pool.submit(_meet) for _ in range(size)])
    return pool


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, running calls included (the executor only offers to wait for them)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _process_context() -> BaseContext:
    """``forkserver`` with Graflow preloaded where the platform has it, else ``spawn``.

    Both start children that share no threads or locks with the engine's process (a
    plain ``fork`` would copy a lock held by another thread). The fork server is
    Python's, shared by the whole process: this sets its preload list, which only
    matters before the server's first start.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_PRELOAD])
        return context
    return multiprocessing.get_context("spawn")


#: In a pool process: the barrier of a warm pool's start (see :func:`_start_pool`).
_start_barrier: Any = None


def _start_process(environ: dict[str, str], barrier: Any) -> None:
    """Set up a pool process: the engine's environment as it is now, and the start barrier.

    A fork server keeps the environment it started with, while a spawned process gets
    the current one; members must see the same variables either way (``OTEL_*``,
    credentials the application sets at run time).
    """
    global _start_barrier
    os.environ.clear()
    os.environ.update(environ)
    _start_barrier = barrier


def _meet() -> None:
    """Wait until every process of a warm pool is running (a call made only by :func:`_start_pool`)."""
    _start_barrier.wait(timeout=_START_PATIENCE)


def _check_picklable(group: ParallelGroup, by_value: ByValue) -> None:
    """Fail before the group starts if a member's task cannot travel to another process.

    Only this group's own tasks are checked: a nested group runs its members under
    its own backend, which checks them when it starts.
    """
    for member in group.members:
        for task in member.elements:
            if task.kind == "task":
                what = f"task {task.task_id!r} of group {group.task_id!r}"
                dumps_envelope(TaskEnvelope(task, "check", group.task_id), by_value, what=what)


def _multiprocessing_coordinator() -> Coordinator:
    return MultiprocessingCoordinator()


@hookimpl
def graflow_coordinators() -> Mapping[str, Callable[[], Coordinator]]:
    return {"multiprocessing": _multiprocessing_coordinator}
