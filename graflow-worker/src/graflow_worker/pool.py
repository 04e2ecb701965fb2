"""``TaskPool``: the threads that run a worker's tasks (``--pool threads``, the default).

Each of ``size`` threads takes a delivery, runs its envelope with
:func:`graflow.remote.runner.run_envelope` (which turns the task's own failure into a
failed outcome) and hands the outcome to the :class:`~graflow_worker.completer.Completer`.
Plain threads on a :class:`queue.SimpleQueue`: a hand-off costs a fraction of
``ThreadPoolExecutor.submit``, which showed in the distributed benchmark.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from graflow.exceptions import ConfigError
from graflow.remote.envelope import failure
from graflow.remote.runner import run_envelope
from graflow_worker.options import POOL_KINDS

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from graflow.remote.envelope import TaskOutcome
    from graflow_redis.consumer import Delivery
    from graflow_worker.completer import Completer
    from graflow_worker.gate import LimitGate
    from graflow_worker.observer import Notifier
    from graflow_worker.slots import Slots

__all__ = ["TaskPool", "check_pool"]


def check_pool(pool: object, max_tasks_per_child: object, child_setup: object = None) -> None:
    """:class:`~graflow.exceptions.ConfigError` unless a worker's pool settings make sense together."""
    if pool not in POOL_KINDS:
        raise ConfigError(f"pool must be 'threads' or 'processes', got {pool!r}")
    if child_setup is not None and pool != "processes":
        raise ConfigError("child_setup runs in child processes, so it needs pool='processes'")
    if max_tasks_per_child is None:
        return
    if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int):
        raise ConfigError(f"max_tasks_per_child must be an int >= 1 or None, got {max_tasks_per_child!r}")
    if max_tasks_per_child < 1:
        raise ConfigError(f"max_tasks_per_child must be >= 1 (or None: no limit), got {max_tasks_per_child}")
    if pool != "processes":
        raise ConfigError(
            "max_tasks_per_child replaces child processes, so it needs pool='processes' "
            "(graflow-worker --pool processes); threads are never replaced"
        )


class TaskPool:
    """``size`` task threads fed through one inbox."""

    def __init__(
        self,
        size: int,
        *,
        completer: Completer,
        slots: Slots,
        notifier: Notifier,
        log: FilteringBoundLogger,
        gate: LimitGate | None = None,
    ) -> None:
        self.size = size
        self._gate = gate
        self._completer = completer
        self._slots = slots
        self._notifier = notifier
        self._log = log
        #: Deliveries waiting for a thread; ``None`` tells a thread to exit.
        self._inbox: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.size):
            thread = threading.Thread(target=self._loop, name=f"graflow-task-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def submit(self, deliveries: Iterable[Delivery]) -> None:
        """Run each delivery on the next free thread (each already holds a slot)."""
        for delivery in deliveries:
            self._inbox.put(delivery)

    def shutdown(self) -> None:
        """Let every thread exit once it has finished what it runs."""
        for _ in self._threads:
            self._inbox.put(None)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for each thread (a stuck task's thread cannot be stopped)."""
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
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
        started = time.time()
        try:
            self._notifier.task_started(delivery)
            try:
                outcome = self._outcome(delivery)
            except BaseException as exc:  # run_envelope reports task failures itself; this is a bug guard
                outcome = failure(delivery.envelope.task_id, exc, started)
            finally:
                if self._gate is not None:
                    self._gate.release(delivery)
        except BaseException:
            self._slots.free(delivery)
            raise
        if outcome is None:  # handed back unfinished: whoever runs it next completes it
            self._slots.free(delivery)
            return
        self._completer.finished(delivery, outcome)

    def _outcome(self, delivery: Delivery) -> TaskOutcome | None:
        """Run the delivery's task; its outcome, or ``None`` when it was handed back instead.

        Here, on this thread; :class:`~graflow_worker.processes.ProcessPool` runs it in a child.
        """
        return run_envelope(delivery.envelope)
