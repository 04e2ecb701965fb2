"""Tending the dead-letter stream (SPEC 20): a letter goes back to the workers once, or is discarded."""

from __future__ import annotations

import threading
from collections.abc import Callable

from graflow.remote.codec import dumps
from graflow_redis.queue import DistributedTaskQueue
from tests.redis.test_redis_queue import envelope, fetch_one, run

MakeQueue = Callable[..., DistributedTaskQueue]


def test_a_letter_rejected_for_its_signature_runs_once_requeued_to_a_worker_with_the_new_key(
    make_queue: MakeQueue,
) -> None:
    driver, keyless = make_queue(secret_key="new-key"), make_queue(secret_key="old-key")
    driver.submit(envelope(lambda: "signed result", task_id="deploy"))
    assert keyless.fetch("w-old", count=1, block=0.5) == []
    (letter,) = keyless.dead_letters()
    assert letter["task"] == "deploy" and "does not match" in letter["reason"]

    new_id = keyless.fleet.requeue_dead_letter(letter["id"])

    assert new_id is not None
    assert keyless.fleet.dead_letter_count() == 0
    fixed = make_queue(secret_key="new-key")  # the worker, restarted with the rotated key
    delivery = fetch_one(fixed, "w-new")
    assert delivery.envelope.task_id == "deploy"
    assert delivery.reply == ""  # its driver was told of the failure already
    assert run(delivery).result == "signed result"
    assert fixed.complete(delivery, run(delivery))


def test_a_letter_is_requeued_once_however_many_ask_at_the_same_time(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.executor.submit_payload("extract", b"not a pickle")
    assert queue.fetch("w1", count=1, block=0.5) == []
    (letter,) = queue.dead_letters()
    answers: list[str | None] = []

    threads = [
        threading.Thread(target=lambda: answers.append(queue.fleet.requeue_dead_letter(letter["id"])))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(answer is not None for answer in answers) == 1
    assert queue.client.xlen(queue.keys.tasks) == 1


def test_a_discarded_letter_is_gone_and_an_unknown_one_is_reported_as_such(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.executor.submit_payload("extract", dumps("not an envelope"))
    assert queue.fetch("w1", count=1, block=0.5) == []
    (letter,) = queue.dead_letters()

    assert queue.fleet.discard_dead_letter(letter["id"]) is True
    assert queue.dead_letters() == []
    assert queue.fleet.discard_dead_letter(letter["id"]) is False
    assert queue.fleet.requeue_dead_letter(letter["id"]) is None
