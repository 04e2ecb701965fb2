"""One suite of workflows, run in memory and on a real worker fleet: the same results.

Each scenario builds its workflow from functions defined in this module; the workers run
from an empty directory and cannot import it, so every task travels by value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.retry import RetryPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.queue import QueueBackend
from tests.support.waiting import wait_until

# --- the scenarios -------------------------------------------------------------------------


def etl_chain() -> None:
    @task(inject_context=True)
    def extract(ctx: TaskExecutionContext) -> list[int]:
        ctx.get_channel().set("source", "db")
        return [1, 2, 3]

    @task(inject_context=True)
    def transform(ctx: TaskExecutionContext) -> list[int]:
        return [x * 10 for x in ctx.get_result("extract")]

    @task(inject_context=True)
    def load(ctx: TaskExecutionContext, source: str = "none") -> str:
        return f"{sum(ctx.get_result('transform'))} rows from {source}"

    extract >> transform >> load


def fan_out_fan_in() -> None:
    @task
    def fetch() -> int:
        return 5

    def member(name: str, factor: int) -> TaskWrapper:
        @task(name, inject_context=True)
        def work(ctx: TaskExecutionContext) -> int:
            ctx.get_channel().append("visited", name)
            return ctx.get_result("fetch") * factor

        return work

    @task(inject_context=True)
    def combine(ctx: TaskExecutionContext) -> int:
        return sum(ctx.get_result(n) for n in ("a", "b", "c"))

    fetch >> (member("a", 1) | member("b", 2) | member("c", 3)).set_group_name("members") >> combine


def _failing(name: str) -> TaskWrapper:
    @task(name)
    def fail() -> None:
        raise ValueError(f"{name} broke")

    return fail


def _ok(name: str) -> TaskWrapper:
    @task(name)
    def ok() -> str:
        return f"{name} ok"

    return ok


def best_effort_group() -> None:
    @task(inject_context=True)
    def after(ctx: TaskExecutionContext) -> dict[str, Any]:
        return {n: ctx.get_result(n) for n in ("ok1", "bad", "ok2")}

    group = (_ok("ok1") | _failing("bad") | _ok("ok2")).set_group_name("g")
    group.with_policy(ErrorHandlingPolicy.BEST_EFFORT) >> after


def strict_group() -> None:
    (_ok("ok1") | _failing("bad")).set_group_name("g") >> _ok("never")


def at_least_n_group() -> None:
    group = (_ok("a") | _ok("b") | _failing("c")).set_group_name("g")
    group.with_policy(ErrorHandlingPolicy.AT_LEAST_N(3)) >> _ok("never")


def critical_group() -> None:
    group = (_failing("optional") | _ok("critical")).set_group_name("g")
    group.with_policy(ErrorHandlingPolicy.CRITICAL_TASKS(["critical"])) >> _ok("after")


def dynamic_tasks() -> None:
    @task(inject_context=True)
    def router(ctx: TaskExecutionContext) -> str:
        quality = 0.3
        if quality < 0.5:
            ctx.next_task(TaskWrapper("cleanup", lambda: "cleaned"))
        ctx.next_task(TaskWrapper("audit", lambda: f"audited {quality}"))
        return "routed"

    @task
    def finish() -> str:
        return "done"

    router >> finish


def goto_skips_successors() -> None:
    @task(inject_context=True)
    def decide(ctx: TaskExecutionContext) -> str:
        ctx.next_task(TaskWrapper("escalate", lambda: "escalated"), goto=True)
        return "decided"

    decide >> _ok("normal_path")


def state_machine() -> None:
    @task(inject_context=True, max_cycles=20)
    def counter(ctx: TaskExecutionContext, data: int | None = None) -> int:
        value = (data or 0) + 1
        ctx.get_channel().set("counter", value)
        if value < 5:
            ctx.next_iteration(value)
        return value

    counter >> _ok("after_loop")


def task_error() -> None:
    @task
    def parse() -> None:
        raise KeyError("missing column 'price'")

    _ok("start") >> parse >> _ok("never")


def retried_task() -> None:
    @task(retry_policy=RetryPolicy(max_retries=2, initial_interval=0.01, jitter=False), inject_context=True)
    def flaky(ctx: TaskExecutionContext) -> str:
        attempts = ctx.get_channel().atomic_add("attempts")
        if attempts < 3:
            raise ConnectionError(f"attempt {attempts} failed")
        return f"succeeded on attempt {attempts}"

    flaky >> _ok("after")


def terminate_early() -> None:
    @task(inject_context=True)
    def check(ctx: TaskExecutionContext) -> str:
        ctx.terminate_workflow("nothing to do")
        return "checked"

    check >> _ok("never")


def cancel_run() -> None:
    @task(inject_context=True)
    def guard(ctx: TaskExecutionContext) -> None:
        ctx.cancel_workflow("bad input")

    guard >> _ok("never")


SCENARIOS: dict[str, Callable[[], None]] = {
    f.__name__: f
    for f in (
        etl_chain,
        fan_out_fan_in,
        best_effort_group,
        strict_group,
        at_least_n_group,
        critical_group,
        dynamic_tasks,
        goto_skips_successors,
        state_machine,
        task_error,
        retried_task,
        terminate_early,
        cancel_run,
    )
}


# --- running one ------------------------------------------------------------------------


def run(build: Callable[[], None], queue_backend: QueueBackend, config: dict[str, Any]) -> dict[str, Any]:
    """Run a scenario; what a user can observe of it, as plain data."""
    with workflow(build.__name__) as wf:
        build()
    channel = "redis" if queue_backend is QueueBackend.REDIS else "memory"
    context = ExecutionContext.create(
        wf.graph, queue_backend=queue_backend, channel_backend=channel, config=config
    )
    error: tuple[str, str, str | None] | None = None
    last: Any = None
    try:
        last = WorkflowEngine().execute(context)
    except Exception as exc:
        error = (type(exc).__name__, str(exc), getattr(exc, "graflow_task_id", None))
        failed = getattr(exc, "failed_tasks", None)
        if failed is not None:
            error = (*error, sorted(failed), sorted(exc.successful_tasks))  # type: ignore[assignment]
    channel_data = context.channel.snapshot()
    if isinstance(channel_data.get("visited"), list):
        channel_data["visited"] = sorted(channel_data["visited"])
    return {
        "last": last,
        "results": dict(sorted(context.results.items())),
        "channel": dict(sorted(channel_data.items())),
        "error": error,
        "ran": sorted(context.cycle_counts.items()),
    }


@pytest.fixture(scope="module")
def memory_outcomes() -> dict[str, dict[str, Any]]:
    return {name: run(build, QueueBackend.MEMORY, {}) for name, build in SCENARIOS.items()}


def test_the_memory_suite_covers_success_and_failure(memory_outcomes) -> None:
    assert memory_outcomes["etl_chain"]["last"] == "60 rows from db"
    assert memory_outcomes["fan_out_fan_in"]["last"] == 30
    assert memory_outcomes["state_machine"]["channel"] == {"counter": 5}
    assert memory_outcomes["retried_task"]["results"]["flaky"] == "succeeded on attempt 3"
    assert memory_outcomes["strict_group"]["error"][0] == "ParallelGroupError"
    assert memory_outcomes["task_error"]["error"][:1] == ("KeyError",)
    assert memory_outcomes["cancel_run"]["error"][0] == "GraflowWorkflowCanceledError"
    assert memory_outcomes["dynamic_tasks"]["results"]["cleanup"] == "cleaned"


def test_every_scenario_gives_the_same_results_on_the_fleet(memory_outcomes, fleet) -> None:
    fleet.start("parity-1", "--max-concurrent-tasks", "4")
    fleet.start("parity-2", "--max-concurrent-tasks", "4")
    config = {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix, "visibility_timeout": 2.0}
    for name, build in SCENARIOS.items():
        assert run(build, QueueBackend.REDIS, config) == memory_outcomes[name], name
    # The tasks really ran on the workers (their counters arrive with the next heartbeat).
    wait_until(
        lambda: sum(w.get("tasks_processed", 0) for w in fleet.queue().workers()) >= len(SCENARIOS),
        10,
        "the workers' counters",
    )


def test_queue_backend_accepts_its_string_name(memory_outcomes, fleet) -> None:
    fleet.start()
    config = {"redis_url": fleet.redis_url, "key_prefix": fleet.key_prefix}
    with workflow("by-name") as wf:
        etl_chain()
    context = ExecutionContext.create(wf.graph, queue_backend="redis", channel_backend="redis", config=config)
    assert WorkflowEngine().execute(context) == memory_outcomes["etl_chain"]["last"]
