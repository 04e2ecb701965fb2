"""The existing releases' forms (SPEC 18): next_task of any executable, bound tasks, timeouts, compat names."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import pytest

from graflow import task, workflow
from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.handler import TaskResult
from graflow.core.handlers.group_policy import GroupExecutionPolicy
from graflow.core.retry import RetryPolicy
from graflow.core.task import Executable, ParallelGroup, TaskWrapper, chain, parallel
from graflow.exceptions import ConfigError, ParallelGroupError, TaskTimeoutError

# --- next_task with any executable ------------------------------------------------------------


def test_next_task_of_a_chain_runs_its_tasks_in_order_after_the_current_one() -> None:
    log: list[str] = []
    with workflow("next_chain") as wf:

        @task(inject_context=True)
        def decide(ctx: TaskExecutionContext) -> None:
            log.append("decide")
            first = TaskWrapper("first", lambda: log.append("first") or 1)
            second = TaskWrapper("second", lambda: log.append("second") or 2)
            ctx.next_task(first >> second, goto=True)

        @task
        def skipped() -> None:
            log.append("skipped")

        decide >> skipped
        result = wf.execute()
    assert log == ["decide", "first", "second"]
    assert result == 2


def test_next_task_of_a_group_runs_it_under_its_own_policy() -> None:
    with workflow("next_group") as wf:

        @task(inject_context=True)
        def fan_out(ctx: TaskExecutionContext) -> None:
            def boom() -> None:
                raise ValueError("one member fails")

            group = TaskWrapper("ok", lambda: "fine") | TaskWrapper("bad", boom)
            ctx.next_task(group.with_execution(policy="best_effort"))

        _, context = wf.execute(ret_context=True)
    [group_id] = [tid for tid in context.graph.nodes if tid != "fan_out"]
    assert context.get_result(group_id) == {"ok": "fine"}


def test_groups_made_at_run_time_get_ids_of_their_own() -> None:
    with workflow("two_groups") as wf:

        @task(inject_context=True)
        def twice(ctx: TaskExecutionContext) -> None:
            ctx.next_task(TaskWrapper("a", lambda: 1) | TaskWrapper("b", lambda: 2))
            ctx.next_task(TaskWrapper("c", lambda: 3) | TaskWrapper("d", lambda: 4))

        _, context = wf.execute(ret_context=True)
    groups = [tid for tid in context.graph.nodes if tid != "twice"]
    assert len(set(groups)) == 2
    results = [context.get_result(g) for g in groups]
    assert {"a": 1, "b": 2} in results
    assert {"c": 3, "d": 4} in results


# --- bound tasks -------------------------------------------------------------------------------


def test_calling_a_task_with_task_id_binds_a_new_task_with_those_arguments() -> None:
    with workflow("weather") as wf:

        @task
        def fetch(city: str, units: str = "metric") -> str:
            return f"{city}/{units}"

        tokyo = fetch(task_id="fetch_tokyo", city="Tokyo")
        paris = fetch(task_id="fetch_paris", city="Paris", units="imperial")
        group = tokyo | paris
        result = wf.execute()
    assert result == {"fetch_tokyo": "Tokyo/metric", "fetch_paris": "Paris/imperial"}
    assert "fetch" not in wf.graph.nodes  # the template left the graph
    assert group.member_ids == ["fetch_tokyo", "fetch_paris"]


def test_calling_a_task_without_task_id_still_calls_the_function() -> None:
    @task
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add(a=2, b=3) == 5


def test_a_bound_template_that_is_composed_itself_stays_in_the_graph() -> None:
    with workflow("template_kept") as wf:

        @task
        def step(n: int = 0) -> int:
            return n

        bound = step(task_id="step_five", n=5)
        step >> bound
        _, context = wf.execute(ret_context=True)
    assert sorted(wf.graph.nodes) == ["step", "step_five"]
    assert context.get_result("step_five") == 5


# --- per-task timeouts -------------------------------------------------------------------------


def test_a_task_that_runs_past_its_timeout_fails_with_task_timeout_error() -> None:
    finished = threading.Event()
    with workflow("slow") as wf:

        @task(timeout=0.2)
        def slow() -> str:
            time.sleep(1.0)
            finished.set()
            return "late"

        started = time.perf_counter()
        with pytest.raises(TaskTimeoutError) as info:
            wf.execute()
    assert time.perf_counter() - started < 0.9
    assert info.value.task_id == "slow"
    assert info.value.timeout == 0.2


def test_a_timed_out_attempt_is_retried_and_its_late_requests_reach_nobody() -> None:
    attempts: list[int] = []
    log: list[str] = []
    with workflow("retry_timeout") as wf:

        @task(
            inject_context=True,
            timeout=0.2,
            retry_policy=RetryPolicy(max_retries=1, initial_interval=0, jitter=False),
        )
        def sometimes_slow(ctx: TaskExecutionContext) -> str:
            attempts.append(1)
            if len(attempts) == 1:
                time.sleep(0.5)
                ctx.next_task(TaskWrapper("from_the_late_attempt", lambda: log.append("late")))
                return "late"
            return "on time"

        result = wf.execute()
        time.sleep(0.5)  # the abandoned attempt finishes meanwhile
    assert result == "on time"
    assert len(attempts) == 2
    assert log == []


def test_a_timeout_must_be_a_positive_number() -> None:
    with pytest.raises(ConfigError, match="timeout must be a positive number"):

        @task(timeout=0)
        def never() -> None:
            pass


# --- the existing releases' names ------------------------------------------------------------------


def test_parallel_group_takes_tasks_and_a_name() -> None:
    with workflow("named_group") as wf:
        a = TaskWrapper("a", lambda: 1)
        b = TaskWrapper("b", lambda: 2)
        group = ParallelGroup([a, b], name="both")
        result = wf.execute()
    assert group.task_id == "both"
    assert result == {"a": 1, "b": 2}


def test_parallel_and_chain_are_importable_from_graflow_core_task() -> None:
    with workflow("task_module") as wf:
        a, b, c = (TaskWrapper(t, lambda t=t: t) for t in "abc")
        chain(a, parallel(b, c))
        result = wf.execute()
    assert result == {"b": "b", "c": "c"}
    assert isinstance(a, Executable)


def test_a_task_wrapper_not_registered_to_the_context_stays_out_of_the_workflow() -> None:
    with workflow("unregistered") as wf:
        TaskWrapper("helper", lambda: None, register_to_context=False)
        TaskWrapper("member", lambda: None)
    assert list(wf.graph.nodes) == ["member"]


def test_a_custom_class_policy_can_partition_results_the_existing_way() -> None:
    class TwoOfThree(GroupExecutionPolicy):
        def on_group_finished(
            self,
            group_id: str,
            tasks: Sequence[Executable],
            results: Mapping[str, TaskResult],
            context: ExecutionContext,
        ) -> None:
            self._validate_group_results(group_id, tasks, results)
            successful, failed = self._partition_group_results(results)
            if len(successful) < 2:
                raise ParallelGroupError("too few", group_id, [(f, "failed") for f in failed], successful)

    def boom() -> None:
        raise RuntimeError("down")

    with workflow("two_of_three") as wf:
        group = TaskWrapper("x", lambda: 1) | TaskWrapper("y", lambda: 2) | TaskWrapper("z", boom)
        group.with_execution(policy=TwoOfThree())
        assert wf.execute() == {"x": 1, "y": 2}
