"""Task queues: where ready tasks wait (memory here; Redis in graflow-redis)."""

from __future__ import annotations

from enum import Enum

__all__ = ["QueueBackend"]


class QueueBackend(str, Enum):
    """Built-in and well-known queue backend names; plain strings work too."""

    MEMORY = "memory"
    REDIS = "redis"

    def __str__(self) -> str:
        return self.value
