"""Prometheus metrics of one worker, served on ``--metrics-port``.

=========================================  =========  =====================================
metric                                     type       labels
=========================================  =========  =====================================
``graflow_worker_tasks_total``             counter    ``worker_id``, ``queue``, ``status``
``graflow_worker_task_duration_seconds``   histogram  ``worker_id``, ``queue``, ``status``
``graflow_worker_tasks_in_flight``         gauge      ``worker_id``
``graflow_worker_max_concurrent_tasks``    gauge      ``worker_id``
``graflow_queue_depth``                    gauge      ``key_prefix``, ``queue``
``graflow_queue_running``                  gauge      ``key_prefix``, ``queue``
``graflow_dead_letters``                   gauge      ``key_prefix``
=========================================  =========  =====================================

``status`` is ``succeeded``, ``failed`` or ``duplicate`` (the task ran, but another run of
the same entry had recorded its result first); ``queue`` is the queue the task came
from. Queue depth (entries waiting), running entries and dead letters are read from
Redis when Prometheus scrapes, so they are the fleet's figures, not this worker's: one
series per queue of the key prefix, which is what an autoscaler sizes each queue's
workers on.
Each worker has its own registry: no process-global metric state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from graflow.core.routing import DEFAULT_QUEUE
from graflow_redis.lanes import route
from graflow_worker.observer import TaskStatus, WorkerObserver

if TYPE_CHECKING:
    from graflow.remote.envelope import TaskOutcome
    from graflow_redis.consumer import Delivery
    from graflow_worker.worker import TaskWorker

__all__ = ["WorkerMetrics", "count_dead_letters"]

#: Bucket bounds (seconds) spanning no-op tasks to long batch jobs.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class WorkerMetrics(WorkerObserver):
    """A :class:`~graflow_worker.observer.WorkerObserver` that keeps Prometheus metrics.

    ::

        metrics = WorkerMetrics(queue)
        worker = TaskWorker(queue, observers=[metrics])
        metrics.serve(9100)             # http://host:9100/metrics
    """

    def __init__(self, queue: Any, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.queue = queue
        self.tasks = Counter(
            "graflow_worker_tasks",
            "Tasks this worker ran to the end, by queue and how they ended.",
            ["worker_id", "queue", "status"],
            registry=self.registry,
        )
        self.durations = Histogram(
            "graflow_worker_task_duration_seconds",
            "Time spent in each task, by queue and how it ended.",
            ["worker_id", "queue", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "graflow_worker_tasks_in_flight", "Tasks running now.", ["worker_id"], registry=self.registry
        )
        self.capacity = Gauge(
            "graflow_worker_max_concurrent_tasks",
            "Tasks this worker may run at once.",
            ["worker_id"],
            registry=self.registry,
        )
        self.registry.register(_QueueCollector(queue))

    def on_start(self, worker: TaskWorker) -> None:
        self.capacity.labels(worker.worker_id).set(worker.max_concurrent_tasks)
        self.in_flight.labels(worker.worker_id).set(0)
        for queue in getattr(worker.queue, "queues", None) or [DEFAULT_QUEUE]:
            for status in ("succeeded", "failed", "duplicate"):
                self.tasks.labels(worker.worker_id, queue, status)  # export zeros from the start

    def on_task_started(self, worker: TaskWorker, delivery: Delivery) -> None:
        self.in_flight.labels(worker.worker_id).inc()

    def on_task_finished(
        self, worker: TaskWorker, delivery: Delivery, outcome: TaskOutcome, status: TaskStatus
    ) -> None:
        queue = route(delivery.envelope.routing)[0]
        self.in_flight.labels(worker.worker_id).dec()
        self.tasks.labels(worker.worker_id, queue, status).inc()
        self.durations.labels(worker.worker_id, queue, status).observe(outcome.duration)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``addr:port`` from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)


class _QueueCollector(Collector):
    """Reads queue depth and dead letters from Redis at scrape time."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        prefix = str(getattr(self.queue, "key_prefix", ""))
        try:
            if hasattr(self.queue, "queue_depths"):
                depths = self.queue.queue_depths()
            else:
                in_flight = getattr(self.queue, "in_flight", None)
                held = in_flight() if callable(in_flight) else 0
                depths = {DEFAULT_QUEUE: {"waiting": self.queue.depth(), "running": held}}
            dead = float(count_dead_letters(self.queue))
        except Exception:  # Redis unreachable: export nothing rather than a wrong zero
            return
        waiting = GaugeMetricFamily(
            "graflow_queue_depth", "Tasks waiting in the queue for a worker.", labels=["key_prefix", "queue"]
        )
        running = GaugeMetricFamily(
            "graflow_queue_running", "Tasks of the queue held by a worker.", labels=["key_prefix", "queue"]
        )
        for name, depth in sorted(depths.items()):
            waiting.add_metric([prefix, name], float(depth["waiting"]))
            running.add_metric([prefix, name], float(depth["running"]))
        yield waiting
        yield running
        family = GaugeMetricFamily(
            "graflow_dead_letters", "Entries in the dead-letter stream.", labels=["key_prefix"]
        )
        family.add_metric([prefix], dead)
        yield family


def count_dead_letters(queue: Any) -> int:
    """Entries in the dead-letter stream (``XLEN``; no payload is read)."""
    client, keys = getattr(queue, "client", None), getattr(queue, "keys", None)
    if client is not None and keys is not None:
        return int(client.xlen(keys.dead))
    return len(queue.dead_letters(count=10_000))
