"""A supervisor for end-to-end fault tests: keeps N ``graflow-worker`` processes running, as systemd would."""

from __future__ import annotations

import random
import signal
import threading
from typing import Any

from tests.support.fleet import Fleet, WorkerProcess

__all__ = ["Supervisor"]


class Supervisor:
    """Starts ``count`` workers with ``args`` and a new one whenever one exits."""

    def __init__(self, fleet: Fleet, count: int, *args: str) -> None:
        self.fleet = fleet
        self.args = args
        self.restarts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.workers = [self._start() for _ in range(count)]
        fleet.wait_live(*[w.worker_id for w in self.workers])
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _start(self) -> WorkerProcess:
        return self.fleet.start(None, *self.args, wait=False)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                for index, worker in enumerate(self.workers):
                    if worker.process.poll() is not None:
                        self.restarts += 1
                        self.workers[index] = self._start()

    def kill_one(self, rng: random.Random) -> Any:
        """SIGKILL one running worker, chosen by ``rng``; the supervisor replaces it."""
        with self._lock:
            alive = [w for w in self.workers if w.process.poll() is None]
            victim = rng.choice(alive) if alive else None
        if victim is not None:
            victim.signal(signal.SIGKILL)
        return victim

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
