"""Prometheus metrics: task counts and durations by status, in-flight, queue depth, dead letters."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import generate_latest

from graflow_worker import TaskWorker
from graflow_worker.metrics import WorkerMetrics


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_tasks_are_counted_and_timed_by_status(queue, make_task, pool) -> None:
    def boom() -> None:
        raise RuntimeError("no")

    metrics = WorkerMetrics(queue)
    queue.put(make_task("a", lambda: 1))
    queue.put(make_task("b", lambda: 2))
    queue.put(make_task("c", boom))
    with TaskWorker(
        queue, worker_id="w1", heartbeat_interval=0.05, fetch_block=0.05, observers=[metrics], pool=pool
    ) as w:
        queue.wait_for(lambda: w.tasks_processed == 3)
    assert (
        sample(metrics, "graflow_worker_tasks_total", worker_id="w1", queue="default", status="succeeded")
        == 2
    )
    assert (
        sample(metrics, "graflow_worker_tasks_total", worker_id="w1", queue="default", status="failed") == 1
    )
    assert (
        sample(metrics, "graflow_worker_tasks_total", worker_id="w1", queue="default", status="duplicate")
        == 0
    )
    assert (
        sample(
            metrics,
            "graflow_worker_task_duration_seconds_count",
            worker_id="w1",
            queue="default",
            status="succeeded",
        )
        == 2
    )
    assert sample(metrics, "graflow_worker_tasks_in_flight", worker_id="w1") == 0
    assert sample(metrics, "graflow_worker_max_concurrent_tasks", worker_id="w1") == 4


def test_in_flight_counts_running_tasks(queue, make_task, gate) -> None:
    metrics = WorkerMetrics(queue)
    queue.put(make_task("slow", gate.wait))
    worker = TaskWorker(queue, worker_id="w1", heartbeat_interval=0.05, fetch_block=0.05, observers=[metrics])
    worker.start()
    try:
        queue.wait_for(lambda: sample(metrics, "graflow_worker_tasks_in_flight", worker_id="w1") == 1)
    finally:
        gate.set()
        worker.stop(timeout=5)
    assert sample(metrics, "graflow_worker_tasks_in_flight", worker_id="w1") == 0


def test_queue_depth_and_dead_letters_are_read_from_the_queue_at_scrape_time(queue, make_task) -> None:
    metrics = WorkerMetrics(queue)
    queue.put(make_task("waiting1", lambda: 1))
    queue.put(make_task("waiting2", lambda: 1))
    queue.dead.append({"id": "9-0", "reason": "signature mismatch"})
    assert sample(metrics, "graflow_queue_depth", key_prefix="stub", queue="default") == 2
    assert sample(metrics, "graflow_dead_letters", key_prefix="stub") == 1


def test_an_unreachable_redis_leaves_queue_gauges_out_instead_of_reporting_zero(queue) -> None:
    def down() -> int:
        raise ConnectionError("redis is down")

    queue.depth = down  # type: ignore[method-assign]
    metrics = WorkerMetrics(queue)
    text = generate_latest(metrics.registry).decode()
    assert "graflow_queue_depth" not in text
    assert "graflow_worker_tasks_in_flight" in text


def test_metrics_are_served_over_http(queue, unused_port) -> None:
    metrics = WorkerMetrics(queue)
    metrics.serve(unused_port, addr="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{unused_port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert 'graflow_queue_depth{key_prefix="stub",queue="default"} 0.0' in body
