"""``Slots``: a worker's capacity, and the deliveries that hold it.

Every part of a worker looks at the same table: the fetcher waits for a free slot, the
task pool and the completer free one, the heartbeat keeps the held deliveries alive,
and a stop waits for the table to empty. A delivery holds its slot from the fetch that
brought it until its outcome was handed to the queue.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graflow_redis.consumer import Delivery

__all__ = ["Held", "Slots"]


@dataclass(frozen=True)
class Held:
    """A delivery in a slot, and since when (epoch seconds)."""

    delivery: Delivery
    since: float


class Slots:
    """``capacity`` slots, each held by at most one delivery (thread-safe)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._held: dict[str, Held] = {}
        self._freed = threading.Condition()

    def __len__(self) -> int:
        return len(self._held)

    def wait_free(self, stopping: threading.Event) -> int:
        """Block until a slot is free; how many are. 0 once ``stopping`` is set (see :meth:`wake`)."""
        with self._freed:
            while len(self._held) >= self.capacity and not stopping.is_set():
                self._freed.wait()
            return 0 if stopping.is_set() else self.capacity - len(self._held)

    def wait_idle(self, stopping: threading.Event) -> bool:
        """Block until no delivery holds a slot; False once ``stopping`` is set (see :meth:`wake`)."""
        with self._freed:
            while self._held and not stopping.is_set():
                self._freed.wait()
            return not stopping.is_set()

    def wake(self) -> None:
        """Wake every waiter to look again (after setting the event it waits with)."""
        with self._freed:
            self._freed.notify_all()

    def hold(self, deliveries: list[Delivery]) -> None:
        """Give each delivery a slot, from now."""
        now = time.time()
        with self._freed:
            for delivery in deliveries:
                self._held[delivery.entry_id] = Held(delivery, now)

    def free(self, delivery: Delivery) -> None:
        """The delivery's task is settled (or was abandoned): its slot is free again."""
        with self._freed:
            self._held.pop(delivery.entry_id, None)
            self._freed.notify_all()

    def held(self) -> list[Held]:
        """What holds a slot now."""
        with self._freed:
            return list(self._held.values())

    def deliveries(self) -> list[Delivery]:
        """The deliveries holding a slot now."""
        with self._freed:
            return [held.delivery for held in self._held.values()]

    def wait_empty(self, deadline: float) -> list[Delivery]:
        """Wait until every slot is free or ``time.monotonic()`` passes ``deadline``; what still holds one."""
        with self._freed:
            while self._held:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._freed.wait(left)
            return [held.delivery for held in self._held.values()]
