"""``Completer``: hands finished tasks' outcomes to the queue, as few round trips as possible.

The first task thread to finish completes its outcome; tasks that finish while that
completion is on its way wait in a list, and the same thread completes them next,
together, with one ``complete_many`` (one pipeline on Redis) instead of a trip each.
Then it counts each task, logs it, tells the observers and frees its slot.

One retry path serves a batch and a single outcome alike: while the queue cannot be
reached the call is retried with a :class:`~graflow_redis.backoff.Backoff` (until the
worker has stopped: the entries then stay pending and go to another worker after the
visibility timeout). An outcome that cannot be pickled never gets here as a problem:
the codec turns it into the failure saying so (:func:`graflow.remote.codec.dumps_outcome`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from graflow.remote.envelope import TaskOutcome
from graflow_redis.backoff import Backoff
from graflow_redis.connection import CONNECTION_ERRORS
from graflow_redis.refusal import refusal

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from graflow_redis.consumer import Consumer, Delivery
    from graflow_worker.counters import Counters
    from graflow_worker.fetcher import Fetcher
    from graflow_worker.observer import Notifier
    from graflow_worker.slots import Slots

__all__ = ["Completer", "Settled"]

#: A finished task's delivery and outcome.
Finished = tuple["Delivery", TaskOutcome]
#: What completing returned (``None``: not delivered before the worker stopped) and the outcome sent.
Settled = tuple["bool | None", TaskOutcome]


class Completer:
    """Completes finished tasks on ``consumer`` in batches, then accounts for each."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        slots: Slots,
        counters: Counters,
        notifier: Notifier,
        stopped: threading.Event,
        retry: Callable[[], Backoff],
        log: FilteringBoundLogger,
    ) -> None:
        self._consumer = consumer
        self._slots = slots
        self._counters = counters
        self._notifier = notifier
        self._stopped = stopped
        self._retry = retry
        self._log = log
        #: Where the queue's Redis is, for messages.
        self._where = str(getattr(consumer, "where", "the queue's server"))
        self._waiting: list[Finished] = []
        self._lock = threading.Lock()
        self._completing = False
        self._refill: Fetcher | None = None
        self._consumer_name = ""

    @property
    def waiting(self) -> int:
        """Finished tasks waiting for the completion in flight to return."""
        return len(self._waiting)

    def finished(self, delivery: Delivery, outcome: TaskOutcome) -> None:
        """A task ended: complete its outcome now, or with the next batch if one is on its way."""
        with self._lock:
            self._waiting.append((delivery, outcome))
            if self._completing:
                return
            self._completing = True
        batch: list[Finished] = []
        try:
            while True:
                with self._lock:
                    batch, self._waiting = self._waiting, []
                    if not batch:
                        self._completing = False
                        return
                settled, taken = self._complete_and_take(batch)
                if taken:  # they take the slots of the tasks they replace, before those are freed
                    self._take(taken)
                for (done, _), (recorded, sent) in zip(batch, settled, strict=True):
                    self._account(done, sent, recorded)
                batch = []
        except BaseException:
            with self._lock:
                self._completing = False
            for done, _ in batch:
                self._slots.free(done)
            raise

    def refill_from(self, fetcher: Fetcher, consumer: str) -> None:
        """Replace finished tasks with new entries taken in the round trip that completes them.

        Only on a queue that can (``complete_and_take``), and only as many as ``fetcher``
        allows now (none while it stops, runs a suspect alone or its limit gate is full).
        """
        if hasattr(self._consumer, "complete_and_take"):
            self._refill = fetcher
            self._consumer_name = consumer

    def _take(self, deliveries: list[Delivery]) -> None:
        assert self._refill is not None
        self._refill.take(deliveries)

    def _complete_and_take(self, batch: list[Finished]) -> tuple[list[Settled], list[Delivery]]:
        """:meth:`complete`, with new entries for the slots ``batch`` frees when the fetcher wants them."""
        wanted = self._refill.refill(len(batch)) if self._refill is not None else 0
        if not wanted:
            return self.complete(batch), []
        taken: list[Delivery] = []

        def send(items: list[Finished]) -> list[bool]:
            recorded, new = cast("Any", self._consumer).complete_and_take(items, self._consumer_name, wanted)
            taken.extend(new)
            return list(recorded)

        return self.complete(batch, send), taken

    def complete(
        self, batch: list[Finished], send: Callable[[list[Finished]], list[bool]] | None = None
    ) -> list[Settled]:
        """Hand ``batch`` to the queue in one round trip; what each completion returned, in order.

        Retries while the queue is unreachable, and while Redis refuses writes (out of memory,
        read-only, ACL: see :mod:`graflow_redis.refusal`), holding the tasks. A completion that
        fails for another reason is logged and left pending: the entries go to another worker
        after the visibility timeout.
        """
        backoff = self._retry()
        while True:
            try:
                if send is not None:
                    recorded = send(batch)
                elif len(batch) == 1:
                    recorded = [self._consumer.complete(*batch[0])]
                else:
                    recorded = self._consumer.complete_many(batch)
            except CONNECTION_ERRORS as exc:
                if self._stopped.is_set():
                    return [(None, outcome) for _, outcome in batch]
                pause = backoff.next()
                self._log.warning(
                    "complete_failed",
                    task_ids=[outcome.task_id for _, outcome in batch],
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=round(pause, 2),
                )
                self._stopped.wait(pause)
            except Exception as exc:
                task_ids = [outcome.task_id for _, outcome in batch]
                refused = refusal(exc, where=self._where, doing=f"recording the outcome of {task_ids}")
                if refused is None:
                    self._log.error(
                        "complete_failed", task_ids=task_ids, error=f"{type(exc).__name__}: {exc}"
                    )
                    return [(None, outcome) for _, outcome in batch]
                # Redis refuses writes (out of memory, read-only, ACL): keep the tasks and their
                # outcomes here, kept alive by the heartbeat, until it takes them. Handing them back
                # would only run them again on a worker that cannot record them either.
                if self._stopped.is_set():
                    return [(None, outcome) for _, outcome in batch]
                pause = backoff.next()
                self._log.error(
                    "redis_refused", task_ids=task_ids, condition=refused.condition, error=str(refused)
                )
                self._stopped.wait(pause)
            else:
                return [(r, outcome) for r, (_, outcome) in zip(recorded, batch, strict=True)]

    def _account(self, delivery: Delivery, outcome: TaskOutcome, recorded: bool | None) -> None:
        """Count, log and report a settled task, and free its slot."""
        try:
            status = self._counters.count(outcome, recorded)
            self._log.info(
                "task_finished",
                task_id=outcome.task_id,
                session_id=delivery.envelope.session_id,
                status=status,
                attempt=delivery.attempt,
                duration=round(outcome.duration, 6),
                error=None if outcome.success else f"{outcome.error_type}: {outcome.error_message}",
            )
            self._notifier.task_finished(delivery, outcome, status)
        finally:
            self._slots.free(delivery)
