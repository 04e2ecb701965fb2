"""Async tasks and per-task timeouts in containers: awaited there, and stopped there."""

from __future__ import annotations

import time

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow.exceptions import TaskTimeoutError
from graflow_docker import DockerTaskHandler


@pytest.mark.parametrize("reuse", [False, True])
def test_an_async_task_is_awaited_in_its_container(image, run, reuse: bool) -> None:  # type: ignore[no-untyped-def]
    with workflow("async_docker") as wf:

        @task(handler="docker", inject_context=True)
        async def probe(ctx: TaskExecutionContext) -> str:
            import asyncio

            await asyncio.sleep(0.01)
            ctx.get_channel().set("seen", "in a container")
            return "awaited"

        with DockerTaskHandler(image=image, reuse=reuse) as handler:
            context = run(wf, docker=handler)
    assert context.get_result("probe") == "awaited"
    assert context.channel.get("seen") == "in a container"


def test_a_task_past_its_timeout_is_stopped_inside_its_container(image, run) -> None:  # type: ignore[no-untyped-def]
    with workflow("timeout_docker") as wf:

        @task(handler="docker", timeout=1.0)
        def stuck() -> None:
            import time as inner_time

            inner_time.sleep(30)

        with DockerTaskHandler(image=image) as handler:
            started = time.perf_counter()
            with pytest.raises(TaskTimeoutError) as info:
                run(wf, docker=handler)
    assert info.value.task_id == "stuck"
    assert time.perf_counter() - started < 20  # the container's start-up, then one second
