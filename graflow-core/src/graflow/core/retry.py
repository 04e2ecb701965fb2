"""Retry policy: how often, and how long to wait, before a failed task runs again."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between attempts of a failing task.

    The wait before retry ``n`` (1-based) is ``initial_interval * backoff_factor**(n-1)``,
    capped at ``max_interval``; with ``jitter`` it is drawn uniformly from
    ``[wait/2, wait]`` so that many failing tasks do not retry in lock step.
    """

    max_retries: int = 3
    initial_interval: float = 1.0
    backoff_factor: float = 2.0
    max_interval: float = 30.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        if self.initial_interval < 0 or self.max_interval < 0:
            raise ValueError("retry intervals must be >= 0 seconds")
        if self.backoff_factor < 1:
            raise ValueError(f"backoff_factor must be >= 1, got {self.backoff_factor}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        wait = min(self.initial_interval * self.backoff_factor ** (retry - 1), self.max_interval)
        if self.jitter and wait > 0:
            wait = random.uniform(wait / 2, wait)
        return wait
