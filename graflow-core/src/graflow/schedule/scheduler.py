"""The scheduler: watches a store's schedules and starts a durable run for each tick, exactly once.

Any number of schedulers may watch one store (``graflow scheduler``, or ``graflow-worker
--scheduler`` on every worker): each computes the latest due tick of every schedule and
*claims* it (:meth:`ScheduleStore.claim`); the one claim that succeeds fires it. Ticks
missed while no scheduler ran collapse into the latest one, which fires once.

A firing loads the schedule's workflow file (at every firing, so an edited file takes
effect, as with cron) and runs it as a durable run kept in the same store: on the worker
fleet (queue ``redis``), or in this process (queue ``memory``). Firings run in a small
pool of threads, so a long run never delays another schedule's tick; a run that is still
going when its next tick comes does not stop that tick (as with cron). When a run
succeeds, the schedules that run ``after`` it fire, once per run.

Tasks learn which tick their run is for (as Airflow's ``logical_date``) from the channel:
``ctx.get_channel().get("graflow.schedule")`` is ``{"name", "tick" (ISO 8601, UTC),
"timestamp"}``, wherever the task runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from graflow.cli.loader import WorkflowTarget, loaded_workflow
from graflow.core.engine import WorkflowEngine
from graflow.exceptions import ConfigError
from graflow.hitl.types import suspends
from graflow.log import get_logger
from graflow.schedule.model import Schedule
from graflow.schedule.store import ScheduleStore
from graflow.state.opening import store_for, store_name

__all__ = ["SCHEDULE_KEY", "Firing", "Scheduler"]

#: Longest sleep between two looks at the store: new, paused and resumed schedules are seen this soon.
POLL: Final = 1.0
#: Firings running at once in one scheduler.
MAX_RUNNING: Final = 4

#: The channel key telling a fired run's tasks which schedule and tick they run for.
SCHEDULE_KEY: Final = "graflow.schedule"

#: Loading a workflow file swaps a module into ``sys.modules``: one file at a time per process.
_LOADING: Final = threading.Lock()


@dataclass(frozen=True)
class Firing:
    """A tick this scheduler claimed and started."""

    schedule: str
    tick: float
    #: Seconds between the tick and the start of its firing.
    lateness: float


class Scheduler:
    """Fires the schedules of the store ``config`` points at (``{"redis_url": ..., "key_prefix": ...}``
    or ``{"state_dir": ...}``, as the ``graflow`` commands' store options)."""

    def __init__(
        self, config: Mapping[str, Any], *, poll: float = POLL, max_running: int = MAX_RUNNING
    ) -> None:
        self.config = dict(config)
        store = store_for(self.config)
        schedules = store.schedules()
        if schedules is None:
            raise ConfigError(
                f"{store.where} keeps no schedules; point the scheduler at a state directory or Redis"
            )
        self.schedules: ScheduleStore = schedules
        #: The store's name: firings on the memory queue are kept in it too.
        self.store_name = store_name(self.config)
        self.poll = poll
        self._pool = ThreadPoolExecutor(max_running, thread_name_prefix="graflow-firing")
        self._log = get_logger("graflow.schedule")

    # --- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set; firings still running are left to finish."""
        self._log.info("scheduler_started", store=self.schedules.where)
        while not stop.is_set():
            try:
                wake = self.run_once(time.time())
            except Exception as exc:  # noqa: BLE001 - a store that hiccups must not end the scheduler
                self._log.warning("scheduler_pass_failed", error=f"{type(exc).__name__}: {exc}")
                wake = time.time() + self.poll
            stop.wait(max(0.0, min(wake - time.time(), self.poll)))
        self._log.info("scheduler_stopped", store=self.schedules.where)

    def run_once(self, now: float) -> float:
        """Claim and start every tick due at ``now``; when the next one falls (at most one poll away)."""
        wake = now + self.poll
        for schedule, state in self.schedules.all():
            if schedule.paused or schedule.after is not None:
                continue
            tick = schedule.latest_tick(now)
            if tick is not None and tick > state.last_tick and self.schedules.claim(schedule.name, tick):
                self.start(schedule, tick, now)
            upcoming = schedule.next_tick(now)
            if upcoming is not None:
                wake = min(wake, upcoming)
        return wake

    def start(self, schedule: Schedule, tick: float, now: float | None = None) -> Firing:
        """Start a run of ``schedule`` for ``tick`` in the pool (the tick is claimed already)."""
        firing = Firing(schedule.name, tick, max(0.0, (now or time.time()) - tick))
        self._pool.submit(self._fire, schedule, firing)
        return firing

    def close(self, wait: bool = False) -> None:
        """Stop taking firings; ``wait=True`` waits for those running."""
        self._pool.shutdown(wait=wait)

    # --- one firing ------------------------------------------------------------------------

    def _fire(self, schedule: Schedule, firing: Firing) -> None:
        log = self._log.bind(schedule=schedule.name)
        try:
            context = self._context(schedule, firing)
        except Exception as exc:  # noqa: BLE001 - a broken file fails this firing, not the scheduler
            log.error("schedule_not_started", target=schedule.target, error=f"{type(exc).__name__}: {exc}")
            self.schedules.record(schedule.name, "", "failed to start")
            return
        run_id = context.session_id
        self.schedules.record(schedule.name, run_id, "running")
        log.info("schedule_fired", run_id=run_id, tick=_iso(firing.tick), lateness=round(firing.lateness, 4))
        try:
            WorkflowEngine().execute(context)
        except Exception as exc:  # noqa: BLE001 - the run's own failure is its status
            status = "suspended" if suspends(exc) else "failed"
            log.warning(
                "schedule_run_ended", run_id=run_id, status=status, error=f"{type(exc).__name__}: {exc}"
            )
        else:
            status = "succeeded"
            log.info("schedule_run_ended", run_id=run_id, status=status)
        self.schedules.record(schedule.name, run_id, status)
        if status == "succeeded":
            for dependent in self.schedules.dependents(schedule.name):
                if not dependent.paused and self.schedules.claim_after(dependent.name, run_id):
                    self.start(dependent, time.time())

    def _context(self, schedule: Schedule, firing: Firing) -> Any:
        """The firing's run: its workflow loaded from the file, kept in this store, its channel set."""
        if schedule.queue == "redis":
            options: dict[str, Any] = {
                "queue_backend": "redis",
                "channel_backend": "redis",
                "config": dict(self.config),
            }
        else:
            config = {
                **self.config,
                "state_store": self.store_name,
                "schedule": schedule.name,
                "tick": firing.tick,
            }
            options = {"durable": True, "config": config}
        with _LOADING, loaded_workflow(WorkflowTarget.parse(schedule.target)) as wf:
            context = wf.create_context(**options)
        for key, value in schedule.channel.items():
            context.channel.set(key, value)
        context.channel.set(
            SCHEDULE_KEY, {"name": schedule.name, "tick": _iso(firing.tick), "timestamp": firing.tick}
        )
        return context


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
