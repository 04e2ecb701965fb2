"""``RedisStore``: the state of Redis runs, in Redis, under the run's key prefix.

Every run on the Redis queue is durable here (SPEC 16). A run's keys (see
:class:`~graflow_redis.keys.RunKeys`) hold its plan, its info, its lease, one completion
per step and the latest result of each task. A worker records the step it ran in the
same Lua script that records its outcome (:data:`~graflow_redis.scripts.FINISH`), so a
step is never lost between a worker and a driver that died; the driver records the
steps it runs itself (groups, tasks of handlers that stay in the driver).

Results are read when asked: :meth:`RedisStore.results_view` is a mapping over the
run's results hash (cached per process), used by the driver and, through the
envelope's ``results_store``, by the task on a worker, so nothing ships every earlier
result with each task. The channel lives in Redis already (:class:`~graflow_redis.channel.RedisChannel`).

With a secret key, the plan, every step and every result are sealed for their place
(:mod:`graflow_redis.signing`) and verified before they are unpickled, whoever wrote them
(this store's journal, or a worker's FINISH script); without one, a store on a Redis that
is not on loopback is refused (:mod:`graflow_redis.trust`). The key itself is never stored:
it is not part of the run's config kept with its plan.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import asdict
from typing import Any, Final

import redis

from graflow import settings
from graflow.exceptions import (
    RunInUseError,
    RunNotFoundError,
    StateStoreError,
)
from graflow.remote.codec import ByValue, dumps_by_value, loads, storable
from graflow.state.lease import LEASE_SECONDS, holder_alive, this_holder
from graflow.state.records import Completion, Failure, RunInfo, RunStatus
from graflow.state.store import RunJournal, RunPlan, SavedRun, StateStore
from graflow_redis.channel import expire_channel
from graflow_redis.connection import (
    CLIENT_KEYS,
    CONNECTION_ERRORS,
    call_with_retry,
    client_from_config,
    describe,
    url_of,
)
from graflow_redis.errors import (
    RedisUnavailableError,
    SignatureError,
    StateUnavailableError,
    UntrustedStateError,
)
from graflow_redis.feedback import RedisFeedback
from graflow_redis.keys import RUN_KEYS_TTL, Keys, RunKeys
from graflow_redis.log import emit
from graflow_redis.lost import state_lost
from graflow_redis.outage import DEFAULT_RETRY_TIMEOUT, rides_out
from graflow_redis.refusal import refusal
from graflow_redis.schedules import RedisSchedules
from graflow_redis.signing import ENV_VAR, KeySpec, Purpose, Sealer, Slot, is_sealed
from graflow_redis.trust import sealer_for, trust_options

__all__ = ["DEFAULT_RUN_TTL", "RedisResults", "RedisStore", "load_record"]

#: Seconds the first write of a run is retried: a wrong URL fails fast.
FIRST_CONTACT_TIMEOUT: Final = 5.0
#: Seconds a finished run is kept (``config["run_ttl"]``).
DEFAULT_RUN_TTL: Final = 7 * 24 * 3600
#: Renew a lease only if we hold it.  KEYS: lease.  ARGV: holder, lease_ms.
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_LATER: Final = ByValue("the state store", advice="or return plain data from the task")
#: Settings that belong to the process, never to the run kept in Redis (keys, and the choice to go unsigned).
_PRIVATE_SETTINGS: Final = frozenset({"secret_key", "allow_unsigned", "sealer_ref", "client_ref"})


class RedisStore(StateStore):
    """Runs of one key prefix on one Redis (``state_store="redis"``, chosen by every Redis run)."""

    durable = True
    keeps_channel = False
    records_remote_steps = True

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str = "graflow",
        *,
        run_ttl: float = DEFAULT_RUN_TTL,
        connection_retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        secret_key: KeySpec | Sealer | None = None,
        allow_unsigned: bool | None = None,
    ) -> None:
        key_prefix = settings.key_prefix({"key_prefix": key_prefix})
        self.client = client
        self.key_prefix = key_prefix
        self.keys = Keys(key_prefix)
        self.run_ttl = int(settings.seconds("run_ttl", run_ttl))
        #: Seconds a write of a run's state is retried while Redis is unreachable (as the queue's).
        self.retry_timeout = settings.seconds("connection_retry_timeout", connection_retry_timeout)
        #: Seals the plan, steps and results written here and verifies them when read (``None``: unsigned).
        self.sealer = sealer_for(client, secret_key, allow_unsigned, key_prefix=key_prefix)
        self._renew = client.register_script(_RENEW)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RedisStore:
        client = client_from_config({key: config.get(key) for key in CLIENT_KEYS})
        return cls(
            client,
            settings.key_prefix(config),
            run_ttl=config.get("run_ttl", DEFAULT_RUN_TTL),
            connection_retry_timeout=config.get("connection_retry_timeout", DEFAULT_RETRY_TIMEOUT),
            **trust_options(config),
        )

    @property
    def where(self) -> str:
        return f"Redis at {describe(self.client)} (key prefix {self.key_prefix!r})"

    def remote_spec(self) -> tuple[str, dict[str, Any]]:
        """Workers read results through their own connection when it is the queue's server."""
        return (
            "redis",
            {
                "redis_url": url_of(self.client),
                "key_prefix": self.key_prefix,
                "connection_retry_timeout": self.retry_timeout,
                "shared_with_queue": True,
            },
        )

    def results_view(self, run_id: str) -> MutableMapping[str, Any]:
        return RedisResults(self.client, self.keys, run_id, self.sealer, retry_timeout=self.retry_timeout)

    def schedules(self) -> RedisSchedules:
        return RedisSchedules(self.client, self.keys, self.sealer)

    def feedback(self) -> RedisFeedback:
        return RedisFeedback(self.client, self.keys, retry_timeout=self.retry_timeout, sealer=self.sealer)

    # --- writing ----------------------------------------------------------------------------

    def start_run(self, plan: RunPlan) -> RunJournal:
        plan.config = storable({k: v for k, v in plan.config.items() if k not in _PRIVATE_SETTINGS})
        run = self.keys.run(plan.run_id)
        blob = dumps_by_value(plan, _LATER, what=f"the plan of run {plan.run_id!r}")
        blob = self.seal_record(Purpose.PLAN, plan.run_id, "", blob)
        now = time.time()
        info = {
            "workflow": plan.workflow,
            "status": str(RunStatus.RUNNING),
            "started_at": repr(now),
            "tasks_total": sum(1 for t in plan.graph.tasks.values() if t.kind == "task"),
            "queue_backend": plan.queue_backend,
            "channel_backend": plan.channel_backend,
        }
        with self._writing(plan.run_id, starting=True) as pipe:
            pipe.hset(run.info, mapping=info)
            pipe.set(run.plan, blob)
            pipe.set(run.lease, this_holder(), px=int(LEASE_SECONDS * 1000))
            pipe.zadd(self.keys.runs, {plan.run_id: now})
            for key in (run.info, run.plan):
                pipe.expire(key, RUN_KEYS_TTL)
        return _RedisJournal(self, plan.run_id, _group_ids(plan))

    def seal_record(self, purpose: Purpose, run_id: str, name: str, blob: bytes) -> bytes:
        """``blob`` sealed for its place in ``run_id`` (as it is, without a key)."""
        if self.sealer is None:
            return blob
        return self.sealer.seal(Slot(purpose, self.key_prefix, run_id, name), blob)

    def _writing(self, run_id: str, *, starting: bool = False) -> _Writing:
        return _Writing(self, run_id, starting=starting)

    def finish_run(self, run_id: str, status: RunStatus, error: str | None) -> None:
        run = self.keys.run(run_id)
        with self._writing(run_id) as pipe:
            fields = {"status": str(status), "error": error or ""}
            if status is not RunStatus.SUSPENDED:
                fields["finished_at"] = repr(time.time())
            pipe.hset(run.info, mapping=fields)
            pipe.delete(run.lease)
            ttl = RUN_KEYS_TTL if status is RunStatus.SUSPENDED else self.run_ttl
            for key in run.all():
                pipe.expire(key, ttl)
        try:
            expire_channel(self.client, self.key_prefix, run_id, ttl)
        except redis.RedisError as exc:  # its keys still expire RUN_KEYS_TTL after their last write
            emit("warning", "channel_expiry_not_set", run_id=run_id, error=f"{type(exc).__name__}: {exc}")

    def renew_lease(self, run_id: str) -> bool:
        run = self.keys.run(run_id)
        return bool(self._renew(keys=[run.lease], args=[this_holder(), int(LEASE_SECONDS * 1000)]))

    # --- reading ----------------------------------------------------------------------------

    def run(self, run_id: str) -> RunInfo:
        info = self._info([run_id])[0]
        if info is None:
            raise RunNotFoundError(run_id, self.where)
        return info

    def _info(self, run_ids: list[str]) -> list[RunInfo | None]:
        pipe = self.client.pipeline(transaction=False)
        for run_id in run_ids:
            run = self.keys.run(run_id)
            pipe.hgetall(run.info)
            pipe.scard(run.done)
            pipe.get(run.lease)
        answers = self._read(pipe.execute)
        infos: list[RunInfo | None] = []
        for index, run_id in enumerate(run_ids):
            raw, done, holder = answers[3 * index : 3 * index + 3]
            infos.append(_run_info(run_id, raw, int(done), holder) if raw else None)
        return infos

    def runs(
        self, status: RunStatus | None = None, workflow: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        run_ids = [_text(r) for r in self._read(lambda: self.client.zrevrange(self.keys.runs, 0, -1))]
        found, gone = [], []
        for run_id, info in zip(run_ids, self._info(run_ids) if run_ids else [], strict=True):
            if info is None:
                gone.append(run_id)  # expired: forget it in the index too
            elif (status is None or info.status is status) and (
                workflow is None or info.workflow == workflow
            ):
                found.append(info)
        if gone:
            self.client.zrem(self.keys.runs, *gone)
        return found[:limit] if limit is not None else found

    def runs_page(
        self,
        status: RunStatus | None = None,
        workflow: str | None = None,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[RunInfo], int]:
        """Unfiltered, a page is read from the index (sorted by start); a filter reads every run's info."""
        if status is not None or workflow is not None:
            return super().runs_page(status, workflow, offset=offset, limit=limit)
        index = self.keys.runs
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(index)
        pipe.zrevrange(index, offset, offset + limit - 1)
        total, page = self._read(pipe.execute)
        run_ids = [_text(r) for r in page]
        infos = self._info(run_ids) if run_ids else []
        gone = [run_id for run_id, info in zip(run_ids, infos, strict=True) if info is None]
        if gone:  # expired since: forget them in the index too, and count them no more
            self.client.zrem(index, *gone)
        return [info for info in infos if info is not None], int(total) - len(gone)

    def failures(self, run_id: str) -> list[Failure]:
        raw = self._read(lambda: self.client.lrange(self.keys.run(run_id).failures, 0, -1))
        return [Failure(**json.loads(item)) for item in raw]

    def completions(self, run_id: str) -> list[Completion]:
        run = self.keys.run(run_id)
        order = [_text(k) for k in self._read(lambda: self.client.lrange(run.order, 0, -1))]
        if not order:
            self.run(run_id)  # unknown run: RunNotFoundError
            return []
        blobs = self._read(lambda: self.client.hmget(run.steps, order))
        return [
            load_record(blob, Slot(Purpose.STEP, self.key_prefix, run_id, key), self.sealer)
            for key, blob in zip(order, blobs, strict=True)
            if blob is not None
        ]

    def load(self, run_id: str) -> SavedRun:
        info = self.run(run_id)
        blob = self._read(lambda: self.client.get(self.keys.run(run_id).plan))
        if blob is None:
            raise RunNotFoundError(run_id, self.where)
        plan: RunPlan = load_record(blob, Slot(Purpose.PLAN, self.key_prefix, run_id), self.sealer)
        return SavedRun(plan, info, self.completions(run_id), self.results_view(run_id), None)

    def resume_run(self, run_id: str) -> tuple[SavedRun, RunJournal]:
        run = self.keys.run(run_id)
        me = this_holder()
        holder = self._read(lambda: self.client.get(run.lease))
        if holder is not None and _text(holder) != me and holder_alive(_text(holder)):
            left = self.client.pttl(run.lease)
            raise RunInUseError(run_id, _text(holder), max(int(left), 0) / 1000)
        saved = self.load(run_id)
        with self._writing(run_id) as pipe:
            pipe.set(run.lease, me, px=int(LEASE_SECONDS * 1000))
            pipe.hset(run.info, mapping={"status": str(RunStatus.RUNNING), "error": ""})
            pipe.hdel(run.info, "finished_at")
            for key in run.all():
                pipe.expire(key, RUN_KEYS_TTL)
        return saved, _RedisJournal(self, run_id, _group_ids(saved.plan))

    def _read(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (*CONNECTION_ERRORS, redis.ResponseError) as exc:
            raise StateStoreError(
                f"the run state in {self.where} cannot be read ({type(exc).__name__}: {exc}); "
                "check that Redis is reachable and try again"
            ) from exc

    def close(self) -> None:
        pass  # the client's pool is shared per URL (graflow_redis.connection)


class _Writing:
    """A MULTI/EXEC pipeline, retried while Redis is unreachable, whose failure names the run to resume."""

    def __init__(self, store: RedisStore, run_id: str, *, starting: bool = False) -> None:
        self._store = store
        self._run_id = run_id
        self._starting = starting
        self._pipe = store.client.pipeline(transaction=True)

    def __enter__(self) -> Any:
        return self._pipe

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            return
        store, run_id = self._store, self._run_id
        later = (
            ""
            if self._starting
            else (
                f"; once Redis is back, `graflow resume {run_id} --redis-url ... --key-prefix {store.key_prefix}`"
            )
        )
        try:
            call_with_retry(
                self._pipe.execute,
                what=f"{'starting' if self._starting else 'recording the state of'} run {run_id!r}",
                where=describe(store.client),
                timeout=FIRST_CONTACT_TIMEOUT if self._starting else store.retry_timeout,
            )
        except RedisUnavailableError as exc:
            raise StateUnavailableError(f"{exc}{later}") from exc
        except redis.ResponseError as exc:
            refused = refusal(
                exc,
                where=describe(store.client),
                doing=f"recording the state of run {run_id!r}",
                key_prefix=store.key_prefix,
            )
            if refused is not None:
                raise refused from exc
            raise StateStoreError(
                f"run {run_id!r} stopped: Redis refused to store its state ({exc}); fix that (memory, "
                f"permissions){later}"
            ) from exc


class _RedisJournal(RunJournal):
    """The driver's writes of one run, and its lease, renewed in the background."""

    def __init__(self, store: RedisStore, run_id: str, groups: set[str]) -> None:
        self.run_id = run_id
        self._store = store
        #: Group ids: their steps are recorded, but a group is not a task to count as done.
        self._groups = groups
        self._run: RunKeys = store.keys.run(run_id)
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"graflow-lease-{run_id[:8]}", daemon=True)
        self._renewer.start()

    def record(self, completion: Completion, result: Any, *, has_result: bool = True) -> None:
        tid, store = completion.task_id, self._store
        blob = dumps_by_value(completion, _LATER, what=f"what task {tid!r} asked for")
        blob = store.seal_record(Purpose.STEP, self.run_id, completion.key, blob)
        value = None
        if has_result:
            value = dumps_by_value(result, _LATER, what=f"the result of task {tid!r}")
            value = store.seal_record(Purpose.RESULT, self.run_id, tid, value)
        run = self._run
        with self._store._writing(self.run_id) as pipe:  # noqa: SLF001 - the journal is the store's own
            pipe.hset(run.steps, completion.key, blob)
            pipe.rpush(run.order, completion.key)
            if tid not in self._groups:
                pipe.sadd(run.done, tid)
            if value is not None:
                pipe.hset(run.results, tid, value)
            for key in (run.steps, run.order, run.done, run.results):
                pipe.expire(key, RUN_KEYS_TTL)

    def record_failure(self, failure: Failure) -> None:
        run = self._run
        try:
            with self._store._writing(self.run_id) as pipe:  # noqa: SLF001 - the journal is the store's own
                pipe.rpush(run.failures, json.dumps(asdict(failure)))
                pipe.expire(run.failures, RUN_KEYS_TTL)
        except StateStoreError as exc:  # the task's own error is what the run reports
            emit("warning", "failure_not_recorded", run_id=self.run_id, error=str(exc))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        self.close()
        self._store.finish_run(self.run_id, status, error)

    def close(self) -> None:
        self._stop.set()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            try:
                self._store.renew_lease(self.run_id)
            except (*CONNECTION_ERRORS, redis.ResponseError):
                continue  # the next write reports what is wrong


class RedisResults(MutableMapping[str, Any]):
    """A run's results, read from its hash when asked and kept once read.

    What this process sets is kept here only: the step's recorder (a worker's Lua script,
    or the driver's journal) is what writes results to Redis.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        run_id: str,
        sealer: Sealer | None = None,
        *,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
    ) -> None:
        self.client = client
        #: Seconds a read waits through a Redis outage (a task reading results must not fail on one).
        self.retry_timeout = retry_timeout
        self._run = keys.run(run_id)
        self._key = self._run.results
        self._run_id = run_id
        self._sealer = sealer
        self._prefix = keys.prefix
        self._cache: dict[str, Any] = {}

    @rides_out
    def __getitem__(self, task_id: str) -> Any:
        try:
            return self._cache[task_id]
        except KeyError:
            pass
        blob: bytes | None = self.client.hget(self._key, task_id)  # type: ignore[assignment]
        if blob is None:
            self._check_state()
            raise KeyError(task_id)
        slot = Slot(Purpose.RESULT, self._prefix, self._run_id, task_id)
        value = self._cache[task_id] = load_record(blob, slot, self._sealer)
        return value

    def _check_state(self) -> None:
        """A result that is missing because the run's state vanished is not "no result": say so."""
        if not self.client.exists(self._run.plan):
            raise state_lost(self._run_id, describe(self.client), missing="its plan and earlier results")

    def __setitem__(self, task_id: str, value: Any) -> None:
        self._cache[task_id] = value

    def __delitem__(self, task_id: str) -> None:
        del self._cache[task_id]

    @rides_out
    def __contains__(self, task_id: object) -> bool:
        return task_id in self._cache or (
            isinstance(task_id, str) and bool(self.client.hexists(self._key, task_id))
        )

    @rides_out
    def __iter__(self) -> Iterator[str]:
        stored = [_text(k) for k in self.client.hkeys(self._key)]
        return iter(dict.fromkeys([*self._cache, *stored]))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<RedisResults {self._key!r} cached={len(self._cache)}>"


def _group_ids(plan: RunPlan) -> set[str]:
    return {group.task_id for group in plan.graph.groups()}


def _run_info(run_id: str, raw: Mapping[bytes, bytes], done: int, holder: bytes | None) -> RunInfo:
    field = {_text(k): _text(v) for k, v in raw.items()}
    finished = field.get("finished_at")
    return RunInfo(
        run_id=run_id,
        workflow=field.get("workflow", "?"),
        status=RunStatus(field.get("status", "running")),
        started_at=float(field.get("started_at", "0")),
        finished_at=float(finished) if finished else None,
        tasks_done=done,
        tasks_total=max(int(field.get("tasks_total", "0")), done),
        error=field.get("error") or None,
        holder=_text(holder) if holder is not None else None,
        queue_backend=field.get("queue_backend", "redis"),
        channel_backend=field.get("channel_backend", "redis"),
    )


def load_record(blob: bytes, slot: Slot, sealer: Sealer | None) -> Any:
    """One blob of a run's state (its plan, a step, a result), verified with a key, then unpickled.

    Raises :class:`~graflow_redis.errors.UntrustedStateError` (nothing was unpickled) when its
    seal does not hold, and :class:`~graflow.exceptions.StateStoreError` when it cannot be unpickled.
    """
    if sealer is not None:
        try:
            blob = sealer.open(slot, blob)
        except SignatureError as exc:
            raise UntrustedStateError(
                f"{exc}. Nothing of it was unpickled; the run cannot go on from state that fails "
                "verification (restore Redis from a backup you trust, or start the workflow again)"
            ) from None
    try:
        return loads(blob)
    except Exception as exc:
        if is_sealed(blob):
            raise UntrustedStateError(
                f"{slot.describe()} is signed, but this process has no secret key to verify it: give it "
                f"the key of the run's drivers and workers (${ENV_VAR})"
            ) from None
        raise StateStoreError(
            f"{slot.describe()} cannot be read back ({type(exc).__name__}: {exc}); code from "
            "installed packages is imported by name, so install the packages the run used"
        ) from exc


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
