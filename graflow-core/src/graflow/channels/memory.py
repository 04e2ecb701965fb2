"""The in-process channel: a dict behind a lock, with expiry for ``ttl``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from graflow.channels.base import Channel
from graflow.exceptions import LockTimeoutError
from graflow.plugins import hookimpl

__all__ = ["MemoryChannel"]


class MemoryChannel(Channel):
    """Thread-safe channel for one process; what a run uses unless told otherwise."""

    def __init__(self, name: str = "default") -> None:
        super().__init__(name)
        self._data: dict[str, Any] = {}
        self._expiry: dict[str, float] = {}
        self._mutex = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}

    def _live(self, key: str) -> bool:
        """Whether ``key`` exists and has not expired (drops it if it has). Call under the mutex."""
        if key not in self._data:
            return False
        deadline = self._expiry.get(key)
        if deadline is not None and time.monotonic() >= deadline:
            del self._data[key]
            del self._expiry[key]
            return False
        return True

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
        with self._mutex:
            self._data[key] = value
            if ttl is None:
                self._expiry.pop(key, None)
            else:
                self._expiry[key] = time.monotonic() + ttl

    def get(self, key: str, default: Any = None) -> Any:
        with self._mutex:
            return self._data[key] if self._live(key) else default

    def delete(self, key: str) -> bool:
        with self._mutex:
            existed = self._live(key)
            self._data.pop(key, None)
            self._expiry.pop(key, None)
            return existed

    def exists(self, key: str) -> bool:
        with self._mutex:
            return self._live(key)

    def keys(self) -> list[str]:
        with self._mutex:
            return [k for k in list(self._data) if self._live(k)]

    def clear(self) -> None:
        with self._mutex:
            self._data.clear()
            self._expiry.clear()

    def _list(self, key: str) -> list[Any]:
        current = self._data.get(key) if self._live(key) else None
        if current is None:
            current = self._data[key] = []
        elif not isinstance(current, list):
            raise TypeError(f"channel key {key!r} holds a {type(current).__name__}, not a list")
        return current

    def append(self, key: str, value: Any) -> int:
        with self._mutex:
            items = self._list(key)
            items.append(value)
            return len(items)

    def prepend(self, key: str, value: Any) -> int:
        with self._mutex:
            items = self._list(key)
            items.insert(0, value)
            return len(items)

    def atomic_add(self, key: str, amount: int | float = 1) -> int | float:
        with self._mutex:
            current = self._data[key] if self._live(key) else 0
            if not isinstance(current, (int, float)) or isinstance(current, bool):
                raise TypeError(f"channel key {key!r} holds a {type(current).__name__}, not a number")
            self._data[key] = total = current + amount
            return total

    @contextmanager
    def lock(self, key: str, timeout: float = 10.0) -> Iterator[None]:
        with self._mutex:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise LockTimeoutError(
                f"channel lock {key!r} not acquired within {timeout}s; another task holds it. "
                "Raise timeout= or keep locked sections short."
            )
        try:
            yield
        finally:
            lock.release()

    def snapshot(self) -> dict[str, Any]:
        """A shallow copy of the live data (for shipping to another process)."""
        with self._mutex:
            return {k: self._data[k] for k in list(self._data) if self._live(k)}


def _memory_channel(session_id: str, config: Mapping[str, Any]) -> Channel:
    return MemoryChannel(session_id)


@hookimpl
def graflow_channel_backends() -> Mapping[str, Callable[[str, Mapping[str, Any]], Channel]]:
    return {"memory": _memory_channel}
