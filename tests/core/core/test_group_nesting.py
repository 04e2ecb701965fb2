"""Groups inside chains inside groups, named groups, and how ``with_execution`` / ``with_policy`` combine."""

from __future__ import annotations

from typing import Any

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import TaskExecutionContext
from graflow.core.dsl import Chain
from graflow.core.engine import WorkflowEngine
from graflow.core.group import ParallelGroup
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError

BACKENDS = [
    pytest.param(CoordinationBackend.DIRECT, id="direct"),
    pytest.param(CoordinationBackend.THREADING, id="threading"),
    pytest.param(CoordinationBackend.MULTIPROCESSING, id="multiprocessing"),
]


def _step(task_id: str, value: Any = None) -> TaskWrapper:
    """A task that appends its id to the channel list ``order`` and returns ``value`` (default: its id)."""
    result = task_id if value is None else value

    def body(ctx: TaskExecutionContext) -> Any:
        ctx.get_channel().append("order", task_id)
        return result

    return TaskWrapper(task_id, body, inject_context=True)


def _failing(task_id: str) -> TaskWrapper:
    def body() -> None:
        raise RuntimeError(f"{task_id} failed")

    return TaskWrapper(task_id, body)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_chain_holding_a_group_runs_as_one_member_of_an_outer_group(backend: CoordinationBackend) -> None:
    with workflow("chain_in_group") as wf:
        a, b, c, d = (_step(tid) for tid in "abcd")
        inner = b | c
        outer = (a >> inner) | d
        outer.with_execution(backend=backend)
        outer >> _step("after")
        _, context = wf.execute(ret_context=True)

    order = context.channel.get("order")
    assert sorted(order) == ["a", "after", "b", "c", "d"]
    assert order.index("a") < order.index("b") and order.index("a") < order.index("c")
    assert order[-1] == "after"
    assert context.get_result(inner.task_id) == {"b": "b", "c": "c"}
    assert [m.task_id for m in outer.members] == [f"a>>{inner.task_id}", "d"]
    # A chain member's outcome is that of its last element: here the inner group.
    assert context.get_result(outer.task_id) == {f"a>>{inner.task_id}": {"b": "b", "c": "c"}, "d": "d"}


def test_groups_inside_chains_inside_groups_keep_every_dependency() -> None:
    with workflow("deep") as wf:
        a, b, c, e, d, f = (_step(tid) for tid in "abcedf")
        inner = b | c
        branch = a >> inner >> e
        outer = branch | d
        outer >> f
        _, context = wf.execute(ret_context=True)

    order = context.channel.get("order")
    assert sorted(order) == ["a", "b", "c", "d", "e", "f"]
    assert order.index("a") < min(order.index("b"), order.index("c"))
    assert max(order.index("b"), order.index("c")) < order.index("e")
    assert order[-1] == "f"
    assert isinstance(branch, Chain)
    assert sorted(context.graph.nodes) == sorted([outer.task_id, "f"]), "members are not top-level nodes"
    assert context.graph.successors(outer.task_id) == ["f"]


def test_a_failing_inner_group_fails_its_branch_and_the_outer_policy_judges_it() -> None:
    with workflow("inner_failure") as wf:
        a, d, e = _step("a"), _step("d"), _step("e")
        inner = _step("b") | _failing("c")
        outer = ((a >> inner >> e) | d).with_policy(ErrorHandlingPolicy.BEST_EFFORT)
        outer >> _step("after")
        _, context = wf.execute(ret_context=True)

    assert "e" not in context.results, "the branch stops at its failed inner group"
    assert context.get_result("after") == "after"
    assert context.get_result(outer.task_id) == {"d": "d"}


def test_a_failing_inner_group_fails_a_strict_outer_group_with_the_inner_error() -> None:
    with workflow("inner_failure_strict") as wf:
        inner = _step("b") | _failing("c")
        outer = (_step("a") >> inner) | _step("d")
        context = wf.create_context()
        with pytest.raises(ParallelGroupError) as caught:
            WorkflowEngine().execute(context)

    assert caught.value.group_id == outer.task_id
    [(member_id, message)] = caught.value.failed_tasks
    assert member_id == f"a>>{inner.task_id}"
    assert message.startswith("ParallelGroupError: ")
    assert "c: RuntimeError: c failed" in message
    assert caught.value.successful_tasks == ["d"]


def test_a_named_group_is_a_node_its_results_and_its_errors_go_by_that_name() -> None:
    with workflow("named") as wf:
        group = (_step("a", 1) | _step("b", 2)).set_group_name("fetch")
        group >> _step("aggregate")
        _, context = wf.execute(ret_context=True)

    assert group.task_id == "fetch"
    assert context.graph.nodes == ["fetch", "aggregate"]
    assert context.graph.successors("fetch") == ["aggregate"]
    assert context.get_result("fetch") == {"a": 1, "b": 2}

    with workflow("named_failure") as wf:
        (_step("a") | _failing("b")).set_group_name("fetch")
        context = wf.create_context()
        with pytest.raises(ParallelGroupError) as caught:
            WorkflowEngine().execute(context)
    assert caught.value.group_id == "fetch"
    assert "parallel group 'fetch' failed" in str(caught.value)


def test_with_execution_keeps_the_arguments_it_is_not_given() -> None:
    with workflow("keeps"):
        group = _step("a") | _step("b")
        group.with_execution(
            backend=CoordinationBackend.DIRECT,
            policy=ErrorHandlingPolicy.AT_LEAST_N(n=1),
            max_workers=3,
            timeout=30.0,
        )
        group.with_execution(max_workers=5)
        assert (group.backend, group.max_workers, group.timeout) == ("direct", 5, 30.0)
        assert group.policy is not None and group.policy.get_name() == "at_least_1"

        group.with_execution(backend=CoordinationBackend.THREADING)
        group.with_policy(ErrorHandlingPolicy.BEST_EFFORT)
        assert (group.backend, group.max_workers, group.timeout) == ("threading", 5, 30.0)
        assert group.policy is ErrorHandlingPolicy.BEST_EFFORT

        group.with_execution(max_workers=None, timeout=None)
        assert (group.backend, group.max_workers, group.timeout) == ("threading", None, None)
        assert group.policy is ErrorHandlingPolicy.BEST_EFFORT


def test_with_execution_accepts_backend_names_as_well_as_the_enum() -> None:
    with workflow("names"):
        group = _step("a") | _step("b")
        assert group.with_execution(backend="DIRECT").backend == "direct"
        assert group.with_execution(backend="multiprocessing").backend == "multiprocessing"


def _policy_outcome(configure: Any) -> tuple[ParallelGroup, dict[str, Any]]:
    with workflow("policy_forms") as wf:
        group = _step("a") | _failing("b") | _step("c")
        configure(group)
        group >> _step("after")
        _, context = wf.execute(ret_context=True)
    return group, context.results


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(lambda: ErrorHandlingPolicy.BEST_EFFORT, id="best_effort"),
        pytest.param(lambda: ErrorHandlingPolicy.AT_LEAST_N(n=2), id="at_least_n"),
        pytest.param(lambda: ErrorHandlingPolicy.CRITICAL_TASKS(["a", "c"]), id="critical_tasks"),
    ],
)
def test_with_policy_is_with_execution_of_the_policy(policy: Any) -> None:
    by_policy, policy_results = _policy_outcome(lambda g: g.with_policy(policy()))
    by_execution, execution_results = _policy_outcome(lambda g: g.with_execution(policy=policy()))

    assert repr(by_policy.policy) == repr(by_execution.policy)
    assert (by_policy.backend, by_policy.max_workers, by_policy.timeout) == (
        by_execution.backend,
        by_execution.max_workers,
        by_execution.timeout,
    )
    strip = {by_policy.task_id: "group", by_execution.task_id: "group"}
    assert {strip.get(k, k): v for k, v in policy_results.items()} == {
        strip.get(k, k): v for k, v in execution_results.items()
    }
    assert policy_results["after"] == "after"


def test_with_policy_keeps_the_backend_and_limits() -> None:
    with workflow("policy_keeps"):
        group = (_step("a") | _step("b")).with_execution(
            backend=CoordinationBackend.MULTIPROCESSING, max_workers=2, timeout=9.0
        )
        group.with_policy(ErrorHandlingPolicy.BEST_EFFORT)

    assert (group.backend, group.max_workers, group.timeout) == ("multiprocessing", 2, 9.0)
    assert group.policy is ErrorHandlingPolicy.BEST_EFFORT


def test_a_configured_group_is_not_extended_by_another_bar() -> None:
    with workflow("closed") as wf:
        first = (_step("a") | _step("b")).with_policy(ErrorHandlingPolicy.BEST_EFFORT)
        outer = first | _step("c")
        _, context = wf.execute(ret_context=True)

    assert outer is not first
    assert [m.task_id for m in outer.members] == [first.task_id, "c"]
    assert context.get_result(outer.task_id) == {first.task_id: {"a": "a", "b": "b"}, "c": "c"}


def test_multiprocessing_groups_of_different_sizes_run_side_by_side_inside_an_outer_group() -> None:
    with workflow("nested_pools") as wf:
        left = (_step("l1", 1) | _step("l2", 2)).with_execution(
            backend=CoordinationBackend.MULTIPROCESSING, max_workers=1
        )
        right = (_step("r1", 3) | _step("r2", 4)).with_execution(
            backend=CoordinationBackend.MULTIPROCESSING, max_workers=2
        )
        outer = (_step("a") >> left) | (_step("b") >> right)
        outer.with_execution(backend=CoordinationBackend.THREADING)
        _, context = wf.execute(ret_context=True)

    assert context.get_result(left.task_id) == {"l1": 1, "l2": 2}
    assert context.get_result(right.task_id) == {"r1": 3, "r2": 4}
    assert sorted(context.channel.get("order")) == ["a", "b", "l1", "l2", "r1", "r2"]
