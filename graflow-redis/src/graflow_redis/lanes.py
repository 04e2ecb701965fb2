"""Queues and priority lanes on Redis Streams: where a task entry waits, and in what order workers take it.

Each queue has one stream per priority, ``{PREFIX}:q:QUEUE:pN`` for N from 0 to 9. The
braces are the prefix's Redis Cluster hash tag: a worker acknowledges an entry in the same
script that records its outcome and the run's step (:data:`~graflow_redis.scripts.FINISH`),
so the lanes live on the prefix's slot with the rest of the queue (see :mod:`graflow_redis.keys`). Every lane is read through the
consumer group ``graflow-workers``, so at-least-once delivery, visibility timeouts and dead
letters work per lane exactly as on one stream.

A worker takes entries with :data:`FETCH`: one script that reads the lanes from the highest
priority down and stops as soon as it has as many entries as it has free slots. So a ready
task of higher priority is always taken before a lower one on the same queue, except that
one fetch in :data:`INVERT_EVERY` reads the lanes from the lowest up: lower priorities get
a share of the fleet whenever they wait, and are never starved.
"""

from __future__ import annotations

from typing import Final

from graflow.core.routing import DEFAULT_PRIORITY, DEFAULT_QUEUE, Routing

__all__ = ["CLAIM", "DEPTH", "FETCH", "INVERT_EVERY", "LANES", "lane", "lanes", "route"]

#: Priorities, highest first: the order a fetch reads a queue's lanes in.
LANES: Final = tuple(range(9, -1, -1))
#: One fetch in this many reads the lanes from the lowest priority up (see the module's doc).
INVERT_EVERY: Final = 10

#: Take up to COUNT new entries of one queue, highest lane first (lowest first when inverted).
#: KEYS: the queue's lanes, highest priority first.  ARGV: group, consumer, count, inverted (0/1).
#: Returns a flat list: lane key, entry id, {field, value, ...}, lane key, entry id, ...
#: An empty lane costs one XLEN. A lane that has entries but no group yet (a driver wrote
#: first) gets one, from its start.
FETCH: Final = """
local want = tonumber(ARGV[3])
local first, last, step = 1, #KEYS, 1
if ARGV[4] == '1' then first, last, step = #KEYS, 1, -1 end
local taken = {}
for i = first, last, step do
  if want <= 0 then break end
  local key = KEYS[i]
  if redis.call('XLEN', key) > 0 then
    local ok, read = pcall(redis.call, 'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', key, '>')
    if not ok then
      redis.call('XGROUP', 'CREATE', key, ARGV[1], '0')
      read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', key, '>')
    end
    if read then
      for _, entry in ipairs(read[1][2]) do
        taken[#taken + 1] = key
        taken[#taken + 1] = entry[1]
        taken[#taken + 1] = entry[2]
        want = want - 1
      end
    end
  end
end
return taken
"""

#: Claim up to COUNT entries of a queue whose holder went silent (``XAUTOCLAIM``), highest
#: lane first, with each claimed entry's delivery count. A lane without a group is skipped.
#: KEYS: the queue's lanes.  ARGV: group, consumer, min_idle_ms, count, then one scan cursor
#: per lane.  Returns one ``{next cursor, entries, delivery counts}`` per lane.
CLAIM: Final = """
local want = tonumber(ARGV[4])
local out = {}
for i, key in ipairs(KEYS) do
  local cursor, entries, counts = ARGV[4 + i], {}, {}
  if want > 0 and redis.call('EXISTS', key) == 1 then
    local ok, r = pcall(redis.call, 'XAUTOCLAIM', key, ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', want)
    if ok then
      cursor, entries = r[1], r[2]
      for j, e in ipairs(entries) do
        local p = redis.call('XPENDING', key, ARGV[1], e[1], e[1], 1)
        if p[1] then counts[j] = p[1][4] else counts[j] = 1 end
      end
      want = want - #entries
    end
  end
  out[i] = {cursor, entries, counts}
end
return out
"""

#: Entries of a queue waiting for a worker, and entries held by one (acknowledged entries are
#: deleted, so a lane's length less its pending entries is what waits).
#: KEYS: the queue's lanes.  ARGV: group.  Returns {waiting, held}.
DEPTH: Final = """
local waiting, held = 0, 0
for _, key in ipairs(KEYS) do
  local n = redis.call('XLEN', key)
  if n > 0 then
    local ok, p = pcall(redis.call, 'XPENDING', key, ARGV[1])
    local pending = 0
    if ok then pending = p[1] end
    held = held + pending
    waiting = waiting + math.max(n - pending, 0)
  end
end
return {waiting, held}
"""


def lane(prefix: str, queue: str, priority: int) -> str:
    """The stream of ``queue``'s lane for ``priority``: ``{graflow}:q:gpu:p7``."""
    return f"{{{prefix}}}:q:{queue}:p{priority}"


def lanes(prefix: str, queue: str) -> list[str]:
    """A queue's lanes, highest priority first (the order :data:`FETCH` takes its keys in)."""
    return [lane(prefix, queue, priority) for priority in LANES]


def route(routing: Routing | None) -> tuple[str, int]:
    """``(queue, priority)`` of a task entry: its routing's, else the defaults."""
    if routing is None:
        return DEFAULT_QUEUE, DEFAULT_PRIORITY
    queue = routing.queue if routing.queue is not None else DEFAULT_QUEUE
    priority = routing.priority if routing.priority is not None else DEFAULT_PRIORITY
    return queue, priority
