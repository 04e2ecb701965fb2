"""The Consumer contract, written once and run on the Redis consumer and on the stub.

:class:`ConsumerContract` holds the tests; a consumer runs them by subclassing it and
providing ``new_queue``: a factory of :class:`Queue` (the consumer under test plus a
way to put tasks on it and read their outcomes, as a driver would). Each test acts as
one or more workers calling the consumer directly, so every step (fetch, go silent,
reclaim, complete twice) happens exactly when the test says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from graflow_redis.consumer import Consumer, Delivery
from graflow_redis.errors import TaskRejectedError
from graflow_redis.queue import DistributedTaskQueue
from graflow_redis.stub import StubConsumer
from tests.redis.test_redis_queue import envelope, fetch_one, run
from tests.support.waiting import wait_until


@dataclass
class Queue:
    """A consumer under test, and the producer's side of the same queue."""

    consumer: Consumer
    #: Put an envelope on the queue; returns a handle for ``outcome``.
    put: Callable[[TaskEnvelope], Any]
    #: The recorded outcome of a handle, waiting up to the given seconds.
    outcome: Callable[[Any, float], TaskOutcome]
    #: The live fleet, as ``graflow-worker status`` reads it.
    workers: Callable[[], list[dict[str, Any]]]


NewQueue = Callable[..., Queue]


class ConsumerContract:
    """What every Consumer does. Subclasses provide the ``new_queue`` fixture."""

    # --- delivery ----------------------------------------------------------------------

    def test_a_put_task_is_delivered_to_one_worker_with_its_envelope(self, new_queue: NewQueue) -> None:
        queue = new_queue()
        queue.put(envelope(lambda: 1))

        delivery = fetch_one(queue.consumer, "w1")
        assert delivery.envelope.task_id == "job"
        assert (delivery.attempt, delivery.consumer) == (1, "w1")
        assert queue.consumer.fetch("w2", count=1, block=0.1) == []

    def test_fetch_never_returns_more_than_count(self, new_queue: NewQueue) -> None:
        queue = new_queue()
        for n in range(5):
            queue.put(envelope(lambda n=n: n, f"t{n}"))

        assert queue.consumer.fetch("w1", count=0, block=0.1) == []
        first = queue.consumer.fetch("w1", count=2, block=0.1)
        rest: list[Delivery] = []
        for _ in range(20):
            batch = queue.consumer.fetch("w2", count=2, block=0.1)
            assert len(batch) <= 2
            rest.extend(batch)
            if len(rest) == 3:
                break
        assert len(first) == 2
        assert sorted(d.envelope.task_id for d in first + rest) == [f"t{n}" for n in range(5)]

    def test_fetch_waits_no_longer_than_block_when_nothing_waits(self, new_queue: NewQueue) -> None:
        queue = new_queue()
        started = time.monotonic()
        assert queue.consumer.fetch("w1", count=4, block=0.2) == []
        assert time.monotonic() - started < 2.0

    # --- completion --------------------------------------------------------------------

    def test_a_completed_outcome_reaches_the_producer(self, new_queue: NewQueue) -> None:
        queue = new_queue()
        handle = queue.put(envelope(lambda: 6 * 7))
        delivery = fetch_one(queue.consumer, "w1")

        assert queue.consumer.complete(delivery, run(delivery)) is True
        outcome = queue.outcome(handle, 10.0)
        assert outcome.success and outcome.result == 42

    def test_complete_many_records_each_outcome_in_one_call(self, new_queue: NewQueue) -> None:
        queue = new_queue()
        handles = [queue.put(envelope(lambda n=n: n * 10, f"t{n}")) for n in range(3)]
        deliveries: list[Delivery] = []
        wait_until(
            lambda: deliveries.extend(queue.consumer.fetch("w1", 3, 0.1)) or len(deliveries) == 3,
            10.0,
            "three deliveries",
        )

        recorded = queue.consumer.complete_many([(d, run(d)) for d in deliveries])
        assert recorded == [True, True, True]
        assert [queue.outcome(h, 10.0).result for h in handles] == [0, 10, 20]

    def test_an_outcome_is_recorded_once_even_when_the_task_ran_twice(self, new_queue: NewQueue) -> None:
        queue = new_queue(visibility_timeout=0.3)
        handle = queue.put(envelope(lambda: "result"))
        first = fetch_one(queue.consumer, "w1")
        second = fetch_one(queue.consumer, "w2")  # w1 went silent: the same submission runs again
        assert second.entry_id == first.entry_id

        assert queue.consumer.complete(second, TaskOutcome("job", True, result="second")) is True
        assert queue.consumer.complete(first, TaskOutcome("job", True, result="first")) is False
        assert queue.outcome(handle, 10.0).result == "second"

    def test_a_completed_entry_is_never_delivered_again(self, new_queue: NewQueue) -> None:
        queue = new_queue(visibility_timeout=0.2)
        queue.put(envelope(lambda: 1))
        delivery = fetch_one(queue.consumer, "w1")
        queue.consumer.complete(delivery, run(delivery))

        time.sleep(0.4)  # twice the visibility timeout
        assert queue.consumer.fetch("w2", count=1, block=0.3) == []

    def test_an_outcome_that_cannot_be_pickled_reaches_its_driver_as_the_failure_saying_so(
        self, new_queue: NewQueue
    ) -> None:
        queue = new_queue()
        handle = queue.put(envelope(lambda: 1))
        delivery = fetch_one(queue.consumer, "w1")
        unpicklable = TaskOutcome("job", True, result=threading.Lock())

        assert queue.consumer.complete(delivery, unpicklable) is True

        received = queue.outcome(handle, 10.0)
        assert (received.success, received.error_type) == (False, "TypeError")
        assert "cannot be pickled" in (received.error_message or "")
        assert not unpicklable.success, "the worker's copy says what was sent"

    # --- holding -----------------------------------------------------------------------

    def test_release_hands_the_entry_to_the_next_fetch_at_once(self, new_queue: NewQueue) -> None:
        queue = new_queue(visibility_timeout=60)
        queue.put(envelope(lambda: 1))
        first = fetch_one(queue.consumer, "stopping-worker")
        queue.consumer.release(first)

        again = fetch_one(queue.consumer, "other-worker", timeout=5)
        assert again.entry_id == first.entry_id
        assert (again.attempt, again.consumer) == (2, "other-worker")

    def test_keep_alive_keeps_a_long_task_with_its_worker(self, new_queue: NewQueue) -> None:
        queue = new_queue(visibility_timeout=0.5)
        queue.put(envelope(lambda: 1))
        held = fetch_one(queue.consumer, "busy-worker")

        deadline = time.monotonic() + 1.5  # three visibility timeouts
        while time.monotonic() < deadline:
            queue.consumer.keep_alive([held])
            assert queue.consumer.fetch("other-worker", count=1, block=0.1) == []

        taken = fetch_one(queue.consumer, "other-worker")  # keep-alives stopped: it moves on
        assert (taken.entry_id, taken.attempt) == (held.entry_id, 2)

    def test_an_entry_whose_worker_went_silent_is_delivered_again_after_the_visibility_timeout(
        self, new_queue: NewQueue
    ) -> None:
        queue = new_queue(visibility_timeout=0.3)
        handle = queue.put(envelope(lambda: "done"))
        fetch_one(queue.consumer, "dead-worker")  # ...which never completes nor keeps it alive
        held_since = time.monotonic()

        delivery = fetch_one(queue.consumer, "live-worker")
        assert time.monotonic() - held_since >= 0.25
        assert (delivery.attempt, delivery.consumer) == (2, "live-worker")
        queue.consumer.complete(delivery, run(delivery))
        assert queue.outcome(handle, 10.0).result == "done"

    def test_an_entry_delivered_too_often_is_dead_lettered_and_fails_its_task(
        self, new_queue: NewQueue
    ) -> None:
        queue = new_queue(visibility_timeout=0.2, max_deliveries=1)
        handle = queue.put(envelope(lambda: 1, "fragile"))
        fetch_one(queue.consumer, "dead-worker")

        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # no second delivery, ever
            assert queue.consumer.fetch("other-worker", count=1, block=0.1) == []
        outcome = queue.outcome(handle, 10.0)
        assert not outcome.success
        assert isinstance(outcome.error, TaskRejectedError)
        assert "max_deliveries=1" in outcome.error.reason

    # --- the fleet ---------------------------------------------------------------------

    def test_a_heartbeat_joins_the_fleet_and_remove_worker_leaves_it(self, new_queue: NewQueue) -> None:
        queue = new_queue()
        queue.consumer.heartbeat("w1", {"running": [], "tasks_processed": 3})
        (seen,) = queue.workers()
        assert (seen["worker_id"], seen["tasks_processed"]) == ("w1", 3)

        queue.consumer.remove_worker("w1")
        assert queue.workers() == []


class TestStreamConsumer(ConsumerContract):
    """The Redis consumer, with a driver's FleetExecutor as the producer."""

    @pytest.fixture
    def new_queue(self, make_queue: Callable[..., DistributedTaskQueue]) -> NewQueue:
        def make(**options: Any) -> Queue:
            driver, worker = make_queue(), make_queue(**options)
            return Queue(
                consumer=worker.consumer,
                put=driver.submit,
                outcome=lambda future, timeout: future.result(timeout=timeout),
                workers=driver.workers,
            )

        return make


class TestStubConsumer(ConsumerContract):
    """graflow-redis's in-memory stub."""

    @pytest.fixture
    def new_queue(self) -> NewQueue:
        def make(**options: Any) -> Queue:
            stub = StubConsumer(**options)
            return Queue(consumer=stub, put=stub.put, outcome=stub.outcome, workers=stub.workers)

        return make
