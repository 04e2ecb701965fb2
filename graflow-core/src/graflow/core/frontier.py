"""Where a run's top-level scheduling stands: which nodes are ready, which wait, and for what.

The engine's top-level loop works directly on a :class:`Frontier` owned by the run's
:class:`~graflow.core.context.ExecutionContext`, so that a checkpoint can copy it between
two steps and a restored run can carry on from it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Frontier"]


@dataclass
class Frontier:
    """The top-level scheduling state of one run."""

    #: Node ids ready to run, in order.
    ready: deque[str] = field(default_factory=deque)
    #: Node id -> how many predecessors it still waits for (only nodes that started waiting).
    remaining: dict[str, int] = field(default_factory=dict)
    #: Task id -> the ``next_iteration`` data its next run receives.
    iteration_data: dict[str, Any] = field(default_factory=dict)
    #: Node id -> how many times it ran in the top-level flow (its steps' occurrence numbers).
    occurrences: dict[str, int] = field(default_factory=dict)

    @classmethod
    def starting_at(cls, nodes: Iterable[str]) -> Frontier:
        return cls(ready=deque(nodes))

    def copy(self) -> Frontier:
        return Frontier(
            deque(self.ready), dict(self.remaining), dict(self.iteration_data), dict(self.occurrences)
        )
