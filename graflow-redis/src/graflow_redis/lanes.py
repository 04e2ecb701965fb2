"""Queues and priority lanes on Redis Streams: where a task entry waits, and in what order workers take it.

Each queue has one stream per priority, ``{PREFIX:q:QUEUE}:pN`` for N from 0 to 9; the
braces are a Redis Cluster hash tag, so a queue's lanes share one slot and one script reads
them all, while different queues spread over the cluster. Every lane is read through the
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

__all__ = ["FETCH", "INVERT_EVERY", "LANES", "lane", "lanes", "route"]

#: Priorities, highest first: the order a fetch reads a queue's lanes in.
LANES: Final = tuple(range(9, -1, -1))
#: One fetch in this many reads the lanes from the lowest priority up (see the module's doc).
INVERT_EVERY: Final = 10

#: Take up to COUNT new entries of one queue, highest lane first (lowest first when inverted).
#: KEYS: the queue's lanes, highest priority first.  ARGV: group, consumer, count, inverted (0/1).
#: Returns a flat list: lane key, entry id, {field, value, ...}, lane key, entry id, ...
#: A lane that exists but has no group yet (a driver wrote first) gets one, from its start.
FETCH: Final = """
local want = tonumber(ARGV[3])
local first, last, step = 1, #KEYS, 1
if ARGV[4] == '1' then first, last, step = #KEYS, 1, -1 end
local taken = {}
for i = first, last, step do
  if want <= 0 then break end
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
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


def lane(prefix: str, queue: str, priority: int) -> str:
    """The stream of ``queue``'s lane for ``priority``: ``{graflow:q:gpu}:p7``."""
    return f"{{{prefix}:q:{queue}}}:p{priority}"


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
