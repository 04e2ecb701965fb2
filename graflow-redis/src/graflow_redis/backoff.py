"""``Backoff``: how long to wait before trying Redis again after a failure.

Every loop that retries Redis (a driver's submits and its outcome listener, a worker's
fetches and completions) waits through one of these, so "retried with backoff" means
the same everywhere: a short first pause, doubled after each failure up to a cap, and
the short pause again once a call succeeds. Which errors are worth a retry is
:data:`graflow_redis.connection.CONNECTION_ERRORS`.
"""

from __future__ import annotations

from typing import Final

__all__ = ["Backoff"]

#: First pause of a driver's retries (it keeps a user waiting, so it retries quickly).
FIRST_PAUSE: Final = 0.05
#: Longest pause of a driver's retries.
MAX_PAUSE: Final = 2.0


class Backoff:
    """Exponential pauses between attempts: ``first``, doubled after each failure up to ``cap``.

    One instance per retry loop (it is not thread-safe)::

        backoff = Backoff()
        while not stop.is_set():
            try:
                value = client.blpop(...)
            except CONNECTION_ERRORS:
                stop.wait(backoff.next())
                continue
            backoff.reset()
    """

    __slots__ = ("_pause", "cap", "first")

    def __init__(self, first: float = FIRST_PAUSE, cap: float = MAX_PAUSE) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"a backoff needs 0 < first <= cap, got first={first!r}, cap={cap!r}")
        #: The pause after a first failure, and again after a success.
        self.first = first
        #: The longest pause.
        self.cap = cap
        self._pause = first

    def next(self) -> float:
        """The pause to wait after a failure now; the following one is twice as long, up to ``cap``."""
        pause = self._pause
        self._pause = min(pause * 2, self.cap)
        return pause

    def reset(self) -> None:
        """A call succeeded: the next failure waits ``first`` again."""
        self._pause = self.first

    def __repr__(self) -> str:
        return f"<Backoff next={self._pause:g}s first={self.first:g}s cap={self.cap:g}s>"
