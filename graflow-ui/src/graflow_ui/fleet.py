"""The worker fleet behind a store, when there is one: a Redis store's workers, queue and dead letters.

A local store has no fleet (its runs execute in their driver), so :func:`fleet_for`
returns ``None`` and the fleet pages say so. graflow-redis is imported only when the
store is a Redis store, so the dashboard needs nothing but graflow-core otherwise.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from graflow.state.store import StateStore
from graflow_ui.models import DeadLetter, DepthSample

__all__ = ["Fleet", "fleet_for"]

#: Seconds a worker's heartbeat counts for when read (what graflow-worker publishes with).
HEARTBEAT_TTL = 10.0


class Fleet:
    """Reads and tends the fleet of one Redis key prefix; keeps queue depth over the last minutes."""

    def __init__(self, view: Any, samples: int) -> None:
        #: A :class:`graflow_redis.fleet.FleetView`.
        self.view = view
        self.name: str = view.keys.prefix
        #: Where the entries wait: ten priority lanes per queue (graflow_redis.lanes).
        self.stream: str = view.keys.lane("QUEUE", 0) + "-9"
        self._history: deque[DepthSample] = deque(maxlen=samples)
        self._lock = threading.Lock()

    def workers(self) -> list[dict[str, Any]]:
        return sorted(self.view.workers(), key=lambda w: str(w.get("worker_id", "")))

    def running_tasks(self, run_id: str) -> dict[str, str]:
        """Task id -> worker id of the tasks of ``run_id`` that live workers run now."""
        return {
            str(task.get("task_id")): str(worker.get("worker_id"))
            for worker in self.workers()
            for task in worker.get("running") or ()
            if isinstance(task, dict) and task.get("session_id") == run_id
        }

    def sample(self) -> DepthSample:
        """Read the queue's depth now and keep it in the history."""
        sample = DepthSample(at=time.time(), depth=self.view.depth(), in_flight=self.view.in_flight())
        with self._lock:
            self._history.append(sample)
        return sample

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Per queue of the prefix: entries ``waiting`` and ``running``."""
        return dict(self.view.queue_depths())

    def history(self) -> list[DepthSample]:
        with self._lock:
            return list(self._history)

    def dead_letter_count(self) -> int:
        return int(self.view.dead_letter_count())

    def dead_letters(self, count: int) -> list[DeadLetter]:
        return [_letter(raw) for raw in self.view.dead_letters(count)]

    def requeue(self, dead_id: str) -> str | None:
        return self.view.requeue_dead_letter(dead_id)  # type: ignore[no-any-return]

    def discard(self, dead_id: str) -> bool:
        return bool(self.view.discard_dead_letter(dead_id))


def fleet_for(store: StateStore, samples: int) -> Fleet | None:
    """The fleet of ``store`` if it is a Redis store, else ``None``."""
    try:
        # lazy: only a Redis store has a fleet, and graflow-redis may not be installed
        from graflow_redis.fleet import FleetView
        from graflow_redis.store import RedisStore
    except ImportError:
        return None
    if not isinstance(store, RedisStore):
        return None
    return Fleet(FleetView(store.client, store.keys, HEARTBEAT_TTL), samples)


def _letter(raw: dict[str, Any]) -> DeadLetter:
    payload = raw.get("payload") or b""
    return DeadLetter(
        id=str(raw["id"]),
        task=raw.get("task"),
        run_id=raw.get("session") or None,
        reason=raw.get("reason"),
        worker=raw.get("consumer"),
        at=raw.get("at"),
        payload_size=len(payload),
    )
