"""DistributedTaskQueue, worker side and driver side, against a real Redis.

Workers here are the test itself calling the contract's worker-side methods, so each
step (fetch, die, reclaim, complete twice) happens exactly when the test says.
"""

from __future__ import annotations

import pickle
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import pytest

from graflow.core.task import TaskWrapper
from graflow.exceptions import GraflowError, TaskSerializationError
from graflow.remote.envelope import RemoteTaskError, TaskEnvelope, TaskOutcome
from graflow.remote.runner import run_envelope
from graflow_redis.errors import TaskRejectedError
from graflow_redis.queue import Delivery, DistributedTaskQueue
from tests.support.waiting import wait_until

MakeQueue = Callable[..., DistributedTaskQueue]


def envelope(func: Callable[..., Any], task_id: str = "job") -> TaskEnvelope:
    return TaskEnvelope(TaskWrapper(task_id, func, register=False), session_id="run-1", workflow_name="tests")


def fetch_one(queue: DistributedTaskQueue, consumer: str, timeout: float = 10.0) -> Delivery:
    found: list[Delivery] = []

    def fetched() -> bool:
        found.extend(queue.fetch(consumer, count=1, block=0.1))
        return bool(found)

    wait_until(fetched, timeout, f"an entry for {consumer}")
    return found[0]


def run(delivery: Delivery) -> TaskOutcome:
    return run_envelope(delivery.envelope)


def rejection(future: Any) -> TaskRejectedError:
    """The error a dead-lettered task's outcome carries (the engine raises it as the task's failure)."""
    outcome = future.result(timeout=10)
    assert not outcome.success
    assert isinstance(outcome.error, TaskRejectedError)
    return outcome.error


# --- delivery and acknowledgement ------------------------------------------------------------


def test_an_entry_is_delivered_runs_and_its_outcome_reaches_the_driver(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    future = driver.submit(envelope(lambda: 6 * 7))

    delivery = fetch_one(worker, "w1")
    assert delivery.envelope.task_id == "job"
    assert delivery.attempt == 1
    assert worker.complete(delivery, run(delivery)) is True

    outcome = future.result(timeout=10)
    assert outcome.success and outcome.result == 42


def test_an_entry_is_acknowledged_only_after_completion(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    driver.submit(envelope(lambda: 1))
    assert worker.depth() == 1

    delivery = fetch_one(worker, "w1")
    assert (worker.depth(), worker.in_flight()) == (0, 1)  # held, not gone

    worker.complete(delivery, run(delivery))
    assert (worker.depth(), worker.in_flight()) == (0, 0)
    assert worker.client.xlen(worker.keys.tasks) == 0


def test_each_entry_goes_to_one_consumer(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    for n in range(6):
        driver.submit(envelope(lambda n=n: n, f"t{n}"))
    first = worker.fetch("w1", count=3, block=0.1)
    second = worker.fetch("w2", count=10, block=0.1)
    ids = [d.envelope.task_id for d in first + second]
    assert len(first) == 3
    assert sorted(ids) == [f"t{n}" for n in range(6)]


def test_an_entry_held_by_a_dead_worker_goes_to_another_after_the_visibility_timeout(
    make_queue: MakeQueue,
) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=0.3)
    future = driver.submit(envelope(lambda: "done"))

    fetch_one(worker, "dead-worker")  # ...and it never completes nor keeps the entry alive

    delivery = fetch_one(worker, "live-worker")
    assert delivery.attempt == 2
    assert delivery.consumer == "live-worker"
    worker.complete(delivery, run(delivery))
    assert future.result(timeout=10).result == "done"


def test_keep_alive_keeps_a_long_task_with_its_live_worker(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=1.0)
    driver.submit(envelope(lambda: 1))
    held = fetch_one(worker, "busy-worker")

    # For three visibility timeouts the holder keeps the entry alive; nobody else gets it.
    for _ in range(30):
        worker.keep_alive([held])
        assert worker.fetch("other-worker", count=1, block=0.1) == []

    # Once keep-alives stop (the worker died), it moves on.
    taken = fetch_one(worker, "other-worker")
    assert taken.entry_id == held.entry_id
    assert taken.attempt == 2


def test_keep_alive_does_not_take_back_an_entry_another_worker_claimed(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=0.3)
    driver.submit(envelope(lambda: 1))
    stale = fetch_one(worker, "slow-worker")
    claimed = fetch_one(worker, "other-worker")

    worker.keep_alive([stale])
    pending = worker.client.xpending_range(worker.keys.tasks, "graflow-workers", "-", "+", 10)
    assert [p["consumer"] for p in pending] == [b"other-worker"]
    assert claimed.entry_id == stale.entry_id


def test_release_hands_an_entry_to_another_worker_at_once(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=60)
    driver.submit(envelope(lambda: 1))
    first = fetch_one(worker, "stopping-worker")
    worker.release(first)

    other = make_queue(visibility_timeout=60)  # a fresh worker, long visibility timeout
    again = fetch_one(other, "other-worker", timeout=5)
    assert again.entry_id == first.entry_id


def test_an_outcome_is_recorded_once_even_when_the_task_ran_twice(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=0.3)
    future = driver.submit(envelope(lambda: "result"))
    first = fetch_one(worker, "w1")
    second = fetch_one(worker, "w2")  # reclaimed: the same submission now runs twice

    assert worker.complete(second, TaskOutcome("job", True, result="second")) is True
    assert worker.complete(first, TaskOutcome("job", True, result="first")) is False

    assert future.result(timeout=10).result == "second"
    assert worker.client.llen(driver.executor.reply_key) == 0  # no second outcome waits anywhere
    assert worker.in_flight() == 0


def test_a_redelivered_entry_whose_outcome_is_recorded_is_dropped(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=0.3)
    driver.submit(envelope(lambda: 1))
    first = fetch_one(worker, "w1")
    # Recorded, but the acknowledgement is lost: emulate with a pending copy.
    worker.client.set(worker.keys.done(first.uid), "1")
    wait_until(
        lambda: worker.fetch("w2", count=1, block=0.1) == [] and worker.in_flight() == 0,
        10,
        "the duplicate to be dropped instead of delivered",
    )
    assert worker.client.xlen(worker.keys.tasks) == 0


def test_fetch_recreates_the_stream_and_group_when_they_vanished(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    assert worker.fetch("w1", count=1, block=0.05) == []
    worker.client.delete(worker.keys.tasks)  # e.g. Redis restarted without persistence
    driver.submit(envelope(lambda: 1))
    assert fetch_one(worker, "w1").envelope.task_id == "job"


# --- nothing lost, nothing silent -------------------------------------------------------------


def test_garbage_on_the_stream_goes_to_the_dead_letter_stream_with_the_reason(
    make_queue: MakeQueue,
) -> None:
    worker = make_queue()
    worker.ensure_group()
    worker.client.xadd(worker.keys.tasks, {"hello": "world"})

    assert worker.fetch("w1", count=1, block=0.1) == []
    (letter,) = worker.dead_letters()
    assert "not written by a graflow driver" in letter["reason"]
    assert letter["consumer"] == "w1"
    assert worker.client.xlen(worker.keys.tasks) == 0
    assert worker.in_flight() == 0


def test_a_payload_that_is_not_a_pickle_fails_its_task_in_the_driver(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    future = driver.executor.submit_payload("extract", b"definitely not a pickle")

    assert worker.fetch("w1", count=1, block=0.5) == []
    error = rejection(future)
    assert isinstance(error, GraflowError)
    assert error.task_id == "extract"
    assert "dead-letter stream" in str(error) and "cannot be unpickled" in str(error)
    (letter,) = worker.dead_letters()
    assert letter["task"] == "extract"
    assert letter["payload"] == b"definitely not a pickle"


def test_a_task_whose_code_cannot_be_imported_on_the_worker_is_dead_lettered(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    gone = types.ModuleType("graflow_test_gone_module")
    exec("def job():\n    return 1\n", gone.__dict__)
    sys.modules[gone.__name__] = gone
    try:
        payload = pickle.dumps(TaskEnvelope(TaskWrapper("job", gone.job, register=False), "run", "wf"))
    finally:
        del sys.modules[gone.__name__]  # the worker does not have this module

    future = driver.executor.submit_payload("job", payload)
    assert worker.fetch("w1", count=1, block=0.5) == []
    error = rejection(future)
    assert "No module named 'graflow_test_gone_module'" in error.reason
    assert "install the same packages on the workers" in error.reason


def test_an_entry_started_max_deliveries_times_is_dead_lettered_instead_of_started_again(
    make_queue: MakeQueue,
) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=0.2, max_deliveries=2)
    future = driver.submit(envelope(lambda: 1))
    fetch_one(worker, "crashing-1")
    fetch_one(worker, "crashing-2")  # attempt 2: the last one allowed

    wait_until(lambda: worker.fetch("w3", 1, 0.1) == [] and future.done(), 10, "the third delivery")
    error = rejection(future)
    assert "started 2 times without completing" in error.reason and "max_deliveries=2" in error.reason


def test_an_exception_that_cannot_be_rebuilt_arrives_by_name_message_and_traceback(
    make_queue: MakeQueue,
) -> None:
    class Odd(Exception):
        def __init__(self, code: int, detail: str) -> None:
            super().__init__(f"{code}: {detail}")

    def fail() -> None:
        raise Odd(7, "odd failure")

    driver, worker = make_queue(), make_queue()
    future = driver.submit(envelope(fail))
    delivery = fetch_one(worker, "w1")
    worker.complete(delivery, run(delivery))
    outcome = future.result(timeout=10)
    assert not outcome.success
    with pytest.raises(RemoteTaskError, match="Odd: 7: odd failure") as info:
        outcome.raise_error()
    assert "odd failure" in info.value.remote_traceback


def test_an_outcome_that_cannot_be_pickled_reaches_the_driver_as_a_failure_saying_why(
    make_queue: MakeQueue,
) -> None:
    driver, worker = make_queue(), make_queue()
    future = driver.submit(envelope(lambda: 1))
    delivery = fetch_one(worker, "w1")
    assert worker.complete(delivery, TaskOutcome("job", True, result=threading.Lock())) is True
    outcome = future.result(timeout=10)
    assert not outcome.success
    assert "task 'job' returned or requested something that cannot be sent back" in outcome.error_message
    assert "cannot be pickled" in outcome.error_message


def test_a_task_that_cannot_be_pickled_fails_at_submit_saying_why(make_queue: MakeQueue) -> None:
    import threading

    lock = threading.Lock()
    driver = make_queue()
    with pytest.raises(TaskSerializationError, match="'job' cannot be sent to a worker.*closure"):
        driver.submit(envelope(lambda: lock.locked()))
    assert driver.depth() == 0


# --- the fleet --------------------------------------------------------------------------------


def test_workers_lists_the_live_fleet_with_what_each_reported(make_queue: MakeQueue) -> None:
    queue = make_queue(heartbeat_ttl=2.0)
    queue.heartbeat("w1", {"running": ["a"], "tasks_processed": 3})
    queue.heartbeat("w2", {"running": [], "tasks_processed": 0})
    fleet = {w["worker_id"]: w for w in queue.workers()}
    assert sorted(fleet) == ["w1", "w2"]
    assert fleet["w1"]["running"] == ["a"] and fleet["w1"]["tasks_processed"] == 3
    assert "last_seen" in fleet["w2"]

    queue.remove_worker("w2")
    assert [w["worker_id"] for w in queue.workers()] == ["w1"]
    wait_until(lambda: queue.workers() == [], 10, "w1's heartbeat to expire")
    assert queue.client.smembers(queue.keys.workers) == set()


def test_depth_counts_entries_no_worker_has_taken(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue()
    assert worker.depth() == 0
    for n in range(3):
        driver.submit(envelope(lambda: 1, f"t{n}"))
    assert worker.depth() == 3
    worker.fetch("w1", count=2, block=0.1)
    assert (worker.depth(), worker.in_flight()) == (1, 2)


def test_drivers_sharing_a_prefix_each_get_their_own_outcomes(make_queue: MakeQueue) -> None:
    first, second, worker = make_queue(), make_queue(), make_queue()
    futures = [(q, n, q.submit(envelope(lambda n=n: n, f"t{n}"))) for n in range(6) for q in (first, second)]
    while worker.depth() or worker.in_flight():
        for delivery in worker.fetch("w1", count=4, block=0.1):
            worker.complete(delivery, run(delivery))
    for _queue, n, future in futures:
        assert future.result(timeout=10).result == n


@pytest.mark.parametrize(
    ("option", "value"),
    [("visibility_timeout", 0), ("worker_wait_timeout", -1), ("max_deliveries", 0), ("key_prefix", "")],
)
def test_bad_settings_are_refused_naming_the_setting(make_queue: MakeQueue, option: str, value: Any) -> None:
    from graflow.exceptions import ConfigError

    with pytest.raises(ConfigError, match=option):
        make_queue(**{option: value})
