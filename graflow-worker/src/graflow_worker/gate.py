"""The limit gate: a delivered task starts only when its limits allow, without holding a thread meanwhile.

A task with ``rate_limit`` or ``max_concurrency`` asks Redis for a place before it runs
(:class:`~graflow_redis.limits.RedisLimits`). When there is none, the gate keeps the
delivery aside, still held by this worker (its entry is kept alive like a running one), and
hands it back to the worker when Redis said a place should be free; the worker's slots
meanwhile run other tasks. A place taken is renewed with the worker's keep-alives and
given back when the task ends.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from graflow_redis.connection import CONNECTION_ERRORS
from graflow_redis.limits import Grant

if TYPE_CHECKING:
    from graflow_redis.consumer import Delivery
    from graflow_redis.limits import RedisLimits

__all__ = ["UNREACHABLE_RETRY", "LimitGate"]

#: Seconds a limited delivery waits before asking again while Redis cannot be reached.
UNREACHABLE_RETRY: Final = 1.0


class LimitGate:
    """Deliveries waiting for a place under their limits, and the places their running tasks hold."""

    def __init__(self, limits: RedisLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        #: ``(when to ask again, order, delivery)``, soonest first.
        self._waiting: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        #: Delivery uid -> the limit key its running task holds a place under.
        self._held: dict[str, str] = {}

    def admit(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` may start now; if not, it waits in the gate (see :meth:`due`).

        While Redis cannot be reached the delivery waits and asks again after
        :data:`UNREACHABLE_RETRY` seconds: a limit is never skipped.
        """
        routing = delivery.envelope.routing
        if routing is None or not routing.limited:
            return True
        key = routing.limit_key(delivery.envelope.task_id)
        try:
            grant = self._limits.acquire(key, routing, _holder(delivery))
        except CONNECTION_ERRORS:
            grant = Grant(False, UNREACHABLE_RETRY)
        with self._lock:
            if grant.taken:
                if routing.max_concurrency is not None:
                    self._held[_holder(delivery)] = key
                return True
            heapq.heappush(self._waiting, (self._clock() + grant.retry_in, next(self._order), delivery))
            return False

    def due(self, limit: int) -> list[Delivery]:
        """Up to ``limit`` waiting deliveries whose time to ask again has come (to :meth:`admit` again)."""
        now = self._clock()
        ready: list[Delivery] = []
        with self._lock:
            while self._waiting and self._waiting[0][0] <= now and len(ready) < limit:
                ready.append(heapq.heappop(self._waiting)[2])
        return ready

    def next_due(self) -> float | None:
        """Seconds until the next waiting delivery is due (``None``: none waits)."""
        with self._lock:
            return max(0.0, self._waiting[0][0] - self._clock()) if self._waiting else None

    def waiting(self) -> list[Delivery]:
        """The deliveries waiting for a place: the worker keeps their entries alive, and hands them
        back when it stops."""
        with self._lock:
            return [item[2] for item in self._waiting]

    def take_all(self) -> list[Delivery]:
        """Empty the gate (the worker is stopping: it hands these back to the queue)."""
        with self._lock:
            taken = [item[2] for item in self._waiting]
            self._waiting.clear()
        return taken

    def renew(self) -> None:
        """Keep the places of running tasks (with the worker's keep-alives)."""
        with self._lock:
            holds = [(key, holder) for holder, key in self._held.items()]
        self._limits.renew(holds)

    def release(self, delivery: Delivery) -> None:
        """Give back the place of a task that ended (no-op for one that held none), and make the
        first delivery waiting here under the same key due at once: the place is likely its."""
        with self._lock:
            key = self._held.pop(_holder(delivery), None)
        if key is None:
            return
        self._limits.release(key, _holder(delivery))
        with self._lock:
            for index, (_, order, waiting) in enumerate(self._waiting):
                if _limit_key(waiting) == key:
                    self._waiting[index] = (self._clock(), order, waiting)
                    heapq.heapify(self._waiting)
                    break

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)


def _holder(delivery: Delivery) -> str:
    return delivery.uid or delivery.entry_id


def _limit_key(delivery: Delivery) -> str | None:
    routing = delivery.envelope.routing
    return routing.limit_key(delivery.envelope.task_id) if routing is not None else None
