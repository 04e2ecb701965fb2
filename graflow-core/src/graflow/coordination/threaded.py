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
    from graflow.remote.executor import RemoteExecutor

__all__ = ["ThreadingCoordinator", "run_in_threads"]

#: Threads are cheap to park but not to schedule on a small machine; members beyond this
#: wait for a free thread unless the group sets ``max_workers``.
DEFAULT_MAX_WORKERS = 32


def run_in_threads(
    group: ParallelGroup,
    run_member: MemberRunner,
    workers: int,
    executor: RemoteExecutor | None = None,
) -> tuple[list[TaskResult], bool]:
    """Run every member's branch on its own pool thread; ``(outcomes, any_timed_out)``.

    Each member runs in a copy of the caller's :mod:`contextvars` context, so tracing
    and logging context flow into it. A member still running when the group's timeout
    expires is reported as failed; its thread is left to finish on its own (Python
    cannot stop a thread) and the run goes on.
    """
    members = group.members
    pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix=f"graflow-{group.task_id}")
    try:
        futures: list[Future[TaskResult]] = [
            pool.submit(contextvars.copy_context().run, run_member, m, executor) for m in members
        ]
        done, pending = wait(futures, timeout=group.timeout)
        outcomes = [
            f.result() if f in done else timed_out(m, group.timeout or 0.0)
            for f, m in zip(futures, members, strict=True)
        ]
        return outcomes, bool(pending)
    finally:
        pool.shutdown(wait=group.timeout is None, cancel_futures=True)


class ThreadingCoordinator(Coordinator):
    """Members run concurrently on up to ``max_workers`` threads (default: one per member, at most 32)."""

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        workers = group.max_workers or min(len(group.members), DEFAULT_MAX_WORKERS)
        outcomes, _ = run_in_threads(group, run_member, workers)
        return outcomes
