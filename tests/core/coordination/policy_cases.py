"""The failure-policy matrix every coordination backend is judged by (SPEC section 8).

Members ``a``, ``b``, ``c`` return 1, 2 and 4; those a case names as failing raise
``ValueError("<id> broke")``. Each case says whether its policy lets the group pass.
The matrix runs in :class:`~tests.core.coordination.contract.CoordinatorContract`, so
every policy is checked on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from graflow.core.context import ExecutionContext
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
from graflow.exceptions import ParallelGroupError

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


def member(task_id: str, fails: bool) -> TaskWrapper:
    """Member ``task_id`` of the matrix: returns its value, or raises ``ValueError("<id> broke")``."""
    value = VALUES[task_id]

    def body() -> int:
        if fails:
            raise ValueError(f"{task_id} broke")
        return value

    return TaskWrapper(task_id, body)
