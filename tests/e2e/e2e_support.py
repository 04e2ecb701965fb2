"""Helpers shared by the end-to-end tests, imported as ``tests.e2e.e2e_support`` (unlike conftest)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["REDIS_HOST", "REDIS_PORT", "BackgroundRun", "worker_command"]

REDIS_HOST = os.environ.get("GRAFLOW_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("GRAFLOW_TEST_REDIS_PORT", "6379"))


def worker_command() -> list[str]:
    """The installed console script when there is one, else ``python -m graflow_worker``."""
    script = Path(sys.executable).with_name("graflow-worker")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "graflow_worker"]


class BackgroundRun:
    """A workflow on the Redis queue, executed on a background thread while the test breaks things.

    ``build`` composes the tasks inside ``with workflow(name)``; :meth:`wait` returns the
    run's result or raises its error.
    """

    def __init__(self, build: Callable[[], None], config: dict[str, Any], name: str = "fault") -> None:
        from graflow.core.context import ExecutionContext
        from graflow.core.workflow import workflow
        from graflow.queue import QueueBackend

        with workflow(name) as wf:
            build()
        self.context = ExecutionContext.create(
            wf.graph, queue_backend=QueueBackend.REDIS, channel_backend="redis", config=config
        )
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._execute, daemon=True)
        self.thread.start()

    def _execute(self) -> None:
        from graflow.core.engine import WorkflowEngine

        try:
            self.result = WorkflowEngine().execute(self.context)
        except BaseException as exc:
            self.error = exc

    def wait(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the run did not finish within {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result
