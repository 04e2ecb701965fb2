"""Hooks around a worker's life: subclass :class:`WorkerObserver` and override what you need.

Metrics (:mod:`graflow_worker.metrics`) and the liveness file (:mod:`graflow_worker.health`)
are observers, so the worker itself knows nothing of Prometheus or of files. Every hook is
a documented no-op; an exception raised by an observer is logged and never stops a task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from graflow.remote.envelope import TaskOutcome
    from graflow_redis.queue import Delivery
    from graflow_worker.worker import TaskWorker

__all__ = ["TaskStatus", "WorkerObserver"]

#: How a task ended on this worker: it ran and succeeded, it ran and failed, or it
#: succeeded/failed but another run of the same entry had already recorded a result.
TaskStatus = Literal["succeeded", "failed", "duplicate"]


class WorkerObserver:
    """Called by :class:`~graflow_worker.worker.TaskWorker` from its threads; keep hooks quick."""

    def on_start(self, worker: TaskWorker) -> None:
        """The worker's threads are about to start."""

    def on_task_started(self, worker: TaskWorker, delivery: Delivery) -> None:
        """A task begins to run on a pool thread."""

    def on_task_finished(
        self, worker: TaskWorker, delivery: Delivery, outcome: TaskOutcome, status: TaskStatus
    ) -> None:
        """A task ended and its outcome was handed to the queue (``status`` says how it ended)."""

    def on_heartbeat(self, worker: TaskWorker) -> None:
        """A heartbeat reached Redis: the worker is alive and connected."""

    def on_stop(self, worker: TaskWorker) -> None:
        """The worker has stopped (drained or given the rest back)."""
