"""The fleet as Redis sees it: heartbeats, depth per queue, dead letters (and tending them).

Readable by any process that knows the key prefix: ``graflow-worker status``, a
metrics exporter, an autoscaler. A :class:`FleetView` needs only a client and the keys
of a prefix. :class:`~graflow_redis.queue.DistributedTaskQueue` holds one (and shares it
with its :class:`~graflow_redis.stream_consumer.StreamConsumer`, through which workers
send their heartbeats) and passes its fleet methods on to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis

from graflow_redis import scripts
from graflow_redis.connection import script_pipeline
from graflow_redis.keys import GROUP, Keys
from graflow_redis.lanes import DEPTH

__all__ = ["FleetView"]


class FleetView:
    """Heartbeats in, the live fleet and the queue's state out.

    ::

        fleet = FleetView(redis.Redis(), Keys("graflow"), heartbeat_ttl=10.0)
        fleet.workers()     # [{"worker_id": "worker-1", "running": [...], ...}, ...]
    """

    def __init__(self, client: redis.Redis, keys: Keys, heartbeat_ttl: float) -> None:
        #: The client every read and heartbeat uses.
        self.client = client
        self.keys = keys
        #: Seconds a worker's heartbeat counts as alive.
        self.heartbeat_ttl = heartbeat_ttl
        self._requeue = client.register_script(scripts.REQUEUE)
        self._depth = client.register_script(DEPTH)

    def heartbeat(self, worker_id: str, info: Mapping[str, Any]) -> None:
        """Publish that ``worker_id`` is alive, with what it runs and its counters (JSON-able ``info``)."""
        record = {**info, "worker_id": worker_id, "last_seen": time.time()}
        pipe = self.client.pipeline(transaction=False)
        pipe.set(
            self.keys.worker(worker_id), json.dumps(record, default=str), px=int(self.heartbeat_ttl * 1000)
        )
        pipe.sadd(self.keys.workers, worker_id)
        pipe.execute()

    def remove_worker(self, worker_id: str) -> None:
        """Forget a worker at once (a clean shutdown), instead of waiting for its heartbeat to expire."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.keys.worker(worker_id))
        pipe.srem(self.keys.workers, worker_id)
        pipe.execute()

    def workers(self) -> list[dict[str, Any]]:
        """The live fleet: the last heartbeat of every worker whose heartbeat has not expired."""
        ids = sorted(_str(i) for i in self.client.smembers(self.keys.workers))
        if not ids:
            return []
        records = self.client.mget([self.keys.worker(i) for i in ids])
        alive, gone = [], []
        for worker_id, raw in zip(ids, records, strict=True):
            if raw is None:
                gone.append(worker_id)
                continue
            try:
                alive.append(json.loads(raw))
            except ValueError:
                alive.append({"worker_id": worker_id})
        if gone:
            self.client.srem(self.keys.workers, *gone)
        return alive

    def queues(self) -> list[str]:
        """The queues submitted to or served under this prefix, sorted."""
        return sorted(_str(q) for q in self.client.smembers(self.keys.queues))

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Per queue: ``waiting`` (entries no worker took yet) and ``running`` (held by a worker)."""
        names = self.queues()
        if not names:
            return {}
        pipe = script_pipeline(self.client)
        for name in names:
            self._depth(keys=self.keys.lanes(name), args=[GROUP], client=pipe)
        return {
            name: {"waiting": int(waiting), "running": int(held)}
            for name, (waiting, held) in zip(names, pipe.execute(), strict=True)
        }

    def depth(self) -> int:
        """Entries waiting for a worker, over every queue (on a lane, not yet delivered)."""
        return sum(d["waiting"] for d in self.queue_depths().values())

    def in_flight(self) -> int:
        """Entries delivered to a worker and not yet completed, over every queue."""
        return sum(d["running"] for d in self.queue_depths().values())

    def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters first: ``task``, ``uid``, ``session``, ``reason``, ``consumer``,
        ``entry`` (the original entry id), ``at`` (epoch seconds), ``id`` and ``payload`` (bytes)."""
        letters = []
        found: Any = self.client.xrevrange(self.keys.dead, count=count)
        for dead_id, fields in found:
            letter: dict[str, Any] = {"id": _str(dead_id)}
            for key, value in fields.items():
                name = _str(key)
                letter[name] = value if name == "payload" else _str(value)
            if "at" in letter:
                letter["at"] = float(letter["at"])
            letters.append(letter)
        return letters

    def dead_letter_count(self) -> int:
        """Entries in the dead-letter stream (``XLEN``: no payload is read)."""
        return int(self.client.xlen(self.keys.dead))

    def requeue_dead_letter(self, dead_id: str) -> str | None:
        """Put a dead letter back on the lane it came from, for when what rejected it is fixed (a package
        installed on the workers, a key rotated); ``None`` if there is no such letter (any more).

        It goes back as the same submission (its seal is bound to its uid), with no reply: its
        driver was told of the failure already and waits for it no more, but a durable run
        records the step when a worker completes it, so ``graflow resume`` of that run reuses
        the result.
        """
        letters = self.client.xrange(self.keys.dead, dead_id, dead_id)
        if not letters:
            return None
        fields = letters[0][1] or {}
        uid = _str(fields.get(b"uid", b""))
        lane = _str(fields.get(b"stream") or self.keys.tasks)
        found = self._requeue(keys=[self.keys.dead, lane, self.keys.done(uid)], args=[dead_id, uid])
        return _str(found) if found is not None else None

    def discard_dead_letter(self, dead_id: str) -> bool:
        """Delete a dead letter; whether there was one."""
        return bool(self.client.xdel(self.keys.dead, dead_id))


def _str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
