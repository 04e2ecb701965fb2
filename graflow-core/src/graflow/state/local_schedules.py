"""The schedules of a local state directory: rows of its SQLite file, for schedulers on one machine.

A tick is claimed by one ``UPDATE ... WHERE last_tick < ?``: SQLite runs it in one
write transaction, so of several schedulers watching the directory exactly one moves
``last_tick`` forward and fires.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from graflow.schedule.model import Schedule, ScheduleState
from graflow.schedule.store import ScheduleStore

if TYPE_CHECKING:
    from graflow.state.local import LocalStore

__all__ = ["LocalSchedules"]


class LocalSchedules(ScheduleStore):
    """Schedules kept in the ``schedules`` table of a :class:`~graflow.state.local.LocalStore`."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self.where = store.where

    def add(self, schedule: Schedule, *, replace: bool = False) -> None:
        spec = json.dumps(schedule.to_json())
        with self._store.transaction() as db:
            if replace:
                db.execute(
                    "INSERT INTO schedules (name, spec, paused) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, paused = excluded.paused",
                    (schedule.name, spec, int(schedule.paused)),
                )
                return
            added = db.execute(
                "INSERT OR IGNORE INTO schedules (name, spec, paused) VALUES (?, ?, ?)",
                (schedule.name, spec, int(schedule.paused)),
            ).rowcount
        if not added:
            raise self._exists(schedule.name)

    def get(self, name: str) -> Schedule:
        with self._store.reading() as db:
            row = db.execute("SELECT spec, paused FROM schedules WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise self._unknown(name)
        return _schedule(*row)

    def all(self) -> list[tuple[Schedule, ScheduleState]]:
        with self._store.reading() as db:
            rows = db.execute(
                "SELECT spec, paused, last_tick, last_run, last_status, fired FROM schedules ORDER BY name"
            ).fetchall()
        return [(_schedule(spec, paused), ScheduleState(*state)) for spec, paused, *state in rows]

    def remove(self, name: str) -> None:
        with self._store.transaction() as db:
            removed = db.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount
            db.execute("DELETE FROM schedule_after WHERE name = ?", (name,))
        if not removed:
            raise self._unknown(name)

    def set_paused(self, name: str, paused: bool) -> None:
        with self._store.transaction() as db:
            changed = db.execute(
                "UPDATE schedules SET paused = ? WHERE name = ?", (int(paused), name)
            ).rowcount
        if not changed:
            raise self._unknown(name)

    def state(self, name: str) -> ScheduleState:
        with self._store.reading() as db:
            row = db.execute(
                "SELECT last_tick, last_run, last_status, fired FROM schedules WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise self._unknown(name)
        return ScheduleState(*row)

    def claim(self, name: str, tick: float) -> bool:
        with self._store.transaction() as db:
            claimed = db.execute(
                "UPDATE schedules SET last_tick = ? WHERE name = ? AND last_tick < ?", (tick, name, tick)
            ).rowcount
        return bool(claimed)

    def claim_after(self, name: str, upstream_run: str) -> bool:
        with self._store.transaction() as db:
            claimed = db.execute(
                "INSERT OR IGNORE INTO schedule_after (name, upstream_run) VALUES (?, ?)",
                (name, upstream_run),
            ).rowcount
        return bool(claimed)

    def record(self, name: str, run_id: str, status: str) -> None:
        firing = 1 if status == "running" else 0
        with self._store.transaction() as db:
            db.execute(
                "UPDATE schedules SET last_run = ?, last_status = ?, fired = fired + ? WHERE name = ?",
                (run_id, status, firing, name),
            )


def _schedule(spec: str, paused: int) -> Schedule:
    schedule = Schedule.from_json(json.loads(spec))
    schedule.paused = bool(paused)
    return schedule
