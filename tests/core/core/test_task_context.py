"""``TaskExecutionContext``: what a running task sees of its run and how it steers it (SPEC section 5)."""

from __future__ import annotations

import time
from typing import Any, TypedDict

import pytest

from graflow.channels.typed import TypedChannel
from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.retry import RetryPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import CycleLimitExceededError, GraflowError, GraflowWorkflowCanceledError

NO_WAIT = RetryPolicy(max_retries=2, initial_interval=0, jitter=False)

# --- identity --------------------------------------------------------------------------------


def test_context_names_the_task_the_run_and_the_execution_context() -> None:
    seen: dict[str, Any] = {}

    with workflow("identity") as wf:

        @task(inject_context=True)
        def inspect_me(context: TaskExecutionContext) -> None:
            seen["task_id"] = context.task_id
            seen["session_id"] = context.session_id
            seen["execution_context"] = context.execution_context

        _, ctx = wf.execute(ret_context=True)

    assert seen["task_id"] == "inspect_me"
    assert seen["session_id"] == ctx.session_id
    assert seen["execution_context"] is ctx
    assert isinstance(ctx, ExecutionContext)


def test_each_run_has_its_own_session_id() -> None:
    sessions: list[str] = []

    with workflow("sessions") as wf:

        @task(inject_context=True)
        def note_session(context: TaskExecutionContext) -> None:
            sessions.append(context.session_id)

        wf.execute()
        wf.execute()

    assert len(sessions) == 2
    assert sessions[0] != sessions[1]


# --- next_task -------------------------------------------------------------------------------


def test_next_task_runs_the_new_task_after_the_current_one_and_keeps_normal_successors() -> None:
    order: list[str] = []

    with workflow("next_task") as wf:
        extra = TaskWrapper("extra", lambda: order.append("extra"), register=False)

        @task(inject_context=True)
        def first(context: TaskExecutionContext) -> None:
            order.append("first")
            assert context.next_task(extra) == "extra"

        @task
        def second() -> None:
            order.append("second")

        first >> second
        wf.execute()

    assert order[0] == "first"
    assert sorted(order[1:]) == ["extra", "second"]


def test_next_task_with_goto_skips_the_normal_successors() -> None:
    order: list[str] = []

    with workflow("goto") as wf:
        jump = TaskWrapper("jump", lambda: order.append("jump") or "jumped", register=False)

        @task(inject_context=True)
        def router(context: TaskExecutionContext) -> None:
            order.append("router")
            context.next_task(jump, goto=True)

        @task
        def skipped() -> None:
            order.append("skipped")

        @task
        def also_skipped() -> None:
            order.append("also_skipped")

        router >> skipped >> also_skipped
        result = wf.execute()

    assert order == ["router", "jump"]
    assert result == "jumped"


def test_next_task_refuses_something_that_is_not_a_task() -> None:
    with workflow("bad_next_task") as wf:

        @task(inject_context=True)
        def confused(context: TaskExecutionContext) -> None:
            context.next_task(print)  # type: ignore[arg-type]

        with pytest.raises(TypeError, match=r"next_task\(\) takes a task"):
            wf.execute()


# --- next_iteration --------------------------------------------------------------------------


def test_next_iteration_passes_its_data_as_the_data_keyword() -> None:
    received: list[Any] = []

    with workflow("iterate_data") as wf:

        @task(inject_context=True)
        def countdown(context: TaskExecutionContext, data: int | None = None) -> int:
            received.append(data)
            remaining = 3 if data is None else data
            if remaining > 0:
                context.next_iteration(remaining - 1)
            return remaining

        result = wf.execute()

    assert received == [None, 2, 1, 0]
    assert result == 0


def test_next_iteration_data_goes_to_the_first_free_parameter_whatever_its_name() -> None:
    # The brief's form: ``def optimize(context, params=None)`` + ``context.next_iteration(params)``.
    seen: list[dict[str, float] | None] = []

    with workflow("iterate_params") as wf:

        @task(inject_context=True)
        def optimize(context: TaskExecutionContext, params: dict[str, float] | None = None) -> float:
            seen.append(None if params is None else dict(params))
            if params is None:
                params = {"step": 0.0}
            if params["step"] < 2:
                params["step"] += 1
                context.next_iteration(params)
            return params["step"]

        result = wf.execute()

    assert seen == [None, {"step": 1.0}, {"step": 2.0}]
    assert result == 2.0


def test_successors_wait_until_the_task_stops_iterating() -> None:
    order: list[str] = []

    with workflow("iterate_then_continue") as wf:

        @task(inject_context=True)
        def loop(context: TaskExecutionContext) -> None:
            order.append(f"loop{context.cycle_count}")
            if context.cycle_count < 3:
                context.next_iteration()

        @task
        def after() -> None:
            order.append("after")

        loop >> after
        wf.execute()

    assert order == ["loop1", "loop2", "loop3", "after"]


def test_cycle_count_starts_at_one_and_counts_iterations() -> None:
    counts: list[int] = []

    with workflow("cycle_count") as wf:

        @task(inject_context=True)
        def loop(context: TaskExecutionContext) -> None:
            counts.append(context.cycle_count)
            if len(counts) < 4:
                context.next_iteration()

        wf.execute()

    assert counts == [1, 2, 3, 4]


def test_max_cycles_bounds_iterations_and_can_iterate_says_when_to_stop() -> None:
    trace: list[tuple[int, int, bool]] = []

    with workflow("max_cycles") as wf:

        @task(inject_context=True, max_cycles=3)
        def bounded(context: TaskExecutionContext) -> int:
            trace.append((context.cycle_count, context.max_cycles, context.can_iterate()))
            if context.can_iterate():
                context.next_iteration()
            return context.cycle_count

        result = wf.execute()

    assert trace == [(1, 3, True), (2, 3, True), (3, 3, False)]
    assert result == 3


def test_iterating_past_max_cycles_raises_cycle_limit_exceeded() -> None:
    with workflow("past_max_cycles") as wf:

        @task(inject_context=True, max_cycles=2)
        def greedy(context: TaskExecutionContext) -> None:
            context.next_iteration()

        with pytest.raises(CycleLimitExceededError) as info:
            wf.execute()

    error = info.value
    assert isinstance(error, GraflowError)
    assert error.task_id == "greedy"
    assert error.max_cycles == 2
    message = str(error)
    assert "'greedy'" in message
    assert "max_cycles is 2" in message
    assert "@task(max_cycles=N)" in message
    assert "can_iterate()" in message


def test_max_cycles_defaults_to_the_run_config() -> None:
    budgets: list[int] = []

    with workflow("config_max_cycles") as wf:

        @task(inject_context=True)
        def loop(context: TaskExecutionContext) -> None:
            budgets.append(context.max_cycles)
            if context.can_iterate():
                context.next_iteration()

        wf.execute(config={"max_cycles": 4})

    assert budgets == [4, 4, 4, 4]


# --- retry state -------------------------------------------------------------------------------


def test_retry_count_and_max_retries_describe_the_current_attempt() -> None:
    attempts: list[tuple[int, int]] = []

    with workflow("retry_state") as wf:

        @task(inject_context=True, retry_policy=NO_WAIT)
        def flaky(context: TaskExecutionContext) -> str:
            attempts.append((context.retry_count, context.max_retries))
            if context.retry_count < 2:
                raise ConnectionError("not yet")
            return "ok"

        assert wf.execute() == "ok"

    assert attempts == [(0, 2), (1, 2), (2, 2)]


def test_a_task_without_retries_reports_zero_max_retries() -> None:
    seen: list[tuple[int, int]] = []

    with workflow("no_retry_state") as wf:

        @task(inject_context=True)
        def once(context: TaskExecutionContext) -> None:
            seen.append((context.retry_count, context.max_retries))

        wf.execute()

    assert seen == [(0, 0)]


# --- terminate and cancel --------------------------------------------------------------------


def test_terminate_workflow_finishes_normally_without_running_later_tasks() -> None:
    ran: list[str] = []

    with workflow("terminate") as wf:

        @task
        def start() -> None:
            ran.append("start")

        @task(inject_context=True)
        def stop_here(context: TaskExecutionContext) -> str:
            ran.append("stop_here")
            context.terminate_workflow("nothing left to do")
            return "stopped early"

        @task
        def never() -> None:
            ran.append("never")

        start >> stop_here >> never
        result, ctx = wf.execute(ret_context=True)

    assert ran == ["start", "stop_here"]
    assert result == "stopped early"
    assert ctx.get_result("never") is None


def test_terminate_workflow_stops_other_start_nodes() -> None:
    ran: list[str] = []

    with workflow("terminate_roots") as wf:

        @task(inject_context=True)
        def first(context: TaskExecutionContext) -> None:
            ran.append("first")
            context.terminate_workflow()

        @task
        def second_root() -> None:
            ran.append("second_root")

        wf.execute()

    assert ran == ["first"]


def test_cancel_workflow_raises_workflow_canceled_and_runs_nothing_more() -> None:
    ran: list[str] = []

    with workflow("cancel") as wf:

        @task(inject_context=True)
        def guard(context: TaskExecutionContext) -> None:
            ran.append("guard")
            context.cancel_workflow("input file is empty")

        @task
        def process() -> None:
            ran.append("process")

        guard >> process
        with pytest.raises(GraflowWorkflowCanceledError) as info:
            wf.execute()

    assert ran == ["guard"]
    assert info.value.task_id == "guard"
    assert "input file is empty" in str(info.value)
    assert "'guard'" in str(info.value)


# --- data ------------------------------------------------------------------------------------


class Greeting(TypedDict):
    text: str


def test_data_accessors_reach_the_run_channel_and_earlier_results() -> None:
    seen: dict[str, Any] = {}

    with workflow("data") as wf:

        @task
        def produce() -> int:
            return 41

        @task(inject_context=True)
        def consume(context: TaskExecutionContext) -> int:
            channel = context.get_channel()
            channel.set("note", "hello")
            typed = context.get_typed_channel(Greeting)
            typed.send("greeting", {"text": "hi"})
            seen["channel"] = channel
            seen["typed"] = typed
            seen["missing"] = context.get_result("nope", default="fallback")
            return context.get_result("produce") + 1

        produce >> consume
        result, ctx = wf.execute(ret_context=True)

    assert result == 42
    assert seen["channel"] is ctx.channel
    assert isinstance(seen["typed"], TypedChannel)
    assert ctx.channel.get("greeting") == {"text": "hi"}
    assert ctx.channel.get("note") == "hello"
    assert seen["missing"] == "fallback"


def test_elapsed_time_counts_from_the_start_of_the_task() -> None:
    readings: list[float] = []

    with workflow("elapsed") as wf:

        @task(inject_context=True)
        def timed(context: TaskExecutionContext) -> None:
            readings.append(context.elapsed_time())
            sum(range(10_000))
            readings.append(context.elapsed_time())

        before = time.perf_counter()
        wf.execute()
        wall = time.perf_counter() - before

    assert 0.0 <= readings[0] <= readings[1] <= wall


# --- a failed attempt requests nothing ---------------------------------------------------------


def test_requests_of_an_attempt_that_raised_are_discarded_before_the_retry() -> None:
    ran: list[str] = []

    with workflow("discard_on_retry") as wf:
        follow_up = TaskWrapper("follow_up", lambda: ran.append("follow_up"), register=False)

        @task(inject_context=True, retry_policy=NO_WAIT)
        def flaky(context: TaskExecutionContext) -> str:
            ran.append(f"flaky{context.retry_count}")
            if context.retry_count == 0:
                context.next_task(follow_up)
                context.next_iteration()
                context.terminate_workflow()
                raise ConnectionError("first attempt fails after asking for things")
            return "ok"

        @task
        def after() -> None:
            ran.append("after")

        flaky >> after
        wf.execute()

    assert ran == ["flaky0", "flaky1", "after"]


def test_requests_of_a_failed_group_member_are_discarded() -> None:
    ran: list[str] = []

    with workflow("discard_in_group") as wf:
        follow_up = TaskWrapper("follow_up", lambda: ran.append("follow_up"), register=False)

        @task(inject_context=True)
        def failing(context: TaskExecutionContext) -> None:
            context.next_task(follow_up)
            raise ValueError("member fails")

        @task
        def fine() -> str:
            ran.append("fine")
            return "fine"

        @task
        def after() -> None:
            ran.append("after")

        (failing | fine).with_policy(ErrorHandlingPolicy.BEST_EFFORT) >> after
        wf.execute()

    assert "follow_up" not in ran
    assert ran == ["fine", "after"]
