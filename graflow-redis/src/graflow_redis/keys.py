"""Every Redis key graflow-redis uses, in one place: all start with ``f"{key_prefix}:"``.

Drivers and workers agree on nothing but the key prefix, so the layout below *is* the
wire protocol between them (together with :mod:`graflow_redis.entry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["GROUP", "Keys"]

#: The consumer group every worker of a key prefix reads the task stream through.
GROUP: Final = "graflow-workers"


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix."""

    prefix: str

    @property
    def tasks(self) -> str:
        """Stream of task entries waiting for, or held by, a worker."""
        return f"{self.prefix}:tasks"

    @property
    def dead(self) -> str:
        """Stream of entries that could not be run, each with its reason."""
        return f"{self.prefix}:dead"

    @property
    def workers(self) -> str:
        """Set of worker ids that sent a heartbeat (some may have expired since)."""
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        """A worker's heartbeat (JSON), expiring unless refreshed."""
        return f"{self.prefix}:worker:{worker_id}"

    def done(self, uid: str) -> str:
        """Marks a submission whose outcome was recorded, so a second run records nothing."""
        return f"{self.prefix}:done:{uid}"

    def reply(self, driver_id: str) -> str:
        """List where workers push the outcomes of one driver's submissions."""
        return f"{self.prefix}:reply:{driver_id}"

    def channel(self, session_id: str) -> str:
        """Common prefix of one run's channel keys."""
        return f"{self.prefix}:ch:{session_id}"
