"""graflow-worker: the processes that run a distributed Graflow workflow's tasks.

::

    graflow-worker --worker-id worker-1 --max-concurrent-tasks 4     # a worker process
    graflow-worker status                                             # the live fleet

In Python::

    from graflow_redis import DistributedTaskQueue
    from graflow_worker import TaskWorker

    worker = TaskWorker(DistributedTaskQueue(redis_client=redis.Redis()), worker_id="w1")
    worker.start()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graflow_worker.observer import TaskStatus, WorkerObserver
    from graflow_worker.worker import TaskWorker, default_worker_id

__version__ = "0.3.0"

__all__ = ["TaskStatus", "TaskWorker", "WorkerObserver", "default_worker_id"]

# Every Graflow process with graflow-worker installed loads its plugin module (this
# package): the worker and its dependencies (redis, structlog) load on first use only.
_EXPORTS = {
    "TaskStatus": "graflow_worker.observer",
    "WorkerObserver": "graflow_worker.observer",
    "TaskWorker": "graflow_worker.worker",
    "default_worker_id": "graflow_worker.worker",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'graflow_worker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
