"""A workflow run on a background thread, so a test can break things while it runs."""

from __future__ import annotations

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
        """``(task_id, worker pid)`` of every task start, in order."""
        try:
            return [tuple(item) for item in self.context.channel.get("started", [])]  # type: ignore[misc]
        except Exception:  # Redis is down right now
            return []

    def wait(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the run did not finish within {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result
