"""The queue contract between the engine and a queue backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graflow.remote.executor import RemoteExecutor

__all__ = ["TaskQueue"]


class TaskQueue(ABC):
    """Holds the ids of tasks that are ready to run, in the order they became ready.

    A remote backend (a worker fleet) also sets :attr:`executor`: the engine then ships
    every task whose handler is relocatable there instead of running it in process.
    """

    #: Where tasks of a run on this queue execute; ``None`` means in the engine's process.
    executor: RemoteExecutor | None = None

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
