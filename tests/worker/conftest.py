"""A stub of graflow-redis's ``DistributedTaskQueue`` (the pinned contract), so the worker's
own logic is tested without a server; the real queue is exercised by tests/e2e."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.remote.codec import dumps_outcome
from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from tests.support.ports import free_port
from tests.support.waiting import wait_until


@dataclass
class StubDelivery:
    entry_id: str
    envelope: TaskEnvelope
    attempt: int = 1
    received_at: float = field(default_factory=time.time)


class StubQueue:
    """In-memory stand-in with the worker-side methods of the contract; records every call."""

    key_prefix = "stub"

    def __init__(self, visibility_timeout: float = 30.0) -> None:
        self.visibility_timeout = visibility_timeout
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self.waiting: list[StubDelivery] = []
        self.completed: dict[str, TaskOutcome] = {}
        self.complete_calls: list[tuple[str, TaskOutcome]] = []
        self.batches: list[list[str]] = []
        self.fetch_counts: list[int] = []
        self.kept_alive: list[list[str]] = []
        self.heartbeats: list[tuple[str, dict[str, Any]]] = []
        self.released: list[str] = []
        self.removed: list[str] = []
        #: Exceptions to raise from the next calls of a method, by method name.
        self.failures: dict[str, list[BaseException]] = {}
        self.dead: list[dict[str, Any]] = []

    # --- test side
    def put(self, task: TaskWrapper, attempt: int = 1) -> StubDelivery:
        envelope = TaskEnvelope(task, session_id="session-1", workflow_name="unit")
        delivery = StubDelivery(f"{next(self._ids)}-0", envelope, attempt)
        with self._cond:
            self.waiting.append(delivery)
            self._cond.notify_all()
        return delivery

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        wait_until(predicate, timeout, "a condition of the test")

    def _maybe_fail(self, method: str) -> None:
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    # --- the contract (worker side)
    def fetch(self, consumer: str, count: int = 1, block: float = 1.0) -> list[StubDelivery]:
        self._maybe_fail("fetch")
        self.fetch_counts.append(count)
        with self._cond:
            if not self.waiting:
                self._cond.wait(min(block, 0.05))
            taken, self.waiting = self.waiting[:count], self.waiting[count:]
        return taken

    def keep_alive(self, deliveries: list[StubDelivery]) -> None:
        self._maybe_fail("keep_alive")
        self.kept_alive.append([d.entry_id for d in deliveries])

    def complete(self, delivery: StubDelivery, outcome: TaskOutcome) -> bool:
        self._maybe_fail("complete")
        dumps_outcome(outcome)  # what the real queue does first: serialize (a failure if it cannot)
        self.complete_calls.append((delivery.entry_id, outcome))
        if delivery.entry_id in self.completed:
            return False
        self.completed[delivery.entry_id] = outcome
        return True

    def complete_many(self, items: list[tuple[StubDelivery, TaskOutcome]]) -> list[bool]:
        self._maybe_fail("complete_many")
        for _, outcome in items:
            dumps_outcome(outcome)
        self.batches.append([d.entry_id for d, _ in items])
        return [self.complete(d, o) for d, o in items]

    def release(self, delivery: StubDelivery) -> None:
        self.released.append(delivery.entry_id)

    def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None:
        self._maybe_fail("heartbeat")
        self.heartbeats.append((worker_id, info))

    def remove_worker(self, worker_id: str) -> None:
        self.removed.append(worker_id)

    def workers(self) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for worker_id, info in self.heartbeats:
            if worker_id not in self.removed:
                latest[worker_id] = info
        return list(latest.values())

    def depth(self) -> int:
        return len(self.waiting)

    def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        return self.dead[-count:]


@pytest.fixture
def queue() -> StubQueue:
    return StubQueue()


@pytest.fixture
def make_task() -> Iterator[Callable[..., TaskWrapper]]:
    """Build TaskWrappers inside a workflow of their own, so tests share no graph."""
    with workflow("worker-unit"):

        def make(task_id: str, func: Callable[..., Any]) -> TaskWrapper:
            return TaskWrapper(task_id, func)

        yield make


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event tasks block on; always opened at teardown so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def unused_port() -> int:
    return free_port()
