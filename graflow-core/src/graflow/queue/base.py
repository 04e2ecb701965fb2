"""The queue contract between the engine and a queue backend."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["TaskQueue"]


class TaskQueue(ABC):
    """Holds the ids of tasks that are ready to run, in the order they became ready."""

    @abstractmethod
    def enqueue(self, task_id: str) -> None:
        """Add a ready task."""

    @abstractmethod
    def dequeue(self) -> str | None:
        """The next ready task, or ``None`` when none is waiting."""

    @abstractmethod
    def __len__(self) -> int:
        """How many tasks wait."""

    def clear(self) -> None:
        """Drop every waiting task (a terminated run)."""
        while self.dequeue() is not None:
            pass

    def close(self) -> None:
        """Release resources; called once when the run ends."""
