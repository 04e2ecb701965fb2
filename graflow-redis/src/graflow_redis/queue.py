"""``DistributedTaskQueue``: a reliable task queue for a worker fleet on Redis Streams.

The driver side (the engine's process) puts each task on the stream ``{prefix}:tasks``
and waits for its outcome (:attr:`DistributedTaskQueue.executor`). The worker side reads
entries through the consumer group ``graflow-workers``:

* **at least once**: an entry stays pending until :meth:`~DistributedTaskQueue.complete`
  acknowledges it, after the task ran; an entry whose worker went silent for
  ``visibility_timeout`` seconds is claimed by the next worker that fetches
  (``XAUTOCLAIM``), while :meth:`~DistributedTaskQueue.keep_alive` keeps a long task with
  its live worker;
* **recorded once**: the first completion of a submission sets a marker and pushes the
  outcome in one Lua script; a second run of the same submission records nothing;
* **nothing silent**: an entry that cannot be decoded, verified or unpickled goes to the
  dead-letter stream ``{prefix}:dead`` with the reason, and its driver gets a failure
  (:class:`~graflow_redis.errors.TaskRejectedError`) for that task.

The engine's own ready-queue stays in process: only task *execution* is distributed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, cast

import redis

from graflow.exceptions import ConfigError
from graflow.remote.envelope import TaskEnvelope, TaskOutcome, worker_name
from graflow_redis import scripts
from graflow_redis.connection import block_seconds, client_from_config, describe, register_client
from graflow_redis.driver import FleetExecutor
from graflow_redis.entry import EntryMeta, RejectedEntry, decode_envelope, encode_outcome, read_meta
from graflow_redis.errors import TaskRejectedError
from graflow_redis.fleet import FleetView
from graflow_redis.keys import GROUP, Keys
from graflow_redis.log import emit
from graflow_redis.signing import Signer

__all__ = ["Delivery", "DistributedTaskQueue"]

#: Config keys the queue reads (besides ``redis_client`` / ``redis_url``); others are ignored.
OPTIONS: Final = (
    "key_prefix",
    "visibility_timeout",
    "secret_key",
    "worker_wait_timeout",
    "heartbeat_ttl",
    "max_deliveries",
    "done_ttl",
    "connection_retry_timeout",
)
#: How long a driver's reply list outlives its last outcome (a crashed driver's list expires).
REPLY_TTL: Final = 86_400
#: Approximate cap of the dead-letter stream.
DEAD_LETTER_MAXLEN: Final = 10_000


@dataclass
class Delivery:
    """One task entry handed to a worker."""

    entry_id: str
    envelope: TaskEnvelope
    #: How many times the entry has been delivered (1 on first delivery).
    attempt: int
    received_at: float
    #: The submission id (the same across deliveries of one submission).
    uid: str = ""
    #: The driver's reply list.
    reply: str = ""
    #: The consumer (worker id) the entry was delivered to.
    consumer: str = ""


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class DistributedTaskQueue(FleetView):
    """The Redis queue backend (``queue_backend="redis"``), for drivers and workers alike.

    ``TaskWorker(queue=DistributedTaskQueue(redis_client=redis.Redis(), key_prefix="graflow"))``
    on a worker; ``ExecutionContext.create(..., queue_backend=QueueBackend.REDIS, config=...)``
    builds one on the driver. Drivers and workers agree on ``key_prefix`` only.
    """

    def __init__(
        self,
        redis_client: redis.Redis | None = None,
        *,
        redis_url: str | None = None,
        key_prefix: str = "graflow",
        visibility_timeout: float = 30.0,
        secret_key: str | bytes | None = None,
        worker_wait_timeout: float = 60.0,
        heartbeat_ttl: float = 10.0,
        max_deliveries: int = 10,
        done_ttl: float = 3600.0,
        connection_retry_timeout: float = 60.0,
        **options: Any,
    ) -> None:
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ConfigError(f"key_prefix must be a non-empty string, got {key_prefix!r}")
        if isinstance(max_deliveries, bool) or not isinstance(max_deliveries, int) or max_deliveries < 1:
            raise ConfigError(f"max_deliveries must be an int >= 1, got {max_deliveries!r}")
        config: dict[str, Any] = {"redis_client": redis_client, "redis_url": redis_url}
        #: The client every operation uses (bytes responses).
        self.client = client_from_config(config)
        self.key_prefix = key_prefix
        self.keys = Keys(key_prefix)
        #: Seconds a delivered entry may stay silent before another worker takes it.
        self.visibility_timeout = _positive("visibility_timeout", visibility_timeout)
        #: Seconds a driver waits while no worker is alive before failing the task.
        self.worker_wait_timeout = _positive("worker_wait_timeout", worker_wait_timeout)
        #: Seconds a worker's heartbeat counts as alive.
        self.heartbeat_ttl = _positive("heartbeat_ttl", heartbeat_ttl)
        self.max_deliveries = max_deliveries
        self.done_ttl = int(_positive("done_ttl", done_ttl))
        self.connection_retry_timeout = _positive("connection_retry_timeout", connection_retry_timeout)
        self.signer = Signer.from_config(secret_key)
        #: Where Redis is, for messages (no credentials).
        self.where = describe(self.client)
        self.options = dict(options)
        self._client_ref = register_client(self.client)
        self._ready: deque[str] = deque()
        self._finish = self.client.register_script(scripts.FINISH)
        self._claim = self.client.register_script(scripts.CLAIM)
        self._touch = self.client.register_script(scripts.TOUCH)
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._claim_interval = min(self.visibility_timeout / 4, 1.0)
        self._group_ready = False
        #: Where the run's tasks execute: the worker fleet. Starts no thread until a task is submitted.
        self.executor: FleetExecutor = FleetExecutor(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DistributedTaskQueue:
        """Build from a run's ``config`` (what ``ExecutionContext.create`` passes)."""
        return cls(
            config.get("redis_client"),
            redis_url=config.get("redis_url"),
            **{key: config[key] for key in OPTIONS if key in config},
        )

    # --- the engine's ready-queue (in process) ------------------------------------------

    def enqueue(self, task_id: str) -> None:
        self._ready.append(task_id)

    def dequeue(self) -> str | None:
        ready = self._ready
        return ready.popleft() if ready else None

    def __len__(self) -> int:
        return len(self._ready)

    def clear(self) -> None:
        self._ready.clear()

    # --- driver side ---------------------------------------------------------------------

    def submit(self, envelope: TaskEnvelope) -> Future[TaskOutcome]:
        """Put one task on the stream; the future resolves to its outcome."""
        return self.executor.submit(envelope)

    def close(self) -> None:
        """Stop waiting for outcomes and withdraw tasks no worker has finished (driver side).

        The queue stays usable: a later run on it gets a fresh executor.
        """
        executor, self.executor = self.executor, FleetExecutor(self)
        executor.close()

    # --- worker side ---------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist (idempotent)."""
        try:
            self.client.xgroup_create(self.keys.tasks, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def fetch(self, consumer: str, count: int = 1, block: float = 1.0) -> list[Delivery]:
        """Up to ``count`` entries for ``consumer``: reclaimed ones first, then new ones.

        Waits up to ``block`` seconds for a new entry. Entries that cannot be run are
        dead-lettered here (and reported to their driver), so they are never returned.
        """
        if count < 1:
            return []
        if not self._group_ready:
            self.ensure_group()
        try:
            return self._fetch(consumer, count, block)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream vanished (deleted, or Redis restarted without persistence).
            self.ensure_group()
            return self._fetch(consumer, count, block)

    def _fetch(self, consumer: str, count: int, block: float) -> list[Delivery]:
        raw: list[tuple[str, dict[bytes, bytes], int]] = []
        now = time.monotonic()
        if now >= self._next_claim:
            raw.extend(self._reclaim(consumer, count))
            if self._claim_cursor == "0-0":
                self._next_claim = now + self._claim_interval
        if len(raw) < count:
            wait = None if raw else max(int(block_seconds(self.client, block) * 1000), 1)
            response = self.client.xreadgroup(
                GROUP, consumer, {self.keys.tasks: ">"}, count=count - len(raw), block=wait
            )
            streams = response.items() if isinstance(response, dict) else (response or [])
            for _stream, entries in cast("Any", streams):
                for entry_id, fields in entries:
                    raw.append((_str(entry_id), dict(fields or {}), 1))
        return self._accept(consumer, raw)

    def _reclaim(self, consumer: str, count: int) -> list[tuple[str, dict[bytes, bytes], int]]:
        idle_ms = int(self.visibility_timeout * 1000)
        cursor, entries, _deleted, counts = cast("Any", self._claim)(
            keys=[self.keys.tasks], args=[GROUP, consumer, idle_ms, self._claim_cursor, count]
        )
        self._claim_cursor = _str(cursor)
        claimed = []
        for (entry_id, flat), delivered in zip(entries, counts, strict=False):
            if not flat:  # deleted while pending (Redis 6.2 reports it here)
                self.client.xack(self.keys.tasks, GROUP, entry_id)
                continue
            claimed.append((_str(entry_id), dict(zip(flat[::2], flat[1::2], strict=False)), int(delivered)))
        if claimed:
            emit("info", "tasks_reclaimed", consumer=consumer, entries=[c[0] for c in claimed])
        return claimed

    def _accept(self, consumer: str, raw: list[tuple[str, dict[bytes, bytes], int]]) -> list[Delivery]:
        if not raw:
            return []
        redelivered = [(i, read_meta(eid, f)) for i, (eid, f, attempt) in enumerate(raw) if attempt > 1]
        finished: set[int] = set()
        if redelivered:
            pipe = self.client.pipeline(transaction=False)
            for _, meta in redelivered:
                pipe.exists(self.keys.done(meta.uid or meta.entry_id))
            for (index, meta), done in zip(redelivered, pipe.execute(), strict=True):
                if done:  # its outcome is recorded: a late duplicate, drop it
                    self._settle(meta, b"", has_reply=False)
                    finished.add(index)
        deliveries = []
        now = time.time()
        for index, (entry_id, fields, attempt) in enumerate(raw):
            if index in finished:
                continue
            meta = read_meta(entry_id, fields)
            try:
                if attempt > self.max_deliveries:
                    raise RejectedEntry(
                        f"delivered {attempt} times without completing (each worker holding it died "
                        f"or went silent for {self.visibility_timeout:g}s); giving up after max_deliveries="
                        f"{self.max_deliveries}"
                    )
                envelope = decode_envelope(fields, self.signer)
            except RejectedEntry as rejected:
                self._dead_letter(meta, consumer, rejected.reason, fields.get(b"payload", b""))
                continue
            self._localize_channel(envelope)
            deliveries.append(Delivery(entry_id, envelope, attempt, now, meta.uid, meta.reply, consumer))
        return deliveries

    def _localize_channel(self, envelope: TaskEnvelope) -> None:
        """Let the task reach the run's Redis channel through this worker's own connection.

        The driver's URL may not resolve here (``localhost`` on the driver, a service
        name in a container); a channel that shares the queue's server uses ours.
        """
        spec = envelope.channel_backend
        if spec is not None and spec[0] == "redis" and spec[1].get("shared_with_queue"):
            envelope.channel_backend = ("redis", {**spec[1], "client_ref": self._client_ref})

    def _finish_call(
        self, meta: EntryMeta, reply_item: bytes, *, has_reply: bool, dead: list[Any] | None = None
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the FINISH script for one entry."""
        keys = [
            self.keys.done(meta.uid or meta.entry_id),
            meta.reply or self.keys.reply("none"),
            self.keys.tasks,
            self.keys.dead,
        ]
        args = [
            GROUP,
            meta.entry_id,
            reply_item,
            self.done_ttl,
            REPLY_TTL,
            "1" if has_reply and meta.reply else "0",
            DEAD_LETTER_MAXLEN,
            *(dead or ()),
        ]
        return keys, args

    def _settle(
        self, meta: EntryMeta, reply_item: bytes, *, has_reply: bool, dead: list[Any] | None = None
    ) -> bool:
        keys, args = self._finish_call(meta, reply_item, has_reply=has_reply, dead=dead)
        return bool(self._finish(keys=keys, args=args))

    def _dead_letter(self, meta: EntryMeta, consumer: str, reason: str, payload: bytes) -> None:
        error = TaskRejectedError(meta.task_id, reason, self.keys.dead, consumer)
        outcome = TaskOutcome(
            meta.task_id,
            success=False,
            error=error,
            error_type=type(error).__name__,
            error_message=str(error),
            started_at=time.time(),
            worker=worker_name(),
        )
        reply_item = encode_outcome(meta.uid, outcome, self.signer) if meta.uid else b""
        dead = [
            "task", meta.task_id, "uid", meta.uid, "session", meta.session_id, "reason", reason,
            "consumer", consumer, "entry", meta.entry_id, "at", repr(time.time()), "payload", payload,
        ]  # fmt: skip
        self._settle(meta, reply_item, has_reply=bool(meta.uid), dead=dead)
        emit(
            "warning",
            "task_dead_lettered",
            task_id=meta.task_id,
            entry=meta.entry_id,
            consumer=consumer,
            reason=reason,
            stream=self.keys.dead,
        )

    def complete(self, delivery: Delivery, outcome: TaskOutcome) -> bool:
        """Record ``outcome`` for the delivery's driver and acknowledge the entry.

        Returns False when an outcome of the same submission was recorded before (the
        task ran twice); the entry is acknowledged either way. Raises
        :class:`~graflow.exceptions.TaskSerializationError` when the outcome cannot be pickled.
        """
        item = encode_outcome(delivery.uid, outcome, self.signer)
        meta = EntryMeta(delivery.entry_id, delivery.uid, outcome.task_id, "", delivery.reply)
        return self._settle(meta, item, has_reply=True)

    def complete_many(self, items: list[tuple[Delivery, TaskOutcome]]) -> list[bool]:
        """:meth:`complete` for several deliveries in one round trip (a worker's finished batch).

        Every outcome is encoded first, so an outcome that cannot be pickled raises
        :class:`~graflow.exceptions.TaskSerializationError` before anything is recorded.
        """
        encoded = [
            (EntryMeta(d.entry_id, d.uid, o.task_id, "", d.reply), encode_outcome(d.uid, o, self.signer))
            for d, o in items
        ]
        # EVALSHA straight into the pipeline: a registered script would make redis-py ask
        # SCRIPT EXISTS first, one more round trip per batch.
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            for meta, item in encoded:
                keys, args = self._finish_call(meta, item, has_reply=True)
                pipe.evalsha(self._finish.sha, len(keys), *keys, *args)
            try:
                return [bool(recorded) for recorded in pipe.execute()]
            except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                self._finish.sha = self.client.script_load(scripts.FINISH)
        raise redis.exceptions.NoScriptError("the FINISH script could not be loaded")

    def keep_alive(self, deliveries: list[Delivery]) -> None:
        """Reset the idle time of running entries, so no other worker claims them."""
        self._touch_entries(deliveries, idle_ms=0)

    def release(self, delivery: Delivery) -> None:
        """Hand an unfinished entry back: the next worker that fetches takes it."""
        self._touch_entries([delivery], idle_ms=int(self.visibility_timeout * 1000) * 2 + 1000)
        self._next_claim = 0.0

    def _touch_entries(self, deliveries: list[Delivery], idle_ms: int) -> None:
        by_consumer: dict[str, list[str]] = {}
        for delivery in deliveries:
            by_consumer.setdefault(delivery.consumer, []).append(delivery.entry_id)
        for consumer, ids in by_consumer.items():
            self._touch(keys=[self.keys.tasks], args=[GROUP, consumer, idle_ms, *ids])

    def __repr__(self) -> str:
        return f"<DistributedTaskQueue {self.where} prefix={self.key_prefix!r}>"


def _str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
