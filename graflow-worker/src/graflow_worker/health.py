"""A liveness file for orchestrators: touched after every heartbeat that reached Redis.

``graflow-worker status --self`` checks its age, so a Kubernetes ``exec`` liveness probe
restarts a worker whose heartbeat thread is stuck or that lost Redis for too long,
without the probe itself needing a connection.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from graflow_worker.observer import WorkerObserver

if TYPE_CHECKING:
    from graflow_worker.worker import TaskWorker

__all__ = ["HealthFile", "check_health_file"]


class HealthFile(WorkerObserver):
    """Touches ``path`` on each successful heartbeat; removes it when the worker stops."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def on_heartbeat(self, worker: TaskWorker) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{worker.worker_id} {time.time():.3f}\n")

    def on_stop(self, worker: TaskWorker) -> None:
        self.path.unlink(missing_ok=True)


def check_health_file(path: str | os.PathLike[str], max_age: float) -> tuple[bool, str]:
    """``(healthy, why)``: healthy when the file was touched within ``max_age`` seconds."""
    file = Path(path)
    try:
        age = time.time() - file.stat().st_mtime
    except FileNotFoundError:
        return False, f"no health file at {file}: the worker is not running or has not reached Redis yet"
    if age > max_age:
        return (
            False,
            f"last heartbeat {age:.1f}s ago (limit {max_age:g}s): the worker cannot reach Redis or is stuck",
        )
    return True, f"last heartbeat {age:.1f}s ago"
