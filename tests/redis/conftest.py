"""Fixtures for graflow-redis: the real Redis, a per-test key prefix, an in-test worker, a private server.

* ``redis_url``: the shared server at 127.0.0.1:6379. Missing: skip with the reason, or
  fail when ``CI=true``.
* ``key_prefix``: unique per test; every key under it is deleted at teardown.
* ``thread_worker``: a minimal worker loop in threads, built only from the worker-side
  API of the contract (fetch / run_envelope / complete / keep_alive / heartbeat), so the
  Redis backends are tested end to end without graflow-worker.
* ``class_fleet``: a run config whose key prefix one in-test worker serves for a whole
  test class (contract suites: stopping a worker costs more than most of their tests).
* ``private_redis``: a ``redis-server`` of the test's own on a free loopback port
  (6381-6391), without persistence, that the test may kill and start again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from graflow_redis.queue import DistributedTaskQueue
from tests.redis.thread_worker import ThreadWorker
from tests.support.redis_keys import delete_prefix
from tests.support.redis_server import PrivateRedis, start_private_redis
from tests.support.services import require_redis

REDIS_HOST = os.environ.get("REDIS_TEST_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("REDIS_TEST_PORT", "6379"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_redis(REDIS_HOST, REDIS_PORT)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(redis_client, prefix)


@pytest.fixture
def config(redis_url: str, key_prefix: str) -> dict[str, Any]:
    """A run's config for the shared Redis and this test's key prefix."""
    return {"redis_url": redis_url, "key_prefix": key_prefix, "worker_wait_timeout": 30.0}


@pytest.fixture
def make_queue(redis_url: str, key_prefix: str) -> Iterator[Callable[..., DistributedTaskQueue]]:
    """Build queues on this test's prefix; all are closed at teardown."""
    made: list[DistributedTaskQueue] = []

    def make(**options: Any) -> DistributedTaskQueue:
        options.setdefault("redis_url", redis_url)
        options.setdefault("key_prefix", key_prefix)
        queue = DistributedTaskQueue(**options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.close()


@pytest.fixture
def start_worker(
    make_queue: Callable[..., DistributedTaskQueue],
) -> Iterator[Callable[..., ThreadWorker]]:
    """Start in-test workers on this test's prefix (``start_worker(**queue_options)``); stopped at teardown."""
    started: list[ThreadWorker] = []

    def start(worker_id: str | None = None, concurrency: int = 4, **options: Any) -> ThreadWorker:
        worker = ThreadWorker(
            make_queue(**options), worker_id or f"thread-{len(started) + 1}", concurrency
        ).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def thread_worker(start_worker: Callable[..., ThreadWorker]) -> ThreadWorker:
    """One in-test worker on this test's prefix."""
    return start_worker()


@pytest.fixture(scope="class")
def class_fleet(redis_url: str) -> Iterator[dict[str, Any]]:
    """A run's config for a key prefix of the test class, served by one in-test worker."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    worker = ThreadWorker(DistributedTaskQueue(redis_url=redis_url, key_prefix=prefix), "thread-1").start()
    try:
        yield {"redis_url": redis_url, "key_prefix": prefix, "worker_wait_timeout": 30.0}
    finally:
        worker.stop()
        worker.queue.close()
        client = redis.Redis.from_url(redis_url)
        delete_prefix(client, prefix)
        client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    with start_private_redis(tmp_path, ports=range(6381, 6392)) as server:
        yield server
