"""``Fetcher``: the loop that takes a worker's work from the queue.

It asks for at most as many deliveries as there are free slots, so a worker never holds
work it cannot start (another worker could), and it waits for a slot to free rather
than polling. A failed fetch (Redis restarting) is retried with a
:class:`~graflow_redis.backoff.Backoff`; deliveries that arrive while the worker is
stopping are handed straight back.

A task under a rate or concurrency limit starts only once the worker's
:class:`~graflow_worker.gate.LimitGate` admits it; until then it waits in the gate
without a slot, so the worker's other work goes on, and the fetch wait is cut short
when the gate's next delivery is due. The gate holds at most
:data:`GATE_ROOM_PER_SLOT` deliveries per slot: a worker never hoards the entries of
a limited queue that other workers could be waiting on as well.

A delivery seen before (``attempt > 1``: its earlier holder died, went silent or handed
it back) is a *suspect*: it may be what killed that worker. Suspects run alone: the
fetcher stops taking work, waits until nothing else runs here, and runs them one at a
time. A task that kills its process then takes no innocent task down with it, and is
the only entry whose deliveries grow until it reaches ``max_deliveries`` and is
dead-lettered; the tasks that shared its first worker complete on their next, isolated
run. Suspects waiting their turn are kept alive like running tasks.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from graflow_redis.backoff import Backoff
    from graflow_redis.consumer import Consumer, Delivery
    from graflow_worker.gate import LimitGate
    from graflow_worker.pool import TaskPool
    from graflow_worker.slots import Slots

__all__ = ["GATE_POLL", "GATE_ROOM_PER_SLOT", "Fetcher"]

#: Limited deliveries a worker keeps waiting for their turn, per slot.
GATE_ROOM_PER_SLOT: Final = 4
#: Longest fetch wait while deliveries wait in the gate: a place given back makes one due at
#: once, and a blocked fetch cannot be woken.
GATE_POLL: Final = 0.05


class Fetcher:
    """The fetch thread of one worker."""

    def __init__(
        self,
        consumer: Consumer,
        worker_id: str,
        *,
        block: float,
        slots: Slots,
        pool: TaskPool,
        stopping: threading.Event,
        release: Callable[[Delivery, str], None],
        retry: Callable[[], Backoff],
        log: FilteringBoundLogger,
        gate: LimitGate | None = None,
    ) -> None:
        self._consumer = consumer
        self._worker_id = worker_id
        self._block = block
        self._slots = slots
        self._pool = pool
        self._stopping = stopping
        self._release = release
        self._retry = retry
        self._log = log
        self._gate = gate
        self._gate_room = GATE_ROOM_PER_SLOT * slots.capacity
        #: Suspects waiting to run alone (see the module's doc), and whether one runs now.
        self._suspects: deque[Delivery] = deque()
        self._suspects_lock = threading.Lock()
        self._alone = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="graflow-fetch", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the loop to end (it ends once ``stopping`` is set)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def refill(self, finished: int) -> int:
        """How many new entries may replace ``finished`` tasks now, taken as they are completed
        (see :meth:`graflow_worker.completer.Completer.refill_from`)."""
        if self._stopping.is_set() or self._alone or self._suspects:
            return 0
        if self._gate is not None and len(self._gate) >= self._gate_room:
            return 0
        return finished

    def take(self, deliveries: list[Delivery]) -> None:
        """Start deliveries taken for this worker elsewhere (the completer's round trip)."""
        self._start(deliveries)

    def suspects(self) -> list[Delivery]:
        """Suspects waiting for their turn to run alone (kept alive by the heartbeat)."""
        with self._suspects_lock:
            return list(self._suspects)

    def take_suspects(self) -> list[Delivery]:
        """Empty the suspects' line (the worker is stopping: it hands them back to the queue)."""
        with self._suspects_lock:
            taken = list(self._suspects)
            self._suspects.clear()
        return taken

    def _loop(self) -> None:
        backoff = self._retry()
        gate = self._gate
        while True:
            free = self._slots.wait_free(self._stopping)
            if not free:
                return
            if self._alone or self._suspects:
                if not self._isolate():
                    return
                continue
            block = self._block
            if gate is not None:
                free -= self._start(gate.due(free))
                due_in = gate.next_due()
                if free <= 0:
                    continue
                if len(gate) >= self._gate_room:  # full: wait for a waiting one's turn, fetch nothing
                    if self._stopping.wait(min(due_in, GATE_POLL) if due_in is not None else self._block):
                        return
                    continue
                if due_in is not None:
                    block = min(block, due_in, GATE_POLL)
            try:
                deliveries = self._consumer.fetch(self._worker_id, count=free, block=block)
            except Exception as exc:
                pause = backoff.next()
                self._log.warning(
                    "fetch_failed", error=f"{type(exc).__name__}: {exc}", retry_in=round(pause, 2)
                )
                if self._stopping.wait(pause):
                    return
                continue
            backoff.reset()
            if deliveries:
                self._start(deliveries)

    def _start(self, deliveries: list[Delivery]) -> int:
        """Run the deliveries the gate admits (the rest wait in it), suspects aside; how many started."""
        if not deliveries:
            return 0
        if self._stopping.is_set():
            for delivery in deliveries:
                self._release(delivery, "stopping")
            return 0
        suspects = [delivery for delivery in deliveries if delivery.attempt > 1]
        if suspects:
            deliveries = [delivery for delivery in deliveries if delivery.attempt == 1]
            with self._suspects_lock:
                self._suspects.extend(suspects)
            for suspect in suspects:
                self._log.info(
                    "task_isolated",
                    task_id=suspect.envelope.task_id,
                    attempt=suspect.attempt,
                    reason="delivered before without completing: it runs alone",
                )
        if self._gate is not None:
            deliveries = [delivery for delivery in deliveries if self._gate.admit(delivery)]
        self._slots.hold(deliveries)
        self._pool.submit(deliveries)
        return len(deliveries)

    def _isolate(self) -> bool:
        """Once nothing runs here, start the next suspect alone, or end isolation when none is
        left; False if the worker is stopping meanwhile."""
        if not self._slots.wait_idle(self._stopping):
            return False
        with self._suspects_lock:
            suspect = self._suspects.popleft() if self._suspects else None
        self._alone = suspect is not None
        if suspect is not None and (self._gate is None or self._gate.admit(suspect)):
            self._slots.hold([suspect])
            self._pool.submit([suspect])
        return True
