"""The store's schedules (SPEC 19) as the dashboard shows them: next fire time, pause, resume.

Schedules are kept by the store itself (:meth:`StateStore.schedules
<graflow.state.store.StateStore.schedules>`: a state directory, or a Redis key prefix), so the
dashboard reads and changes them there, as ``graflow schedule`` does; whichever schedulers
watch the store see the change at their next look.
"""

from __future__ import annotations

import time

from graflow.schedule import ScheduleStore
from graflow.schedule.model import Schedule as Kept
from graflow_ui.models import Schedule

__all__ = ["StoreSchedules"]


class StoreSchedules:
    """The schedules of one store."""

    def __init__(self, schedules: ScheduleStore) -> None:
        self._schedules = schedules
        #: Shown on the schedules page.
        self.description = (
            f"schedules kept in {schedules.where}; they fire while `graflow scheduler` (or "
            "`graflow-worker --scheduler`) watches this store"
        )

    def schedules(self) -> list[Schedule]:
        now = time.time()
        return [_shown(schedule, now) for schedule, _ in self._schedules.all()]

    def pause(self, name: str) -> Schedule:
        self._schedules.set_paused(name, True)
        return _shown(self._schedules.get(name), time.time())

    def resume(self, name: str) -> Schedule:
        """Fire ``name`` again from its next tick: ticks that passed while it was paused are skipped."""
        schedule = self._schedules.get(name)
        self._schedules.set_paused(name, False)
        now = time.time()
        tick = schedule.latest_tick(now)
        if tick is not None:
            self._schedules.claim(name, tick)
        return _shown(self._schedules.get(name), now)


def _shown(schedule: Kept, now: float) -> Schedule:
    upcoming = None if schedule.paused else schedule.next_tick(now)
    return Schedule(
        name=schedule.name,
        workflow=schedule.target,
        trigger=schedule.trigger,
        next_fire_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(upcoming)) if upcoming else None,
        paused=schedule.paused,
    )
