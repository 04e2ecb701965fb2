"""How failure policies word their verdicts and check what they are given.

Whether each policy passes or fails a group, the same on every backend, is stated by the
coordinator contract (``tests/core/coordination/contract.py``, cases in
``tests/core/coordination/policy_cases.py``). Members ``a``, ``b``, ``c`` return 1, 2
and 4; the ones named in a test raise ``ValueError("<id> broke")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import ExecutionContext
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskResult
from graflow.core.handlers.group_policy import ErrorHandlingPolicy, GroupExecutionPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError
from tests.core.coordination.policy_cases import MEMBERS, MajorityMustSucceed, MinimumTotal, member

BACKENDS = [
    pytest.param(CoordinationBackend.DIRECT, id="direct"),
    pytest.param(CoordinationBackend.THREADING, id="threading"),
    pytest.param(CoordinationBackend.MULTIPROCESSING, id="multiprocessing"),
]


def _run(
    backend: CoordinationBackend, policy: GroupExecutionPolicy | None, failing: Sequence[str]
) -> tuple[ExecutionContext, str, ParallelGroupError | None]:
    """Run ``(a | b | c) >> after``; return the context, the group id and the group's error."""
    with workflow("policy_matrix") as wf:
        a, b, c = (member(tid, tid in failing) for tid in MEMBERS)
        group = (a | b | c).with_execution(backend=backend)
        if policy is not None:
            group.with_policy(policy)
        group >> TaskWrapper("after", lambda: "after ran")
        context = wf.create_context()
    try:
        WorkflowEngine().execute(context)
    except ParallelGroupError as error:
        return context, group.task_id, error
    return context, group.task_id, None


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_failure_names_the_group_the_policy_and_each_error(backend: CoordinationBackend) -> None:
    _, group_id, error = _run(backend, None, ("a", "c"))

    assert error is not None
    message = str(error)
    assert group_id in message
    assert "strict" in message
    assert "a: ValueError: a broke" in message
    assert "c: ValueError: c broke" in message
    assert isinstance(error.__cause__, ValueError), "the first member's exception is the cause"


@pytest.mark.parametrize("backend", BACKENDS)
def test_at_least_n_failure_says_how_many_succeeded_and_how_many_were_needed(
    backend: CoordinationBackend,
) -> None:
    _, _, error = _run(backend, ErrorHandlingPolicy.AT_LEAST_N(n=3), ("b",))

    assert error is not None
    assert "2 succeeded, at least 3 required" in str(error)


@pytest.mark.parametrize("backend", BACKENDS)
def test_critical_failure_names_the_critical_member(backend: CoordinationBackend) -> None:
    _, _, error = _run(backend, ErrorHandlingPolicy.CRITICAL_TASKS(["a", "b"]), ("b", "c"))

    assert error is not None
    assert "critical member(s) b failed" in str(error)
    assert error.failed_tasks == [("b", "ValueError: b broke"), ("c", "ValueError: c broke")]


def test_validate_group_results_raises_when_a_member_has_no_outcome() -> None:
    with workflow("missing_outcome") as wf:
        a, b = member("a", False), member("b", False)
        group = a | b
        context = wf.create_context()
    only_a = {"a": TaskResult("a", True, 1)}

    with pytest.raises(ParallelGroupError) as caught:
        MinimumTotal(0).on_group_finished(group.task_id, group.members, only_a, context)

    assert caught.value.group_id == group.task_id
    assert caught.value.failed_tasks == [("b", "no outcome recorded")]
    assert caught.value.successful_tasks == ["a"]
    assert "no outcome for member(s) b" in str(caught.value)


def test_policies_report_their_names() -> None:
    names: dict[str, Any] = {
        "strict": ErrorHandlingPolicy.STRICT,
        "best_effort": ErrorHandlingPolicy.BEST_EFFORT,
        "at_least_2": ErrorHandlingPolicy.AT_LEAST_N(n=2),
        "critical_tasks": ErrorHandlingPolicy.CRITICAL_TASKS(["a"]),
        "MajorityMustSucceed": MajorityMustSucceed(),
        "MinimumTotal": MinimumTotal(1),
    }
    assert {name: policy.get_name() for name, policy in names.items()} == {name: name for name in names}
