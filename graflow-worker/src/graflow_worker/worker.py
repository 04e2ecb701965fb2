"""``TaskWorker``: takes tasks from a queue and runs them, a few at a time.

The worker is a thin facade over small parts, each in its own module, so
:meth:`TaskWorker.start` returns at once and each part can be read (and tested) alone:

* :class:`~graflow_worker.fetcher.Fetcher`: the fetch loop; asks the queue for at most
  as many entries as there are free :class:`~graflow_worker.slots.Slots`;
* :class:`~graflow_worker.pool.TaskPool`: ``max_concurrent_tasks`` threads running each
  envelope with :func:`graflow.remote.runner.run_envelope`, or with ``pool="processes"``
  :class:`~graflow_worker.processes.ProcessPool`, whose threads run each in a child process;
* :class:`~graflow_worker.completer.Completer`: hands outcomes to the queue, in batches,
  retried while Redis is unreachable;
* :class:`~graflow_worker.gate.LimitGate`: where a task under a rate or concurrency
  limit waits for its turn without a slot (on a queue that counts limits in Redis);
* :class:`~graflow_worker.heartbeat.Heartbeat`: keeps running entries alive and tells
  the fleet who this worker is, what it runs and its
  :class:`~graflow_worker.counters.Counters`;
* :class:`~graflow_worker.observer.Notifier`: the one place observers are called from.

The queue is anything that implements :class:`graflow_redis.consumer.Consumer`: a
:class:`~graflow_redis.queue.DistributedTaskQueue` in production,
:class:`graflow_redis.stub.StubConsumer` in tests.

:meth:`TaskWorker.stop` drains: no new work, running tasks get ``graceful_shutdown_timeout``
seconds to finish, and whatever still runs then is handed back with ``release`` so
another worker takes it over at once.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import structlog

from graflow import settings
from graflow.core.routing import DEFAULT_QUEUE
from graflow.remote.runner import warm_up
from graflow_redis.backoff import Backoff
from graflow_worker.completer import Completer
from graflow_worker.counters import Counters
from graflow_worker.fetcher import Fetcher
from graflow_worker.gate import LimitGate
from graflow_worker.heartbeat import Heartbeat
from graflow_worker.observer import Notifier, WorkerObserver
from graflow_worker.options import PoolKind
from graflow_worker.pool import TaskPool, check_pool
from graflow_worker.processes import ProcessPool
from graflow_worker.slots import Slots

if TYPE_CHECKING:
    from types import TracebackType

    from graflow_redis.consumer import Consumer, Delivery

__all__ = ["TaskWorker", "default_worker_id"]

#: First pause after a failure to reach Redis (fetching or completing).
FIRST_BACKOFF: Final = 0.1
#: Longest pause between two attempts to reach Redis after a failure.
MAX_BACKOFF: Final = 5.0

_log = structlog.get_logger("graflow_worker")


def default_worker_id() -> str:
    """``host-pid``: unique on a machine, and says where to look."""
    return f"{socket.gethostname()}-{os.getpid()}"


class TaskWorker:
    """A worker of the fleet: runs up to ``max_concurrent_tasks`` tasks at once.

    ``pool="processes"`` runs them in as many child processes (for CPU-bound Python), each
    replaced after ``max_tasks_per_child`` tasks when that is set, and each calling
    ``child_setup`` (a picklable callable, e.g. what configures logging) before its first
    task; see :mod:`graflow_worker.processes`.

    ::

        queue = DistributedTaskQueue(redis_client=redis.Redis(), key_prefix="graflow")
        worker = TaskWorker(queue, worker_id="worker-1", max_concurrent_tasks=4)
        worker.start()          # returns at once
        ...
        worker.stop()           # drains within graceful_shutdown_timeout

    Counters: ``tasks_processed`` (= ``tasks_succeeded`` + ``tasks_failed``) counts the outcomes
    this worker recorded, so the fleet's sum is the driver's count; ``tasks_duplicate`` and
    ``tasks_unrecorded`` count runs whose outcome it did not record; ``total_execution_time``
    covers every run.
    """

    def __init__(
        self,
        queue: Consumer,
        worker_id: str | None = None,
        max_concurrent_tasks: int = 4,
        graceful_shutdown_timeout: float = 30.0,
        *,
        heartbeat_interval: float = 2.0,
        fetch_block: float = 1.0,
        observers: Iterable[WorkerObserver] = (),
        pool: PoolKind = "threads",
        max_tasks_per_child: int | None = None,
        child_setup: Callable[[], object] | None = None,
    ) -> None:
        max_concurrent_tasks = settings.whole("max_concurrent_tasks", max_concurrent_tasks)
        graceful_shutdown_timeout = settings.seconds(
            "graceful_shutdown_timeout", graceful_shutdown_timeout, zero_ok=True
        )
        heartbeat_interval = settings.seconds("heartbeat_interval", heartbeat_interval)
        fetch_block = settings.seconds("fetch_block", fetch_block)
        check_pool(pool, max_tasks_per_child, child_setup)
        self.queue = queue
        self.worker_id = worker_id or default_worker_id()
        self.max_concurrent_tasks = max_concurrent_tasks
        #: Where tasks run: ``"threads"`` of this process, or ``"processes"`` (children of it).
        self.pool = pool
        self.graceful_shutdown_timeout = float(graceful_shutdown_timeout)
        visibility = float(queue.visibility_timeout)
        # A consumer without a heartbeat TTL of its own (a test double) counts one visibility timeout.
        ttl = float(getattr(queue, "heartbeat_ttl", visibility))
        #: Seconds between heartbeats; a third of the visibility timeout (and of the time a
        #: heartbeat counts as alive) at most, so a running entry is refreshed well before
        #: another worker may claim it, and the worker never drops out of the fleet.
        self.heartbeat_interval = min(heartbeat_interval, visibility / 3, ttl / 3)
        self.fetch_block = fetch_block
        self.observers: list[WorkerObserver] = list(observers)
        self.started_at: float | None = None

        self._log = _log.bind(worker_id=self.worker_id)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._counters = Counters()
        self._slots = Slots(max_concurrent_tasks)
        limits = getattr(queue, "limits", None)
        #: Where limited tasks wait for their turn (queues that count limits in Redis only).
        self._gate = LimitGate(limits) if limits is not None else None
        self._notifier = Notifier(self, self.observers, self._log)
        retry = functools.partial(Backoff, FIRST_BACKOFF, MAX_BACKOFF)
        self._completer = Completer(
            queue,
            slots=self._slots,
            counters=self._counters,
            notifier=self._notifier,
            stopped=self._stopped,
            retry=retry,
            log=self._log,
        )
        self._pool = (
            ProcessPool(
                max_concurrent_tasks,
                max_tasks_per_child=max_tasks_per_child,
                child_setup=child_setup,
                release=self._release,
                completer=self._completer,
                slots=self._slots,
                notifier=self._notifier,
                log=self._log,
                gate=self._gate,
            )
            if pool == "processes"
            else TaskPool(
                max_concurrent_tasks,
                completer=self._completer,
                slots=self._slots,
                notifier=self._notifier,
                log=self._log,
                gate=self._gate,
            )
        )
        self._fetcher = Fetcher(
            queue,
            self.worker_id,
            block=fetch_block,
            slots=self._slots,
            pool=self._pool,
            stopping=self._stopping,
            release=self._release,
            retry=retry,
            log=self._log,
            gate=self._gate,
        )
        self._completer.refill_from(self._fetcher, self.worker_id)
        self._heartbeat = Heartbeat(
            queue,
            self.worker_id,
            self.heartbeat_interval,
            slots=self._slots,
            report=self.get_metrics,
            changed=self._counters.changed,
            notifier=self._notifier,
            log=self._log,
            gate=self._gate,
            aside=self._held_aside,
        )

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
        """Start the task pool, the fetch loop and the heartbeat; returns at once."""
        if self.started_at is not None:
            raise RuntimeError(f"worker {self.worker_id!r} was already started; build a new TaskWorker")
        warm_up()  # before the first fetch: the first task must not wait for imports
        self.started_at = time.time()
        self._notifier.started()
        self._log.info(
            "worker_started",
            queues=list(getattr(self.queue, "queues", None) or [DEFAULT_QUEUE]),
            max_concurrent_tasks=self.max_concurrent_tasks,
            pool=self.pool,
            key_prefix=getattr(self.queue, "key_prefix", None),
        )
        self._pool.start()
        self._fetcher.start()
        self._heartbeat.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Take no new work, let running tasks finish, hand back the rest; True when all finished.

        ``timeout`` defaults to ``graceful_shutdown_timeout``. Tasks still running when it
        expires are released to the queue (another worker takes them at once). With
        ``pool="processes"`` their children are killed; threads cannot be stopped, so a
        process that must exit does so without them.
        """
        if self.started_at is None or self._stopped.is_set():
            return True
        limit = self.graceful_shutdown_timeout if timeout is None else max(float(timeout), 0.0)
        deadline = time.monotonic() + limit
        self._stopping.set()
        self._slots.wake()
        self._log.info("worker_stopping", running=len(self._slots), graceful_shutdown_timeout=limit)
        self._fetcher.join(max(deadline - time.monotonic(), 0.0) + self.fetch_block)
        self._hand_back_waiting("stopping")
        leftovers = self._slots.wait_empty(deadline)
        for delivery in leftovers:
            self._release(delivery, "graceful_shutdown_timeout")
        self._heartbeat.stop(5.0)
        try:
            self.queue.remove_worker(self.worker_id)
        except Exception as exc:  # Redis may be gone; the heartbeat then simply expires
            self._log.warning("remove_worker_failed", error=f"{type(exc).__name__}: {exc}")
        self._pool.shutdown()
        if not leftovers:
            self._pool.join(5.0)
        self._stopped.set()
        self._notifier.stopped()
        self._log.info(
            "worker_stopped",
            drained=not leftovers,
            released=len(leftovers),
            tasks_processed=self.tasks_processed,
        )
        return not leftovers

    def hand_back(self) -> int:
        """Release every running task to the queue now (a forced exit); returns how many."""
        running = self._slots.deliveries()
        for delivery in running:
            self._release(delivery, "forced_exit")
        return len(running) + self._hand_back_waiting("forced_exit")

    def _held_aside(self) -> list[Delivery]:
        """Deliveries held without a slot: waiting for their limits, or for their turn to run alone."""
        waiting = self._gate.waiting() if self._gate is not None else []
        return waiting + self._fetcher.suspects()

    def _hand_back_waiting(self, reason: str) -> int:
        """Release the deliveries held aside (see :meth:`_held_aside`); how many."""
        waiting = self._gate.take_all() if self._gate is not None else []
        waiting += self._fetcher.take_suspects()
        for delivery in waiting:
            self._release(delivery, reason)
        return len(waiting)

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

    def _release(self, delivery: Delivery, reason: str) -> None:
        """Hand ``delivery`` back to the queue; if that fails, the visibility timeout does it."""
        try:
            self.queue.release(delivery)
        except Exception as exc:
            self._log.warning(
                "release_failed", task_id=delivery.envelope.task_id, error=f"{type(exc).__name__}: {exc}"
            )
            return
        self._log.info("task_released", task_id=delivery.envelope.task_id, reason=reason)

    # --- what the worker is doing -------------------------------------------------------

    @property
    def tasks_processed(self) -> int:
        """Outcomes this worker recorded (succeeded + failed); duplicates and unrecorded runs apart."""
        return self._counters.processed

    @property
    def tasks_succeeded(self) -> int:
        return self._counters.succeeded

    @property
    def tasks_failed(self) -> int:
        return self._counters.failed

    @property
    def tasks_duplicate(self) -> int:
        """Runs whose result had already been recorded by another run of the same entry."""
        return self._counters.duplicate

    @property
    def tasks_unrecorded(self) -> int:
        """Runs whose outcome this worker could not hand over before it stopped (another worker runs them)."""
        return self._counters.unrecorded

    @property
    def total_execution_time(self) -> float:
        """Seconds spent in tasks, summed over every task run."""
        return self._counters.execution_time

    @property
    def in_flight(self) -> int:
        """Tasks running now."""
        return len(self._slots)

    def running_tasks(self) -> list[dict[str, Any]]:
        """``task_id``, ``session_id``, ``entry_id``, ``attempt`` and ``since`` of every running task."""
        return [
            {
                "task_id": held.delivery.envelope.task_id,
                "session_id": held.delivery.envelope.session_id,
                "entry_id": held.delivery.entry_id,
                "attempt": held.delivery.attempt,
                "since": held.since,
            }
            for held in self._slots.held()
        ]

    def get_metrics(self) -> dict[str, Any]:
        """Counters and state, as plain data (also what the heartbeat publishes)."""
        processed = self.tasks_processed
        runs = processed + self.tasks_duplicate + self.tasks_unrecorded
        return {
            "worker_id": self.worker_id,
            "state": self.state,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started_at,
            "uptime": time.time() - self.started_at if self.started_at else 0.0,
            "max_concurrent_tasks": self.max_concurrent_tasks,
            "queues": list(getattr(self.queue, "queues", None) or [DEFAULT_QUEUE]),
            "pool": self.pool,
            "in_flight": self.in_flight,
            "waiting_for_limits": len(self._gate) if self._gate is not None else 0,
            "running": self.running_tasks(),
            "tasks_processed": processed,
            "tasks_succeeded": self.tasks_succeeded,
            "tasks_failed": self.tasks_failed,
            "tasks_duplicate": self.tasks_duplicate,
            "tasks_unrecorded": self.tasks_unrecorded,
            "total_execution_time": self.total_execution_time,
            "average_execution_time": self.total_execution_time / runs if runs else 0.0,
        }

    def __repr__(self) -> str:
        return f"<TaskWorker {self.worker_id!r} {self.state} in_flight={self.in_flight}>"
