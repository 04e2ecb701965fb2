"""CoordinationBackend.REDIS: the coordinator contract, plus how a group reaches the fleet.

The members run on an in-test worker (``thread_worker``): a thread pool in this process
that takes envelopes from the real Redis, as a ``graflow-worker`` would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.workflow import workflow
from tests.core.coordination.contract import Backend, CoordinatorContract
from tests.redis.thread_worker import ThreadWorker
from tests.support.waiting import wait_until


class TestRedisCoordinator(CoordinatorContract):
    """REDIS meets the contract as it stands; a timed-out member is left to its worker, and its
    late outcome is ignored, as a THREADING member is left to its thread."""

    @pytest.fixture
    def backend(self, class_fleet: dict[str, Any]) -> Backend:
        return Backend(CoordinationBackend.REDIS.value, class_fleet)


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
    # The worker records a task after sending its outcome, so the run may end first.
    wait_until(lambda: len(thread_worker.completed) == 2, 10, "the worker to record both members")
    assert sorted(task_id for task_id, _ in thread_worker.completed) == ["shard_a", "shard_b"]


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
    wait_until(lambda: len(worker.completed) == 2, 10, "the worker to record both members")
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
