"""Where schedules are kept, and how schedulers agree that a tick fires once.

A durable state store offers its schedules through :meth:`StateStore.schedules
<graflow.state.store.StateStore.schedules>`: the Redis store (one key prefix's fleet)
and the local store (one state directory). Any number of schedulers may watch one store;
:meth:`ScheduleStore.claim` is the one atomic step that decides which of them fires a
tick: it moves the schedule's ``last_tick`` forward only if no one has already.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from graflow.exceptions import ConfigError
from graflow.schedule.model import Schedule, ScheduleState

__all__ = ["ScheduleExistsError", "ScheduleStore", "UnknownScheduleError"]


class UnknownScheduleError(ConfigError, LookupError):
    """No schedule of that name in the store that was asked."""


class ScheduleExistsError(ConfigError):
    """A schedule of that name exists already (remove it first, or replace it)."""


class ScheduleStore(ABC):
    """The schedules of one store, and their states."""

    #: Where the schedules are, for messages.
    where: str

    @abstractmethod
    def add(self, schedule: Schedule, *, replace: bool = False) -> None:
        """Keep ``schedule`` (:class:`ScheduleExistsError` if its name is taken, unless ``replace``)."""

    @abstractmethod
    def get(self, name: str) -> Schedule:
        """One schedule (:class:`UnknownScheduleError` if there is none of that name)."""

    @abstractmethod
    def all(self) -> list[tuple[Schedule, ScheduleState]]:
        """Every schedule with its state, by name."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Forget a schedule and its state (runs it fired stay in the store)."""

    @abstractmethod
    def set_paused(self, name: str, paused: bool) -> None:
        """Pause a schedule (its ticks pass without firing) or resume it (from the next tick on)."""

    @abstractmethod
    def state(self, name: str) -> ScheduleState:
        """What happened to it so far."""

    @abstractmethod
    def claim(self, name: str, tick: float) -> bool:
        """Atomically: if the schedule's ``last_tick`` is before ``tick``, make it ``tick`` and return True.

        Of several schedulers claiming one tick, exactly one gets True and fires it.
        """

    @abstractmethod
    def claim_after(self, name: str, upstream_run: str) -> bool:
        """Atomically: True for the first claim of ``name`` firing after ``upstream_run``, False after."""

    @abstractmethod
    def record(self, name: str, run_id: str, status: str) -> None:
        """Note a firing's run and how it stands (``running`` when it starts counts one firing)."""

    def dependents(self, name: str) -> list[Schedule]:
        """The schedules that fire after each successful run of ``name``."""
        return [schedule for schedule, _ in self.all() if schedule.after == name]

    def _unknown(self, name: str) -> UnknownScheduleError:
        return UnknownScheduleError(
            f"no schedule {name!r} in {self.where}; `graflow schedule list` shows them (point it at the "
            "store: --state-dir DIR, or --redis-url URL --key-prefix P)"
        )

    def _exists(self, name: str) -> ScheduleExistsError:
        return ScheduleExistsError(
            f"a schedule named {name!r} exists in {self.where}; remove it first "
            f"(`graflow schedule remove {name}`) or choose another name"
        )
