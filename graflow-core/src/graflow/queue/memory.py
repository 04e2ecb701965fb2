"""The in-process FIFO queue the memory engine uses."""

from __future__ import annotations

from collections import deque

from graflow.queue.base import TaskQueue

__all__ = ["MemoryTaskQueue"]


class MemoryTaskQueue(TaskQueue):
    """A ``deque`` of task ids; no locking, the engine drives it from one thread."""

    def __init__(self) -> None:
        self._items: deque[str] = deque()

    def enqueue(self, task_id: str) -> None:
        self._items.append(task_id)

    def dequeue(self) -> str | None:
        items = self._items
        return items.popleft() if items else None

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
