"""Queues and priority lanes through the queue's own API (SPEC 19): what holds on one stream holds per lane.

A task's routing picks the lane it is submitted to; a worker serving that queue takes it,
one serving another queue never does, and redelivery, recorded-once completion and dead
letters (requeued to the lane they came from) work on every lane.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from graflow.core.routing import Routing
from graflow.remote.codec import dumps
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.queue import DistributedTaskQueue
from tests.redis.test_redis_queue import envelope, fetch_one, run

MakeQueue = Callable[..., DistributedTaskQueue]


def routed(queue: str, priority: int, task_id: str = "job") -> TaskEnvelope:
    sent = envelope(lambda: f"ran on {queue}", task_id)
    sent.routing = Routing(queue=queue, priority=priority)
    return sent


def test_a_task_waits_on_its_queues_lane_and_only_a_worker_serving_that_queue_takes_it(
    make_queue: MakeQueue,
) -> None:
    driver = make_queue()
    default_worker, gpu_worker = make_queue(), make_queue(queues="gpu")
    future = driver.submit(routed("gpu", 8))

    assert driver.client.xlen(driver.keys.lane("gpu", 8)) == 1
    assert default_worker.fetch("cpu", count=5, block=0.1) == []
    delivery = fetch_one(gpu_worker, "gpu")
    assert delivery.stream == driver.keys.lane("gpu", 8)
    assert gpu_worker.complete(delivery, run(delivery))
    assert future.result(timeout=10).result == "ran on gpu"
    assert driver.client.xlen(driver.keys.lane("gpu", 8)) == 0
    assert driver.queue_depths()["gpu"] == {"waiting": 0, "running": 0}


def test_on_a_lane_an_entry_of_a_dead_worker_is_redelivered_and_recorded_once(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(queues=["gpu"], visibility_timeout=0.3)
    future = driver.submit(routed("gpu", 2))

    first = fetch_one(worker, "dies")
    assert worker.queue_depths()["gpu"] == {"waiting": 0, "running": 1}
    second = fetch_one(worker, "lives")
    assert (second.entry_id, second.attempt, second.stream) == (first.entry_id, 2, first.stream)

    assert worker.complete(second, run(second)) is True
    assert worker.complete(first, run(first)) is False  # the late one records nothing
    assert future.result(timeout=10).result == "ran on gpu"
    assert worker.queue_depths()["gpu"] == {"waiting": 0, "running": 0}


def test_a_dead_letter_is_requeued_to_the_lane_it_came_from(make_queue: MakeQueue) -> None:
    queue = make_queue(queues="io")
    queue.executor.submit_payload("extract", dumps("not an envelope"), queue="io", priority=7)
    assert queue.fetch("w1", count=1, block=0.2) == []
    (letter,) = queue.dead_letters()
    assert letter["stream"] == queue.keys.lane("io", 7)

    assert queue.fleet.requeue_dead_letter(letter["id"]) is not None
    assert queue.client.xlen(queue.keys.lane("io", 7)) == 1
    assert queue.client.xlen(queue.keys.tasks) == 0


def test_a_worker_serving_two_queues_takes_from_both(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(queues="gpu,default")
    for n in range(3):
        driver.submit(routed("gpu", 5, f"g{n}"))
        driver.submit(envelope(lambda: None, f"d{n}"))

    taken = worker.fetch("w", count=4, block=0.1)
    taken += worker.fetch("w", count=4, block=0.1)
    assert sorted(d.envelope.task_id for d in taken) == ["d0", "d1", "d2", "g0", "g1", "g2"]
    assert worker.queues == ["gpu", "default"]


def test_a_batch_is_completed_and_its_slots_refilled_in_one_call(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=30)
    futures = [driver.submit(envelope(lambda n=n: n, f"t{n}")) for n in range(5)]
    first = worker.fetch("w", count=2, block=0.1)  # its scan for silent workers is done for a second

    recorded, taken = worker.complete_and_take([(d, run(d)) for d in first], "w", 2)

    assert recorded == [True, True]
    assert [d.envelope.task_id for d in taken] == ["t2", "t3"]
    assert [f.result(timeout=10).result for f in futures[:2]] == [0, 1]
    assert worker.queue_depths()["default"] == {"waiting": 1, "running": 2}


def test_no_slot_is_refilled_while_a_scan_for_silent_workers_is_due(make_queue: MakeQueue) -> None:
    driver, worker = make_queue(), make_queue(visibility_timeout=0.2)
    driver.submit(envelope(lambda: "late", "abandoned"))
    driver.submit(envelope(lambda: "quick", "quick"))
    held = worker.fetch("dead", count=1, block=0.1)  # its worker dies holding it
    mine = worker.fetch("w", count=1, block=0.1)
    time.sleep(0.3)

    recorded, taken = worker.complete_and_take([(mine[0], run(mine[0]))], "w", 1)

    assert recorded == [True] and taken == []  # the next fetch reclaims instead
    (reclaimed,) = worker.fetch("w", count=1, block=0.1)
    assert reclaimed.entry_id == held[0].entry_id and reclaimed.attempt == 2
