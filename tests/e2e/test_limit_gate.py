"""The worker's limit gate over the real Redis: a task without a place waits aside, then starts."""

from __future__ import annotations

import time

import pytest
import redis

from graflow.core.decorators import task
from graflow.core.routing import Rate, Routing
from graflow.remote.envelope import TaskEnvelope
from graflow_redis.consumer import Delivery
from graflow_redis.limits import RedisLimits
from graflow_worker.gate import LimitGate


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def delivery(uid: str, routing: Routing | None) -> Delivery:
    envelope = TaskEnvelope(task(lambda: None), "run", "wf", routing=routing)
    return Delivery(entry_id=f"0-{uid}", envelope=envelope, attempt=1, received_at=time.time(), uid=uid)


def test_a_task_without_limits_passes_at_once(redis_client: redis.Redis, key_prefix: str) -> None:
    gate = LimitGate(RedisLimits(redis_client, key_prefix, hold=30))
    assert gate.admit(delivery("a", None)) and gate.admit(delivery("b", Routing(queue="gpu")))
    assert len(gate) == 0


def test_a_task_over_its_concurrency_waits_aside_and_starts_once_a_place_is_given_back(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    gate = LimitGate(RedisLimits(redis_client, key_prefix, hold=30))
    capped = Routing(concurrency_key="db", max_concurrency=1)
    first, second = delivery("a", capped), delivery("b", capped)

    assert gate.admit(first)
    assert not gate.admit(second)
    assert gate.waiting() == [second]

    gate.release(first)
    deadline = time.monotonic() + 5
    admitted = False
    while not admitted and time.monotonic() < deadline:
        time.sleep(gate.next_due() or 0.01)
        admitted = any(gate.admit(d) for d in gate.due(10))
    assert admitted and len(gate) == 0


def test_a_rate_limited_task_is_due_when_the_window_has_room(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    gate = LimitGate(RedisLimits(redis_client, key_prefix, hold=30))
    rated = Routing(rate_limit=Rate(1, 1.0))

    assert gate.admit(delivery("a", rated))
    assert not gate.admit(delivery("b", rated))
    assert 0 < (gate.next_due() or 0) <= 1.0
    assert gate.due(10) == []


def test_a_place_given_back_makes_the_first_task_waiting_for_it_due_at_once(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    gate = LimitGate(RedisLimits(redis_client, key_prefix, hold=30))
    capped, other = (
        Routing(concurrency_key="db", max_concurrency=1),
        Routing(concurrency_key="x", max_concurrency=1),
    )
    running, waiting, elsewhere = delivery("a", capped), delivery("b", capped), delivery("c", other)
    assert gate.admit(running) and gate.admit(delivery("d", other))
    assert not gate.admit(waiting) and not gate.admit(elsewhere)

    gate.release(running)

    assert gate.due(10) == [waiting]
    assert gate.admit(waiting)
    assert gate.waiting() == [elsewhere]
