"""``StubConsumer``: an in-memory queue with the Redis consumer's semantics, for tests.

As dramatiq ships a ``StubBroker``, graflow-redis ships this, so code that drives a
:class:`~graflow_redis.consumer.Consumer` (graflow-worker's ``TaskWorker``, a worker loop
of your own) is tested without a Redis server::

    stub = StubConsumer(visibility_timeout=1.0)
    uid = stub.put(TaskEnvelope(task, session_id="run-1", workflow_name="tests"))
    with TaskWorker(stub, worker_id="w1"):
        outcome = stub.outcome(uid, timeout=5)

What a worker relies on behaves as on Redis (one contract suite runs on both): at most
``count`` deliveries per fetch, each held until completed; redelivery (``attempt`` + 1)
after ``visibility_timeout`` without :meth:`~StubConsumer.keep_alive`, or at once after
:meth:`~StubConsumer.release`; one recorded outcome per submission; dead letters after
``max_deliveries``; outcomes refused with
:class:`~graflow.exceptions.TaskSerializationError` when they cannot be pickled. What
it leaves out: persistence, signatures, other processes. Envelopes are handed out as
they were put, unpickled, so a test's task may close over an ``Event`` or a lock.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from graflow_redis.consumer import Delivery
from graflow_redis.entry import EntryMeta, decode_outcome, encode_outcome, rejected_outcome, split_reply

__all__ = ["StubConsumer"]

#: Name of the stub's dead-letter "stream", as it appears in rejection errors.
DEAD_LETTERS: Final = "stub:dead"


@dataclass
class _Entry:
    entry_id: str
    uid: str
    envelope: TaskEnvelope
    #: How many times it was delivered.
    deliveries: int = 0
    #: The worker holding it (while pending).
    holder: str = ""
    #: ``time.monotonic()`` of its last delivery or keep-alive; ``-inf`` once released.
    touched: float = 0.0


class StubConsumer:
    """A thread-safe, in-memory :class:`~graflow_redis.consumer.Consumer` plus what a test needs.

    Test side: :meth:`put` an envelope, then :meth:`outcome` (one) or :meth:`join` (all).
    Fleet side, as on :class:`~graflow_redis.queue.DistributedTaskQueue`:
    :meth:`workers`, :meth:`depth`, :meth:`in_flight`, :meth:`dead_letters`.
    """

    def __init__(
        self,
        *,
        visibility_timeout: float = 30.0,
        heartbeat_ttl: float = 10.0,
        max_deliveries: int = 10,
        key_prefix: str = "stub",
    ) -> None:
        #: Seconds a delivery may go without keep-alive before it is delivered again.
        self.visibility_timeout = visibility_timeout
        #: Seconds a heartbeat counts as alive.
        self.heartbeat_ttl = heartbeat_ttl
        #: Deliveries of one entry before it is dead-lettered.
        self.max_deliveries = max_deliveries
        self.key_prefix = key_prefix
        self._cond = threading.Condition()
        self._numbers = itertools.count(1)
        self._waiting: deque[_Entry] = deque()
        self._pending: dict[str, _Entry] = {}
        self._outcomes: dict[str, TaskOutcome] = {}
        self._submitted: set[str] = set()
        self._dead: list[dict[str, Any]] = []
        self._beats: dict[str, tuple[float, dict[str, Any]]] = {}

    # --- test side -------------------------------------------------------------------------

    def put(self, envelope: TaskEnvelope) -> str:
        """Queue ``envelope`` as a new submission; returns its id (for :meth:`outcome`)."""
        number = next(self._numbers)
        entry = _Entry(f"{number}-0", f"stub-{number}", envelope)
        with self._cond:
            self._submitted.add(entry.uid)
            self._waiting.append(entry)
            self._cond.notify_all()
        return entry.uid

    def outcome(self, uid: str, timeout: float = 10.0) -> TaskOutcome:
        """The recorded outcome of submission ``uid``, waiting up to ``timeout`` seconds for it.

        Raises :class:`TimeoutError` when none was recorded in time.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: uid in self._outcomes, timeout):
                raise TimeoutError(f"no outcome was recorded for submission {uid!r} within {timeout}s")
            return self._outcomes[uid]

    def join(self, timeout: float = 10.0) -> dict[str, TaskOutcome]:
        """Wait until every submission has an outcome; all of them, by submission id.

        Raises :class:`TimeoutError` naming how many are missing after ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._submitted <= self._outcomes.keys(), timeout):
                missing = len(self._submitted - self._outcomes.keys())
                raise TimeoutError(f"{missing} submission(s) still have no outcome after {timeout}s")
            return dict(self._outcomes)

    # --- the consumer ----------------------------------------------------------------------

    def fetch(self, consumer: str, count: int = 1, block: float = 1.0) -> list[Delivery]:
        """At most ``count`` deliveries: silent or released ones first, then new ones."""
        if count < 1:
            return []
        deadline = time.monotonic() + block
        with self._cond:
            while True:
                taken = self._take(consumer, count)
                now = time.monotonic()
                if taken or now >= deadline:
                    return taken
                # Wake for a put, or when the next held entry goes silent for too long.
                expiries = [e.touched + self.visibility_timeout for e in self._pending.values()]
                self._cond.wait(min([deadline, *expiries]) - now)

    def _take(self, consumer: str, count: int) -> list[Delivery]:
        now = time.monotonic()
        silent = [e for e in self._pending.values() if now - e.touched >= self.visibility_timeout]
        deliveries: list[Delivery] = []
        for entry in silent:
            if len(deliveries) == count:
                break
            if entry.uid in self._outcomes:  # recorded by another run: a late duplicate, drop it
                del self._pending[entry.entry_id]
                continue
            deliveries.extend(self._deliver(entry, consumer, now))
        while self._waiting and len(deliveries) < count:
            deliveries.extend(self._deliver(self._waiting.popleft(), consumer, now))
        return deliveries

    def _deliver(self, entry: _Entry, consumer: str, now: float) -> list[Delivery]:
        entry.deliveries += 1
        entry.holder, entry.touched = consumer, now
        if entry.deliveries > self.max_deliveries:
            self._pending.pop(entry.entry_id, None)
            self._dead_letter(
                entry,
                consumer,
                f"delivered {entry.deliveries} times without completing; giving up after "
                f"max_deliveries={self.max_deliveries}",
            )
            return []
        self._pending[entry.entry_id] = entry
        return [
            Delivery(entry.entry_id, entry.envelope, entry.deliveries, time.time(), entry.uid, "", consumer)
        ]

    def _dead_letter(self, entry: _Entry, consumer: str, reason: str) -> None:
        task_id = entry.envelope.task_id
        self._dead.append(
            {"id": f"{len(self._dead) + 1}-0", "task": task_id, "uid": entry.uid,
             "session": entry.envelope.session_id, "reason": reason, "consumer": consumer,
             "entry": entry.entry_id, "at": time.time(), "payload": b""}
        )  # fmt: skip
        self._record(entry.uid, rejected_outcome(task_id, reason, DEAD_LETTERS, consumer))

    def complete(self, delivery: Delivery, outcome: TaskOutcome) -> bool:
        """Record ``outcome`` once per submission and drop the entry; False if one was recorded before."""
        return self.complete_many([(delivery, outcome)])[0]

    def complete_many(self, items: Sequence[tuple[Delivery, TaskOutcome]]) -> list[bool]:
        """:meth:`complete` for each item."""
        # As on Redis: the outcome travels pickled (one that cannot be becomes the failure saying so).
        sent = [(d, _travel(d.uid, o)) for d, o in items]
        with self._cond:
            recorded = []
            for delivery, outcome in sent:
                self._pending.pop(delivery.entry_id, None)
                recorded.append(self._record(delivery.uid, outcome))
            return recorded

    def _record(self, uid: str, outcome: TaskOutcome) -> bool:
        if uid in self._outcomes:
            return False
        self._outcomes[uid] = outcome
        self._cond.notify_all()
        return True

    def keep_alive(self, deliveries: Sequence[Delivery]) -> None:
        """Reset the silence of entries still held by the delivery's consumer."""
        now = time.monotonic()
        with self._cond:
            for delivery in deliveries:
                entry = self._pending.get(delivery.entry_id)
                if entry is not None and entry.holder == delivery.consumer:
                    entry.touched = now

    def release(self, delivery: Delivery) -> None:
        """Hand the entry back: the next fetch of any worker takes it."""
        with self._cond:
            entry = self._pending.get(delivery.entry_id)
            if entry is not None and entry.holder == delivery.consumer:
                entry.touched = float("-inf")
                self._cond.notify_all()

    # --- the fleet -------------------------------------------------------------------------

    def heartbeat(self, worker_id: str, info: Mapping[str, Any]) -> None:
        """Remember ``worker_id`` as alive for ``heartbeat_ttl`` seconds, with ``info``."""
        with self._cond:
            self._beats[worker_id] = (
                time.monotonic(),
                {**info, "worker_id": worker_id, "last_seen": time.time()},
            )

    def remove_worker(self, worker_id: str) -> None:
        """Forget ``worker_id`` at once."""
        with self._cond:
            self._beats.pop(worker_id, None)

    def workers(self) -> list[dict[str, Any]]:
        """The last heartbeat of every worker whose heartbeat has not expired, by worker id."""
        now = time.monotonic()
        with self._cond:
            return [info for _, (at, info) in sorted(self._beats.items()) if now - at < self.heartbeat_ttl]

    def depth(self) -> int:
        """Entries no worker has taken yet."""
        with self._cond:
            return len(self._waiting)

    def in_flight(self) -> int:
        """Entries delivered and not yet completed."""
        with self._cond:
            return len(self._pending)

    def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters first, with the fields of the Redis dead-letter stream."""
        with self._cond:
            return list(reversed(self._dead))[:count]

    def __repr__(self) -> str:
        return f"<StubConsumer waiting={len(self._waiting)} in_flight={len(self._pending)}>"


def _travel(uid: str, outcome: TaskOutcome) -> TaskOutcome:
    """``outcome`` as its driver would receive it from Redis (pickled and back, unsigned)."""
    meta = EntryMeta("", uid, outcome.task_id, "", "")
    _uid, blob = split_reply(encode_outcome(meta, outcome, None, "stub"))
    return decode_outcome(
        blob, uid=uid, session_id="", task_id=outcome.task_id, sealer=None, key_prefix="stub"
    )
