"""How a parallel group's member failures count.

Two ways to write a policy, both accepted everywhere:

* the brief's form: ``ErrorHandlingPolicy.STRICT``, ``.BEST_EFFORT``, ``.AT_LEAST_N(n=2)``,
  ``.CRITICAL_TASKS(["a"])``, or a subclass overriding
  ``should_fail(failed_tasks, successful_tasks) -> bool``;
* the class form: ``StrictGroupPolicy()``, ``BestEffortGroupPolicy()``,
  ``AtLeastNGroupPolicy(min_success=2)``, ``CriticalGroupPolicy(critical_task_ids=[...])``,
  or a :class:`GroupExecutionPolicy` subclass overriding ``on_group_finished`` and
  raising :class:`~graflow.exceptions.ParallelGroupError` (see :meth:`GroupExecutionPolicy.fail`).

A policy is checked against its group before the group starts (``AT_LEAST_N`` larger than
the group, a critical id that is not a member), so configuration mistakes never cost a run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from graflow.exceptions import ConfigError, ParallelGroupError

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable, ParallelGroup
    from graflow.core.handler import TaskResult

__all__ = [
    "AtLeastNGroupPolicy",
    "BestEffortGroupPolicy",
    "CriticalGroupPolicy",
    "ErrorHandlingPolicy",
    "GroupExecutionPolicy",
    "StrictGroupPolicy",
    "resolve_policy",
]


class GroupExecutionPolicy(ABC):
    """Decides, once every member has an outcome, whether the group failed."""

    def get_name(self) -> str:
        """A short name for messages and traces."""
        return type(self).__name__

    def validate(self, group: ParallelGroup) -> None:
        """Check this policy fits ``group``; raise :class:`ConfigError` if not. Default: fits."""

    @abstractmethod
    def on_group_finished(
        self,
        group_id: str,
        tasks: Sequence[Executable],
        results: Mapping[str, TaskResult],
        context: ExecutionContext,
    ) -> None:
        """Judge the outcomes (member id -> :class:`TaskResult`); raise to fail the group."""

    def _validate_group_results(
        self, group_id: str, tasks: Sequence[Executable], results: Mapping[str, TaskResult]
    ) -> None:
        """Raise if a member has no outcome (a coordinator lost it)."""
        missing = [t.task_id for t in tasks if t.task_id not in results]
        if missing:
            raise ParallelGroupError(
                f"group {group_id!r}: no outcome for member(s) {', '.join(missing)}",
                group_id,
                [(m, "no outcome recorded") for m in missing],
                [tid for tid, r in results.items() if r.success],
            )

    @staticmethod
    def partition(
        tasks: Sequence[Executable], results: Mapping[str, TaskResult]
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """``(failed [(id, error_message)], successful [id])`` in member order."""
        failed: list[tuple[str, str]] = []
        successful: list[str] = []
        for task in tasks:
            outcome = results[task.task_id]
            if outcome.success:
                successful.append(task.task_id)
            else:
                failed.append((task.task_id, outcome.error_message or "failed"))
        return failed, successful

    @staticmethod
    def _partition_group_results(results: Mapping[str, TaskResult]) -> tuple[list[str], list[str]]:
        """``(successful ids, failed ids)`` of ``results``: the existing releases' helper for custom policies."""
        successful = [tid for tid, outcome in results.items() if outcome.success]
        failed = [tid for tid, outcome in results.items() if not outcome.success]
        return successful, failed

    def fail(
        self,
        group_id: str,
        failed: Sequence[tuple[str, str]],
        successful: Sequence[str],
        reason: str | None = None,
    ) -> ParallelGroupError:
        """The error that fails the group, worded for people; raise what it returns."""
        details = "; ".join(f"{tid}: {msg}" for tid, msg in failed) or "no member failed"
        why = reason or f"{len(failed)} of {len(failed) + len(successful)} members failed"
        return ParallelGroupError(
            f"parallel group {group_id!r} failed under {self.get_name()}: {why} ({details})",
            group_id,
            failed,
            successful,
        )


class ErrorHandlingPolicy(GroupExecutionPolicy):
    """The brief's policy form; subclass it and override :meth:`should_fail` for your rule."""

    STRICT: ClassVar[ErrorHandlingPolicy]
    BEST_EFFORT: ClassVar[ErrorHandlingPolicy]

    @staticmethod
    def AT_LEAST_N(n: int) -> AtLeastNGroupPolicy:  # noqa: N802 - the brief's spelling
        """Pass when at least ``n`` members succeed."""
        return AtLeastNGroupPolicy(min_success=n)

    @staticmethod
    def CRITICAL_TASKS(task_ids: Sequence[str]) -> CriticalGroupPolicy:  # noqa: N802
        """Fail only when one of ``task_ids`` fails."""
        return CriticalGroupPolicy(critical_task_ids=task_ids)

    def should_fail(self, failed_tasks: list[tuple[str, str]], successful_tasks: list[str]) -> bool:
        """Whether the group failed; the default is strict (any failure)."""
        return bool(failed_tasks)

    def on_group_finished(
        self,
        group_id: str,
        tasks: Sequence[Executable],
        results: Mapping[str, TaskResult],
        context: ExecutionContext,
    ) -> None:
        self._validate_group_results(group_id, tasks, results)
        failed, successful = self.partition(tasks, results)
        if self.should_fail(failed, successful):
            raise self.fail(group_id, failed, successful, self.failure_reason(failed, successful))

    def failure_reason(self, failed: list[tuple[str, str]], successful: list[str]) -> str | None:
        """One phrase on why the group failed (``None``: count the failures)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StrictGroupPolicy(ErrorHandlingPolicy):
    """Every member must succeed (the default)."""

    def get_name(self) -> str:
        return "strict"


class BestEffortGroupPolicy(ErrorHandlingPolicy):
    """Failures are tolerated; successors see the members that succeeded."""

    def get_name(self) -> str:
        return "best_effort"

    def should_fail(self, failed_tasks: list[tuple[str, str]], successful_tasks: list[str]) -> bool:
        return False


class AtLeastNGroupPolicy(ErrorHandlingPolicy):
    """At least ``min_success`` members must succeed."""

    def __init__(self, min_success: int) -> None:
        if not isinstance(min_success, int) or isinstance(min_success, bool) or min_success < 1:
            raise ConfigError(
                f"AT_LEAST_N(n) needs a whole number n >= 1 (how many members must succeed), got "
                f"{min_success!r}; to let the group pass whatever fails, use ErrorHandlingPolicy.BEST_EFFORT"
            )
        self.min_success = min_success

    def get_name(self) -> str:
        return f"at_least_{self.min_success}"

    def validate(self, group: ParallelGroup) -> None:
        if self.min_success > len(group.members):
            raise ConfigError(
                f"group {group.task_id!r} has {len(group.members)} members but its policy "
                f"AT_LEAST_N({self.min_success}) needs {self.min_success} to succeed, so it could never "
                f"pass; use n <= {len(group.members)} or add members to the group"
            )

    def should_fail(self, failed_tasks: list[tuple[str, str]], successful_tasks: list[str]) -> bool:
        return len(successful_tasks) < self.min_success

    def failure_reason(self, failed: list[tuple[str, str]], successful: list[str]) -> str:
        return f"{len(successful)} succeeded, at least {self.min_success} required"

    def __repr__(self) -> str:
        return f"AtLeastNGroupPolicy(min_success={self.min_success})"


class CriticalGroupPolicy(ErrorHandlingPolicy):
    """Only the listed members must succeed; the others may fail."""

    def __init__(self, critical_task_ids: Sequence[str]) -> None:
        ids = (
            list(critical_task_ids)
            if isinstance(critical_task_ids, Iterable) and not isinstance(critical_task_ids, str)
            else None
        )
        if ids is None or not all(isinstance(t, str) for t in ids):
            example = f"[{critical_task_ids!r}]" if isinstance(critical_task_ids, str) else '["task_a"]'
            raise ConfigError(
                f"CRITICAL_TASKS takes a list of member task ids, got {critical_task_ids!r}; "
                f"write e.g. ErrorHandlingPolicy.CRITICAL_TASKS({example})"
            )
        if not ids:
            raise ConfigError(
                "CRITICAL_TASKS needs at least one member task id; to let the group pass whatever "
                "fails, use ErrorHandlingPolicy.BEST_EFFORT"
            )
        self.critical_task_ids = ids

    def get_name(self) -> str:
        return "critical_tasks"

    def validate(self, group: ParallelGroup) -> None:
        unknown = [t for t in self.critical_task_ids if t not in group.member_ids]
        if unknown:
            raise ConfigError(
                f"critical task(s) {', '.join(map(repr, unknown))} are not members of group "
                f"{group.task_id!r}; name members of this group: {', '.join(group.member_ids)}"
            )

    def should_fail(self, failed_tasks: list[tuple[str, str]], successful_tasks: list[str]) -> bool:
        return any(tid in self.critical_task_ids for tid, _ in failed_tasks)

    def failure_reason(self, failed: list[tuple[str, str]], successful: list[str]) -> str:
        critical = [tid for tid, _ in failed if tid in self.critical_task_ids]
        return f"critical member(s) {', '.join(critical)} failed"

    def __repr__(self) -> str:
        return f"CriticalGroupPolicy(critical_task_ids={self.critical_task_ids!r})"


ErrorHandlingPolicy.STRICT = StrictGroupPolicy()
ErrorHandlingPolicy.BEST_EFFORT = BestEffortGroupPolicy()

_BY_NAME: dict[str, GroupExecutionPolicy] = {
    "strict": ErrorHandlingPolicy.STRICT,
    "best_effort": ErrorHandlingPolicy.BEST_EFFORT,
}


def resolve_policy(policy: Any, group: ParallelGroup | None = None) -> GroupExecutionPolicy:
    """A policy object from what ``with_policy`` was given, checked against ``group``."""
    if isinstance(policy, str):
        try:
            policy = _BY_NAME[policy.lower()]
        except KeyError:
            raise ConfigError(
                f"unknown policy {policy!r}; use 'strict', 'best_effort' or a policy object such as "
                "ErrorHandlingPolicy.AT_LEAST_N(n=2)"
            ) from None
    if isinstance(policy, type) and issubclass(policy, GroupExecutionPolicy):
        raise ConfigError(
            f"a group policy must be an instance, got the class {policy.__name__}; "
            f"write {policy.__name__}() (with its arguments, if it takes any)"
        )
    if not isinstance(policy, GroupExecutionPolicy):
        raise ConfigError(
            f"a group policy must be an ErrorHandlingPolicy (e.g. ErrorHandlingPolicy.BEST_EFFORT, "
            f"ErrorHandlingPolicy.AT_LEAST_N(n=2)) or a GroupExecutionPolicy instance, "
            f"got {type(policy).__name__} ({policy!r})"
        )
    if group is not None:
        policy.validate(group)
    return policy
