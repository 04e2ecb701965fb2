"""The product brief's chapter 5 ("fine-grained parallel group error policies"), run as written.

Five policy snippets (Strict, Best Effort, At Least N, Critical Tasks, a custom policy)
and the ``ParallelGroupError`` inspection snippet. ``task_a``, ``task_b`` and ``task_c``
return ``"a"``, ``"b"``, ``"c"``; the ones a test names raise ``ValueError("<id> failed")``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

import graflow
from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.task import TaskWrapper
from graflow.core.workflow import WorkflowContext, workflow
from graflow.exceptions import ParallelGroupError


def define_tasks(failing: Iterable[str] = ()) -> tuple[TaskWrapper, TaskWrapper, TaskWrapper]:
    """``task_a``, ``task_b``, ``task_c`` in the active workflow; those in ``failing`` raise."""
    broken = set(failing)

    def body(task_id: str) -> TaskWrapper:
        def run() -> str:
            if task_id in broken:
                raise ValueError(f"{task_id} failed")
            return task_id.removeprefix("task_")

        return task(task_id)(run)

    return body("task_a"), body("task_b"), body("task_c")


def execute(wf: WorkflowContext) -> tuple[ExecutionContext, ParallelGroupError | None]:
    context = ExecutionContext.create(wf.graph)
    try:
        WorkflowEngine().execute(context)
    except ParallelGroupError as error:
        return context, error
    return context, None


# --- a. Strict (the default) ---------------------------------------------------------------


def test_a_strict_mode_is_the_default_and_every_member_must_succeed() -> None:
    with workflow("seed_strict_ok") as wf:
        task_a, task_b, task_c = define_tasks()
        # fmt: off
        parallel = (task_a | task_b | task_c)  # 全て成功が必須
        # fmt: on
        _, error = execute(wf)
    assert error is None

    with workflow("seed_strict_fail") as wf:
        task_a, task_b, task_c = define_tasks(failing=["task_c"])
        # fmt: off
        parallel = (task_a | task_b | task_c)  # 全て成功が必須
        # fmt: on
        context, error = execute(wf)
    assert error is not None
    assert error.group_id == parallel.task_id
    assert error.failed_tasks == [("task_c", "ValueError: task_c failed")]
    assert error.successful_tasks == ["task_a", "task_b"]


# --- b. Best Effort ------------------------------------------------------------------------


def test_b_best_effort_ignores_failures_and_continues_with_the_successes() -> None:
    with workflow("seed_best_effort") as wf:
        task_a, task_b, task_c = define_tasks(failing=["task_a", "task_b"])
        # fmt: off
        parallel = (task_a | task_b | task_c).with_policy(
            ErrorHandlingPolicy.BEST_EFFORT
        )
        # fmt: on

        @task(inject_context=True)
        def aggregate(context: graflow.TaskExecutionContext) -> dict[str, str]:
            results: dict[str, str] = context.get_result(parallel.task_id)
            return results

        parallel >> aggregate
        context, error = execute(wf)

    assert error is None
    assert context.get_result("aggregate") == {"task_c": "c"}


# --- c. At Least N -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "passes"),
    [(["task_b"], True), (["task_a", "task_c"], False)],
    ids=["two_of_three_succeed", "one_of_three_succeeds"],
)
def test_c_at_least_n_continues_when_n_members_succeed(failing: list[str], passes: bool) -> None:
    with workflow("seed_at_least_n") as wf:
        task_a, task_b, task_c = define_tasks(failing=failing)
        # fmt: off
        parallel = (task_a | task_b | task_c).with_policy(
            ErrorHandlingPolicy.AT_LEAST_N(n=2)
        )
        # fmt: on
        context, error = execute(wf)

    assert (error is None) == passes
    if error is not None:
        assert error.successful_tasks == ["task_b"]
        assert "1 succeeded, at least 2 required" in str(error)
    else:
        assert context.get_result(parallel.task_id) == {"task_a": "a", "task_c": "c"}


# --- d. Critical Tasks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "passes"),
    [(["task_b", "task_c"], True), (["task_a"], False)],
    ids=["optional_members_fail", "the_primary_source_fails"],
)
def test_d_critical_tasks_only_the_named_members_must_succeed(failing: list[str], passes: bool) -> None:
    with workflow("seed_critical") as wf:
        task_a, task_b, task_c = define_tasks(failing=failing)
        # fmt: off
        parallel = (task_a | task_b | task_c).with_policy(
            ErrorHandlingPolicy.CRITICAL_TASKS(["task_a"])
        )
        # fmt: on
        context, error = execute(wf)

    assert (error is None) == passes
    if error is not None:
        assert error.failed_tasks == [("task_a", "ValueError: task_a failed")]
    else:
        assert context.get_result(parallel.task_id) == {"task_a": "a"}


# --- e. a custom policy --------------------------------------------------------------------


class CustomPolicy(ErrorHandlingPolicy):
    def should_fail(self, failed_tasks, successful_tasks):  # type: ignore[no-untyped-def]
        # カスタムロジック
        return len(failed_tasks) > len(successful_tasks)


@pytest.mark.parametrize(
    ("failing", "passes"),
    [(["task_c"], True), (["task_a", "task_b"], False)],
    ids=["a_minority_fails", "a_majority_fails"],
)
def test_e_custom_policy_decides_with_should_fail(failing: list[str], passes: bool) -> None:
    with workflow("seed_custom") as wf:
        task_a, task_b, task_c = define_tasks(failing=failing)
        parallel = task_a | task_b | task_c

        parallel.with_policy(CustomPolicy())
        context, error = execute(wf)

    assert (error is None) == passes
    if error is not None:
        assert error.failed_tasks == [
            ("task_a", "ValueError: task_a failed"),
            ("task_b", "ValueError: task_b failed"),
        ]
        assert error.successful_tasks == ["task_c"]
    else:
        assert context.get_result(parallel.task_id) == {"task_a": "a", "task_b": "b"}


# --- error information ---------------------------------------------------------------------


def test_parallel_group_error_inspection_prints_group_failures_and_successes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with workflow("seed_error_info") as wf:
        task_a, task_b, task_c = define_tasks(failing=["task_b"])
        parallel = (task_a | task_b | task_c).set_group_name("parallel_tasks")
        context = ExecutionContext.create(wf.graph)
        engine = WorkflowEngine()

        try:
            engine.execute(context)
        except ParallelGroupError as e:
            print(f"グループ: {e.group_id}")
            print(f"失敗: {e.failed_tasks}")  # [(task_id, error_msg), ...]
            print(f"成功: {e.successful_tasks}")  # [task_id, ...]

    assert parallel.task_id == "parallel_tasks"
    assert capsys.readouterr().out.splitlines() == [
        "グループ: parallel_tasks",
        "失敗: [('task_b', 'ValueError: task_b failed')]",
        "成功: ['task_a', 'task_c']",
    ]


# --- chapter 7's coordination-backend snippet, each local backend ----------------------------


@pytest.mark.parametrize(
    "backend",
    [CoordinationBackend.DIRECT, CoordinationBackend.THREADING, CoordinationBackend.MULTIPROCESSING],
    ids=["direct", "threading", "multiprocessing"],
)
def test_each_local_coordination_backend_runs_the_same_group(backend: CoordinationBackend) -> None:
    with workflow("seed_backends") as wf:
        task_a, task_b, task_c = define_tasks()
        # fmt: off
        parallel = (task_a | task_b | task_c).with_execution(
            backend=backend
        )
        # fmt: on
        context, error = execute(wf)

    assert error is None
    assert context.get_result(parallel.task_id) == {"task_a": "a", "task_b": "b", "task_c": "c"}


def test_error_handling_policy_is_importable_from_the_package_root() -> None:
    assert graflow.ErrorHandlingPolicy is ErrorHandlingPolicy
