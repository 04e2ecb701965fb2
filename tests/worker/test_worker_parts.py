"""The parts of a TaskWorker, each alone: slots, counters, the completer and the heartbeat."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import structlog

from graflow.core.task import TaskWrapper
from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from graflow_redis.backoff import Backoff
from graflow_redis.consumer import Delivery
from graflow_redis.stub import StubConsumer
from graflow_worker.completer import Completer
from graflow_worker.counters import Counters
from graflow_worker.heartbeat import MIN_HEARTBEAT_GAP, Heartbeat
from graflow_worker.observer import Notifier
from graflow_worker.slots import Slots

LOG = structlog.get_logger("tests")


def delivered(stub: StubConsumer, make_task: Callable[..., TaskWrapper], count: int) -> list[Delivery]:
    for n in range(count):
        stub.put(TaskEnvelope(make_task(f"t{n}", lambda: None), session_id="run-1", workflow_name="unit"))
    return stub.fetch("w1", count=count, block=0.1)


def completer(consumer: Any, slots: Slots | None = None, stopped: threading.Event | None = None) -> Completer:
    return Completer(
        consumer,
        slots=slots or Slots(4),
        counters=Counters(),
        notifier=Notifier(None, [], LOG),  # type: ignore[arg-type]  # no observer reads the worker
        stopped=stopped or threading.Event(),
        retry=lambda: Backoff(0.001, 0.002),
        log=LOG,
    )


class FlakyStub(StubConsumer):
    """A stub whose next completions fail as if Redis were unreachable."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages

    def complete_many(self, items: Any) -> list[bool]:
        if self.outages:
            self.outages -= 1
            raise redis.ConnectionError("Redis restarting")
        return super().complete_many(items)


# --- slots ------------------------------------------------------------------------------------


def test_a_fetcher_waiting_for_a_slot_is_told_how_many_are_free(make_task) -> None:
    stub, slots = StubConsumer(), Slots(2)
    first, second = delivered(stub, make_task, 2)
    slots.hold([first, second])
    threading.Timer(0.05, slots.free, [first]).start()

    assert slots.wait_free(threading.Event()) == 1


def test_a_stop_wakes_a_fetcher_waiting_for_a_slot(make_task) -> None:
    stub, slots, stopping = StubConsumer(), Slots(1), threading.Event()
    slots.hold(delivered(stub, make_task, 1))

    def stop() -> None:
        stopping.set()
        slots.wake()

    threading.Timer(0.05, stop).start()
    assert slots.wait_free(stopping) == 0


def test_waiting_for_the_slots_to_empty_returns_what_still_holds_one_at_the_deadline(make_task) -> None:
    stub, slots = StubConsumer(), Slots(2)
    quick, stuck = delivered(stub, make_task, 2)
    slots.hold([quick, stuck])
    threading.Timer(0.02, slots.free, [quick]).start()

    assert slots.wait_empty(time.monotonic() + 0.2) == [stuck]


# --- counters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("success", "recorded", "status", "counts"),
    [
        (True, True, "succeeded", (1, 1, 0, 0, 0)),
        (False, True, "failed", (1, 0, 1, 0, 0)),
        (True, False, "duplicate", (0, 0, 0, 1, 0)),
        (True, None, "unrecorded", (0, 0, 0, 0, 1)),
    ],
)
def test_a_finished_task_is_counted_by_how_it_ended(
    success: bool, recorded: bool | None, status: str, counts: tuple[int, ...]
) -> None:
    # processed counts recorded outcomes only: the fleet's sum is the driver's count.
    counters = Counters()
    assert counters.count(TaskOutcome("t", success), recorded) == status
    assert (
        counters.processed,
        counters.succeeded,
        counters.failed,
        counters.duplicate,
        counters.unrecorded,
    ) == counts
    assert counters.changed.is_set()


# --- completer --------------------------------------------------------------------------------


def test_an_unsendable_result_fails_only_its_own_task_in_a_batch(make_task) -> None:
    stub = StubConsumer()
    good, bad, other = delivered(stub, make_task, 3)
    batch = [
        (good, TaskOutcome("t0", True, result=1)),
        (bad, TaskOutcome("t1", True, result=threading.Lock())),
        (other, TaskOutcome("t2", True, result=2)),
    ]

    settled = completer(stub).complete(batch)

    assert [recorded for recorded, _ in settled] == [True, True, True]
    outcomes = stub.join(timeout=1)
    assert (outcomes[good.uid].result, outcomes[other.uid].result) == (1, 2)
    failed = outcomes[bad.uid]
    assert (failed.success, failed.error_type) == (False, "TypeError")
    assert "returned or requested something that cannot be sent back" in failed.error_message


def test_completion_is_retried_with_backoff_while_the_queue_is_unreachable(make_task) -> None:
    stub = FlakyStub(outages=3)
    deliveries = delivered(stub, make_task, 2)

    settled = completer(stub).complete([(d, TaskOutcome(d.envelope.task_id, True)) for d in deliveries])

    assert [recorded for recorded, _ in settled] == [True, True]
    assert stub.outages == 0


def test_completion_gives_up_once_the_worker_has_stopped(make_task) -> None:
    stub, stopped = FlakyStub(outages=1_000), threading.Event()
    stopped.set()
    deliveries = delivered(stub, make_task, 2)

    settled = completer(stub, stopped=stopped).complete(
        [(d, TaskOutcome(d.envelope.task_id, True)) for d in deliveries]
    )

    assert [recorded for recorded, _ in settled] == [None, None]
    assert stub.in_flight() == 2  # still pending: another worker gets them after the visibility timeout


def test_a_settled_task_frees_its_slot(make_task) -> None:
    stub, slots = StubConsumer(), Slots(1)
    (delivery,) = delivered(stub, make_task, 1)
    slots.hold([delivery])

    completer(stub, slots=slots).finished(delivery, TaskOutcome("t0", True))

    assert len(slots) == 0


# --- heartbeat --------------------------------------------------------------------------------


def test_finished_tasks_bring_the_heartbeat_forward_but_never_closer_than_the_minimum_gap() -> None:
    stub, counters = StubConsumer(), Counters()
    beats: list[float] = []
    heartbeat = Heartbeat(
        stub,
        "w1",
        interval=60.0,  # without finished tasks, a single beat in this test
        slots=Slots(1),
        report=lambda: beats.append(time.monotonic()) or {},
        changed=counters.changed,
        notifier=Notifier(None, [], LOG),  # type: ignore[arg-type]
        log=LOG,
    )
    heartbeat.start()
    try:
        deadline = time.monotonic() + 2 * MIN_HEARTBEAT_GAP + 0.2
        while time.monotonic() < deadline:  # a task finishes every 10 ms
            counters.count(TaskOutcome("t", True), True)
            time.sleep(0.01)
    finally:
        heartbeat.stop(5.0)

    assert len(beats) >= 2
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    assert min(gaps) >= MIN_HEARTBEAT_GAP * 0.9
