"""What a schedule is: a workflow, when it runs, and with what; and when its next tick falls.

A schedule fires on a cron expression (in a timezone), every N seconds, or after each
successful run of another schedule. Cron expressions are read by ``cronsim`` (a small,
maintained parser with DST handling, used by Healthchecks.io) rather than by a parser of
our own. A schedule is plain data (:meth:`Schedule.to_json`), so any store can keep it and
any process can read it without running code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from graflow.exceptions import ConfigError

__all__ = ["Schedule", "ScheduleState"]

#: Queues a firing may run on: the fleet (``redis``), or the scheduler's own process (``memory``).
QUEUES: Final = ("redis", "memory")


@dataclass
class Schedule:
    """``Schedule("nightly", "flows/etl.py:etl", cron="0 2 * * *", timezone="Europe/Paris")``.

    Exactly one of ``cron``, ``every`` (seconds) and ``after`` (another schedule's name) says
    when it fires. ``channel`` holds the values each firing's channel starts with (as
    ``graflow run --set``); ``queue`` is where its tasks run: ``redis`` (the worker fleet of
    the store's key prefix) or ``memory`` (inside the scheduler's process; the run is kept
    in the store all the same).
    """

    name: str
    #: ``FILE[:WORKFLOW]``, as ``graflow run`` takes it; the file is read at every firing.
    target: str
    cron: str | None = None
    timezone: str = "UTC"
    every: float | None = None
    after: str | None = None
    channel: dict[str, Any] = field(default_factory=dict)
    queue: str = "redis"
    paused: bool = False
    #: When it was added: ``every`` ticks count from here, and no tick before it fires.
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse a schedule that could never fire right, saying what to write instead."""
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in " :/\\"):
            raise ConfigError(
                f"a schedule name is a word without spaces, ':' or slashes (e.g. nightly-etl), got {self.name!r}"
            )
        given = [
            kind
            for kind, value in (("cron", self.cron), ("every", self.every), ("after", self.after))
            if value
        ]
        if len(given) != 1:
            raise ConfigError(
                f"schedule {self.name!r} needs exactly one of --cron EXPR, --every SECONDS or --after OTHER "
                f"(given: {', '.join(given) or 'none'})"
            )
        if self.cron is not None:
            self._zone()
            try:
                CronSim(self.cron, datetime.now(timezone.utc))
            except CronSimError as exc:
                raise ConfigError(
                    f"schedule {self.name!r}: {self.cron!r} is not a cron expression ({exc}); five fields: "
                    "minute hour day-of-month month day-of-week, e.g. '*/15 * * * *' or '0 2 * * 1-5'"
                ) from None
        if self.every is not None and (
            isinstance(self.every, bool)
            or not isinstance(self.every, (int, float))
            or not math.isfinite(self.every)
            or self.every < 1
        ):
            raise ConfigError(
                f"schedule {self.name!r}: --every takes a whole number of seconds >= 1, got {self.every!r}"
            )
        if self.after is not None and self.after == self.name:
            raise ConfigError(f"schedule {self.name!r} cannot run after itself")
        if self.queue not in QUEUES:
            raise ConfigError(
                f"schedule {self.name!r}: queue must be one of {', '.join(QUEUES)}, got {self.queue!r}"
            )

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"schedule {self.name!r}: unknown timezone {self.timezone!r}; use an IANA name such as "
                "UTC, Europe/Paris or America/New_York"
            ) from None

    # --- when it fires ---------------------------------------------------------------------

    @property
    def trigger(self) -> str:
        """The trigger in words, for listings: ``cron 0 2 * * * (Europe/Paris)``, ``every 300s``, ``after etl``."""
        if self.cron is not None:
            zone = f" ({self.timezone})" if self.timezone != "UTC" else ""
            return f"cron {self.cron}{zone}"
        if self.every is not None:
            return f"every {self.every:g}s"
        return f"after {self.after}"

    def latest_tick(self, now: float) -> float | None:
        """The latest tick at or before ``now`` and not before the schedule existed (``None``: none yet).

        Ticks missed while no scheduler ran collapse into this one: it fires once.
        """
        if self.cron is not None:
            zone = self._zone()
            # Reverse iteration excludes its start: start a second later to include ``now``.
            start = datetime.fromtimestamp(now, zone) + timedelta(seconds=1)
            tick = next(CronSim(self.cron, start, reverse=True)).timestamp()
        elif self.every is not None:
            tick = self.created_at + math.floor((now - self.created_at) / self.every) * self.every
        else:
            return None
        return tick if tick > self.created_at else None

    def next_tick(self, after: float) -> float | None:
        """The first tick strictly after ``after`` (``None`` for a schedule that runs after another)."""
        if self.cron is not None:
            start = datetime.fromtimestamp(after, self._zone())
            return next(CronSim(self.cron, start)).timestamp()
        if self.every is not None:
            steps = math.floor((after - self.created_at) / self.every) + 1
            return self.created_at + max(steps, 1) * self.every
        return None

    # --- as data ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "cron": self.cron,
            "timezone": self.timezone,
            "every": self.every,
            "after": self.after,
            "channel": self.channel,
            "queue": self.queue,
            "paused": self.paused,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class ScheduleState:
    """What happened to a schedule: kept apart from its definition, written by schedulers."""

    #: The latest tick claimed by a scheduler (fired, or being fired); 0 before the first.
    last_tick: float = 0.0
    #: The run id of the latest firing, and how it ended (``running`` until it does).
    last_run: str | None = None
    last_status: str | None = None
    #: Firings so far.
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "last_tick": self.last_tick or None,
            "last_run": self.last_run,
            "last_status": self.last_status,
            "fired": self.fired,
        }
