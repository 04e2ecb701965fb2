"""The schedule-store contract over Redis (SPEC 19), with and without a secret key."""

from __future__ import annotations

import pytest
import redis

from graflow.schedule import Schedule, ScheduleStore
from graflow_redis.keys import Keys
from graflow_redis.store import RedisStore
from tests.core.schedule.contract import ScheduleStoreContract

KEY = "schedule-test-key-0123456789"


class TestRedisSchedules(ScheduleStoreContract):
    @pytest.fixture
    def schedules(self, redis_client: redis.Redis, key_prefix: str) -> ScheduleStore:
        return RedisStore(redis_client, key_prefix, allow_unsigned=True).schedules()


class TestSealedRedisSchedules(ScheduleStoreContract):
    @pytest.fixture
    def schedules(self, redis_client: redis.Redis, key_prefix: str) -> ScheduleStore:
        return RedisStore(redis_client, key_prefix, secret_key=KEY).schedules()


def test_a_schedule_planted_without_the_key_is_never_listed_so_never_fired(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    schedules = RedisStore(redis_client, key_prefix, secret_key=KEY).schedules()
    schedules.add(Schedule("real", "/srv/etl.py", every=60))
    planted = Schedule("planted", "/tmp/evil.py", every=1).to_json()
    redis_client.hset(
        Keys(key_prefix).schedules, "planted", str(planted).replace("'", '"').replace("None", "null")
    )

    assert [schedule.name for schedule, _ in schedules.all()] == ["real"]
