"""The channel contract: key-value state shared by the tasks of one run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["Channel"]


class Channel(ABC):
    """Key-value state that every task of a run can read and write.

    Backends (memory, Redis, ...) behave the same: a test suite runs on each. Values
    of ``append``/``prepend`` are lists; ``atomic_add`` works on numbers; ``lock``
    serializes read-modify-write sequences across threads (and, for a distributed
    backend, across processes).
    """

    def __init__(self, name: str) -> None:
        #: The run (session) this channel belongs to.
        self.name = name

    @abstractmethod
    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value``; with ``ttl`` (seconds) the key disappears after that long."""

    @abstractmethod
    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a (live) value."""

    @abstractmethod
    def keys(self) -> list[str]:
        """Every live key."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every key."""

    @abstractmethod
    def append(self, key: str, value: Any) -> int:
        """Append to the list under ``key`` (created if missing); returns its new length."""

    @abstractmethod
    def prepend(self, key: str, value: Any) -> int:
        """Insert at the front of the list under ``key``; returns its new length."""

    @abstractmethod
    def atomic_add(self, key: str, amount: int | float = 1) -> int | float:
        """Add ``amount`` to the number under ``key`` (0 if missing), atomically; returns the sum."""

    @abstractmethod
    def lock(self, key: str, timeout: float = 10.0) -> AbstractContextManager[None]:
        """A mutual-exclusion lock named ``key``; waits at most ``timeout`` seconds.

        Raises :class:`graflow.exceptions.LockTimeoutError` when it cannot be had in time.
        """

    def remote_spec(self) -> tuple[str, dict[str, Any]] | None:
        """How another process reaches this same channel: ``(backend name, picklable config)``.

        ``None`` (the default) means it cannot; remote tasks then get a snapshot of
        :meth:`snapshot` and their writes are replayed here when they finish.
        """
        return None

    def snapshot(self) -> dict[str, Any]:
        """A copy of every live key and value."""
        return {key: self.get(key) for key in self.keys()}

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.exists(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} keys={len(self.keys())}>"
