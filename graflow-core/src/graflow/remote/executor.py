"""The contract of a place that runs envelopes: a process pool, a worker fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from graflow.remote.envelope import TaskEnvelope, TaskOutcome

__all__ = ["RemoteExecutor"]


class RemoteExecutor(Protocol):
    """Runs one envelope somewhere else and waits for its outcome.

    An executor that enforces the envelope's limits itself (``rate_limit``,
    ``max_concurrency``: the Redis fleet does, in Redis, for every driver and worker) sets
    ``enforces_limits = True``; for any other, the driver counts the task's starts itself.
    """

    enforces_limits: bool

    def execute(self, envelope: TaskEnvelope) -> TaskOutcome:
        """Run the envelope's task once; never raises for the task's own failure."""
        ...
