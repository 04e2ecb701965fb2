"""``Counters``: how many tasks a worker ran, how they ended, and the time spent in them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graflow.remote.envelope import TaskOutcome
    from graflow_worker.observer import TaskStatus

__all__ = ["Counters"]


class Counters:
    """A worker's running totals; :meth:`count` is called once per finished task, from any thread.

    ``processed`` counts the outcomes this worker recorded, so summed over the fleet it is
    what the driver counts (one per submission), and what Prometheus counts as
    ``succeeded`` plus ``failed``. A run whose outcome was not recorded by this worker is
    counted apart: ``duplicate`` (another run of the same entry recorded first) or
    ``unrecorded`` (the worker stopped before handing it over; the entry goes to another).
    Reading a single counter needs no lock (an ``int`` read is atomic); :meth:`count`
    updates them together, so ``processed == succeeded + failed`` always holds between
    two counts.
    """

    def __init__(self) -> None:
        #: Outcomes this worker recorded (succeeded + failed).
        self.processed = 0
        self.succeeded = 0
        self.failed = 0
        #: Runs whose result had already been recorded by another run of the same entry.
        self.duplicate = 0
        #: Runs whose outcome this worker could not hand over (it stopped first).
        self.unrecorded = 0
        #: Seconds spent in tasks, summed over every task run.
        self.execution_time = 0.0
        #: Set by every :meth:`count`; the heartbeat waits on it to publish fresh figures early.
        self.changed = threading.Event()
        self._lock = threading.Lock()

    def count(self, outcome: TaskOutcome, recorded: bool | None) -> TaskStatus:
        """Count one finished task; ``recorded`` is what completing it returned (``None``: not delivered).

        Returns how the task ended, as observers and metrics name it.
        """
        status: TaskStatus
        with self._lock:
            if recorded is None:
                status = "unrecorded"
                self.unrecorded += 1
            elif not recorded:
                status = "duplicate"
                self.duplicate += 1
            else:
                status = "succeeded" if outcome.success else "failed"
                self.processed += 1
                if outcome.success:
                    self.succeeded += 1
                else:
                    self.failed += 1
            self.execution_time += outcome.duration
        self.changed.set()
        return status

    def __repr__(self) -> str:
        return (
            f"<Counters processed={self.processed} succeeded={self.succeeded} "
            f"failed={self.failed} duplicate={self.duplicate} unrecorded={self.unrecorded}>"
        )
