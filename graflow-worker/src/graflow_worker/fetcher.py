"""``Fetcher``: the loop that takes a worker's work from the queue.

It asks for at most as many deliveries as there are free slots, so a worker never holds
work it cannot start (another worker could), and it waits for a slot to free rather
than polling. A failed fetch (Redis restarting) is retried with a
:class:`~graflow_redis.backoff.Backoff`; deliveries that arrive while the worker is
stopping are handed straight back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from graflow_redis.backoff import Backoff
    from graflow_redis.consumer import Consumer, Delivery
    from graflow_worker.pool import TaskPool
    from graflow_worker.slots import Slots

__all__ = ["Fetcher"]


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
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="graflow-fetch", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the loop to end (it ends once ``stopping`` is set)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        backoff = self._retry()
        while True:
            free = self._slots.wait_free(self._stopping)
            if not free:
                return
            try:
                deliveries = self._consumer.fetch(self._worker_id, count=free, block=self._block)
            except Exception as exc:
                pause = backoff.next()
                self._log.warning(
                    "fetch_failed", error=f"{type(exc).__name__}: {exc}", retry_in=round(pause, 2)
                )
                if self._stopping.wait(pause):
                    return
                continue
            backoff.reset()
            if not deliveries:
                continue
            if self._stopping.is_set():
                for delivery in deliveries:
                    self._release(delivery, "stopping")
                return
            self._slots.hold(deliveries)
            self._pool.submit(deliveries)
