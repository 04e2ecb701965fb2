"""``TaskWorker``: takes tasks from the Redis queue and runs them, a few at a time.

Three kinds of thread do the work, so :meth:`TaskWorker.start` returns at once:

* the **fetch loop** asks the queue for at most as many entries as there are free
  slots (a worker never holds work it cannot start), and hands each to the pool;
* a **pool** of ``max_concurrent_tasks`` threads runs each envelope with
  :func:`graflow.remote.runner.run_envelope` and hands the outcome to
  :meth:`~graflow_redis.queue.DistributedTaskQueue.complete`;
* the **heartbeat** thread keeps running entries alive (``keep_alive``), so a long task
  is never given to another worker, and publishes who this worker is, what it runs and
  its counters (``graflow-worker status`` reads them).

:meth:`TaskWorker.stop` drains: no new work, running tasks get ``graceful_shutdown_timeout``
seconds to finish, and whatever still runs then is handed back with ``release`` so
another worker takes it over at once.
"""

from __future__ import annotations

import os
import queue as _queue
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import structlog

from graflow.exceptions import ConfigError
from graflow.remote.envelope import TaskOutcome, failure
from graflow.remote.runner import run_envelope
from graflow_worker.observer import TaskStatus, WorkerObserver

if TYPE_CHECKING:
    from types import TracebackType

    from graflow_redis.queue import Delivery, DistributedTaskQueue

__all__ = ["TaskWorker", "default_worker_id"]

#: Longest pause between two attempts to reach Redis after a failure.
MAX_BACKOFF: Final = 5.0
#: First pause after a failure to reach Redis.
FIRST_BACKOFF: Final = 0.1
#: Shortest time between two heartbeats, however often tasks finish.
MIN_HEARTBEAT_GAP: Final = 0.5

_log = structlog.get_logger("graflow_worker")


def default_worker_id() -> str:
    """``host-pid``: unique on a machine, and says where to look."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class _Running:
    delivery: Delivery
    started: float


class TaskWorker:
    """A worker of the fleet: runs up to ``max_concurrent_tasks`` tasks at once.

    ::

        queue = DistributedTaskQueue(redis_client=redis.Redis(), key_prefix="graflow")
        worker = TaskWorker(queue, worker_id="worker-1", max_concurrent_tasks=4)
        worker.start()          # returns at once
        ...
        worker.stop()           # drains within graceful_shutdown_timeout

    Counters (``tasks_processed``, ``tasks_succeeded``, ``tasks_failed``,
    ``total_execution_time``) count tasks this worker ran to the end.
    """

    def __init__(
        self,
        queue: DistributedTaskQueue,
        worker_id: str | None = None,
        max_concurrent_tasks: int = 4,
        graceful_shutdown_timeout: float = 30.0,
        *,
        heartbeat_interval: float = 2.0,
        fetch_block: float = 1.0,
        observers: Iterable[WorkerObserver] = (),
    ) -> None:
        if isinstance(max_concurrent_tasks, bool) or not isinstance(max_concurrent_tasks, int):
            raise ConfigError(f"max_concurrent_tasks must be an int >= 1, got {max_concurrent_tasks!r}")
        if max_concurrent_tasks < 1:
            raise ConfigError(f"max_concurrent_tasks must be >= 1, got {max_concurrent_tasks}")
        if graceful_shutdown_timeout < 0:
            raise ConfigError(
                f"graceful_shutdown_timeout must be >= 0 seconds, got {graceful_shutdown_timeout}"
            )
        if heartbeat_interval <= 0 or fetch_block <= 0:
            raise ConfigError("heartbeat_interval and fetch_block must be > 0 seconds")
        self.queue = queue
        self.worker_id = worker_id or default_worker_id()
        self.max_concurrent_tasks = max_concurrent_tasks
        self.graceful_shutdown_timeout = float(graceful_shutdown_timeout)
        visibility = float(getattr(queue, "visibility_timeout", 30.0))
        ttl = float(getattr(queue, "heartbeat_ttl", visibility))
        #: Seconds between heartbeats; a third of the visibility timeout (and of the time a
        #: heartbeat counts as alive) at most, so a running entry is refreshed well before
        #: another worker may claim it, and the worker never drops out of the fleet.
        self.heartbeat_interval = min(heartbeat_interval, visibility / 3, ttl / 3)
        self.fetch_block = fetch_block
        self.observers: list[WorkerObserver] = list(observers)

        #: Tasks run to the end (succeeded + failed).
        self.tasks_processed = 0
        self.tasks_succeeded = 0
        self.tasks_failed = 0
        #: Seconds spent in tasks, summed over every task run.
        self.total_execution_time = 0.0
        #: Runs whose result had already been recorded by another run of the same entry.
        self.tasks_duplicate = 0
        self.started_at: float | None = None

        self._log = _log.bind(worker_id=self.worker_id)
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._running: dict[str, _Running] = {}
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._counters_changed = threading.Event()
        #: Outcomes waiting to be completed, and whether a thread is completing them.
        self._done: list[tuple[Delivery, TaskOutcome]] = []
        self._done_lock = threading.Lock()
        self._flushing = False
        #: Deliveries waiting for a task thread; ``None`` tells a task thread to exit.
        self._inbox: _queue.SimpleQueue[Delivery | None] = _queue.SimpleQueue()
        self._task_threads: list[threading.Thread] = []
        self._threads: list[threading.Thread] = []

    # --- life cycle ------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"new"``, ``"running"``, ``"draining"`` or ``"stopped"``."""
        if self._stopped.is_set():
            return "stopped"
        if self._stopping.is_set():
            return "draining"
        return "running" if self.started_at is not None else "new"

    def start(self) -> None:
        """Start the fetch loop, the task pool and the heartbeat; returns at once."""
        if self.started_at is not None:
            raise RuntimeError(f"worker {self.worker_id!r} was already started; build a new TaskWorker")
        self.started_at = time.time()
        self._notify("on_start")
        self._log.info(
            "worker_started",
            max_concurrent_tasks=self.max_concurrent_tasks,
            key_prefix=getattr(self.queue, "key_prefix", None),
        )
        # Plain threads on a SimpleQueue: a hand-off costs a fraction of ThreadPoolExecutor.submit.
        for n in range(self.max_concurrent_tasks):
            thread = threading.Thread(target=self._task_loop, name=f"graflow-task-{n}", daemon=True)
            self._task_threads.append(thread)
            thread.start()
        for name, target in (
            ("graflow-fetch", self._fetch_loop),
            ("graflow-heartbeat", self._heartbeat_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Take no new work, let running tasks finish, hand back the rest; True when all finished.

        ``timeout`` defaults to ``graceful_shutdown_timeout``. Tasks still running when it
        expires are released to the queue (another worker takes them at once); their
        threads cannot be stopped, so a process that must exit does so without them.
        """
        if self.started_at is None or self._stopped.is_set():
            return True
        limit = self.graceful_shutdown_timeout if timeout is None else max(float(timeout), 0.0)
        deadline = time.monotonic() + limit
        with self._lock:
            self._stopping.set()
            self._slot_freed.notify_all()
            waiting = len(self._running)
        self._log.info("worker_stopping", running=waiting, graceful_shutdown_timeout=limit)
        fetcher = self._threads[0]
        fetcher.join(max(deadline - time.monotonic(), 0.0) + self.fetch_block)
        with self._lock:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._slot_freed.wait(left)
            leftovers = [r.delivery for r in self._running.values()]
        for delivery in leftovers:
            self._release(delivery, reason="graceful_shutdown_timeout")
        self._heartbeat_stop.set()
        self._counters_changed.set()
        self._threads[1].join(5.0)
        try:
            self.queue.remove_worker(self.worker_id)
        except Exception as exc:  # Redis may be gone; the heartbeat then simply expires
            self._log.warning("remove_worker_failed", error=f"{type(exc).__name__}: {exc}")
        for _ in self._task_threads:
            self._inbox.put(None)
        if not leftovers:
            for thread in self._task_threads:
                thread.join(5.0)
        self._stopped.set()
        self._notify("on_stop")
        self._log.info(
            "worker_stopped",
            drained=not leftovers,
            released=len(leftovers),
            tasks_processed=self.tasks_processed,
        )
        return not leftovers

    def hand_back(self) -> int:
        """Release every running task to the queue now (a forced exit); returns how many."""
        with self._lock:
            running = [r.delivery for r in self._running.values()]
        for delivery in running:
            self._release(delivery, reason="forced_exit")
        return len(running)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until :meth:`stop` has finished; True if it has."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> TaskWorker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what the worker is doing -------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Tasks running now."""
        return len(self._running)

    def running_tasks(self) -> list[dict[str, Any]]:
        """``task_id``, ``session_id``, ``entry_id``, ``attempt`` and ``since`` of every running task."""
        with self._lock:
            running = list(self._running.values())
        return [
            {
                "task_id": r.delivery.envelope.task_id,
                "session_id": r.delivery.envelope.session_id,
                "entry_id": r.delivery.entry_id,
                "attempt": r.delivery.attempt,
                "since": r.started,
            }
            for r in running
        ]

    def get_metrics(self) -> dict[str, Any]:
        """Counters and state, as plain data (also what the heartbeat publishes)."""
        processed = self.tasks_processed
        return {
            "worker_id": self.worker_id,
            "state": self.state,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started_at,
            "uptime": time.time() - self.started_at if self.started_at else 0.0,
            "max_concurrent_tasks": self.max_concurrent_tasks,
            "in_flight": self.in_flight,
            "running": self.running_tasks(),
            "tasks_processed": processed,
            "tasks_succeeded": self.tasks_succeeded,
            "tasks_failed": self.tasks_failed,
            "tasks_duplicate": self.tasks_duplicate,
            "total_execution_time": self.total_execution_time,
            "average_execution_time": self.total_execution_time / processed if processed else 0.0,
        }

    # --- threads ---------------------------------------------------------------------------

    def _fetch_loop(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            with self._lock:
                while len(self._running) >= self.max_concurrent_tasks and not self._stopping.is_set():
                    self._slot_freed.wait()
                if self._stopping.is_set():
                    return
                free = self.max_concurrent_tasks - len(self._running)
            try:
                deliveries = self.queue.fetch(self.worker_id, count=free, block=self.fetch_block)
            except Exception as exc:
                self._log.warning(
                    "fetch_failed", error=f"{type(exc).__name__}: {exc}", retry_in=round(backoff, 2)
                )
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = FIRST_BACKOFF
            if not deliveries:
                continue
            if self._stopping.is_set():
                for delivery in deliveries:
                    self._release(delivery, reason="stopping")
                return
            self._submit(deliveries)

    def _submit(self, deliveries: list[Delivery]) -> None:
        now = time.time()
        with self._lock:
            for delivery in deliveries:
                self._running[delivery.entry_id] = _Running(delivery, now)
        for delivery in deliveries:
            self._inbox.put(delivery)

    def _task_loop(self) -> None:
        inbox = self._inbox
        while True:
            delivery = inbox.get()
            if delivery is None:
                return
            try:
                self._run(delivery)
            except Exception as exc:  # e.g. Redis refused the completion: keep the thread
                self._log.error(
                    "task_completion_failed",
                    task_id=delivery.envelope.task_id,
                    error=f"{type(exc).__name__}: {exc}",
                )

    def _run(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        started = time.time()
        try:
            self._notify("on_task_started", delivery)
            try:
                outcome = run_envelope(envelope)
            except BaseException as exc:  # run_envelope reports task failures itself; this is a bug guard
                outcome = failure(envelope.task_id, exc, started)
        except BaseException:
            self._free(delivery)
            raise
        self._finished(delivery, outcome)

    def _finished(self, delivery: Delivery, outcome: TaskOutcome) -> None:
        """Queue the outcome for completion; the first thread to arrive completes the batch.

        Tasks that end while a completion is on its way to Redis are completed together
        in one round trip by the thread already completing, instead of one trip each.
        """
        with self._done_lock:
            self._done.append((delivery, outcome))
            if self._flushing:
                return
            self._flushing = True
        batch: list[tuple[Delivery, TaskOutcome]] = []
        try:
            while True:
                with self._done_lock:
                    batch, self._done = self._done, []
                    if not batch:
                        self._flushing = False
                        return
                for (done, _), (recorded, final) in zip(batch, self._complete_batch(batch), strict=True):
                    self._account(done, final, recorded)
                batch = []
        except BaseException:
            with self._done_lock:
                self._flushing = False
            for done, _ in batch:
                self._free(done)
            raise

    def _complete_batch(
        self, batch: list[tuple[Delivery, TaskOutcome]]
    ) -> list[tuple[bool | None, TaskOutcome]]:
        complete_many = getattr(self.queue, "complete_many", None)
        if len(batch) == 1 or complete_many is None:
            return [self._complete(delivery, outcome) for delivery, outcome in batch]
        backoff = FIRST_BACKOFF
        while True:
            try:
                recorded = complete_many(batch)
            except _CONNECTION_ERRORS as exc:
                if self._stopped.is_set():
                    return [(None, outcome) for _, outcome in batch]
                self._log.warning(
                    "complete_failed",
                    tasks=len(batch),
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=backoff,
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception:  # one outcome does not serialize: settle them one by one
                return [self._complete(delivery, outcome) for delivery, outcome in batch]
            else:
                return [(r, outcome) for r, (_, outcome) in zip(recorded, batch, strict=True)]

    def _account(self, delivery: Delivery, outcome: TaskOutcome, recorded: bool | None) -> None:
        """Count, log and report a finished task, and free its slot."""
        status: TaskStatus = (
            "duplicate" if recorded is False else ("succeeded" if outcome.success else "failed")
        )
        try:
            with self._lock:
                self.tasks_processed += 1
                if outcome.success:
                    self.tasks_succeeded += 1
                else:
                    self.tasks_failed += 1
                if recorded is False:
                    self.tasks_duplicate += 1
                self.total_execution_time += outcome.duration
            self._counters_changed.set()
            self._log.info(
                "task_finished",
                task_id=outcome.task_id,
                session_id=delivery.envelope.session_id,
                status=status,
                attempt=delivery.attempt,
                duration=round(outcome.duration, 6),
                error=None if outcome.success else f"{outcome.error_type}: {outcome.error_message}",
            )
            self._notify("on_task_finished", delivery, outcome, status)
        finally:
            self._free(delivery)

    def _free(self, delivery: Delivery) -> None:
        with self._lock:
            self._running.pop(delivery.entry_id, None)
            self._slot_freed.notify_all()

    def _complete(self, delivery: Delivery, outcome: TaskOutcome) -> tuple[bool | None, TaskOutcome]:
        """Hand the outcome to the queue; retry while Redis is unreachable.

        Returns what ``complete`` returned and the outcome handed over (a failure in place
        of a result that could not be serialized); ``None`` when the outcome could not be
        delivered before the worker had to give up (the entry then stays pending and is
        delivered again after the visibility timeout: at-least-once, recorded once).
        """
        backoff = FIRST_BACKOFF
        replaced = False
        while True:
            try:
                return self.queue.complete(delivery, outcome), outcome
            except _CONNECTION_ERRORS as exc:
                if self._stopped.is_set():
                    return None, outcome
                self._log.warning(
                    "complete_failed",
                    task_id=outcome.task_id,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=round(backoff, 2),
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception as exc:
                if replaced:
                    self._log.error(
                        "complete_failed", task_id=outcome.task_id, error=f"{type(exc).__name__}: {exc}"
                    )
                    return None, outcome
                # The outcome itself could not be stored (a result that does not pickle):
                # report that as the task's failure rather than leaving the driver waiting.
                replaced = True
                bad = TypeError(
                    f"task {outcome.task_id!r} returned or requested something that cannot be sent back "
                    f"to the driver ({type(exc).__name__}: {exc}); return plain data (dicts, lists, "
                    "numbers, strings)"
                )
                outcome = failure(outcome.task_id, bad, outcome.started_at)

    def _heartbeat_loop(self) -> None:
        last = 0.0
        min_gap = min(MIN_HEARTBEAT_GAP, self.heartbeat_interval)
        while True:
            # A finished task wakes the loop early (at most every MIN_HEARTBEAT_GAP), so
            # `graflow-worker status` shows fresh counters without a beat per task.
            gap = min_gap - (time.monotonic() - last)
            if gap > 0 and self._heartbeat_stop.wait(gap):
                return
            self._counters_changed.clear()
            last = time.monotonic()
            with self._lock:
                running = [r.delivery for r in self._running.values()]
            try:
                if running:
                    self.queue.keep_alive(running)
                self.queue.heartbeat(self.worker_id, self.get_metrics())
            except Exception as exc:
                self._log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                self._notify("on_heartbeat")
            self._counters_changed.wait(self.heartbeat_interval)
            if self._heartbeat_stop.is_set():
                return

    def _release(self, delivery: Delivery, reason: str) -> None:
        try:
            self.queue.release(delivery)
        except Exception as exc:  # it is still pending: the visibility timeout hands it over
            self._log.warning(
                "release_failed", task_id=delivery.envelope.task_id, error=f"{type(exc).__name__}: {exc}"
            )
            return
        self._log.info("task_released", task_id=delivery.envelope.task_id, reason=reason)

    def _notify(self, hook: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, hook)(self, *args)
            except Exception as exc:
                self._log.warning(
                    "observer_failed",
                    observer=type(observer).__name__,
                    hook=hook,
                    error=f"{type(exc).__name__}: {exc}",
                )

    def __repr__(self) -> str:
        return f"<TaskWorker {self.worker_id!r} {self.state} in_flight={self.in_flight}>"


def _connection_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning "Redis is unreachable right now": retry, the payload is fine."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - graflow-redis depends on redis
        pass
    else:
        errors += [RedisConnectionError, RedisTimeoutError]
    return tuple(errors)


_CONNECTION_ERRORS: Final = _connection_errors()
