"""``CoordinationBackend.REDIS``: a group's members run on the worker fleet.

Works inside an otherwise in-memory run: only the group's tasks travel. Each member's
branch is scheduled from a thread here (as with THREADING) and every relocatable task
in it is submitted to the fleet, so up to ``max_workers`` members are in flight at once.
The queue comes from the run itself when it is a Redis run, else from the run's config
(``redis_url`` / ``redis_client``, ``key_prefix``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from graflow.coordination.coordinator import Coordinator, MemberRunner
from graflow.coordination.threaded import run_in_threads
from graflow_redis.queue import DistributedTaskQueue

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.group import ParallelGroup
    from graflow.core.handler import TaskResult
    from graflow.remote.executor import RemoteExecutor

__all__ = ["RedisCoordinator"]

#: Members in flight at once unless the group sets ``max_workers``: the threads here only
#: wait for outcomes, so this bounds driver memory, not parallelism on the fleet.
DEFAULT_IN_FLIGHT: Final = 128


class RedisCoordinator(Coordinator):
    """Sends each member's relocatable tasks to the workers of the run's key prefix."""

    def __init__(self) -> None:
        self._queue: DistributedTaskQueue | None = None

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        executor = self._executor(context)
        workers = group.max_workers or min(len(group.members), DEFAULT_IN_FLIGHT)
        outcomes, _ = run_in_threads(group, run_member, workers, executor)
        return outcomes

    def _executor(self, context: ExecutionContext) -> RemoteExecutor:
        queue = context.queue
        if isinstance(queue, DistributedTaskQueue):
            return queue.executor
        if self._queue is None:
            self._queue = DistributedTaskQueue.from_config(context.config)
        return self._queue.executor

    def close(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.close()
