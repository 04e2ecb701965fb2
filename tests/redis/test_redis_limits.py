"""Limits across the fleet, counted in Redis (SPEC 19): atomic however many workers ask at once.

Workers are played by threads sharing nothing but Redis, each with its own
:class:`RedisLimits`, as separate processes would.
"""

from __future__ import annotations

import threading
import time

import redis

from graflow.core.routing import Rate, Routing
from graflow_redis.limits import RedisLimits


def test_of_many_workers_asking_at_once_only_max_concurrency_get_a_place(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    routing = Routing(concurrency_key="api", max_concurrency=3)
    start = threading.Barrier(12)
    granted: list[str] = []

    def worker(n: int) -> None:
        limits = RedisLimits(redis.Redis.from_url("redis://127.0.0.1:6379/0"), key_prefix, hold=30)
        start.wait()
        if limits.acquire("api", routing, f"d{n}").taken:
            granted.append(f"d{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 3
    limits = RedisLimits(redis_client, key_prefix, hold=30)
    refused = limits.acquire("api", routing, "late")
    assert not refused.taken and 0 < refused.retry_in <= 1.0
    limits.release("api", granted[0])
    assert limits.acquire("api", routing, "late").taken


def test_a_place_held_by_a_worker_that_died_comes_free_after_its_hold(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    routing = Routing(max_concurrency=1)
    dead = RedisLimits(redis_client, key_prefix, hold=0.5)
    assert dead.acquire("export", routing, "held-by-the-dead").taken
    alive = RedisLimits(redis_client, key_prefix, hold=30)
    assert not alive.acquire("export", routing, "next").taken

    time.sleep(0.6)  # the dead worker renewed nothing

    assert alive.acquire("export", routing, "next").taken


def test_a_renewed_place_stays_taken(redis_client: redis.Redis, key_prefix: str) -> None:
    routing = Routing(max_concurrency=1)
    worker = RedisLimits(redis_client, key_prefix, hold=0.5)
    assert worker.acquire("export", routing, "long-task").taken
    for _ in range(3):
        time.sleep(0.3)
        worker.renew([("export", "long-task")])

    assert not RedisLimits(redis_client, key_prefix, hold=30).acquire("export", routing, "other").taken


def test_a_rate_limit_allows_count_starts_per_period_and_says_when_the_next_one_may(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    routing = Routing(rate_limit=Rate(5, 1.0))
    limits = RedisLimits(redis_client, key_prefix, hold=30)

    grants = [limits.acquire("ping", routing, f"d{n}") for n in range(7)]

    assert [g.taken for g in grants] == [True] * 5 + [False] * 2
    assert 0 < grants[5].retry_in <= 1.0
    time.sleep(grants[5].retry_in + 0.05)
    assert limits.acquire("ping", routing, "d7").taken
