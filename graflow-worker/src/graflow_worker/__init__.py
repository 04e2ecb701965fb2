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

from graflow_worker.observer import TaskStatus, WorkerObserver
from graflow_worker.worker import TaskWorker, default_worker_id

__version__ = "0.3.0"

__all__ = ["TaskStatus", "TaskWorker", "WorkerObserver", "default_worker_id"]
