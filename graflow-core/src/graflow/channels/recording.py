"""A channel that passes every operation to another one and reports each write.

Two uses, one class:

* a task run in another process gets a :meth:`RecordingChannel.over_snapshot` (a
  memory channel seeded with the run's channel); its writes come back in the outcome
  and are replayed on the run's channel;
* a durable run on an in-process channel wraps it, so each write is kept with the
  step that made it, and the channel can be rebuilt after a crash.

Operations are recorded, not resulting values: replaying ``atomic_add`` or ``append``
on the run's channel composes correctly with concurrent writers.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from graflow.channels.base import Channel
from graflow.channels.memory import MemoryChannel

__all__ = ["ChannelOp", "RecordingChannel", "replay"]

#: A channel write to replay on the run's channel: ``(method, args)``, e.g. ``("set", ("k", 1, None))``.
ChannelOp = tuple[str, tuple[Any, ...]]


class RecordingChannel(Channel):
    """Operations go to ``inner``; every write is also handed to ``sink`` as a :data:`ChannelOp`."""

    def __init__(self, inner: Channel, sink: Callable[[ChannelOp], None]) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self._sink = sink

    @classmethod
    def over_snapshot(cls, name: str, snapshot: dict[str, Any], ops: list[ChannelOp]) -> RecordingChannel:
        """A private copy of a channel whose writes are appended to ``ops``."""
        inner = MemoryChannel(name)
        for key, value in snapshot.items():
            inner.set(key, value)
        return cls(inner, ops.append)

    # --- reads ------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self.inner.get(key, default)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def keys(self) -> list[str]:
        return self.inner.keys()

    def snapshot(self) -> dict[str, Any]:
        return self.inner.snapshot()

    def lock(self, key: str, timeout: float = 10.0) -> AbstractContextManager[None]:
        return self.inner.lock(key, timeout)

    # --- writes -----------------------------------------------------------------------

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self.inner.set(key, value, ttl)
        self._sink(("set", (key, value, ttl)))

    def delete(self, key: str) -> bool:
        existed = self.inner.delete(key)
        self._sink(("delete", (key,)))
        return existed

    def clear(self) -> None:
        self.inner.clear()
        self._sink(("clear", ()))

    def append(self, key: str, value: Any) -> int:
        length = self.inner.append(key, value)
        self._sink(("append", (key, value)))
        return length

    def prepend(self, key: str, value: Any) -> int:
        length = self.inner.prepend(key, value)
        self._sink(("prepend", (key, value)))
        return length

    def atomic_add(self, key: str, amount: int | float = 1) -> int | float:
        total = self.inner.atomic_add(key, amount)
        self._sink(("atomic_add", (key, amount)))
        return total

    def __repr__(self) -> str:
        return f"<RecordingChannel over {self.inner!r}>"


def replay(channel: Channel, ops: list[ChannelOp]) -> None:
    """Apply recorded writes to ``channel``, in order."""
    for method, args in ops:
        getattr(channel, method)(*args)
