"""``CoordinationBackend.THREADING``: members on a bounded thread pool."""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from graflow.coordination.coordinator import Coordinator, MemberRunner, timed_out

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.group import ParallelGroup
    from graflow.core.handler import TaskResult

__all__ = ["ThreadingCoordinator"]

#: Threads are cheap to park but not to schedule on a small machine; members beyond this
#: wait for a free thread unless the group sets ``max_workers``.
DEFAULT_MAX_WORKERS = 32


class ThreadingCoordinator(Coordinator):
    """Members run concurrently on up to ``max_workers`` threads of a per-group pool.

    Each member runs in a copy of the caller's :mod:`contextvars` context, so tracing
    and logging context flow into the members. A member still running when the group's
    timeout expires is reported as failed; its thread is left to finish on its own
    (Python cannot stop a thread), and the run goes on.
    """

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        members = group.members
        workers = group.max_workers or min(len(members), DEFAULT_MAX_WORKERS)
        pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix=f"graflow-{group.task_id}")
        try:
            futures: list[Future[TaskResult]] = [
                pool.submit(contextvars.copy_context().run, run_member, m) for m in members
            ]
            done, _ = wait(futures, timeout=group.timeout)
            return [
                f.result() if f in done else timed_out(m, group.timeout or 0.0)
                for f, m in zip(futures, members, strict=True)
            ]
        finally:
            pool.shutdown(wait=group.timeout is None, cancel_futures=True)
