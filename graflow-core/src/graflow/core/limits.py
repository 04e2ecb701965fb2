"""Limits on a task's starts, for runs whose tasks start in this process.

``rate_limit`` and ``max_concurrency`` (:mod:`graflow.core.routing`) bound a task's starts
across everything that runs it. A Redis fleet counts them in Redis, for every worker and
driver at once; a run whose tasks start here (the memory queue, a THREADING or
MULTIPROCESSING group driven from here) counts them in this process, which is then
everything that runs them. Counts are shared by every run of the process, per limit key.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from graflow.core.routing import Routing

__all__ = ["LIMITS", "LocalLimits"]


class LocalLimits:
    """Starts per period and tasks at once, per limit key, in this process."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        #: Limit key -> start times within the longest period seen for it, oldest first.
        self._starts: dict[str, deque[float]] = {}
        #: Limit key -> how many of its tasks run now.
        self._running: dict[str, int] = {}

    @contextmanager
    def slot(self, key: str, routing: Routing) -> Iterator[None]:
        """Wait until ``routing``'s limits let one more task of ``key`` start; hold its place while it runs."""
        cap = routing.max_concurrency
        with self._changed:
            while cap is not None and self._running.get(key, 0) >= cap:
                self._changed.wait()
            self._running[key] = self._running.get(key, 0) + 1
        try:
            if routing.rate_limit is not None:
                self._take_start(key, routing.rate_limit.count, routing.rate_limit.period)
            yield
        finally:
            with self._changed:
                self._running[key] -= 1
                self._changed.notify_all()

    def _take_start(self, key: str, count: int, period: float) -> None:
        """Record a start of ``key``, first waiting until fewer than ``count`` fell in the last ``period``."""
        while True:
            with self._changed:
                starts = self._starts.setdefault(key, deque())
                now = time.monotonic()
                while starts and now - starts[0] >= period:
                    starts.popleft()
                if len(starts) < count:
                    starts.append(now)
                    return
                wait = period - (now - starts[-count])
            time.sleep(max(wait, 0.0))


#: The process's counts.
LIMITS: Final = LocalLimits()
