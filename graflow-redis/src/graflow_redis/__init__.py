"""Graflow on Redis: a reliable task queue for a worker fleet, a shared channel, the REDIS coordinator.

Installed, it makes ``queue_backend="redis"``, ``channel_backend="redis"`` and
``CoordinationBackend.REDIS`` work; nothing needs importing::

    context = ExecutionContext.create(graph, queue_backend=QueueBackend.REDIS, channel_backend="redis",
                                      config={"redis_url": "redis://localhost:6379/0"})

Public names load lazily, so that Graflow loading this plugin costs nothing until a
run uses Redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graflow_redis.backoff import Backoff
    from graflow_redis.channel import RedisChannel
    from graflow_redis.consumer import Consumer, Delivery
    from graflow_redis.coordinator import RedisCoordinator
    from graflow_redis.driver import FleetExecutor
    from graflow_redis.errors import (
        NoWorkerAvailableError,
        OutcomeDecodeError,
        RedisRefusedError,
        RedisUnavailableError,
        RedisURLError,
        SecretKeyRequiredError,
        SignatureError,
        TaskRejectedError,
        UntrustedStateError,
    )
    from graflow_redis.fleet import FleetView
    from graflow_redis.queue import DistributedTaskQueue
    from graflow_redis.signing import Sealer
    from graflow_redis.stream_consumer import StreamConsumer
    from graflow_redis.stub import StubConsumer

__all__ = [
    "Backoff",
    "Consumer",
    "Delivery",
    "DistributedTaskQueue",
    "FleetExecutor",
    "FleetView",
    "NoWorkerAvailableError",
    "OutcomeDecodeError",
    "RedisRefusedError",
    "RedisChannel",
    "RedisCoordinator",
    "RedisUnavailableError",
    "RedisURLError",
    "Sealer",
    "SecretKeyRequiredError",
    "SignatureError",
    "StreamConsumer",
    "StubConsumer",
    "TaskRejectedError",
    "UntrustedStateError",
]

__version__ = "0.3.0"

_WHERE = {
    "Backoff": "backoff",
    "Consumer": "consumer",
    "Delivery": "consumer",
    "DistributedTaskQueue": "queue",
    "FleetExecutor": "driver",
    "FleetView": "fleet",
    "RedisChannel": "channel",
    "RedisCoordinator": "coordinator",
    "Sealer": "signing",
    "StreamConsumer": "stream_consumer",
    "StubConsumer": "stub",
    "NoWorkerAvailableError": "errors",
    "OutcomeDecodeError": "errors",
    "RedisRefusedError": "errors",
    "RedisUnavailableError": "errors",
    "RedisURLError": "errors",
    "SecretKeyRequiredError": "errors",
    "SignatureError": "errors",
    "TaskRejectedError": "errors",
    "UntrustedStateError": "errors",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'graflow_redis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"graflow_redis.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
