"""``StreamConsumer``: the worker's side of the Redis queue, on Redis Streams consumer groups.

A worker serves one or more queues; each queue is ten priority lanes, one stream each
(:mod:`graflow_redis.lanes`), read through the consumer group ``graflow-workers``, higher
priorities first. On every lane:

* **at least once**: an entry stays pending until :meth:`~StreamConsumer.complete`
  acknowledges it, after the task ran; an entry whose worker went silent for
  ``visibility_timeout`` seconds is claimed by the next worker that fetches
  (``XAUTOCLAIM``), while :meth:`~StreamConsumer.keep_alive` keeps a long task with
  its live worker;
* **recorded once**: the first completion of a submission sets a marker and pushes the
  outcome in one Lua script (:data:`~graflow_redis.scripts.FINISH`); a second run of the
  same submission records nothing;
* **nothing silent**: an entry that cannot be decoded, verified or unpickled, or that
  was delivered more than ``max_deliveries`` times, goes to the dead-letter stream
  ``{PREFIX}:dead`` with the reason, and its driver gets a failure
  (:class:`~graflow_redis.errors.TaskRejectedError`) for that task;
* **survives a restart**: a stream or group that vanished (Redis restarted without
  persistence) is created again on the next fetch, and the Lua scripts are reloaded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import redis

from graflow.core.routing import DEFAULT_QUEUE
from graflow.remote.codec import dumps_data
from graflow.remote.envelope import TaskOutcome, failure
from graflow.state.records import Completion
from graflow_redis import lanes, scripts
from graflow_redis.connection import block_seconds, describe, register_client, script_pipeline
from graflow_redis.consumer import Delivery
from graflow_redis.entry import (
    EntryMeta,
    RejectedEntry,
    decode_envelope,
    encode_outcome,
    read_meta,
    rejected_outcome,
)
from graflow_redis.fleet import FleetView
from graflow_redis.keys import GROUP, RUN_KEYS_TTL, Keys, RunKeys
from graflow_redis.lanes import INVERT_EVERY
from graflow_redis.log import emit
from graflow_redis.lost import state_lost
from graflow_redis.signing import Purpose, Sealer, Slot
from graflow_redis.trust import register_sealer

__all__ = ["StreamConsumer"]

#: How long a driver's reply list outlives its last outcome (a crashed driver's list expires).
REPLY_TTL: Final = 86_400
#: What the FINISH script answers for a step whose run lost its state.
RUN_LOST: Final = -1
#: Approximate cap of the dead-letter stream.
DEAD_LETTER_MAXLEN: Final = 10_000

#: An entry as read: its lane, its id, its fields, how often it was delivered.
_RawEntry = tuple[str, str, dict[bytes, bytes], int]


@dataclass(frozen=True)
class _Step:
    """A step of a durable run to record with its outcome: where, which, what it did, its result."""

    run: RunKeys
    key: str
    completion: bytes
    result: bytes


class StreamConsumer:
    """A :class:`~graflow_redis.consumer.Consumer` on the task stream of one key prefix.

    :class:`~graflow_redis.queue.DistributedTaskQueue` builds one from its settings
    (``queue.consumer``) and passes its worker-side methods on to it. A worker process
    needs one: it keeps where its next ``XAUTOCLAIM`` scan starts.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        fleet: FleetView,
        sealer: Sealer | None,
        allow_unsigned: bool,
        visibility_timeout: float,
        max_deliveries: int,
        done_ttl: int,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
    ) -> None:
        self.client = client
        self.keys = keys
        #: The queues this consumer takes entries from, in the order they get their turn.
        self.queues = list(dict.fromkeys(queues)) or [DEFAULT_QUEUE]
        self._queue_lanes = {queue: keys.lanes(queue) for queue in self.queues}
        self._lanes = [key for queue in self.queues for key in self._queue_lanes[queue]]
        #: Where heartbeats go.
        self.fleet = fleet
        #: Verifies task payloads, seals outcomes and step records (``None``: unsigned).
        self.sealer = sealer
        #: What the channel and results store of a task learn about signing from this worker:
        #: its sealer, or that it may read unsigned (it was told so); keys never travel with tasks.
        self._trust: dict[str, Any] = {}
        if sealer is not None:
            self._trust["sealer_ref"] = register_sealer(sealer)
        elif allow_unsigned:
            self._trust["allow_unsigned"] = True
        #: Seconds a delivered entry may stay silent before another worker takes it.
        self.visibility_timeout = visibility_timeout
        #: Deliveries of one entry before it is dead-lettered.
        self.max_deliveries = max_deliveries
        #: Seconds the "outcome recorded" marker of a submission lives.
        self.done_ttl = done_ttl
        self._client_ref = register_client(client)
        self._finish = client.register_script(scripts.FINISH)
        self._claim = client.register_script(lanes.CLAIM)
        self._fetch_lanes = client.register_script(lanes.FETCH)
        self._touch = client.register_script(scripts.TOUCH)
        self._claim_cursors: dict[str, str] = {}
        self._fetches = 0
        self._next_claim = 0.0
        self._claim_interval = min(visibility_timeout / 4, 1.0)
        self._group_ready = False

    @property
    def heartbeat_ttl(self) -> float:
        """Seconds a worker's heartbeat counts as alive (the worker beats well within it)."""
        return self.fleet.heartbeat_ttl

    # --- taking entries --------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the lanes of the served queues and their consumer group where missing (idempotent),
        and list the queues in the prefix's queue set (what ``status`` reports on)."""
        pipe = self.client.pipeline(transaction=False)
        for key in self._lanes:
            pipe.xgroup_create(key, GROUP, id="0", mkstream=True)
        for answer in pipe.execute(raise_on_error=False):
            if isinstance(answer, redis.ResponseError) and "BUSYGROUP" not in str(answer):
                raise answer
        self.client.sadd(self.keys.queues, *self.queues)
        self._group_ready = True

    def fetch(self, consumer: str, count: int = 1, block: float = 1.0) -> list[Delivery]:
        """Up to ``count`` entries for ``consumer``: one entry reclaimed from a silent worker
        (alone, so that it can run alone), else new ones.

        New entries come highest priority first (:data:`~graflow_redis.lanes.FETCH`); when
        every served lane is empty it waits up to ``block`` seconds for one. Entries that
        cannot be run are dead-lettered here (and reported to their driver), so they are
        never returned.
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
            # A lane vanished (deleted, or Redis restarted without persistence).
            self.ensure_group()
            return self._fetch(consumer, count, block)

    def _fetch(self, consumer: str, count: int, block: float) -> list[Delivery]:
        now = time.monotonic()
        if now >= self._next_claim:
            # One at a time, and alone: an entry whose holder died may be what killed it, and
            # a worker runs such a suspect with nothing else (graflow-worker's isolation).
            raw = self._reclaim(consumer, 1)
            if all(cursor == "0-0" for cursor in self._claim_cursors.values()):
                self._next_claim = now + self._claim_interval
            if raw:
                return self._accept(consumer, raw)
        raw = self._take_new(consumer, count)
        if not raw:
            raw = self._wait_new(consumer, count, block)
        return self._accept(consumer, raw)

    def _take_new(self, consumer: str, count: int) -> list[_RawEntry]:
        """New entries of the served queues, each queue's lanes highest first, queues in turn."""
        queues, inverted = self._turn()
        raw: list[_RawEntry] = []
        for queue in queues:
            want = count - len(raw)
            if want <= 0:
                break
            flat = cast("Any", self._fetch_lanes)(
                keys=self._queue_lanes[queue], args=[GROUP, consumer, want, inverted]
            )
            raw.extend(_taken(flat))
        return raw

    def _turn(self) -> tuple[list[str], str]:
        """The served queues in the order this fetch visits them, and whether it reads lanes lowest first."""
        self._fetches += 1
        start = self._fetches % len(self.queues)
        inverted = "1" if self._fetches % INVERT_EVERY == 0 else "0"
        return self.queues[start:] + self.queues[:start], inverted

    def _wait_new(self, consumer: str, count: int, block: float) -> list[_RawEntry]:
        """Wait up to ``block`` seconds for an entry on any served lane (every lane empty now)."""
        wait = max(int(block_seconds(self.client, block) * 1000), 1)
        response = self.client.xreadgroup(
            GROUP, consumer, dict.fromkeys(self._lanes, ">"), count=count, block=wait
        )
        streams = response.items() if isinstance(response, dict) else (response or [])
        raw: list[_RawEntry] = []
        for stream, entries in cast("Any", streams):
            for entry_id, fields in entries:
                raw.append((_str(stream), _str(entry_id), dict(fields or {}), 1))
                if len(raw) >= count:
                    return raw
        return raw

    def _reclaim(self, consumer: str, count: int) -> list[_RawEntry]:
        """Entries whose holder went silent for the visibility timeout, highest lanes first."""
        idle_ms = int(self.visibility_timeout * 1000)
        claimed: list[_RawEntry] = []
        for queue in self.queues:
            want = count - len(claimed)
            if want <= 0:
                break
            keys = self._queue_lanes[queue]
            cursors = [self._claim_cursors.get(key, "0-0") for key in keys]
            answers = cast("Any", self._claim)(keys=keys, args=[GROUP, consumer, idle_ms, want, *cursors])
            for key, (cursor, entries, counts) in zip(keys, answers, strict=True):
                self._claim_cursors[key] = _str(cursor)
                for (entry_id, flat), delivered in zip(entries, counts, strict=False):
                    if not flat:  # deleted while pending (Redis 6.2 reports it here)
                        self.client.xack(key, GROUP, entry_id)
                        continue
                    claimed.append((key, _str(entry_id), _pairs(flat), int(delivered)))
        if claimed:
            emit("info", "tasks_reclaimed", consumer=consumer, entries=[c[1] for c in claimed])
        return claimed

    def _accept(self, consumer: str, raw: list[_RawEntry]) -> list[Delivery]:
        """Deliveries for the entries worth running; the rest are dropped or dead-lettered."""
        if not raw:
            return []
        redelivered = [
            (i, read_meta(eid, f, stream)) for i, (stream, eid, f, attempt) in enumerate(raw) if attempt > 1
        ]
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
        for index, (stream, entry_id, fields, attempt) in enumerate(raw):
            if index in finished:
                continue
            meta = read_meta(entry_id, fields, stream)
            try:
                if attempt > self.max_deliveries:
                    raise RejectedEntry(
                        f"started {attempt - 1} times without completing (each worker holding it died "
                        f"or went silent for {self.visibility_timeout:g}s, the last ones running it "
                        f"alone); max_deliveries={self.max_deliveries}"
                    )
                envelope = decode_envelope(meta, fields, self.sealer, self.keys.prefix)
            except RejectedEntry as rejected:
                self._dead_letter(meta, consumer, rejected.reason, fields)
                continue
            envelope.channel_backend = self._localize(envelope.channel_backend, meta.uid or entry_id)
            envelope.results_store = self._localize(envelope.results_store)
            deliveries.append(
                Delivery(
                    entry_id, envelope, attempt, now, meta.uid, meta.reply, consumer, meta.session_id, stream
                )
            )
        return deliveries

    def _localize(
        self, spec: tuple[str, dict[str, Any]] | None, submission: str | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """Let the task reach the run's Redis channel or results as this worker does.

        Through this worker's own connection when it shares the queue's server (the
        driver's URL may not resolve here: ``localhost`` on the driver, a service name
        in a container), and with this worker's signing settings. A channel is opened for
        the ``submission``, so its writes count once however often it runs.
        """
        if spec is None or spec[0] != "redis":
            return spec
        config = {**spec[1], **self._trust}
        if submission:
            config["submission"] = submission
        if config.get("shared_with_queue"):
            config["client_ref"] = self._client_ref
        return ("redis", config)

    # --- settling entries ------------------------------------------------------------------

    def complete(self, delivery: Delivery, outcome: TaskOutcome) -> bool:
        """Record ``outcome`` for the delivery's driver and acknowledge the entry.

        Returns False when an outcome of the same submission was recorded before (the
        task ran twice); the entry is acknowledged either way. An outcome that cannot be
        pickled is recorded as the failure saying so (see :func:`graflow.remote.codec.dumps_outcome`).
        A successful step of a durable run is recorded in the run's state in the same
        script, so it is never lost between the worker and a driver that died.
        """
        return self.complete_many([(delivery, outcome)])[0]

    def complete_and_take(
        self, items: Sequence[tuple[Delivery, TaskOutcome]], consumer: str, count: int
    ) -> tuple[list[bool], list[Delivery]]:
        """:meth:`complete_many`, and up to ``count`` new entries for ``consumer`` in the same round trip.

        A busy worker replaces the tasks it finished without a fetch of its own. It takes new
        entries only (one queue, in turn, highest lane first); when a scan for entries of silent
        workers is due, it takes none, so that the worker's next fetch reclaims them.
        """
        if count < 1 or time.monotonic() >= self._next_claim or not self._group_ready:
            return self.complete_many(items), []
        queues, inverted = self._turn()
        take = [*self._queue_lanes[queues[0]], GROUP, consumer, count, inverted]
        recorded, flat = self._settle_batch(items, take)
        return recorded, self._accept(consumer, _taken(flat))

    def complete_many(self, items: Sequence[tuple[Delivery, TaskOutcome]]) -> list[bool]:
        """:meth:`complete` for several deliveries in one round trip (a worker's finished batch)."""
        return self._settle_batch(items)[0]

    def _settle_batch(
        self, items: Sequence[tuple[Delivery, TaskOutcome]], take: list[Any] | None = None
    ) -> tuple[list[bool], Any]:
        """Record the batch's outcomes (and run ``take``, FETCH's keys and arguments, in the same
        round trip); whether each was recorded first, and what FETCH returned."""
        answers, flat = self._run_finish([self._finish_call(*self._encode(d, o)) for d, o in items], take)
        lost = [index for index, answer in enumerate(answers) if answer == RUN_LOST]
        if lost:
            # The step's run lost its state: its driver gets that failure, not a success to build on.
            retold, _ = self._run_finish(
                [self._finish_call(*self._encode(*self._lost(items[i]))) for i in lost]
            )
            for index, answer in zip(lost, retold, strict=True):
                answers[index] = answer
        return [answer == 1 for answer in answers], flat

    def _run_finish(
        self, calls: list[tuple[list[str], list[Any]]], take: list[Any] | None = None
    ) -> tuple[list[int], Any]:
        """The FINISH script's answer for each call, and FETCH's for ``take``, in one round trip."""
        # EVALSHA straight into the pipeline: a registered script would make redis-py ask
        # SCRIPT EXISTS first, one more round trip per batch.
        for _ in range(2):
            try:
                pipe = script_pipeline(self.client)
                for keys, args in calls:
                    pipe.evalsha(self._finish.sha, len(keys), *keys, *args)
                if take is not None:
                    pipe.evalsha(self._fetch_lanes.sha, len(lanes.LANES), *take)
                answers = pipe.execute()
            except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                self._finish.sha = self.client.script_load(scripts.FINISH)
                self._fetch_lanes.sha = self.client.script_load(lanes.FETCH)
                continue
            flat = answers.pop() if take is not None else None
            return [int(answer) for answer in answers], flat
        raise redis.exceptions.NoScriptError("the FINISH script could not be loaded")

    def _lost(self, item: tuple[Delivery, TaskOutcome]) -> tuple[Delivery, TaskOutcome]:
        """``item`` with its outcome replaced by the failure saying its run's state is gone."""
        delivery, outcome = item
        run_id = delivery.envelope.session_id
        error = state_lost(run_id, describe(self.client), task_id=outcome.task_id)
        emit("error", "run_state_lost", run_id=run_id, task_id=outcome.task_id)
        return delivery, failure(outcome.task_id, error, outcome.started_at)

    def _encode(self, delivery: Delivery, outcome: TaskOutcome) -> tuple[EntryMeta, bytes, _Step | None]:
        """The reply for ``outcome`` and, for a successful step of a durable run, its record."""
        step = delivery.envelope.step
        outcome.step_recorded = step is not None and outcome.success
        meta = EntryMeta(
            delivery.entry_id,
            delivery.uid,
            outcome.task_id,
            delivery.session_id,
            delivery.reply,
            delivery.stream or self.keys.tasks,
        )
        item = encode_outcome(meta, outcome, self.sealer, self.keys.prefix)  # may turn it into a failure
        record = None
        if step is not None and outcome.step_recorded:
            completion = Completion(
                step,
                outcome.task_id,
                outcome.requests,
                worker=outcome.worker,
                duration=outcome.duration,
                attempts=delivery.envelope.attempt,
            )
            run_id = delivery.envelope.session_id
            blob, result = dumps_data(completion), dumps_data(outcome.result)
            if self.sealer is not None:
                prefix = self.keys.prefix
                blob = self.sealer.seal(Slot(Purpose.STEP, prefix, run_id, step), blob)
                result = self.sealer.seal(Slot(Purpose.RESULT, prefix, run_id, outcome.task_id), result)
            record = _Step(self.keys.run(run_id), step, blob, result)
        return meta, item, record

    def _finish_call(
        self,
        meta: EntryMeta,
        reply_item: bytes,
        step: _Step | None = None,
        *,
        has_reply: bool = True,
        dead: list[Any] | None = None,
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the FINISH script for one entry."""
        run = step.run if step is not None else self.keys.run("none")
        keys = [
            self.keys.done(meta.uid or meta.entry_id),
            meta.reply or self.keys.reply("none"),
            meta.stream or self.keys.tasks,
            self.keys.dead,
            run.steps,
            run.order,
            run.done,
            run.results,
            run.plan,
        ]
        args = [
            GROUP,
            meta.entry_id,
            reply_item,
            self.done_ttl,
            REPLY_TTL,
            "1" if has_reply and meta.reply else "0",
            DEAD_LETTER_MAXLEN,
            step.key if step is not None else "",
            step.completion if step is not None else b"",
            meta.task_id,
            step.result if step is not None else b"",
            "1" if step is not None else "0",
            RUN_KEYS_TTL,
            *(dead or ()),
        ]
        return keys, args

    def _settle(
        self, meta: EntryMeta, reply_item: bytes, *, has_reply: bool, dead: list[Any] | None = None
    ) -> bool:
        keys, args = self._finish_call(meta, reply_item, has_reply=has_reply, dead=dead)
        return int(self._finish(keys=keys, args=args)) == 1

    def _dead_letter(
        self, meta: EntryMeta, consumer: str, reason: str, fields: Mapping[bytes, bytes]
    ) -> None:
        outcome = rejected_outcome(meta.task_id, reason, self.keys.dead, consumer)
        reply_item = encode_outcome(meta, outcome, self.sealer, self.keys.prefix) if meta.uid else b""
        dead = [
            "task", meta.task_id, "uid", meta.uid, "session", meta.session_id, "reason", reason,
            "consumer", consumer, "entry", meta.entry_id, "stream", meta.stream, "at", repr(time.time()),
            "payload", fields.get(b"payload", b""),
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

    # --- holding entries -------------------------------------------------------------------

    def keep_alive(self, deliveries: Sequence[Delivery]) -> None:
        """Reset the idle time of running entries, so no other worker claims them."""
        self._touch_entries(deliveries, idle_ms=0)

    def release(self, delivery: Delivery) -> None:
        """Hand an unfinished entry back: the next worker that fetches takes it."""
        self._touch_entries([delivery], idle_ms=int(self.visibility_timeout * 1000) * 2 + 1000)
        self._next_claim = 0.0

    def _touch_entries(self, deliveries: Sequence[Delivery], idle_ms: int) -> None:
        held: dict[tuple[str, str], list[str]] = {}
        for delivery in deliveries:
            held.setdefault((delivery.stream or self.keys.tasks, delivery.consumer), []).append(
                delivery.entry_id
            )
        for (stream, consumer), ids in held.items():
            self._touch(keys=[stream], args=[GROUP, consumer, idle_ms, *ids])

    # --- the fleet -------------------------------------------------------------------------

    def heartbeat(self, worker_id: str, info: Mapping[str, Any]) -> None:
        """Publish that ``worker_id`` is alive (see :meth:`~graflow_redis.fleet.FleetView.heartbeat`)."""
        self.fleet.heartbeat(worker_id, info)

    def remove_worker(self, worker_id: str) -> None:
        """Take ``worker_id`` out of the fleet now (see :meth:`~graflow_redis.fleet.FleetView.remove_worker`)."""
        self.fleet.remove_worker(worker_id)

    def __repr__(self) -> str:
        return f"<StreamConsumer {self.keys.prefix!r} queues={self.queues!r} group={GROUP!r}>"


def _str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _taken(flat: Sequence[Any]) -> list[_RawEntry]:
    """The entries FETCH returned (a flat list: lane, entry id, fields, lane, ...), first deliveries all."""
    return [(_str(flat[i]), _str(flat[i + 1]), _pairs(flat[i + 2]), 1) for i in range(0, len(flat), 3)]


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """An entry's fields from a script's flat ``[field, value, ...]`` list."""
    return dict(zip(flat[::2], flat[1::2], strict=False))
