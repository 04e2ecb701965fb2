"""``Heartbeat``: keeps a worker's running tasks with it, and tells the fleet it is alive.

Each beat does two things on the queue: ``keep_alive`` for every delivery holding a
slot, so a long task is never given to another worker, and ``heartbeat`` with the
worker's report (what it runs, its counters), which ``graflow-worker status`` reads.
Beats come every ``interval`` seconds, and sooner when a task finishes (the counters
changed), but never closer than :data:`MIN_HEARTBEAT_GAP`: fresh figures in the fleet
view without a round trip per task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from graflow_redis.consumer import Consumer, Delivery
    from graflow_worker.gate import LimitGate
    from graflow_worker.observer import Notifier
    from graflow_worker.slots import Slots

__all__ = ["MIN_HEARTBEAT_GAP", "Heartbeat"]

#: Shortest time between two heartbeats, however often tasks finish.
MIN_HEARTBEAT_GAP: Final = 0.5


class Heartbeat:
    """The heartbeat thread of one worker."""

    def __init__(
        self,
        consumer: Consumer,
        worker_id: str,
        interval: float,
        *,
        slots: Slots,
        report: Callable[[], Mapping[str, Any]],
        changed: threading.Event,
        notifier: Notifier,
        log: FilteringBoundLogger,
        gate: LimitGate | None = None,
        aside: Callable[[], list[Delivery]] | None = None,
    ) -> None:
        self._consumer = consumer
        self._gate = gate
        #: Deliveries this worker holds without a slot (waiting for a limit or to run alone).
        self._aside = aside
        self._worker_id = worker_id
        self._interval = interval
        self._slots = slots
        self._report = report
        self._changed = changed
        self._notifier = notifier
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="graflow-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop beating (the running tasks are settled or handed back by then); waits up to ``timeout``."""
        self._stop.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        last = 0.0
        min_gap = min(MIN_HEARTBEAT_GAP, self._interval)
        while True:
            gap = min_gap - (time.monotonic() - last)
            if gap > 0 and self._stop.wait(gap):
                return
            self._changed.clear()
            last = time.monotonic()
            self.beat()
            self._changed.wait(self._interval)
            if self._stop.is_set():
                return

    def beat(self) -> None:
        """Keep running deliveries (and those held aside) alive, and the places
        their limits gave them, then publish the report; a failure waits for the next beat."""
        running = self._slots.deliveries()
        if self._aside is not None:
            running += self._aside()
        try:
            if running:
                self._consumer.keep_alive(running)
            if self._gate is not None:
                self._gate.renew()
            self._consumer.heartbeat(self._worker_id, self._report())
        except Exception as exc:
            self._log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._notifier.heartbeat()
