"""What a queue backend provides: where a run's tasks execute.

The engine keeps its ready queue itself. What a backend decides is *placement*: with
``executor`` set, every task whose handler is relocatable runs there (a worker fleet)
instead of in the engine's thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from graflow.remote.executor import RemoteExecutor

__all__ = ["InProcess", "Placement"]


class Placement(Protocol):
    """The object a ``graflow_queue_backends`` factory returns for one run."""

    @property
    def executor(self) -> RemoteExecutor | None:
        """Where the run's relocatable tasks execute; ``None`` means in the engine's own thread."""

    def close(self) -> None:
        """Release what the run held (connections, listener threads); called once when it ends."""


class InProcess:
    """The memory backend's placement: every task runs in the engine's process."""

    executor: RemoteExecutor | None = None

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "<InProcess placement>"
