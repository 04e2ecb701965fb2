"""A channel copy that records writes, so a remote run's writes can be replayed on the real channel."""

from __future__ import annotations

from typing import Any

from graflow.channels.memory import MemoryChannel

__all__ = ["ChannelOp", "RecordingChannel"]

#: A channel write to replay on the run's channel: ``(method, args)``, e.g. ``("set", ("k", 1, None))``.
ChannelOp = tuple[str, tuple[Any, ...]]


class RecordingChannel(MemoryChannel):
    """Starts from a snapshot of the run's channel; :attr:`ops` lists every write in order.

    Operations are recorded, not resulting values: replaying ``atomic_add`` or
    ``append`` on the run's channel composes correctly with concurrent members.
    Locks taken here are local to the remote process.
    """

    def __init__(self, name: str, snapshot: dict[str, Any]) -> None:
        super().__init__(name)
        self._data.update(snapshot)
        self.ops: list[ChannelOp] = []

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        super().set(key, value, ttl)
        self.ops.append(("set", (key, value, ttl)))

    def delete(self, key: str) -> bool:
        existed = super().delete(key)
        self.ops.append(("delete", (key,)))
        return existed

    def clear(self) -> None:
        super().clear()
        self.ops.append(("clear", ()))

    def append(self, key: str, value: Any) -> int:
        length = super().append(key, value)
        self.ops.append(("append", (key, value)))
        return length

    def prepend(self, key: str, value: Any) -> int:
        length = super().prepend(key, value)
        self.ops.append(("prepend", (key, value)))
        return length

    def atomic_add(self, key: str, amount: int | float = 1) -> int | float:
        total = super().atomic_add(key, amount)
        self.ops.append(("atomic_add", (key, amount)))
        return total
