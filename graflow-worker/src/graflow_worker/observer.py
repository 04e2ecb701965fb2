"""Hooks around a worker's life: subclass :class:`WorkerObserver` and override what you need.

Metrics (:mod:`graflow_worker.metrics`) and the liveness file (:mod:`graflow_worker.health`)
are observers, so the worker itself knows nothing of Prometheus or of files. Every hook is
a documented no-op; an exception raised by an observer is logged and never stops a task
(:class:`Notifier`, the one place the worker's parts call observers from).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from graflow.remote.envelope import TaskOutcome
    from graflow_redis.consumer import Delivery
    from graflow_worker.worker import TaskWorker

__all__ = ["Notifier", "TaskStatus", "WorkerObserver"]

#: How a task ended on this worker: it ran and its success or failure was recorded; or it ran
#: but another run of the same entry had already recorded a result (``duplicate``); or it ran
#: but this worker stopped before handing its outcome over (``unrecorded``: another worker runs it).
TaskStatus = Literal["succeeded", "failed", "duplicate", "unrecorded"]


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


class Notifier:
    """Tells a worker's observers what happened; the worker's parts call nothing else.

    ``observers`` is the worker's own list, so an observer added later is called too.
    """

    def __init__(
        self, worker: TaskWorker, observers: list[WorkerObserver], log: FilteringBoundLogger
    ) -> None:
        self._worker = worker
        self._observers = observers
        self._log = log

    def started(self) -> None:
        self._each("on_start", lambda o: o.on_start(self._worker))

    def task_started(self, delivery: Delivery) -> None:
        self._each("on_task_started", lambda o: o.on_task_started(self._worker, delivery))

    def task_finished(self, delivery: Delivery, outcome: TaskOutcome, status: TaskStatus) -> None:
        self._each("on_task_finished", lambda o: o.on_task_finished(self._worker, delivery, outcome, status))

    def heartbeat(self) -> None:
        self._each("on_heartbeat", lambda o: o.on_heartbeat(self._worker))

    def stopped(self) -> None:
        self._each("on_stop", lambda o: o.on_stop(self._worker))

    def _each(self, hook: str, call: Callable[[WorkerObserver], None]) -> None:
        for observer in self._observers:
            try:
                call(observer)
            except Exception as exc:
                self._log.warning(
                    "observer_failed",
                    observer=type(observer).__name__,
                    hook=hook,
                    error=f"{type(exc).__name__}: {exc}",
                )
