"""End-to-end fixtures: the real Redis, real ``graflow-worker`` processes, a private Redis to break.

* ``redis_url``: the shared server at 127.0.0.1:6379. Missing: skip, or fail when CI=true.
* ``key_prefix``: unique per test; every key under it is deleted at teardown.
* ``fleet``: starts ``graflow-worker`` processes (from an empty directory, so the test code
  is not importable there: task functions must travel by value) and kills them at teardown,
  printing their logs when the test failed.
* ``private_redis``: a ``redis-server`` of the test's own on a free loopback port (6392+),
  with an append-only file so it can be restarted mid-run without losing the queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.e2e.e2e_support import REDIS_HOST, REDIS_PORT
from tests.support.fleet import Fleet, stop_fleet
from tests.support.redis_keys import delete_prefix
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.reports import pytest_runtest_makereport  # noqa: F401 (a hook)
from tests.support.services import require_redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis(REDIS_HOST, REDIS_PORT)


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"e2e-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        delete_prefix(client, prefix)
    finally:
        client.close()


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest, redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    fleet = Fleet(redis_url, key_prefix, tmp_path_factory.mktemp("fleet"))
    yield fleet
    stop_fleet(fleet, request)


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with start_private_redis(
        tmp_path_factory.mktemp("redis"), ports=range(6392, 6499), append_only=True
    ) as server:
        yield server
