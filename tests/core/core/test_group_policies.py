"""Every failure policy judges a parallel group the same way on every coordination backend.

The matrix: STRICT (default and explicit), BEST_EFFORT, AT_LEAST_N, CRITICAL_TASKS, their
class forms, a ``should_fail`` subclass and an ``on_group_finished`` subclass, each run on
DIRECT, THREADING and MULTIPROCESSING. Members ``a``, ``b``, ``c`` return 1, 2 and 4; the
ones named in a case raise ``ValueError("<id> broke")``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import ExecutionContext
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskResult
from graflow.core.handlers.group_policy import (
    AtLeastNGroupPolicy,
    BestEffortGroupPolicy,
    CriticalGroupPolicy,
    ErrorHandlingPolicy,
    GroupExecutionPolicy,
    StrictGroupPolicy,
)
from graflow.core.task import Executable, TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError

BACKENDS = [
    pytest.param(CoordinationBackend.DIRECT, id="direct"),
    pytest.param(CoordinationBackend.THREADING, id="threading"),
    pytest.param(CoordinationBackend.MULTIPROCESSING, id="multiprocessing"),
]
MEMBERS = ("a", "b", "c")
VALUES = {"a": 1, "b": 2, "c": 4}


class MajorityMustSucceed(ErrorHandlingPolicy):
    """The brief's custom form: fail when more members failed than succeeded."""

    def should_fail(self, failed_tasks: list[tuple[str, str]], successful_tasks: list[str]) -> bool:
        return len(failed_tasks) > len(successful_tasks)


class MinimumTotal(GroupExecutionPolicy):
    """The class form: the successful members' results must add up to ``minimum``.

    Keeps what it was given, so tests can check the outcomes a policy sees.
    """

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.seen: dict[str, TaskResult] = {}

    def on_group_finished(
        self,
        group_id: str,
        tasks: Sequence[Executable],
        results: Mapping[str, TaskResult],
        context: ExecutionContext,
    ) -> None:
        self._validate_group_results(group_id, tasks, results)
        self.seen = dict(results)
        total = sum(r.result for r in results.values() if r.success)
        if total < self.minimum:
            failed = [(r.task_id, r.error_message or "") for r in results.values() if not r.success]
            successful = [r.task_id for r in results.values() if r.success]
            raise ParallelGroupError(f"total {total} is below {self.minimum}", group_id, failed, successful)


@dataclass(frozen=True)
class Case:
    policy: Callable[[], GroupExecutionPolicy | None]
    failing: tuple[str, ...]
    passes: bool


CASES = {
    "strict_by_default_fails_on_one_failure": Case(lambda: None, ("b",), passes=False),
    "strict_by_default_passes_when_all_succeed": Case(lambda: None, (), passes=True),
    "strict_explicit_fails_on_one_failure": Case(lambda: ErrorHandlingPolicy.STRICT, ("c",), passes=False),
    "strict_class_form_fails_on_one_failure": Case(StrictGroupPolicy, ("a",), passes=False),
    "best_effort_passes_with_failures": Case(
        lambda: ErrorHandlingPolicy.BEST_EFFORT, ("a", "b"), passes=True
    ),
    "best_effort_passes_when_every_member_fails": Case(
        lambda: ErrorHandlingPolicy.BEST_EFFORT, MEMBERS, passes=True
    ),
    "best_effort_class_form_passes_with_failures": Case(BestEffortGroupPolicy, ("c",), passes=True),
    "at_least_n_passes_with_n_successes": Case(
        lambda: ErrorHandlingPolicy.AT_LEAST_N(n=2), ("b",), passes=True
    ),
    "at_least_n_fails_below_n_successes": Case(
        lambda: ErrorHandlingPolicy.AT_LEAST_N(n=2), ("a", "c"), passes=False
    ),
    "at_least_n_class_form_fails_below_n": Case(
        lambda: AtLeastNGroupPolicy(min_success=3), ("b",), passes=False
    ),
    "critical_tasks_passes_when_only_others_fail": Case(
        lambda: ErrorHandlingPolicy.CRITICAL_TASKS(["a"]), ("b", "c"), passes=True
    ),
    "critical_tasks_fails_when_a_critical_member_fails": Case(
        lambda: ErrorHandlingPolicy.CRITICAL_TASKS(["a"]), ("a",), passes=False
    ),
    "critical_class_form_fails_when_a_critical_member_fails": Case(
        lambda: CriticalGroupPolicy(critical_task_ids=["b", "c"]), ("c",), passes=False
    ),
    "custom_should_fail_passes_with_a_minority_failing": Case(MajorityMustSucceed, ("b",), passes=True),
    "custom_should_fail_fails_with_a_majority_failing": Case(MajorityMustSucceed, ("a", "b"), passes=False),
    "custom_on_group_finished_passes_above_its_threshold": Case(lambda: MinimumTotal(5), ("b",), passes=True),
    "custom_on_group_finished_fails_below_its_threshold": Case(lambda: MinimumTotal(5), ("c",), passes=False),
}


def _member(task_id: str, fails: bool) -> TaskWrapper:
    value = VALUES[task_id]

    def body() -> int:
        if fails:
            raise ValueError(f"{task_id} broke")
        return value

    return TaskWrapper(task_id, body)


def _run(
    backend: CoordinationBackend, policy: GroupExecutionPolicy | None, failing: Sequence[str]
) -> tuple[ExecutionContext, str, ParallelGroupError | None]:
    """Run ``(a | b | c) >> after``; return the context, the group id and the group's error."""
    with workflow("policy_matrix") as wf:
        a, b, c = (_member(tid, tid in failing) for tid in MEMBERS)
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
@pytest.mark.parametrize("case_name", list(CASES))
def test_policy_decides_the_group_the_same_on_every_backend(
    case_name: str, backend: CoordinationBackend
) -> None:
    case = CASES[case_name]
    context, group_id, error = _run(backend, case.policy(), case.failing)
    succeeded = [tid for tid in MEMBERS if tid not in case.failing]

    for tid in case.failing:
        assert tid not in context.results, "a failed member has no result"
        assert context.get_result(tid) is None
    for tid in succeeded:
        assert context.get_result(tid) == VALUES[tid]

    if case.passes:
        assert error is None
        assert context.get_result("after") == "after ran", "successors run when the group passes"
        assert context.get_result(group_id) == {tid: VALUES[tid] for tid in succeeded}
    else:
        assert error is not None, "the group should have failed"
        assert error.group_id == group_id
        assert error.failed_tasks == [(tid, f"ValueError: {tid} broke") for tid in case.failing]
        assert error.successful_tasks == succeeded
        assert "after" not in context.results, "successors do not run when the group fails"
        assert group_id not in context.results


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
def test_class_form_policy_sees_one_task_result_per_member(backend: CoordinationBackend) -> None:
    policy = MinimumTotal(1)
    _run(backend, policy, ("b",))

    assert set(policy.seen) == set(MEMBERS)
    a, b, c = (policy.seen[tid] for tid in MEMBERS)
    assert (a.task_id, a.success, a.result, a.error_message) == ("a", True, 1, None)
    assert (c.task_id, c.success, c.result) == ("c", True, 4)
    assert (b.task_id, b.success, b.result) == ("b", False, None)
    assert b.error_message == "ValueError: b broke"
    assert all(r.duration >= 0.0 for r in (a, b, c))


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
        a, b = _member("a", False), _member("b", False)
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
