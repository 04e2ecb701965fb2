"""Limits across the fleet: ``rate_limit`` and ``max_concurrency`` counted in Redis, for every worker at once.

Each limit key (a task's ``concurrency_key``, else its id) has two sorted sets under one
hash tag, so one script reads and changes both atomically:

* ``{PREFIX:limit:KEY}:running``: the deliveries holding a place, scored by when their hold
  expires. A worker renews its holds with its other keep-alives; a worker that dies stops
  renewing, and its places come free one visibility timeout later.
* ``{PREFIX:limit:KEY}:starts``: the starts of the last period (scored by time), for the rate.

A task that may not start yet is not run and does not wait in a worker's thread: the
worker keeps its delivery aside and asks again when the script says a place should be free
(see :class:`LimitGate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import redis

    from graflow.core.routing import Routing

__all__ = ["CAP_RECHECK", "Grant", "RedisLimits"]

#: Seconds a task refused a place under ``max_concurrency`` waits before asking again, at most:
#: places come back when tasks end, which no script can foresee. A worker also asks at once
#: for a task of its own when it gives a place of the same key back (see ``LimitGate``).
CAP_RECHECK: Final = 0.1

#: Take a place.  KEYS: running, starts.  ARGV: holder, longest wait before asking again for a place
#: (ms), hold_ms, max_running (0: none), rate_count (0: none), period_ms.  Returns {1, 0} when
#: taken, else {0, ms until worth asking again}: for a rate, when the window has room; for a
#: cap, no later than the longest wait (a place may be given back any time).
#: Time is the server's, so workers whose clocks disagree still count one window.
_ACQUIRE: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local max_running = tonumber(ARGV[4])
local rate = tonumber(ARGV[5])
local period = tonumber(ARGV[6])
if max_running > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= max_running then
    local soonest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, math.max(1, math.min(tonumber(soonest[2]) - now, tonumber(ARGV[2])))}
  end
end
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - period)
  if redis.call('ZCARD', KEYS[2]) >= rate then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + period - now)}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1] .. ':' .. now)
  redis.call('PEXPIRE', KEYS[2], period)
end
if max_running > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
end
return {1, 0}
"""


@dataclass(frozen=True)
class Grant:
    """The answer to one request for a place: taken, or when to ask again."""

    taken: bool
    #: Seconds until asking again is worth it (0 when taken).
    retry_in: float = 0.0


class RedisLimits:
    """Places and starts per limit key, under one key prefix."""

    def __init__(self, client: redis.Redis, prefix: str, hold: float) -> None:
        """``hold`` (seconds): how long a place stays taken unless renewed (the visibility timeout)."""
        self._client = client
        self._prefix = prefix
        self._hold_ms = int(hold * 1000)
        self._acquire = client.register_script(_ACQUIRE)

    def keys(self, key: str) -> tuple[str, str]:
        """The running and starts sets of a limit key (one hash tag: one cluster slot)."""
        tag = f"{{{self._prefix}:limit:{key}}}"
        return f"{tag}:running", f"{tag}:starts"

    def acquire(self, key: str, routing: Routing, holder: str) -> Grant:
        """Take a place for ``holder`` (a delivery's uid) if ``routing``'s limits allow one now."""
        rate = routing.rate_limit
        taken, wait_ms = self._acquire(
            keys=list(self.keys(key)),
            args=[
                holder,
                int(CAP_RECHECK * 1000),
                self._hold_ms,
                routing.max_concurrency or 0,
                rate.count if rate is not None else 0,
                int(rate.period * 1000) if rate is not None else 0,
            ],
        )
        return Grant(True) if int(taken) else Grant(False, int(wait_ms) / 1000)

    def renew(self, holds: list[tuple[str, str]]) -> None:
        """Keep places taken (``(key, holder)`` pairs) another hold period: their tasks still run."""
        if not holds:
            return
        seconds, micros = self._client.time()
        until = seconds * 1000 + micros // 1000 + self._hold_ms
        pipe = self._client.pipeline(transaction=False)
        for key, holder in holds:
            pipe.zadd(self.keys(key)[0], {holder: until}, xx=True)
        pipe.execute()

    def release(self, key: str, holder: str) -> None:
        """Give a place back: its task ended (the start still counts against the rate)."""
        self._client.zrem(self.keys(key)[0], holder)
