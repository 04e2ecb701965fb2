"""The schedules of a key prefix, in Redis: what every scheduler of the fleet watches.

Definitions are JSON in one hash (sealed with the secret key, when there is one: a
schedule names a file a scheduler will run, so nobody without the key may plant one);
each schedule's state is a hash of its own. A tick is claimed by one Lua script that moves
``last_tick`` forward only if it is behind, so of all the schedulers watching a prefix
exactly one fires each tick.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from graflow.exceptions import ConfigError
from graflow.log import get_logger
from graflow.schedule.model import Schedule, ScheduleState
from graflow.schedule.store import ScheduleStore
from graflow_redis.connection import describe
from graflow_redis.errors import SignatureError
from graflow_redis.keys import RUN_KEYS_TTL
from graflow_redis.signing import Purpose, Sealer, Slot

if TYPE_CHECKING:
    import redis

    from graflow_redis.keys import Keys

__all__ = ["RedisSchedules"]

#: Claim a tick.  KEYS: the schedule's state.  ARGV: tick.  Returns 1 if this claim moved it forward.
_CLAIM: Final = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last_tick') or '0')
if last < tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'last_tick', ARGV[1])
    return 1
end
return 0
"""


class RedisSchedules(ScheduleStore):
    """Schedules under one key prefix."""

    def __init__(self, client: redis.Redis, keys: Keys, sealer: Sealer | None = None) -> None:
        self._client = client
        self._keys = keys
        self._sealer = sealer
        self._claim = client.register_script(_CLAIM)
        self.where = f"Redis at {describe(client)} (key prefix {keys.prefix!r})"

    def add(self, schedule: Schedule, *, replace: bool = False) -> None:
        spec = self._seal(schedule.name, json.dumps(schedule.to_json()))
        if replace:
            self._client.hset(self._keys.schedules, schedule.name, spec)
        elif not self._client.hsetnx(self._keys.schedules, schedule.name, spec):
            raise self._exists(schedule.name)
        self._client.hset(self._keys.schedule(schedule.name), "paused", int(schedule.paused))

    def get(self, name: str) -> Schedule:
        raw = self._client.hget(self._keys.schedules, name)
        if raw is None:
            raise self._unknown(name)
        schedule = self._load(name, raw)
        schedule.paused = self.state_fields(name)[0]
        return schedule

    def all(self) -> list[tuple[Schedule, ScheduleState]]:
        specs = self._client.hgetall(self._keys.schedules)
        listed = []
        for raw_name, raw in sorted(specs.items()):
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            try:
                schedule = self._load(name, raw)
            except ConfigError as exc:  # a planted schedule: never fired, never hides the others
                get_logger("graflow.redis").warning("schedule_refused", schedule=name, error=str(exc))
                continue
            schedule.paused, state = self.state_fields(name)
            listed.append((schedule, state))
        return listed

    def remove(self, name: str) -> None:
        if not self._client.hdel(self._keys.schedules, name):
            raise self._unknown(name)
        self._client.delete(self._keys.schedule(name))

    def set_paused(self, name: str, paused: bool) -> None:
        if not self._client.hexists(self._keys.schedules, name):
            raise self._unknown(name)
        self._client.hset(self._keys.schedule(name), "paused", int(paused))

    def state(self, name: str) -> ScheduleState:
        if not self._client.hexists(self._keys.schedules, name):
            raise self._unknown(name)
        return self.state_fields(name)[1]

    def state_fields(self, name: str) -> tuple[bool, ScheduleState]:
        """``(paused, state)`` of a schedule, from its state hash."""
        fields = {
            (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in self._client.hgetall(self._keys.schedule(name)).items()
        }
        state = ScheduleState(
            last_tick=float(fields.get("last_tick", 0) or 0),
            last_run=fields.get("last_run") or None,
            last_status=fields.get("last_status") or None,
            fired=int(fields.get("fired", 0) or 0),
        )
        return fields.get("paused") == "1", state

    def claim(self, name: str, tick: float) -> bool:
        return bool(self._claim(keys=[self._keys.schedule(name)], args=[repr(tick)]))

    def claim_after(self, name: str, upstream_run: str) -> bool:
        key = self._keys.schedule_after(name, upstream_run)
        return bool(self._client.set(key, 1, nx=True, ex=RUN_KEYS_TTL))

    def record(self, name: str, run_id: str, status: str) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self._keys.schedule(name), mapping={"last_run": run_id, "last_status": status})
        if status == "running":
            pipe.hincrby(self._keys.schedule(name), "fired", 1)
        pipe.execute()

    # --- seals ------------------------------------------------------------------------------

    def _seal(self, name: str, text: str) -> bytes:
        payload = text.encode()
        if self._sealer is None:
            return payload
        return self._sealer.seal(Slot(Purpose.SCHEDULE, self._keys.prefix, "", name), payload)

    def _load(self, name: str, raw: bytes | str) -> Schedule:
        payload = raw.encode() if isinstance(raw, str) else raw
        if self._sealer is not None:
            try:
                payload = self._sealer.open(Slot(Purpose.SCHEDULE, self._keys.prefix, "", name), payload)
            except SignatureError as exc:
                raise ConfigError(
                    f"{exc}; no scheduler fires it: remove it (`graflow schedule remove {name}`)"
                ) from None
        return Schedule.from_json(json.loads(payload))
