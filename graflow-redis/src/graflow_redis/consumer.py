"""The worker's side of a task queue: what a worker takes, and what it owes back.

A worker (graflow-worker's ``TaskWorker``) talks to its queue only through
:class:`Consumer`, so the same worker runs on Redis
(:class:`~graflow_redis.stream_consumer.StreamConsumer`, or the
:class:`~graflow_redis.queue.DistributedTaskQueue` that holds one) and in tests on
:class:`~graflow_redis.stub.StubConsumer`, with no server. The contract, checked for
both by one test suite (``tests/redis/test_consumer_contract.py``):

* :meth:`~Consumer.fetch` hands out at most ``count`` deliveries; a delivery stays
  held by its consumer until :meth:`~Consumer.complete` (at least once: the outcome is
  recorded, then the entry is acknowledged);
* a delivery nobody kept alive for ``visibility_timeout`` seconds is delivered again,
  to whoever fetches next (``attempt`` grows); :meth:`~Consumer.keep_alive` keeps a
  long task with its live worker and :meth:`~Consumer.release` hands one back at once;
* the outcome of one submission is recorded once: completing it again (the task ran
  twice) returns ``False`` and records nothing;
* :meth:`~Consumer.heartbeat` and :meth:`~Consumer.remove_worker` announce the worker
  to the fleet (``graflow-worker status``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from graflow.remote.envelope import TaskEnvelope, TaskOutcome

__all__ = ["Consumer", "Delivery"]


@dataclass
class Delivery:
    """One task entry handed to a worker."""

    #: The entry's id in the queue (the same across deliveries of one entry).
    entry_id: str
    envelope: TaskEnvelope
    #: How many times the entry has been delivered (1 on first delivery).
    attempt: int
    received_at: float
    #: The submission id (the same across deliveries of one submission).
    uid: str = ""
    #: Where the outcome goes (the driver's reply list).
    reply: str = ""
    #: The consumer (worker id) the entry was delivered to.
    consumer: str = ""
    #: The run as the entry names it (what its outcome is sealed for).
    session_id: str = ""
    #: Where the entry waits while it is held: its queue's lane (empty for queues without lanes).
    stream: str = ""


class Consumer(Protocol):
    """What a worker needs from a queue: take tasks, give outcomes back, say it is alive.

    Every method may be called from any of the worker's threads. Errors in
    :data:`graflow_redis.connection.CONNECTION_ERRORS` mean "the queue cannot be reached
    right now": the worker retries them with a
    :class:`~graflow_redis.backoff.Backoff`.
    """

    @property
    def visibility_timeout(self) -> float:
        """Seconds a delivery may go without :meth:`keep_alive` before it is delivered again."""
        ...

    def fetch(self, consumer: str, count: int = 1, block: float = 1.0) -> list[Delivery]:
        """At most ``count`` deliveries for worker ``consumer``, waiting up to ``block`` seconds for one.

        Deliveries whose holder went silent come first. Entries that cannot be run are
        dead-lettered (and reported to their driver) instead of being returned.
        """
        ...

    def complete(self, delivery: Delivery, outcome: TaskOutcome) -> bool:
        """Record ``outcome`` for the delivery's driver and acknowledge the entry.

        ``False`` when an outcome of the same submission was recorded before (the task
        ran twice); the entry is acknowledged either way. Raises
        :class:`~graflow.exceptions.TaskSerializationError` when the outcome cannot be
        sent, before anything is recorded.
        """
        ...

    def complete_many(self, items: Sequence[tuple[Delivery, TaskOutcome]]) -> list[bool]:
        """:meth:`complete` for several deliveries in one round trip, in order.

        Raises :class:`~graflow.exceptions.TaskSerializationError` before recording
        anything when one of the outcomes cannot be sent.
        """
        ...

    def keep_alive(self, deliveries: Sequence[Delivery]) -> None:
        """Tell the queue these deliveries are still running, so nobody else takes them."""
        ...

    def release(self, delivery: Delivery) -> None:
        """Hand an unfinished delivery back: the next fetch of any worker takes it."""
        ...

    def heartbeat(self, worker_id: str, info: Mapping[str, Any]) -> None:
        """Publish that ``worker_id`` is alive, with what it runs and its counters (JSON-able)."""
        ...

    def remove_worker(self, worker_id: str) -> None:
        """Take ``worker_id`` out of the fleet now (a clean shutdown)."""
        ...
