"""CoordinationBackend.REDIS: a group's members go to the fleet from an otherwise in-memory run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError
from tests.redis.thread_worker import ThreadWorker


def thread_name() -> str:
    return threading.current_thread().name


def test_members_run_on_the_fleet_and_the_rest_of_the_run_stays_here(
    config: dict[str, Any], thread_worker: ThreadWorker
) -> None:
    with workflow("fleet_group") as wf:

        @task
        def prepare() -> str:
            return thread_name()

        @task(inject_context=True)
        def shard_a(ctx: TaskExecutionContext) -> str:
            ctx.get_channel().append("shards", "a")
            return thread_name()

        @task(inject_context=True)
        def shard_b(ctx: TaskExecutionContext) -> str:
            ctx.get_channel().append("shards", "b")
            return thread_name()

        @task
        def combine() -> str:
            return thread_name()

        group = (shard_a | shard_b).set_group_name("shards")
        prepare >> group.with_execution(backend=CoordinationBackend.REDIS) >> combine
        _, ctx = wf.execute(ret_context=True, config=config)  # memory queue, memory channel

    here = threading.current_thread().name
    assert ctx.get_result("prepare") == here
    assert ctx.get_result("combine") == here
    assert ctx.get_result("shard_a").startswith("worker-thread-1")
    assert ctx.get_result("shard_b").startswith("worker-thread-1")
    assert sorted(ctx.channel.get("shards")) == ["a", "b"]  # writes made remotely are replayed here
    assert sorted(task_id for task_id, _ in thread_worker.completed) == ["shard_a", "shard_b"]


def test_group_policies_judge_fleet_members_as_they_judge_local_ones(
    config: dict[str, Any], thread_worker: ThreadWorker
) -> None:
    def build(policy: Any) -> Any:
        @task
        def good() -> int:
            return 1

        @task
        def bad() -> int:
            raise RuntimeError("member failed on the fleet")

        group = (good | bad).set_group_name("g")
        return group.with_execution(backend="redis", policy=policy)

    with workflow("best_effort") as wf:
        build(ErrorHandlingPolicy.BEST_EFFORT)
        _, ctx = wf.execute(ret_context=True, config=config)
    assert ctx.get_result("g") == {"good": 1}

    with workflow("strict") as wf:
        build(ErrorHandlingPolicy.STRICT)
        with pytest.raises(ParallelGroupError) as info:
            wf.execute(config=config)
    assert info.value.failed_tasks == [("bad", "RuntimeError: member failed on the fleet")]
    assert info.value.successful_tasks == ["good"]


def test_a_redis_run_uses_its_own_queue_for_redis_groups(
    config: dict[str, Any], start_worker: Callable[..., ThreadWorker]
) -> None:
    worker = start_worker()
    with workflow("redis_everywhere") as wf:

        @task
        def one() -> int:
            return 1

        @task
        def two() -> int:
            return 2

        (one | two).set_group_name("pair").with_execution(backend=CoordinationBackend.REDIS)
        _, ctx = wf.execute(ret_context=True, queue_backend="redis", channel_backend="redis", config=config)
    assert ctx.get_result("pair") == {"one": 1, "two": 2}
    assert sorted(task_id for task_id, _ in worker.completed) == ["one", "two"]


def test_the_fleet_queue_a_group_opened_is_closed_when_the_run_ends(
    config: dict[str, Any], thread_worker: ThreadWorker, redis_client: Any
) -> None:
    with workflow("closing") as wf:

        @task
        def one() -> int:
            return 1

        @task
        def two() -> int:
            return 2

        (one | two).set_group_name("g").with_execution(backend="redis")
        _, ctx = wf.execute(ret_context=True, config=config)
    assert ctx.get_result("g") == {"one": 1, "two": 2}
    # The driver's reply list exists only while a driver listens.
    assert list(redis_client.scan_iter(match=f"{config['key_prefix']}:reply:*")) == []
