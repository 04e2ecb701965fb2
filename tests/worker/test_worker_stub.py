"""TaskWorker on graflow-redis's StubConsumer: whole workers, with the queue's real semantics
(redelivery, keep-alive, recorded once) and no Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from graflow.core.task import TaskWrapper
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.stub import StubConsumer
from graflow_worker import TaskWorker
from tests.support.waiting import wait_until


@pytest.fixture
def put(make_task: Callable[..., TaskWrapper]) -> Callable[..., str]:
    def put(stub: StubConsumer, task_id: str, func: Callable[[], Any]) -> str:
        return stub.put(TaskEnvelope(make_task(task_id, func), session_id="run-1", workflow_name="unit"))

    return put


@pytest.fixture
def workers() -> Iterator[Callable[..., TaskWorker]]:
    """Start workers on a stub; every one is stopped at teardown."""
    started: list[TaskWorker] = []

    def start(stub: StubConsumer, worker_id: str, **options: Any) -> TaskWorker:
        options.setdefault("fetch_block", 0.05)
        worker = TaskWorker(stub, worker_id=worker_id, **options)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=1)


def test_every_task_put_runs_once_and_its_outcome_is_recorded(put, workers) -> None:
    stub = StubConsumer()
    uids = {put(stub, f"t{n}", lambda n=n: n * n): n for n in range(10)}
    worker = workers(stub, "w1", max_concurrent_tasks=3)

    outcomes = stub.join(timeout=10)
    assert {uid: outcomes[uid].result for uid in uids} == {uid: n * n for uid, n in uids.items()}
    # A task is counted once its completion returned, a moment after the outcome was recorded.
    wait_until(lambda: worker.tasks_processed == 10, 10, "the worker to count every task")
    assert worker.tasks_duplicate == 0
    assert (stub.depth(), stub.in_flight()) == (0, 0)


def test_a_task_running_longer_than_the_visibility_timeout_stays_with_its_worker(put, workers) -> None:
    stub = StubConsumer(visibility_timeout=0.5)
    runs: list[str] = []

    def long_task() -> str:
        runs.append(threading.current_thread().name)
        time.sleep(1.6)  # more than three visibility timeouts
        return "done"

    uid = put(stub, "long", long_task)
    first = workers(stub, "w1")
    while not runs:
        time.sleep(0.01)
    second = workers(stub, "w2")  # idle, fetching: it would take the entry if it went silent

    assert stub.outcome(uid, timeout=10).result == "done"
    assert len(runs) == 1
    assert (first.tasks_processed, second.tasks_processed) == (1, 0)


def test_a_stopping_worker_hands_its_running_task_to_another_worker(put, workers, gate) -> None:
    stub = StubConsumer()
    attempts: list[int] = []

    def blocked() -> str:
        attempts.append(len(attempts) + 1)
        gate.wait()
        return f"run {len(attempts)}"

    uid = put(stub, "blocked", blocked)
    leaving = workers(stub, "leaving", max_concurrent_tasks=1)
    while not attempts:
        time.sleep(0.01)
    assert leaving.stop(timeout=0.1) is False  # still running: handed back

    taking_over = workers(stub, "taking-over")
    while len(attempts) < 2:
        time.sleep(0.01)
    gate.set()

    assert stub.outcome(uid, timeout=10).success
    # Both runs end; the first to complete is recorded, the other counts as a duplicate.
    deadline = time.monotonic() + 10
    while leaving.tasks_processed + taking_over.tasks_processed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert leaving.tasks_duplicate + taking_over.tasks_duplicate == 1


def test_the_fleet_shows_a_worker_and_what_it_runs_until_it_stops(put, workers, gate) -> None:
    stub = StubConsumer()
    put(stub, "slow", gate.wait)
    worker = workers(stub, "w1", heartbeat_interval=0.05)

    deadline = time.monotonic() + 10
    while not any(w["running"] for w in stub.workers()) and time.monotonic() < deadline:
        time.sleep(0.01)
    (seen,) = stub.workers()
    assert (seen["worker_id"], [t["task_id"] for t in seen["running"]]) == ("w1", ["slow"])

    gate.set()
    worker.stop(timeout=5)
    assert stub.workers() == []
