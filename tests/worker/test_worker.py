"""TaskWorker against a stub of the queue contract: running, capacity, keep-alive, drain."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from graflow.exceptions import ConfigError
from graflow_worker import TaskWorker, WorkerObserver
from graflow_worker.worker import default_worker_id


def fast_worker(queue: Any, **options: Any) -> TaskWorker:
    options.setdefault("worker_id", "w-test")
    options.setdefault("heartbeat_interval", 0.05)
    options.setdefault("fetch_block", 0.05)
    return TaskWorker(queue, **options)


def test_each_task_runs_once_and_its_outcome_is_completed(queue, make_task) -> None:
    first = queue.put(make_task("double", lambda: 21 * 2))
    second = queue.put(make_task("greet", lambda: "hello"))
    with fast_worker(queue) as worker:
        queue.wait_for(lambda: len(queue.completed) == 2)
    assert queue.completed[first.entry_id].result == 42
    assert queue.completed[second.entry_id].result == "hello"
    assert all(outcome.success for outcome in queue.completed.values())
    assert len(queue.complete_calls) == 2
    assert worker.state == "stopped"


def test_counters_count_successes_failures_and_time(queue, make_task) -> None:
    def boom() -> None:
        raise ValueError("bad input")

    queue.put(make_task("ok1", lambda: 1))
    queue.put(make_task("ok2", lambda: 2))
    failing = queue.put(make_task("boom", boom))
    with fast_worker(queue) as worker:
        queue.wait_for(lambda: worker.tasks_processed == 3)
    assert (worker.tasks_processed, worker.tasks_succeeded, worker.tasks_failed) == (3, 2, 1)
    outcome = queue.completed[failing.entry_id]
    assert not outcome.success
    assert outcome.error_type == "ValueError"
    assert outcome.error_message == "bad input"
    assert worker.total_execution_time == pytest.approx(sum(o.duration for o in queue.completed.values()))
    metrics = worker.get_metrics()
    assert metrics["tasks_processed"] == 3
    assert metrics["tasks_failed"] == 1
    assert metrics["worker_id"] == "w-test"
    assert metrics["average_execution_time"] == pytest.approx(worker.total_execution_time / 3)


def test_worker_never_holds_more_tasks_than_it_can_run(queue, make_task, gate) -> None:
    for n in range(5):
        queue.put(make_task(f"slow{n}", gate.wait))
    worker = fast_worker(queue, max_concurrent_tasks=2)
    worker.start()
    try:
        queue.wait_for(lambda: worker.in_flight == 2)
        fetches_when_full = len(queue.fetch_counts)
        assert queue.depth() == 3  # the other three stay in the queue for other workers
        assert max(queue.fetch_counts) <= 2
        gate.set()
        queue.wait_for(lambda: worker.tasks_processed == 5)
    finally:
        worker.stop(timeout=5)
    assert fetches_when_full >= 1
    assert all(1 <= count <= 2 for count in queue.fetch_counts)


def test_running_tasks_are_kept_alive_and_reported_in_heartbeats(queue, make_task, gate) -> None:
    slow = queue.put(make_task("slow", gate.wait))
    worker = fast_worker(queue)
    worker.start()
    try:
        queue.wait_for(lambda: any(slow.entry_id in ids for ids in queue.kept_alive))
        queue.wait_for(lambda: any(info["running"] for _, info in queue.heartbeats))
        worker_id, info = next((w, i) for w, i in queue.heartbeats if i["running"])
        assert worker_id == "w-test"
        assert [t["task_id"] for t in info["running"]] == ["slow"]
        assert info["running"][0]["session_id"] == "session-1"
        assert info["state"] == "running"
        assert info["max_concurrent_tasks"] == 4
        gate.set()
        queue.wait_for(lambda: worker.tasks_processed == 1)
    finally:
        worker.stop(timeout=5)
    assert queue.removed == ["w-test"]


def test_heartbeat_interval_is_at_most_a_third_of_the_visibility_timeout(queue) -> None:
    queue.visibility_timeout = 1.5
    worker = TaskWorker(queue, worker_id="w", heartbeat_interval=10.0)
    assert worker.heartbeat_interval == pytest.approx(0.5)


def test_heartbeat_interval_is_at_most_a_third_of_the_heartbeat_ttl(queue) -> None:
    queue.heartbeat_ttl = 3.0
    worker = TaskWorker(queue, worker_id="w", heartbeat_interval=10.0)
    assert worker.heartbeat_interval == pytest.approx(1.0)


def test_stop_lets_running_tasks_finish_and_takes_no_new_work(queue, make_task, gate) -> None:
    started = threading.Event()

    def slow() -> str:
        started.set()
        gate.wait()
        return "finished"

    running = queue.put(make_task("slow", slow))
    worker = fast_worker(queue, max_concurrent_tasks=1)
    worker.start()
    started.wait(10)
    queue.put(make_task("later", lambda: "never run here"))
    threading.Timer(0.2, gate.set).start()
    drained = worker.stop(timeout=10)
    assert drained is True
    assert queue.completed[running.entry_id].result == "finished"
    assert [o.task_id for _, o in queue.complete_calls] == ["slow"]
    assert queue.depth() == 1  # the later task is left for another worker
    assert queue.released == []


def test_stop_hands_back_tasks_still_running_after_the_timeout(queue, make_task, gate) -> None:
    stuck = queue.put(make_task("stuck", gate.wait))
    worker = fast_worker(queue)
    worker.start()
    queue.wait_for(lambda: worker.in_flight == 1)
    drained = worker.stop(timeout=0.1)
    assert drained is False
    assert queue.released == [stuck.entry_id]
    assert queue.removed == ["w-test"]
    assert worker.state == "stopped"
    gate.set()  # the abandoned thread still finishes; its outcome is recorded once, wherever first
    queue.wait_for(lambda: worker.tasks_processed == 1)


def test_entries_fetched_while_stopping_are_handed_back(queue, make_task) -> None:
    worker = fast_worker(queue)
    original_fetch = queue.fetch

    def fetch_then_stop(consumer: str, count: int = 1, block: float = 1.0) -> list[Any]:
        worker._stopping.set()  # stop() arrives while this fetch is in flight
        return original_fetch(consumer, count, block)

    late = queue.put(make_task("late", lambda: 1))
    queue.fetch = fetch_then_stop  # type: ignore[method-assign]
    worker.start()
    queue.wait_for(lambda: queue.released == [late.entry_id])
    worker.stop(timeout=1)
    assert queue.complete_calls == []


def test_a_result_that_cannot_be_sent_back_becomes_the_tasks_failure(queue, make_task) -> None:
    unpicklable = queue.put(make_task("lock", threading.Lock))
    with fast_worker(queue) as worker:
        queue.wait_for(lambda: unpicklable.entry_id in queue.completed)
    outcome = queue.completed[unpicklable.entry_id]
    assert not outcome.success
    assert outcome.error_type == "TypeError"
    assert "task 'lock' returned or requested something that cannot be sent back" in outcome.error_message
    assert "return plain data" in outcome.error_message
    assert worker.tasks_failed == 1


def test_completion_is_retried_while_redis_is_unreachable(queue, make_task) -> None:
    queue.failures["complete"] = [redis.ConnectionError("down"), redis.ConnectionError("still down")]
    delivery = queue.put(make_task("t", lambda: "value"))
    with fast_worker(queue):
        queue.wait_for(lambda: delivery.entry_id in queue.completed)
    assert queue.completed[delivery.entry_id].result == "value"
    assert queue.failures["complete"] == []


def test_tasks_ending_while_a_completion_is_in_flight_are_completed_in_one_batch(queue, make_task) -> None:
    in_flight = threading.Event()
    release = threading.Event()
    original = queue.complete

    def slow_first_complete(delivery, outcome):
        if not in_flight.is_set():
            in_flight.set()
            release.wait(10)
        return original(delivery, outcome)

    queue.complete = slow_first_complete  # type: ignore[method-assign]
    first = queue.put(make_task("first", lambda: 0))
    with fast_worker(queue, max_concurrent_tasks=4) as worker:
        in_flight.wait(10)
        later = [queue.put(make_task(f"later{n}", lambda n=n: n)) for n in range(3)]
        queue.wait_for(lambda: worker._completer.waiting == 3)  # they ended while "first" is completing
        release.set()
        queue.wait_for(lambda: worker.tasks_processed == 4)
    assert [sorted(batch) for batch in queue.batches] == [sorted(d.entry_id for d in later)]
    assert [queue.completed[d.entry_id].result for d in later] == [0, 1, 2]
    assert queue.completed[first.entry_id].result == 0


def _complete_two_after(queue, make_task, failures: list[Exception]) -> list[bool | None]:
    """What completing two finished tasks returns when the queue first raises ``failures``."""
    from graflow.remote.envelope import TaskOutcome

    queue.failures["complete_many"] = failures
    worker = fast_worker(queue)
    items = [queue.put(make_task(f"t{n}", lambda: 1)) for n in range(2)]
    batch = [
        (delivery, TaskOutcome(delivery.envelope.task_id, True, result=n)) for n, delivery in enumerate(items)
    ]
    return [recorded for recorded, _ in worker._completer.complete(batch)]


def test_a_completion_failing_for_an_unknown_reason_is_left_pending_for_another_delivery(
    queue, make_task
) -> None:
    assert _complete_two_after(queue, make_task, [redis.ResponseError("ERR something unexpected")]) == [
        None,
        None,
    ]
    assert queue.completed == {}


def test_a_completion_redis_refuses_for_lack_of_memory_is_held_and_recorded_once_redis_takes_it(
    queue, make_task
) -> None:
    # Handing it back would run the task again on a worker that cannot record it either.
    refused = redis.exceptions.OutOfMemoryError("OOM command not allowed")
    assert _complete_two_after(queue, make_task, [refused, refused]) == [True, True]
    assert sorted(outcome.result for outcome in queue.completed.values()) == [0, 1]


def test_fetch_failures_are_retried_and_do_not_kill_the_worker(queue, make_task) -> None:
    queue.failures["fetch"] = [redis.ConnectionError("restart"), redis.TimeoutError("slow")]
    delivery = queue.put(make_task("t", lambda: "after outage"))
    with fast_worker(queue):
        queue.wait_for(lambda: delivery.entry_id in queue.completed)
    assert queue.completed[delivery.entry_id].result == "after outage"


def test_a_failed_heartbeat_is_tried_again_at_the_next_beat(queue) -> None:
    queue.failures["heartbeat"] = [redis.ConnectionError("down")]
    with fast_worker(queue):
        queue.wait_for(lambda: len(queue.heartbeats) >= 1)
    assert queue.heartbeats[0][0] == "w-test"


def test_a_result_recorded_by_another_run_counts_as_duplicate(queue, make_task) -> None:
    statuses: list[str] = []

    class Statuses(WorkerObserver):
        def on_task_finished(self, worker, delivery, outcome, status) -> None:
            statuses.append(status)

    delivery = queue.put(make_task("twice", lambda: 1))
    queue.completed[delivery.entry_id] = object()  # type: ignore[assignment]  # another worker was first
    with fast_worker(queue, observers=[Statuses()]) as worker:
        queue.wait_for(lambda: worker.tasks_duplicate == 1)
    assert statuses == ["duplicate"]
    assert worker.tasks_processed == 0  # the fleet's count stays one per submission


def test_an_observer_that_raises_does_not_stop_tasks(queue, make_task) -> None:
    class Broken(WorkerObserver):
        def on_task_started(self, worker, delivery) -> None:
            raise RuntimeError("observer bug")

    delivery = queue.put(make_task("t", lambda: "ran"))
    with fast_worker(queue, observers=[Broken()]):
        queue.wait_for(lambda: delivery.entry_id in queue.completed)
    assert queue.completed[delivery.entry_id].result == "ran"


def test_observers_see_the_whole_life_of_the_worker(queue, make_task) -> None:
    seen: list[str] = []

    class Recorder(WorkerObserver):
        def on_start(self, worker) -> None:
            seen.append("start")

        def on_task_started(self, worker, delivery) -> None:
            seen.append(f"started {delivery.envelope.task_id}")

        def on_task_finished(self, worker, delivery, outcome, status) -> None:
            seen.append(f"finished {outcome.task_id} {status}")

        def on_stop(self, worker) -> None:
            seen.append("stop")

    queue.put(make_task("only", lambda: None))
    with fast_worker(queue, observers=[Recorder()]) as worker:
        queue.wait_for(lambda: worker.tasks_processed == 1)
    assert seen == ["start", "started only", "finished only succeeded", "stop"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_concurrent_tasks_must_be_a_positive_int(queue, bad) -> None:
    with pytest.raises(ConfigError, match="max_concurrent_tasks must be"):
        TaskWorker(queue, max_concurrent_tasks=bad)


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_a_graceful_shutdown_timeout_that_is_not_finite_and_non_negative_is_refused(queue, value) -> None:
    with pytest.raises(
        ConfigError, match=r"graceful_shutdown_timeout must be a finite number of seconds >= 0"
    ):
        TaskWorker(queue, graceful_shutdown_timeout=value)


def test_a_worker_starts_once(queue) -> None:
    worker = fast_worker(queue)
    worker.start()
    try:
        with pytest.raises(RuntimeError, match="already started; build a new TaskWorker"):
            worker.start()
    finally:
        worker.stop(timeout=1)


def test_default_worker_id_is_host_and_pid() -> None:
    import os
    import socket

    assert default_worker_id() == f"{socket.gethostname()}-{os.getpid()}"


def test_kernel_alias_reaches_this_task_worker() -> None:
    from graflow.worker.worker import TaskWorker as Alias

    assert Alias is TaskWorker
