"""``async def`` tasks work wherever sync tasks work, and their awaits overlap where they can."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from graflow import parallel, task, workflow
from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import ExecutionContext, TaskExecutionContext, current_task_context
from graflow.core.engine import WorkflowEngine
from graflow.core.retry import RetryPolicy
from graflow.core.task import TaskWrapper
from graflow.exceptions import TaskTimeoutError


def test_an_async_tasks_result_is_the_awaited_value_not_a_coroutine() -> None:
    with workflow("awaited") as wf:

        @task
        async def fetch() -> dict[str, int]:
            await asyncio.sleep(0)
            return {"rows": 3}

        result = wf.execute()
    assert result == {"rows": 3}


def test_calling_an_async_task_calls_the_function_and_gives_its_coroutine() -> None:
    @task
    async def fetch() -> int:
        return 1

    coroutine = fetch()
    assert asyncio.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == 1
    assert fetch.run() == 1  # run() awaits it


def test_async_tasks_chain_with_sync_ones_and_read_results_and_channel() -> None:
    with workflow("mixed") as wf:

        @task(inject_context=True)
        async def produce(ctx: TaskExecutionContext) -> int:
            ctx.get_channel().set("unit", "kg")
            await asyncio.sleep(0.01)
            return 40

        @task(inject_context=True)
        def add(ctx: TaskExecutionContext) -> int:
            return ctx.get_result("produce") + 2

        @task
        async def label(unit: str) -> str:  # filled from the channel, as for a sync task
            return unit

        produce >> add >> label
        _, context = wf.execute(ret_context=True)
    assert context.get_result("add") == 42
    assert context.get_result("label") == "kg"


def test_an_async_task_sees_its_own_task_context_while_it_awaits() -> None:
    seen: list[Any] = []
    with workflow("ctx") as wf:

        @task(inject_context=True)
        async def probe(ctx: TaskExecutionContext) -> None:
            await asyncio.sleep(0)
            seen.append(current_task_context() is ctx)

        wf.execute()
    assert seen == [True]


def test_an_async_tasks_exception_propagates_as_itself_with_its_task_id() -> None:
    with workflow("fails") as wf:

        @task
        async def broken() -> None:
            await asyncio.sleep(0)
            raise KeyError("missing")

        with pytest.raises(KeyError) as info:
            wf.execute()
    assert info.value.graflow_task_id == "broken"  # type: ignore[attr-defined]


def test_an_async_task_is_retried_like_a_sync_one() -> None:
    attempts: list[int] = []
    with workflow("retry") as wf:

        @task(retry_policy=RetryPolicy(max_retries=2, initial_interval=0, jitter=False))
        async def flaky() -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("not yet")
            return "ok"

        assert wf.execute() == "ok"
    assert len(attempts) == 3


def test_an_async_task_can_iterate_and_add_tasks() -> None:
    log: list[str] = []
    with workflow("steer") as wf:

        @task(inject_context=True)
        async def poll(ctx: TaskExecutionContext, data: int | None = None) -> int:
            n = (data or 0) + 1
            log.append(f"poll{n}")
            if n < 3:
                ctx.next_iteration(n)
            else:
                ctx.next_task(TaskWrapper("done", lambda: log.append("done")))
            return n

        wf.execute()
    assert log == ["poll1", "poll2", "poll3", "done"]


def test_async_members_of_a_group_overlap_their_awaits() -> None:
    with workflow("overlap") as wf:
        members = []
        for n in range(200):

            async def wait(n: int = n) -> int:
                await asyncio.sleep(0.3)
                return n

            members.append(TaskWrapper(f"m{n}", wait))
        parallel(*members)
        started = time.perf_counter()
        result = wf.execute()
        elapsed = time.perf_counter() - started
    assert sorted(result.values()) == list(range(200))
    assert elapsed < 200 * 0.3 / 10, f"the awaits did not overlap: {elapsed:.2f}s"


def test_async_tasks_of_one_run_share_one_event_loop_that_is_not_the_callers() -> None:
    loops: list[int] = []
    threads: list[str] = []
    with workflow("one_loop") as wf:

        async def note() -> None:
            loops.append(id(asyncio.get_running_loop()))
            threads.append(threading.current_thread().name)

        parallel(TaskWrapper("a", note), TaskWrapper("b", note), TaskWrapper("c", note))
        wf.execute()
    assert len(set(loops)) == 1
    assert threading.current_thread().name not in threads


def test_execute_works_when_called_from_a_running_event_loop() -> None:
    async def notebook_cell() -> Any:
        with workflow("notebook") as wf:

            @task
            async def fetch() -> str:
                await asyncio.sleep(0.01)
                return "fetched"

            return wf.execute()

    assert asyncio.run(notebook_cell()) == "fetched"


def test_execute_async_lets_other_coroutines_run_meanwhile() -> None:
    async def main() -> tuple[Any, list[str]]:
        ticks: list[str] = []

        async def ticker() -> None:
            for _ in range(3):
                ticks.append("tick")
                await asyncio.sleep(0.02)

        with workflow("awaitable") as wf:

            @task
            def slow() -> str:
                time.sleep(0.2)
                return "slow done"

            result, _ = await asyncio.gather(wf.execute_async(), ticker())
        return result, ticks

    result, ticks = asyncio.run(main())
    assert result == "slow done"
    assert ticks == ["tick"] * 3


def test_the_engine_has_execute_async_too() -> None:
    with workflow("engine_async") as wf:

        @task
        async def one() -> int:
            return 1

        context = ExecutionContext.create(wf.graph)

    assert asyncio.run(WorkflowEngine().execute_async(context)) == 1


def test_an_async_task_with_a_timeout_is_cancelled_when_it_runs_out() -> None:
    cancelled = threading.Event()
    with workflow("async_timeout") as wf:

        @task(timeout=0.1)
        async def hang() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        started = time.perf_counter()
        with pytest.raises(TaskTimeoutError) as info:
            wf.execute()
    assert time.perf_counter() - started < 5
    assert info.value.task_id == "hang"
    assert cancelled.wait(5), "the coroutine was not cancelled"


@pytest.mark.parametrize(
    "backend",
    [CoordinationBackend.DIRECT, CoordinationBackend.THREADING, CoordinationBackend.MULTIPROCESSING],
)
def test_async_members_run_on_every_local_backend(backend: CoordinationBackend) -> None:
    with workflow(f"async_{backend.value}") as wf:

        async def square(n: int) -> int:
            await asyncio.sleep(0.01)
            return n * n

        group = parallel(*(TaskWrapper(f"sq{n}", square).bind(f"s{n}", n=n) for n in range(4)))
        group.with_execution(backend=backend)
        result = wf.execute()
    assert result == {"s0": 0, "s1": 1, "s2": 4, "s3": 9}


def test_a_member_task_past_its_timeout_is_stopped_in_its_pool_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = str(tmp_path / "finished")
    with workflow("mp_timeout") as wf:

        def sleeper() -> str:
            time.sleep(3)
            with open(marker, "w") as f:
                f.write("the attempt was not stopped")
            return "late"

        group = parallel(TaskWrapper("sleeper", sleeper, timeout=0.3), TaskWrapper("quick", lambda: "ok"))
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING, policy="best_effort")
        started = time.perf_counter()
        result = wf.execute()
    assert result == {"quick": "ok"}
    assert time.perf_counter() - started < 2.5
    time.sleep(3.2)
    assert not (tmp_path / "finished").exists()
