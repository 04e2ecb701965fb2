"""What a task calls in Redis (its channel, earlier results) waits through an outage up to
``connection_retry_timeout``, instead of failing after redis-py's own second and a half.

Each test has a ``redis-server`` of its own (ports 7200-7299, with an append-only file, so
nothing is lost while it is down) and keeps it down for 3 seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from graflow_redis.channel import RedisChannel
from graflow_redis.errors import RedisUnavailableError
from graflow_redis.keys import Keys
from graflow_redis.store import RedisResults
from tests.support.redis_server import PrivateRedis, start_private_redis

#: Seconds the server stays down: twice what redis-py retries on its own.
DOWN = 3.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with start_private_redis(tmp_path, ports=range(7200, 7300), append_only=True) as started:
        yield started


def _down_for(server: PrivateRedis, seconds: float) -> threading.Timer:
    server.stop()
    restarter = threading.Timer(seconds, server.start)
    restarter.start()
    return restarter


def test_channel_operations_wait_for_redis_to_come_back(server: PrivateRedis) -> None:
    channel = RedisChannel("run", redis_url=server.url, key_prefix="outage")
    channel.set("kept", {"a": 1})
    restarter = _down_for(server, DOWN)
    try:
        channel.set("written", "while down")
        assert channel.get("kept") == {"a": 1}
        assert channel.atomic_add("count", 2) == 2
        channel.append("log", "one")
    finally:
        restarter.join()
    assert channel.keys() == ["kept", "written", "count", "log"]
    assert channel.get("log") == ["one"]


def test_a_channel_lock_is_taken_and_given_back_across_an_outage(server: PrivateRedis) -> None:
    channel = RedisChannel("run", redis_url=server.url, key_prefix="outage")
    restarter = _down_for(server, DOWN)
    try:
        with channel.lock("k", timeout=1.0):  # taken once Redis is back: the wait is not the lock's
            channel.append("log", "locked")
    finally:
        restarter.join()
    with channel.lock("k", timeout=1.0):  # it was given back
        pass
    assert channel.get("log") == ["locked"]


def test_a_result_read_waits_for_redis_to_come_back(server: PrivateRedis) -> None:
    channel = RedisChannel("run", redis_url=server.url, key_prefix="outage")
    results = RedisResults(channel.client, Keys("outage"), "run")
    channel.client.set(Keys("outage").run("run").plan, b"marker")
    channel.client.hset(Keys("outage").run("run").results, "extract", b"\x80\x04K\x14.")  # pickle of 20
    restarter = _down_for(server, DOWN)
    try:
        assert results["extract"] == 20
    finally:
        restarter.join()


def test_an_outage_longer_than_connection_retry_timeout_fails_naming_the_server(server: PrivateRedis) -> None:
    channel = RedisChannel("run", redis_url=server.url, key_prefix="outage", connection_retry_timeout=0.5)
    server.stop()  # for good: the call gives up after redis-py's own retries plus 0.5 s
    with pytest.raises(RedisUnavailableError, match=rf"channel 'run': Redis at .*:{server.port}/0 did not"):
        channel.set("lost", 1)
