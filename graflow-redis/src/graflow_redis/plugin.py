"""graflow-redis's hook implementations (entry point ``redis``).

Loaded by every Graflow process that has graflow-redis installed, so it imports
nothing heavy: each factory imports its backend when a run first asks for ``"redis"``.

The queue backend says where a run's tasks execute (its ``executor``: the worker
fleet) and releases that on ``close()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graflow.plugins import hookimpl

if TYPE_CHECKING:
    from graflow.channels.base import Channel
    from graflow.coordination.coordinator import Coordinator
    from graflow.state.store import StateStore
    from graflow_redis.queue import DistributedTaskQueue


def _redis_queue(config: Mapping[str, Any]) -> DistributedTaskQueue:
    # Imported on first use: this module loads in every Graflow process, redis with it would not.
    from graflow_redis.queue import DistributedTaskQueue

    return DistributedTaskQueue.from_config(config)


def _redis_channel(session_id: str, config: Mapping[str, Any]) -> Channel:
    from graflow_redis.channel import RedisChannel

    return RedisChannel.from_config(session_id, config)


def _redis_store(config: Mapping[str, Any]) -> StateStore:
    from graflow_redis.store import RedisStore  # lazy: as the other factories

    return RedisStore.from_config(config)


def _redis_coordinator() -> Coordinator:
    from graflow_redis.coordinator import RedisCoordinator

    return RedisCoordinator()


@hookimpl
def graflow_queue_backends() -> Mapping[str, Callable[[Mapping[str, Any]], DistributedTaskQueue]]:
    return {"redis": _redis_queue}


@hookimpl
def graflow_channel_backends() -> Mapping[str, Callable[[str, Mapping[str, Any]], Channel]]:
    return {"redis": _redis_channel}


@hookimpl
def graflow_coordinators() -> Mapping[str, Callable[[], Coordinator]]:
    return {"redis": _redis_coordinator}


@hookimpl
def graflow_state_stores() -> Mapping[str, Callable[[Mapping[str, Any]], StateStore]]:
    return {"redis": _redis_store}


@hookimpl
def graflow_state_store_for(config: Mapping[str, Any]) -> str | None:
    """Runs looked up with Redis settings live in the Redis store."""
    return "redis" if config.get("redis_url") or config.get("redis_client") else None
