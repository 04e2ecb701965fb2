"""Schedules: workflows that start on a cron expression, every N seconds, or after another succeeds.

``graflow schedule add nightly flows/etl.py --cron "0 2 * * *" --timezone Europe/Paris`` keeps a
schedule in a store (Redis, for a fleet; a state directory, on one machine), and schedulers
(``graflow scheduler``, ``graflow-worker --scheduler``) fire it: each tick once, however many
schedulers watch, each firing a durable run listed by ``graflow runs``. In Python::

    from graflow.schedule import Schedule, schedules_for

    schedules = schedules_for({"redis_url": "redis://localhost:6379/0", "key_prefix": "etl"})
    schedules.add(Schedule("nightly", "flows/etl.py:etl", cron="0 2 * * *", timezone="Europe/Paris"))
    schedules.add(Schedule("report", "flows/report.py", after="nightly"))   # after each success
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graflow.exceptions import ConfigError
from graflow.schedule.model import Schedule, ScheduleState
from graflow.schedule.store import ScheduleExistsError, ScheduleStore, UnknownScheduleError
from graflow.state.opening import store_for

__all__ = [
    "Schedule",
    "ScheduleExistsError",
    "ScheduleState",
    "ScheduleStore",
    "UnknownScheduleError",
    "schedules_for",
]


def schedules_for(config: Mapping[str, Any] | None = None) -> ScheduleStore:
    """The schedules of the store ``config`` points at (``{"state_dir": DIR}``, or ``{"redis_url": URL,
    "key_prefix": P}``), from any process."""
    store = store_for(config)
    schedules = store.schedules()
    if schedules is None:
        raise ConfigError(f"{store.where} keeps no schedules; use a state directory or Redis")
    return schedules
