"""The seam for schedules (SPEC 19): the dashboard shows them once a plugin provides them.

Schedules are not built yet (their issue comes later), so nothing provides them today and
the schedules page says so. A plugin that keeps schedules makes them appear by naming a
factory in the entry-point group ``graflow_ui.schedules``::

    [project.entry-points."graflow_ui.schedules"]
    redis = "graflow_schedules.ui:schedule_source"

The factory is called with the dashboard's store and its config (``{"redis_url": ...,
"key_prefix": ...}`` or ``{"state_dir": ...}``) and returns a :class:`ScheduleSource`, or
``None`` when that store keeps no schedules of its kind. The first source found is used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, Final

from graflow.log import get_logger
from graflow.state.store import StateStore
from graflow_ui.models import Schedule

__all__ = ["ENTRY_POINT_GROUP", "ScheduleSource", "UnknownScheduleError", "schedule_source"]

ENTRY_POINT_GROUP: Final = "graflow_ui.schedules"

#: What a plugin names in :data:`ENTRY_POINT_GROUP`.
ScheduleSourceFactory = Callable[[StateStore, Mapping[str, Any]], "ScheduleSource | None"]


class UnknownScheduleError(LookupError):
    """No schedule of that name (the API answers 404)."""


class ScheduleSource(ABC):
    """The schedules of one store, as a provider keeps them."""

    #: Shown on the schedules page: who provides them.
    description: str = "schedules"

    @abstractmethod
    def schedules(self) -> list[Schedule]:
        """Every schedule, with its next fire time."""

    @abstractmethod
    def pause(self, name: str) -> Schedule:
        """Stop firing ``name`` until resumed (:class:`UnknownScheduleError` if unknown)."""

    @abstractmethod
    def resume(self, name: str) -> Schedule:
        """Fire ``name`` again from its next tick (:class:`UnknownScheduleError` if unknown)."""


def schedule_source(store: StateStore, config: Mapping[str, Any]) -> ScheduleSource | None:
    """The first source a plugin provides for ``store``, or ``None`` (the page says no scheduler is installed)."""
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory: ScheduleSourceFactory = entry_point.load()
            source = factory(store, config)
        except Exception as exc:  # a broken provider must not take the dashboard down
            get_logger("graflow.ui").warning(
                "schedule_source_failed", entry_point=entry_point.name, error=repr(exc)
            )
            continue
        if source is not None:
            return source
    return None
