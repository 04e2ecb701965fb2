"""The driver's side of the fleet: submit an envelope, block until its outcome comes back.

:class:`FleetExecutor` is the :class:`~graflow.remote.executor.RemoteExecutor` of a
Redis run. Each submission is one stream entry; its outcome comes back on this
driver's reply list, which one listener thread drains with blocking reads (``BLPOP``),
never by sleep-polling, handing each outcome to the future of its submission.

The listener also watches the fleet: while tasks wait and no worker is alive it logs a
warning at once and every few seconds, and after ``worker_wait_timeout`` it fails the
waiting tasks with :class:`~graflow_redis.errors.NoWorkerAvailableError`. When Redis
goes away it retries with backoff; if the server came back empty (a restart without
persistence), it submits the waiting tasks again.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import redis

from graflow.core.routing import DEFAULT_PRIORITY, DEFAULT_QUEUE
from graflow.exceptions import GraflowRuntimeError, RunStateLostError
from graflow.remote.codec import ByValue, dumps_envelope
from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from graflow_redis import scripts
from graflow_redis.audit import EntryAudit, Watched
from graflow_redis.backoff import Backoff
from graflow_redis.connection import (
    CONNECTION_ERRORS,
    block_seconds,
    call_with_retry,
    script_pipeline,
    server_id,
)
from graflow_redis.entry import decode_outcome, entry_fields, split_reply
from graflow_redis.errors import NoWorkerAvailableError, OutcomeDecodeError, RedisRefusedError
from graflow_redis.keys import RUN_KEYS_TTL
from graflow_redis.lanes import route
from graflow_redis.log import emit
from graflow_redis.lost import state_lost
from graflow_redis.refusal import refusal
from graflow_redis.signing import Purpose, Slot
from graflow_redis.store import load_record

if TYPE_CHECKING:
    from graflow_redis.queue import DistributedTaskQueue

__all__ = ["FleetExecutor"]

#: Seconds between checks that some worker is alive, while tasks wait.
FLEET_CHECK_INTERVAL: Final = 1.0
#: Seconds between repeated "no worker alive" warnings.
WARN_INTERVAL: Final = 10.0
#: Retry budget (seconds) before this driver ever reached Redis: a wrong URL fails fast.
FIRST_CONTACT_TIMEOUT: Final = 5.0
#: Milliseconds the probe key of a waiting driver lives (see FleetExecutor._probe).
PROBE_TTL_MS: Final = 5000
#: Outcomes taken from the reply list per round trip.
BATCH: Final = 512
#: Workers have the driver's installed packages; the user's own code travels by value.
_WORKERS: Final = ByValue("a worker")


@dataclass
class _Submission:
    uid: str
    task_id: str
    #: The run (what its entry and outcome are sealed for).
    session_id: str
    fields: dict[str, bytes | str]
    #: The queue it waits on, and the lane of that queue (its priority's stream).
    queue: str
    stream: str
    future: Future[TaskOutcome] = field(default_factory=Future)
    entry_id: str = ""
    #: ``(run id, step key)`` of a step of a durable run: submitted once per step, across drivers.
    step: tuple[str, str] | None = None


class FleetExecutor:
    """Runs envelopes on the worker fleet of one :class:`DistributedTaskQueue` (thread-safe)."""

    #: Workers take a place under a task's limits in Redis before it starts (see graflow-worker's gate).
    enforces_limits = True

    def __init__(self, queue: DistributedTaskQueue) -> None:
        self.queue = queue
        self.client = queue.client
        self.keys = queue.keys
        #: This driver's id; its outcomes arrive on ``{PREFIX}:reply:DRIVER_ID``.
        self.driver_id = uuid.uuid4().hex
        self.reply_key = self.keys.reply(self.driver_id)
        #: Reply lists listened to: this driver's, and those of earlier drivers of a resumed
        #: run whose submissions it adopted.
        self._reply_keys = [self.reply_key]
        self._submit_script = self.client.register_script(scripts.SUBMIT)
        #: Queues this driver has listed in the prefix's queue set (once each).
        self._announced: set[str] = set()
        self._pending: dict[str, _Submission] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._outbox: list[_Submission] = []
        self._outbox_lock = threading.Lock()
        self._flushing = False
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None
        self._server_id: str | None = None
        self._lost = False
        #: Queue -> since when tasks wait on it with no live worker serving it.
        self._unserved_since: dict[str, float] = {}
        self._last_check = 0.0
        self._last_warn = 0.0
        #: Finds waiting submissions whose entry vanished (eviction, flush, XDEL), to send them again.
        self._audit = EntryAudit(self.client, self.keys, queue.visibility_timeout)
        #: Logged with every event; bound per call, so logging configured later still applies.
        self._log_context = {"key_prefix": queue.key_prefix, "redis": queue.where}

    def _emit(self, level: str, event: str, **fields: Any) -> None:
        emit(level, event, **self._log_context, **fields)

    # --- submitting ----------------------------------------------------------------------

    def execute(self, envelope: TaskEnvelope) -> TaskOutcome:
        """Run ``envelope`` on some worker and return its outcome (blocks)."""
        return self.submit(envelope).result()

    def submit(self, envelope: TaskEnvelope) -> Future[TaskOutcome]:
        """Put ``envelope`` on the stream; the future resolves to its outcome.

        A step of a durable run (``envelope.step``) is submitted once: when an earlier
        driver of the run submitted it and did not withdraw it, its submission is adopted.
        """
        payload = dumps_envelope(envelope, _WORKERS)
        step = (envelope.session_id, envelope.step) if envelope.step is not None else None
        queue, priority = route(envelope.routing)
        return self.submit_payload(
            envelope.task_id,
            payload,
            session_id=envelope.session_id,
            step=step,
            queue=queue,
            priority=priority,
        )

    def submit_payload(
        self,
        task_id: str,
        payload: bytes,
        *,
        session_id: str = "",
        seal: bool = True,
        step: tuple[str, str] | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = DEFAULT_PRIORITY,
    ) -> Future[TaskOutcome]:
        """Low level: submit already-pickled envelope bytes (benchmarks, tests of bad entries).

        The entry goes to ``queue``'s lane for ``priority``. With a key the payload is sealed
        for this submission, unless ``seal=False`` (it is then sent as given: tests of
        refused entries).
        """
        uid = f"{self.driver_id}-{next(self._numbers):x}"
        sealer = self.queue.sealer
        if sealer is not None and seal:
            payload = sealer.seal(Slot(Purpose.TASK, self.keys.prefix, session_id, uid), payload)
        submission = _Submission(
            uid,
            task_id,
            session_id,
            entry_fields(uid, task_id, session_id, self.reply_key, payload),
            queue,
            self.keys.lane(queue, priority),
            step=step,
        )
        with self._lock:
            if self._closed.is_set():
                raise GraflowRuntimeError(
                    f"task {task_id!r} cannot be submitted: this run's Redis queue is closed"
                )
            self._pending[uid] = submission
        self._ensure_listener()
        with self._outbox_lock:
            self._outbox.append(submission)
            if self._flushing:
                return submission.future  # the thread flushing now sends it with its batch
            self._flushing = True
        self._flush()
        return submission.future

    def _flush(self) -> None:
        """Send everything in the outbox, a pipelined batch per round trip, until it is empty.

        Concurrent submitters (a group's members) append and return; whoever found the
        outbox idle sends for all, so a lone task costs one XADD and a burst costs few.
        """
        try:
            while True:
                with self._outbox_lock:
                    batch, self._outbox = self._outbox, []
                    if not batch:
                        self._flushing = False
                        return
                try:
                    self._send(batch)
                except Exception as exc:
                    with self._lock:
                        for submission in batch:
                            self._pending.pop(submission.uid, None)
                    for submission in batch:
                        submission.future.set_exception(
                            self._refused(exc, f"submitting task {submission.task_id!r}") or exc
                        )
        except BaseException:
            with self._outbox_lock:
                self._flushing = False
            raise

    def _send(self, batch: list[_Submission]) -> None:
        """Submit ``batch`` in one pipeline, retrying while Redis is unreachable."""

        new_queues = {s.queue for s in batch} - self._announced

        def add() -> list[Any]:
            for _ in range(2):
                try:
                    pipe = script_pipeline(self.client)
                    for submission in batch:
                        if submission.step is None:
                            pipe.xadd(submission.stream, submission.fields)
                        else:
                            run_id, step = submission.step
                            fields = [part for pair in submission.fields.items() for part in pair]
                            args = [step, submission.uid, self.keys.done(""), RUN_KEYS_TTL, *fields]
                            run = self.keys.run(run_id)
                            keys = [submission.stream, run.submissions, run.steps, run.plan]
                            pipe.evalsha(self._submit_script.sha, len(keys), *keys, *args)
                    if new_queues:
                        pipe.sadd(self.keys.queues, *new_queues)
                    answers: list[Any] = pipe.execute()
                    return answers[: len(batch)]
                except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                    self._submit_script.sha = self.client.script_load(scripts.SUBMIT)
            raise redis.exceptions.NoScriptError("the SUBMIT script could not be loaded")

        timeout = self.queue.connection_retry_timeout if self._server_id else FIRST_CONTACT_TIMEOUT
        names = ", ".join(repr(s.task_id) for s in batch[:3]) + (", ..." if len(batch) > 3 else "")
        answers = call_with_retry(
            add,
            what=f"submitting task{'s' if len(batch) > 1 else ''} {names}",
            where=self.queue.where,
            timeout=timeout,
            on_retry=lambda exc, pause: self._emit(
                "warning",
                "redis_unreachable",
                action="submit",
                error=f"{type(exc).__name__}: {exc}",
                retry_in=pause,
            ),
        )
        self._announced |= new_queues
        for submission, answer in zip(batch, answers, strict=True):
            if submission.step is None:
                submission.entry_id = _text(answer)
            elif _text(answer[0]) == "new":
                submission.entry_id = _text(answer[1])
            elif _text(answer[0]) == "adopt":
                self._adopt(submission, _text(answer[1]))
            elif _text(answer[0]) == "lost":
                self._fail_where(lambda s, uid=submission.uid: s.uid == uid, self._state_lost)
            else:
                self._answer_from_store(submission)

    def _adopt(self, submission: _Submission, earlier: str) -> None:
        """Wait for an earlier driver's submission of the same step instead of our own."""
        with self._lock:
            self._pending.pop(submission.uid, None)
            submission.uid = earlier
            self._pending[earlier] = submission
            reply = self.keys.reply(earlier.rpartition("-")[0])
            if reply not in self._reply_keys:
                self._reply_keys = [*self._reply_keys, reply]
        self._emit("info", "submission_adopted", task_id=submission.task_id, uid=earlier)

    def _answer_from_store(self, submission: _Submission) -> None:
        """A step recorded since the resuming driver read the run's history: its outcome is stored."""
        assert submission.step is not None
        run_id, step = submission.step
        run, task_id = self.keys.run(run_id), submission.task_id
        blob: Any = self.client.hget(run.steps, step)
        stored: Any = self.client.hget(run.results, task_id)
        sealer, prefix = self.queue.sealer, self.keys.prefix
        completion = result = None
        if blob is not None:
            completion = load_record(blob, Slot(Purpose.STEP, prefix, run_id, step), sealer)
        if stored is not None:
            result = load_record(stored, Slot(Purpose.RESULT, prefix, run_id, task_id), sealer)
        outcome = TaskOutcome(
            task_id,
            success=True,
            result=result,
            requests=completion.requests if completion is not None else None,
            worker=completion.worker if completion is not None else "",
            step_recorded=True,
        )
        with self._lock:
            self._pending.pop(submission.uid, None)
        submission.future.set_result(outcome)

    # --- the listener ----------------------------------------------------------------------

    def _ensure_listener(self) -> None:
        if self._listener is not None:
            return
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name=f"graflow-redis-driver-{self.driver_id[:8]}", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        backoff = Backoff()
        block = block_seconds(self.client, 1.0)
        while not self._closed.is_set():
            try:
                if self._server_id is None or self._lost:
                    self._check_server()
                self._watch_fleet()
                popped = self.client.blpop(self._reply_keys, timeout=block)
                if popped is not None:
                    items: list[Any] = [popped[1]]
                    more: Any = self.client.lpop(popped[0], BATCH)
                    if more:
                        items.extend(more)
                    for item in items:
                        self._deliver(item)
                backoff.reset()
            except CONNECTION_ERRORS as exc:
                if self._closed.is_set():
                    break
                self._lost = True
                pause = backoff.next()
                self._emit(
                    "warning", "redis_connection_lost", error=f"{type(exc).__name__}: {exc}", retry_in=pause
                )
                self._closed.wait(pause)
            except redis.ResponseError as exc:
                refused = self._refused(exc, "waiting for task outcomes")
                if refused is None:
                    raise
                self._emit("error", "redis_refused", condition=refused.condition, error=str(exc))
                self._abandon(lambda s, refused=refused: refused)
            except Exception as exc:  # a bug guard: never leave the run waiting in silence
                self._emit("exception", "driver_listener_failed")
                self._fail_all(
                    lambda s, exc=exc: GraflowRuntimeError(
                        f"task {s.task_id!r}: the Redis driver stopped waiting ({type(exc).__name__}: {exc})"
                    )
                )
                self._closed.wait(backoff.next())

    def _check_server(self) -> None:
        """Learn the server's run id; if it changed, Redis restarted: submit waiting tasks again.

        Checked after a connection error and every few seconds while tasks wait: redis-py
        may retry a blocking read on a restarted server without the error reaching us.
        """
        current = server_id(self.client, self.keys.tasks)
        previous, self._server_id = self._server_id, current
        self._lost = False
        if previous is None or previous == current:
            return
        with self._lock:
            waiting = list(self._pending.values())
        lost = self._lost_runs({s.step[0] for s in waiting if s.step is not None})
        if lost:
            self._emit("error", "run_state_lost", runs=sorted(lost))
            self._fail_where(lambda s: s.step is not None and s.step[0] in lost, self._state_lost)
            waiting = [s for s in waiting if s.step is None or s.step[0] not in lost]
        self._emit("warning", "redis_restarted", resubmitting=len(waiting))
        if waiting:
            self._send(waiting)

    def _probe(self) -> None:
        """Write a short-lived key: a Redis that refuses writes (out of memory, read-only, ACL) fails the
        waiting tasks at once, where workers that cannot record outcomes would look dead instead."""
        self.client.set(self.keys.probe(self.driver_id), b"1", px=PROBE_TTL_MS)

    def _refused(self, exc: BaseException, doing: str) -> RedisRefusedError | None:
        return refusal(exc, where=self.queue.where, doing=doing, key_prefix=self.keys.prefix)

    def _audit_entries(self) -> None:
        """Submit again every waiting submission whose entry is neither queued, pending nor recorded."""
        with self._lock:
            waiting = {s.uid: s for s in self._pending.values() if s.entry_id}
        watched = [Watched(s.uid, s.entry_id, s.stream, s.fields, s.step) for s in waiting.values()]
        lost = self._audit.missing(watched)
        if not lost:
            return
        self._emit("warning", "entries_lost", tasks=sorted(waiting[w.uid].task_id for w in lost))
        for w, (status, entry_id) in zip(lost, self._audit.resubmit(lost), strict=True):
            submission = waiting[w.uid]
            if status == "new":
                submission.entry_id = entry_id
                self._emit("info", "task_resubmitted", task_id=submission.task_id, uid=w.uid)
            elif status == "lost":
                self._fail_where(lambda s, uid=w.uid: s.uid == uid, self._state_lost)
            elif status == "recorded" and submission.step is not None:  # by another submission
                self._answer_from_store(submission)
            # "done": it finished meanwhile, and its outcome is on its way to the reply list

    def _lost_runs(self, run_ids: set[str]) -> set[str]:
        """Which of these durable runs' state vanished (a restart without persistence, a flush)."""
        if not run_ids:
            return set()
        ordered = sorted(run_ids)
        pipe = self.client.pipeline(transaction=False)
        for run_id in ordered:
            pipe.exists(self.keys.run(run_id).plan)
        return {run_id for run_id, found in zip(ordered, pipe.execute(), strict=True) if not found}

    def _state_lost(self, submission: _Submission) -> RunStateLostError:
        run_id = submission.step[0] if submission.step is not None else submission.session_id
        return state_lost(run_id, self.queue.where, task_id=submission.task_id)

    def _fail_where(self, which: Any, make_error: Any) -> None:
        with self._lock:
            failed = [s for s in self._pending.values() if which(s)]
            for submission in failed:
                del self._pending[submission.uid]
        for submission in failed:
            submission.future.set_exception(make_error(submission))

    def _deliver(self, item: bytes) -> None:
        uid, blob = split_reply(item)
        if not uid:
            return  # the wake-up pushed by close()
        with self._lock:
            submission = self._pending.pop(uid, None)
        if submission is None:
            return  # a submission this driver gave up on
        try:
            outcome = decode_outcome(
                blob,
                uid=uid,
                session_id=submission.session_id,
                task_id=submission.task_id,
                sealer=self.queue.sealer,
                key_prefix=self.keys.prefix,
            )
        except OutcomeDecodeError as exc:
            self._emit("error", "outcome_refused", task_id=submission.task_id, uid=uid, reason=str(exc))
            submission.future.set_exception(exc)
            return
        submission.future.set_result(outcome)

    def _watch_fleet(self) -> None:
        """Warn while tasks wait on a queue that no live worker serves; fail them after ``worker_wait_timeout``."""
        now = time.monotonic()
        if not self._pending:
            self._unserved_since.clear()
            return
        if now - self._last_check < FLEET_CHECK_INTERVAL:
            return
        self._last_check = now
        self._check_server()
        self._probe()
        if self._audit.due(now):
            self._audit_entries()
        workers = self.queue.workers()
        served = {str(q) for w in workers for q in (w.get("queues") or (DEFAULT_QUEUE,))}
        with self._lock:
            waiting = Counter(s.queue for s in self._pending.values())
        for queue in [q for q in self._unserved_since if q in served or q not in waiting]:
            del self._unserved_since[queue]
            if queue in waiting:
                self._emit("info", "worker_alive_again", queue=queue, waiting_tasks=waiting[queue])
        unserved = sorted(q for q in waiting if q not in served)
        if not unserved:
            return
        fresh = [q for q in unserved if q not in self._unserved_since]
        for queue in fresh:
            self._unserved_since[queue] = now
        timeout = self.queue.worker_wait_timeout
        if fresh or now - self._last_warn >= WARN_INTERVAL:
            self._last_warn = now
            waited = now - min(self._unserved_since[q] for q in unserved)
            self._warn_no_worker(unserved, sum(waiting[q] for q in unserved), waited, bool(workers), timeout)
        expired = {
            q: now - self._unserved_since[q] for q in unserved if now - self._unserved_since[q] >= timeout
        }
        if expired:
            self._abandon(
                lambda s: NoWorkerAvailableError(
                    s.task_id, self.queue.key_prefix, self.queue.where, expired[s.queue], queue=s.queue
                ),
                which=lambda s: s.queue in expired,
            )

    def _warn_no_worker(
        self, queues: list[str], tasks: int, waited: float, fleet_alive: bool, timeout: float
    ) -> None:
        serve = "" if queues == [DEFAULT_QUEUE] else f" --queues {','.join(queues)}"
        self._emit(
            "warning",
            "no_worker_for_queue" if fleet_alive else "no_worker_alive",
            queues=queues,
            waiting_tasks=tasks,
            waited=round(waited, 1),
            fails_after=timeout,
            hint=(
                f"start one with `graflow-worker --redis-url {self.queue.where} "
                f"--key-prefix {self.queue.key_prefix}{serve}`"
            ),
        )

    # --- giving up -----------------------------------------------------------------------------

    def _take_all(self) -> list[_Submission]:
        with self._lock:
            taken = list(self._pending.values())
            self._pending.clear()
        return taken

    def _fail_all(self, make_error: Any) -> list[_Submission]:
        failed = self._take_all()
        for submission in failed:
            submission.future.set_exception(make_error(submission))
        return failed

    def _abandon(self, make_error: Any, which: Any = None) -> None:
        """Withdraw every waiting task's entry (or those ``which`` picks), so no worker runs it
        later, then fail it.

        Withdrawn first: whoever waits on a future may look at the stream as soon as it fails.
        """
        if which is None:
            abandoned = self._take_all()
        else:
            with self._lock:
                abandoned = [s for s in self._pending.values() if which(s)]
                for submission in abandoned:
                    del self._pending[submission.uid]
        if not abandoned:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for submission in abandoned:  # XDEL first: it works even when Redis refuses SET (out of memory)
                if submission.entry_id:
                    pipe.xdel(submission.stream, submission.entry_id)
            for submission in abandoned:
                pipe.set(self.keys.done(submission.uid), "withdrawn", nx=True, ex=self.queue.done_ttl)
            pipe.execute()
        except redis.RedisError as exc:  # unreachable, or refusing writes: the entries stay, marked or not
            self._emit(
                "warning", "withdraw_failed", tasks=len(abandoned), error=f"{type(exc).__name__}: {exc}"
            )
        for submission in abandoned:
            submission.future.set_exception(make_error(submission))

    def close(self) -> None:
        """Stop the listener; tasks still waiting fail and are withdrawn from the stream."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        self._abandon(
            lambda s: GraflowRuntimeError(
                f"task {s.task_id!r} was still waiting for its outcome when the run's Redis queue closed"
            )
        )
        listener = self._listener
        try:
            if listener is not None:
                self.client.rpush(self.reply_key, b"")
                listener.join(timeout=5.0)
            self.client.delete(self.reply_key)
        except (
            redis.RedisError
        ) as exc:  # unreachable, or refusing writes (the listener stops within a second)
            self._emit("debug", "reply_cleanup_failed", error=f"{type(exc).__name__}: {exc}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
