"""A workflow run on a background thread, so a test can break things while it runs."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

from graflow.core.context import ExecutionContext
from graflow.core.engine import WorkflowEngine
from graflow.core.workflow import workflow
from graflow.queue import QueueBackend


class Run:
    """A workflow executed on a background thread, observable through its Redis channel."""

    def __init__(self, build: Callable[[], None], config: dict[str, Any]) -> None:
        with workflow("fault") as wf:
            build()
        self.context = ExecutionContext.create(
            wf.graph, queue_backend=QueueBackend.REDIS, channel_backend="redis", config=config
        )
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._execute, daemon=True)
        self.thread.start()

    def _execute(self) -> None:
        try:
            self.result = WorkflowEngine().execute(self.context)
        except BaseException as exc:
            self.error = exc

    def started(self) -> list[tuple[str, int]]:
        """``(task_id, worker pid)`` of every task start recorded by :func:`record_start`, in order."""
        channel: Any = self.context.channel
        try:
            return [tuple(json.loads(item)) for item in channel.client.lrange(_starts_key(channel), 0, -1)]
        except Exception:  # Redis is down right now
            return []

    def wait(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the run did not finish within {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result


def record_start(channel: Any, name: str) -> None:
    """Note that task ``name`` starts in this process, on the run's Redis, beside its channel.

    Not through the channel: a task's channel writes count once per submission, so the start
    of a task that runs again after its worker died would not show there (which is the point
    of those writes, and the opposite of what a test of the re-run needs to see).
    """
    from graflow_redis.connection import call_with_retry  # lazy: the support package loads without Redis

    record = json.dumps([name, os.getpid()])
    call_with_retry(  # through a failover, as the channel's own writes are
        lambda: channel.client.rpush(_starts_key(channel), record),
        what="a test's start",
        where="",
        timeout=60,
    )


def _starts_key(channel: Any) -> str:
    return f"{{{channel.key_prefix}}}:test-starts:{channel.name}"
