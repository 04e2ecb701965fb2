"""Async tasks and per-task timeouts behave on real ``graflow-worker`` processes as they do in memory."""

from __future__ import annotations

import time

import pytest

from graflow import parallel, task, workflow
from graflow.core.context import TaskExecutionContext
from graflow.core.task import TaskWrapper
from graflow.exceptions import TaskTimeoutError
from tests.e2e.conftest import Fleet


def _config(fleet: Fleet) -> dict[str, object]:
    return {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix, "worker_wait_timeout": 30.0}


def test_async_tasks_run_on_a_worker_and_read_results_and_channel(fleet: Fleet) -> None:
    fleet.start("one")
    with workflow("async_fleet") as wf:

        @task(inject_context=True)
        async def produce(ctx: TaskExecutionContext) -> int:
            import asyncio

            await asyncio.sleep(0.01)
            ctx.get_channel().set("unit", "kg")
            return 40

        @task(inject_context=True)
        async def consume(ctx: TaskExecutionContext, unit: str) -> str:
            return f"{ctx.get_result('produce') + 2} {unit}"

        produce >> consume
        result = wf.execute(queue_backend="redis", channel_backend="redis", config=_config(fleet))
    assert result == "42 kg"


def test_async_members_overlap_on_the_fleet_within_its_slots(fleet: Fleet) -> None:
    fleet.start("one", "--max-concurrent-tasks", "8")
    with workflow("async_members") as wf:

        async def wait(n: int) -> int:
            import asyncio

            await asyncio.sleep(0.5)
            return n

        parallel(*(TaskWrapper(f"w{n}", wait).bind(f"m{n}", n=n) for n in range(8)))
        started = time.perf_counter()
        result = wf.execute(queue_backend="redis", channel_backend="redis", config=_config(fleet))
        elapsed = time.perf_counter() - started
    assert sorted(result.values()) == list(range(8))
    assert elapsed < 8 * 0.5 / 2


def test_a_task_past_its_timeout_on_a_worker_fails_with_task_timeout_error(fleet: Fleet) -> None:
    fleet.start("one")
    with workflow("timeout_fleet") as wf:

        @task(timeout=0.3)
        def stuck() -> None:
            time.sleep(5)

        started = time.perf_counter()
        with pytest.raises(TaskTimeoutError) as info:
            wf.execute(queue_backend="redis", channel_backend="redis", config=_config(fleet))
    assert time.perf_counter() - started < 4
    assert info.value.task_id == "stuck"
