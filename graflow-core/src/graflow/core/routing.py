"""Where and how fast a task may run: its queue, its priority, and its limits across the fleet.

``@task(queue="gpu", priority=8, rate_limit="10/s", concurrency_key="tenant-a", max_concurrency=2)``
gives a task a :class:`Routing`. A queue backend reads it from the task's envelope: the
Redis fleet routes by queue, takes higher priorities first and enforces the limits in
Redis for every worker and driver at once; a run that stays in its process enforces the
limits here (:mod:`graflow.core.limits`) and has no queues to route to. A task without
any of these has no routing at all, and costs nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from graflow.exceptions import ConfigError

__all__ = ["DEFAULT_PRIORITY", "DEFAULT_QUEUE", "Rate", "Routing"]

#: The queue of a task that names none, and the queue a worker serves unless told otherwise.
DEFAULT_QUEUE: Final = "default"
#: Priorities go from 0 (last) to 9 (first).
DEFAULT_PRIORITY: Final = 5
_QUEUE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RATE: Final = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_PERIODS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rate:
    """``"10/s"``: at most ``count`` starts per ``period`` seconds."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str, owner: str) -> Rate:
        match = _RATE.match(text) if isinstance(text, str) else None
        if match is None or int(match.group(1)) < 1:
            raise ConfigError(
                f"{owner}: rate_limit takes 'N/s', 'N/m' or 'N/h' with N a whole number >= 1 "
                f"(e.g. rate_limit='10/s'), got {text!r}"
            )
        return cls(int(match.group(1)), _PERIODS[match.group(2)[0]])

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period]
        return f"{self.count}/{unit}"


@dataclass(frozen=True)
class Routing:
    """A task's queue, priority and limits; ``None`` fields are not set (the run's or the default apply)."""

    queue: str | None = None
    priority: int | None = None
    rate_limit: Rate | None = None
    #: Tasks that share a key share ``max_concurrency`` (and ``rate_limit``) across the fleet.
    concurrency_key: str | None = None
    max_concurrency: int | None = None

    @classmethod
    def of(
        cls,
        owner: str,
        *,
        queue: str | None = None,
        priority: int | None = None,
        rate_limit: str | None = None,
        concurrency_key: str | None = None,
        max_concurrency: int | None = None,
    ) -> Routing | None:
        """The routing these options give (``None`` when none is set), or a :class:`ConfigError` saying why not."""
        if (
            queue is None
            and priority is None
            and rate_limit is None
            and concurrency_key is None
            and max_concurrency is None
        ):
            return None
        return cls(
            queue=check_queue(queue, owner) if queue is not None else None,
            priority=check_priority(priority, owner) if priority is not None else None,
            rate_limit=Rate.parse(rate_limit, owner) if rate_limit is not None else None,
            concurrency_key=_key(concurrency_key, owner) if concurrency_key is not None else None,
            max_concurrency=_positive(max_concurrency, owner) if max_concurrency is not None else None,
        )

    @property
    def limited(self) -> bool:
        """Whether starts of the task must be counted (a rate or a concurrency limit)."""
        return self.rate_limit is not None or self.max_concurrency is not None

    def limit_key(self, task_id: str) -> str:
        """What the limits count: ``concurrency_key`` when given, else the task id."""
        return self.concurrency_key or task_id

    def under(self, queue: str | None = None, priority: int | None = None) -> Routing:
        """This routing where the task's own settings win over a group's queue and a run's priority."""
        return replace(
            self,
            queue=self.queue if self.queue is not None else queue,
            priority=self.priority if self.priority is not None else priority,
        )


def check_queue(queue: object, owner: str) -> str:
    if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
        raise ConfigError(
            f"{owner}: a queue name is 1-64 letters, digits, '_', '.' or '-' (e.g. queue='gpu'), got {queue!r}"
        )
    return queue


def check_priority(priority: object, owner: str) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise ConfigError(f"{owner}: priority is a whole number from 0 (last) to 9 (first), got {priority!r}")
    return priority


def _key(key: object, owner: str) -> str:
    if not isinstance(key, str) or not key or len(key) > 200:
        raise ConfigError(f"{owner}: concurrency_key is a non-empty string (e.g. 'tenant-a'), got {key!r}")
    return key


def _positive(value: object, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}: max_concurrency is a whole number >= 1, got {value!r}")
    return value
