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
from concurrent.futures import ProcessPoolExecutor, wait
from typing import TYPE_CHECKING

import cloudpickle

from graflow.coordination.coordinator import Coordinator, MemberRunner
from graflow.coordination.threaded import DEFAULT_MAX_WORKERS, run_in_threads
from graflow.core.dsl import Chain
from graflow.core.group import ParallelGroup
from graflow.exceptions import TaskSerializationError
from graflow.remote.envelope import dumps, loads
from graflow.remote.runner import run_payload

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from graflow.core.context import ExecutionContext
    from graflow.core.handler import TaskResult
    from graflow.remote.envelope import TaskEnvelope, TaskOutcome

__all__ = ["MultiprocessingCoordinator"]

#: What the fork server imports before forking pool processes (see :mod:`._preload`).
_PRELOAD = "graflow.coordination._preload"


class _PoolExecutor:
    """Runs envelopes on a process pool (the :class:`RemoteExecutor` of this backend)."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self._pool = pool

    def execute(self, envelope: TaskEnvelope) -> TaskOutcome:
        payload = dumps(envelope)
        outcome: TaskOutcome = loads(self._pool.submit(run_payload, payload).result())
        return outcome


class MultiprocessingCoordinator(Coordinator):
    """One process pool per run, reused by its groups.

    The pool has ``max_workers`` processes (default: the CPU count). Its processes are
    forked from a fork server (``forkserver``; ``spawn`` where that does not exist), so
    they are safe beside the engine's threads and start in a few milliseconds with
    Graflow and its plugins already imported; each takes the engine's environment as it
    is when the pool starts, as a spawned process would. A group with a timeout starts its clock
    once the pool is up, and a timeout that expires kills the pool, stopping hung
    members; the next group starts a new one.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        _check_picklable(group)
        size = group.max_workers or os.cpu_count() or 1
        pool = self._ensure_pool(size, warm=group.timeout is not None)
        threads = min(len(group.members), max(DEFAULT_MAX_WORKERS, size))
        outcomes, timed_out = run_in_threads(group, run_member, threads, _PoolExecutor(pool))
        if timed_out:
            self._kill_pool()
        return outcomes

    def _ensure_pool(self, size: int, *, warm: bool) -> ProcessPoolExecutor:
        if self._pool is None or self._size != size:
            self.close()
            self._pool = ProcessPoolExecutor(
                max_workers=size,
                mp_context=_process_context(),
                initializer=_adopt_environment,
                initargs=(dict(os.environ),),
            )
            self._size = size
            if warm:
                # Processes start on demand; a group timeout must not be spent starting them.
                wait([self._pool.submit(os.getpid) for _ in range(size)])
        return self._pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor has no public way to stop a running call; its processes do.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


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


def _adopt_environment(environ: dict[str, str]) -> None:
    """Give a pool process the engine's environment as it is now.

    A forked server keeps the environment it started with; a spawned process gets the
    current one. Members must see the same variables either way (``OTEL_*``, credentials
    set by the application at run time).
    """
    os.environ.clear()
    os.environ.update(environ)


def _check_picklable(group: ParallelGroup) -> None:
    """Fail before the group starts if a member's task cannot travel to another process.

    Only this group's own tasks are checked: a nested group runs its members under
    its own backend, which checks them when it starts.
    """
    for member in group.members:
        for task in member.elements if isinstance(member, Chain) else [member]:
            if isinstance(task, ParallelGroup) or not hasattr(task, "func"):
                continue
            try:
                cloudpickle.dumps(task)
            except Exception as exc:
                raise TaskSerializationError(
                    f"task {task.task_id!r} of group {group.task_id!r} cannot be sent to another process "
                    f"({type(exc).__name__}: {exc}). MULTIPROCESSING pickles tasks with cloudpickle: keep "
                    "locks, connections and open files out of the function's closure (create them inside "
                    "the task), or run this group with CoordinationBackend.THREADING."
                ) from exc
