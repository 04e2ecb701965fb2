"""StubConsumer's test-side helpers (its consumer semantics are in test_consumer_contract.py)."""

from __future__ import annotations

import threading

import pytest

from graflow.core.task import TaskWrapper
from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from graflow_redis.stub import StubConsumer


def envelope(task_id: str = "job") -> TaskEnvelope:
    return TaskEnvelope(
        TaskWrapper(task_id, lambda: 1, register=False), session_id="run-1", workflow_name="t"
    )


def test_join_returns_every_outcome_once_all_are_recorded() -> None:
    stub = StubConsumer()
    uids = [stub.put(envelope(f"t{n}")) for n in range(2)]
    deliveries = stub.fetch("w1", count=2, block=0.1)
    threading.Timer(
        0.05, stub.complete_many, [[(d, TaskOutcome(d.envelope.task_id, True)) for d in deliveries]]
    ).start()

    outcomes = stub.join(timeout=5)
    assert sorted(outcomes) == sorted(uids)
    assert all(o.success for o in outcomes.values())


def test_join_and_outcome_say_what_is_missing_when_time_runs_out() -> None:
    stub = StubConsumer()
    uid = stub.put(envelope())
    with pytest.raises(TimeoutError, match="1 submission"):
        stub.join(timeout=0.05)
    with pytest.raises(TimeoutError, match=uid):
        stub.outcome(uid, timeout=0.05)


def test_depth_and_in_flight_follow_an_entry_from_put_to_completion() -> None:
    stub = StubConsumer()
    stub.put(envelope())
    assert (stub.depth(), stub.in_flight()) == (1, 0)
    (delivery,) = stub.fetch("w1")
    assert (stub.depth(), stub.in_flight()) == (0, 1)
    stub.complete(delivery, TaskOutcome("job", True))
    assert (stub.depth(), stub.in_flight()) == (0, 0)


def test_envelopes_are_handed_out_as_they_were_put() -> None:
    stub = StubConsumer()
    sent = envelope()
    stub.put(sent)
    assert stub.fetch("w1")[0].envelope is sent  # so a test's task may close over an Event


def test_a_dead_letter_carries_the_task_the_reason_and_the_worker() -> None:
    stub = StubConsumer(visibility_timeout=0.01, max_deliveries=1)
    stub.put(envelope("fragile"))
    stub.fetch("w1")
    assert stub.fetch("w2", block=0.1) == []
    (letter,) = stub.dead_letters()
    assert (letter["task"], letter["consumer"]) == ("fragile", "w2")
    assert "max_deliveries=1" in letter["reason"]
