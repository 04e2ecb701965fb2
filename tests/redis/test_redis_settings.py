"""A driver reads its settings as a worker does: ``GRAFLOW_KEY_PREFIX``, and checked numbers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow.exceptions import ConfigError
from graflow_redis.channel import RedisChannel
from graflow_redis.queue import DistributedTaskQueue
from tests.redis.thread_worker import ThreadWorker


def test_a_driver_without_a_key_prefix_uses_graflow_key_prefix_as_the_workers_do(
    redis_url: str,
    key_prefix: str,
    start_worker: Callable[..., ThreadWorker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAFLOW_KEY_PREFIX", key_prefix)
    start_worker()  # on the test's prefix, given explicitly
    with workflow("env_prefix") as wf:
        task("hello")(lambda: "hi")

    config: dict[str, Any] = {"redis_url": redis_url, "worker_wait_timeout": 10}
    assert wf.execute(queue_backend="redis", channel_backend="redis", config=config) == "hi"


@pytest.mark.parametrize(
    "option",
    ["visibility_timeout", "worker_wait_timeout", "heartbeat_ttl", "done_ttl", "connection_retry_timeout"],
)
@pytest.mark.parametrize("value", [math.nan, math.inf, 0, -1])
def test_a_queue_refuses_a_timeout_that_is_not_finite_and_positive(
    redis_url: str, option: str, value: float
) -> None:
    with pytest.raises(ConfigError, match=rf"^{option} must be a finite number of seconds > 0"):
        DistributedTaskQueue(redis_url=redis_url, **{option: value})


@pytest.mark.parametrize("option", ["lock_lease", "connection_retry_timeout"])
def test_a_channel_refuses_a_timeout_that_is_not_finite_and_positive(redis_url: str, option: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{option} must be a finite number of seconds > 0, got nan"):
        RedisChannel("run", redis_url=redis_url, **{option: math.nan})


def test_a_driver_reads_redis_host_port_and_db_as_a_worker_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from graflow_redis.connection import resolve_url

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_HOST", "cache")
    monkeypatch.setenv("REDIS_PORT", "6390")
    monkeypatch.setenv("REDIS_DB", "3")
    assert resolve_url({}) == "redis://cache:6390/3"
    assert resolve_url({"redis_url": "redis://other:1/2"}) == "redis://other:1/2"
    monkeypatch.setenv("REDIS_DB", "three")
    with pytest.raises(ConfigError, match="REDIS_DB must be a database number"):
        resolve_url({})
