"""The Lua scripts: the few multi-step Redis operations that must happen atomically.

Each is registered per client (:meth:`redis.Redis.register_script`), which runs it by
SHA and reloads it transparently after a Redis restart empties the script cache.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CHANNEL_ADD",
    "CHANNEL_CLEAR",
    "CHANNEL_DELETE",
    "CHANNEL_GET",
    "CHANNEL_KEYS",
    "CHANNEL_PUSH",
    "CHANNEL_SET",
    "FINISH",
    "LOCK_RELEASE",
    "LOCK_RENEW",
    "REQUEUE",
    "SUBMIT",
    "TOUCH",
]

# --- queue ----------------------------------------------------------------------------

#: Record an outcome once, acknowledge the entry, optionally dead-letter it; for a step of a
#: durable run, record the step and its result in the run's state in the same breath.
#: KEYS: done, reply, tasks, dead, steps, order, done_tasks, results.
#: ARGV: group, entry_id, reply_item, done_ttl, reply_ttl, has_reply ("1"/"0"), dead_maxlen,
#: step_key ("" for none), step_blob, task_id, result_blob, has_result ("1"/"0"), run_ttl,
#: then dead-letter field/value pairs (none: no dead letter).
#: Returns 1 if this call recorded the outcome, 0 if one was recorded before.
FINISH: Final = """
local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4])
if ARGV[2] ~= '' then
  redis.pcall('XACK', KEYS[3], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[3], ARGV[2])
end
if #ARGV > 13 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', unpack(ARGV, 14))
end
if first then
  if ARGV[8] ~= '' then
    redis.call('HSET', KEYS[5], ARGV[8], ARGV[9])
    redis.call('RPUSH', KEYS[6], ARGV[8])
    redis.call('SADD', KEYS[7], ARGV[10])
    if ARGV[12] == '1' then redis.call('HSET', KEYS[8], ARGV[10], ARGV[11]) end
    for i = 5, 8 do redis.call('EXPIRE', KEYS[i], ARGV[13]) end
  end
  if ARGV[6] == '1' then
    redis.call('RPUSH', KEYS[2], ARGV[3])
    redis.call('EXPIRE', KEYS[2], ARGV[5])
  end
  return 1
end
return 0
"""

#: Move a dead letter back onto the task stream, once however many callers race. It keeps
#: its uid, to which its payload's seal is bound, and forgets that the uid was settled (its
#: driver was told of the failure, and waits for it no more: no reply list), so the outcome
#: of the requeued run is recorded (a durable run's step with it).
#: KEYS: dead, tasks, done marker of the letter's uid.  ARGV: dead_id, uid.
#: Returns the new entry's id, or nil if no such letter (or no longer with that uid).
REQUEUE: Final = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
local fields = found[1][2]
local entry = {'reply', ''}
local uid = nil
for i = 1, #fields, 2 do
  local name = fields[i]
  if name == 'uid' then uid = fields[i + 1] end
  if name == 'uid' or name == 'task' or name == 'session' or name == 'payload' then
    entry[#entry + 1] = name
    entry[#entry + 1] = fields[i + 1]
  end
end
if uid ~= ARGV[2] then return false end
local id = redis.call('XADD', KEYS[2], '*', unpack(entry))
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
return id
"""

#: Submit a step of a durable run once across drivers. A step already recorded is not
#: submitted again; one that an earlier driver of the run submitted and whose outcome is
#: not recorded yet (queued, or running) is adopted instead of getting a second entry.
#: A retry of a step whose attempt failed is a new submission.
#: KEYS: tasks, submissions, steps.  ARGV: step_key, uid, done_prefix, run_ttl, then the
#: entry's field/value pairs.  Returns {'recorded'}, {'adopt', earlier uid} or {'new', entry id}.
SUBMIT: Final = """
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {'recorded'} end
local earlier = redis.call('HGET', KEYS[2], ARGV[1])
if earlier and not redis.call('GET', ARGV[3] .. earlier) then return {'adopt', earlier} end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {'new', id}
"""

#: Reset (keep alive) or raise (release) the idle time of entries still owned by a consumer.
#: KEYS: tasks.  ARGV: group, consumer, idle_ms, ids...  Returns how many were touched.
TOUCH: Final = """
local n = 0
for i = 4, #ARGV do
  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if type(p) == 'table' and p[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    n = n + 1
  end
end
return n
"""

# --- channel --------------------------------------------------------------------------

#: Keeps the channel's key index (a sorted set scored by first write) in insertion order.
_TRACK: Final = """
local function track(vkey, idx, name)
  if redis.call('EXISTS', vkey) == 0 then
    local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
    local score = 1
    if top[2] then score = tonumber(top[2]) + 1 end
    redis.call('ZADD', idx, score, name)
  end
end
"""

#: Makes a channel write count once per submission: a write of an attempt carries its place in
#: the attempt's sequence of writes (``field``: submission uid and number); a write whose field
#: was applied before (the same submission ran again, after its worker died) returns what it
#: returned then and changes nothing. ``field`` empty: no such bookkeeping.
#: Appended to a write's KEYS: the submission's applied-writes hash; to its ARGV: field, ttl.
_ONCE_HEAD: Final = """
local applied, field, once_ttl = KEYS[#KEYS], ARGV[#ARGV - 1], ARGV[#ARGV]
if field ~= '' then
  local seen = redis.call('HGET', applied, field)
  if seen then return cjson.decode(seen) end
end
local function write()
"""
#: A result of -1 or {'x', ...} asks the caller to take another path (not a write): not kept.
_ONCE_TAIL: Final = """
end
local result = write()
local retry = result == -1 or (type(result) == 'table' and result[1] == 'x')
if field ~= '' and not retry then
  redis.call('HSET', applied, field, cjson.encode(result))
  redis.call('EXPIRE', applied, once_ttl)
end
return result
"""


def _once(body: str) -> str:
    """A channel write's script, made to count once per submission (see :data:`_ONCE_HEAD`)."""
    return _TRACK + _ONCE_HEAD + body + _ONCE_TAIL


#: KEYS: value, index, applied.  ARGV: encoded value, ttl_ms ("" for none), name, field, ttl.
CHANNEL_SET: Final = _once(
    """
track(KEYS[1], KEYS[2], ARGV[3])
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""
)

#: KEYS: value.  Returns {0} (missing), {1, string} or {2, list items}.
CHANNEL_GET: Final = """
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'string' then return {1, redis.call('GET', KEYS[1])} end
if t == 'list' then return {2, redis.call('LRANGE', KEYS[1], 0, -1)} end
return {0}
"""

#: KEYS: value, index, applied.  ARGV: encoded item, "R" (append) or "L" (prepend), name, field, ttl.
#: Returns the new length, or -1 when the key holds a plain value (the caller converts it).
CHANNEL_PUSH: Final = _once(
    """
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then
  track(KEYS[1], KEYS[2], ARGV[3])
elseif t ~= 'list' then
  return -1
end
if ARGV[2] == 'R' then return redis.call('RPUSH', KEYS[1], ARGV[1]) end
return redis.call('LPUSH', KEYS[1], ARGV[1])
"""
)

#: Add a number, keeping int as int (INCRBY) and float as float (IEEE double, %.17g round-trips).
#: KEYS: value, index, applied.  ARGV: encoded amount, "i" or "f", name, field, ttl.
#: Returns {"i"|"f", new value text}, or {"x", why} when the value is not a plain number here.
CHANNEL_ADD: Final = _once(
    """
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then
  track(KEYS[1], KEYS[2], ARGV[3])
  redis.call('SET', KEYS[1], ARGV[1])
  return {ARGV[2], ARGV[1]}
end
if t ~= 'string' then return {'x', t} end
local v = redis.call('GET', KEYS[1])
local isint = string.match(v, '^%-?%d+$') ~= nil
if not isint and (string.byte(v, 1) == 128 or tonumber(v) == nil) then return {'x', 'value'} end
if isint and ARGV[2] == 'i' then
  local ok = redis.pcall('INCRBY', KEYS[1], ARGV[1])
  if type(ok) == 'table' and ok.err then return {'x', 'overflow'} end
  return {'i', redis.call('GET', KEYS[1])}
end
local s = string.format('%.17g', tonumber(v) + tonumber(ARGV[1]))
if not string.find(s, '[%.eEn]') then s = s .. '.0' end
redis.call('SET', KEYS[1], s, 'KEEPTTL')
return {'f', s}
"""
)

#: KEYS: value, index, applied.  ARGV: name, field, ttl.  Returns how many keys were deleted.
CHANNEL_DELETE: Final = _once(
    """
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
"""
)

#: KEYS: index.  ARGV: value key prefix.  Live names in insertion order; drops expired ones.
CHANNEL_KEYS: Final = """
local live = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. n) == 1 then
    live[#live + 1] = n
  else
    redis.call('ZREM', KEYS[1], n)
  end
end
return live
"""

#: KEYS: index.  ARGV: value key prefix.
CHANNEL_CLEAR: Final = """
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('DEL', ARGV[1] .. n)
end
redis.call('DEL', KEYS[1])
return 1
"""

#: Release a lock only if we still own it, and wake one waiter.
#: KEYS: lock, wake.  ARGV: token, wake_ttl_ms.
LOCK_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], -8, -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

#: Extend a lock's lease only if we still own it.  KEYS: lock.  ARGV: token, lease_ms.
LOCK_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
