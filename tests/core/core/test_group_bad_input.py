"""Group configuration mistakes fail before the group starts, saying what is wrong and what to do."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.engine import WorkflowEngine
from graflow.core.group import ParallelGroup
from graflow.core.handlers.group_policy import (
    AtLeastNGroupPolicy,
    BestEffortGroupPolicy,
    CriticalGroupPolicy,
    ErrorHandlingPolicy,
)
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ConfigError, TaskSerializationError


def _pair() -> ParallelGroup:
    """``a | b`` in the active workflow."""
    return TaskWrapper("a", lambda: "a") | TaskWrapper("b", lambda: "b")


# --- AT_LEAST_N ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(lambda: ErrorHandlingPolicy.AT_LEAST_N(n=3), id="seed_form"),
        pytest.param(lambda: AtLeastNGroupPolicy(min_success=3), id="class_form"),
    ],
)
def test_at_least_n_larger_than_the_group_is_refused_when_configured(policy: Any) -> None:
    with workflow("too_many"):
        group = _pair()
        with pytest.raises(ConfigError) as caught:
            group.with_policy(policy())

    message = str(caught.value)
    assert f"group {group.task_id!r} has 2 members" in message
    assert "AT_LEAST_N(3) needs 3 to succeed" in message
    assert "use n <= 2 or add members" in message
    assert group.policy is None, "a refused policy leaves the group as it was"


@pytest.mark.parametrize("n", [0, -1, 1.5, "2", True, None])
def test_at_least_n_below_one_or_not_a_whole_number_is_refused(n: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        ErrorHandlingPolicy.AT_LEAST_N(n=n)

    message = str(caught.value)
    assert "needs a whole number n >= 1" in message
    assert f"got {n!r}" in message
    assert "ErrorHandlingPolicy.BEST_EFFORT" in message


def test_at_least_n_equal_to_the_group_size_is_accepted() -> None:
    with workflow("exactly") as wf:
        group = _pair().with_policy(ErrorHandlingPolicy.AT_LEAST_N(n=2))
        _, context = wf.execute(ret_context=True)

    assert context.get_result(group.task_id) == {"a": "a", "b": "b"}


# --- CRITICAL_TASKS ------------------------------------------------------------------------


def test_a_critical_task_that_is_not_a_member_is_refused_naming_the_members() -> None:
    with workflow("not_a_member"):
        group = _pair()
        with pytest.raises(ConfigError) as caught:
            group.with_policy(ErrorHandlingPolicy.CRITICAL_TASKS(["a", "typo"]))

    message = str(caught.value)
    assert "critical task(s) 'typo' are not members of group" in message
    assert "name members of this group: a, b" in message
    assert "'a'" not in message.split(";")[0], "only the unknown id is named"


def test_the_class_form_critical_policy_is_checked_the_same_way() -> None:
    with workflow("not_a_member_class"):
        group = _pair()
        with pytest.raises(ConfigError, match=r"critical task\(s\) 'c' are not members"):
            group.with_execution(policy=CriticalGroupPolicy(critical_task_ids=["c"]))


def test_critical_tasks_given_one_string_says_to_pass_a_list() -> None:
    with pytest.raises(ConfigError) as caught:
        ErrorHandlingPolicy.CRITICAL_TASKS("task_a")

    assert "takes a list of member task ids, got 'task_a'" in str(caught.value)
    assert "ErrorHandlingPolicy.CRITICAL_TASKS(['task_a'])" in str(caught.value)


def test_critical_tasks_with_no_ids_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"needs at least one member task id.*BEST_EFFORT"):
        ErrorHandlingPolicy.CRITICAL_TASKS([])


# --- the policy argument itself --------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            "nope", "unknown policy 'nope'; use 'strict', 'best_effort' or a policy object", id="str"
        ),
        pytest.param(
            BestEffortGroupPolicy,
            "got the class BestEffortGroupPolicy; write BestEffortGroupPolicy()",
            id="class",
        ),
        pytest.param(
            ErrorHandlingPolicy,
            "got the class ErrorHandlingPolicy; write ErrorHandlingPolicy()",
            id="base_class",
        ),
        pytest.param(3, "must be an ErrorHandlingPolicy (e.g. ErrorHandlingPolicy.BEST_EFFORT", id="int"),
        pytest.param(lambda failed, ok: False, "GroupExecutionPolicy instance, got function", id="function"),
    ],
)
def test_a_policy_of_the_wrong_kind_is_refused_saying_what_to_pass(policy: Any, expected: str) -> None:
    with workflow("wrong_policy"):
        group = _pair().with_policy(ErrorHandlingPolicy.BEST_EFFORT)
        with pytest.raises(ConfigError) as caught:
            group.with_policy(policy)
        with pytest.raises(ConfigError):
            group.with_execution(policy=policy)

    assert expected in str(caught.value)
    assert group.policy is ErrorHandlingPolicy.BEST_EFFORT, "a refused policy leaves the group as it was"


def test_policy_names_are_accepted_in_any_case_and_none_restores_the_default() -> None:
    with workflow("policy_names"):
        group = _pair()
        assert group.with_policy("BEST_EFFORT").policy is ErrorHandlingPolicy.BEST_EFFORT
        assert group.with_policy("strict").policy is ErrorHandlingPolicy.STRICT
        assert group.with_execution(policy=None).policy is None


# --- backend, max_workers, timeout -----------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param(
            {"backend": "nope"}, "unknown coordination backend 'nope'; known: direct,", id="backend_name"
        ),
        pytest.param({"backend": 3}, "backend must be a CoordinationBackend (e.g.", id="backend_type"),
        pytest.param(
            {"max_workers": 0}, "max_workers must be a whole number >= 1 (e.g. max_workers=4)", id="zero"
        ),
        pytest.param({"max_workers": 2.5}, "got 2.5", id="max_workers_float"),
        pytest.param(
            {"timeout": 0}, "timeout must be a positive number of seconds (e.g. timeout=30)", id="zero_t"
        ),
        pytest.param({"timeout": "5"}, "got '5'", id="timeout_str"),
    ],
)
def test_bad_execution_settings_are_refused_and_change_nothing(
    arguments: dict[str, Any], expected: str
) -> None:
    with workflow("bad_settings"):
        group = _pair().with_execution(backend=CoordinationBackend.DIRECT, max_workers=2, timeout=5.0)
        with pytest.raises(ConfigError) as caught:
            group.with_execution(policy=ErrorHandlingPolicy.BEST_EFFORT, **arguments)

    assert expected in str(caught.value)
    assert (group.backend, group.max_workers, group.timeout, group.policy) == ("direct", 2, 5.0, None)


# --- members that cannot travel to another process -------------------------------------------


def test_a_member_that_cannot_be_pickled_fails_multiprocessing_before_any_member_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    lock = threading.Lock()

    def guarded() -> str:
        with lock:
            return "guarded"

    with workflow("unpicklable") as wf:
        before = TaskWrapper("before", lambda: "before")
        fine = TaskWrapper("fine", lambda: marker.write_text("fine ran"))
        group = (fine | TaskWrapper("guarded", guarded)).with_execution(
            backend=CoordinationBackend.MULTIPROCESSING
        )
        before >> group
        context = wf.create_context()
        with pytest.raises(TaskSerializationError) as caught:
            WorkflowEngine().execute(context)

    assert not marker.exists(), "no member ran"
    assert context.get_result("before") == "before"
    message = str(caught.value)
    assert f"task 'guarded' of group {group.task_id!r} cannot be sent to another process" in message
    assert "lock" in message
    assert "create them inside the task" in message
    assert "CoordinationBackend.THREADING" in message


def test_the_same_member_runs_on_threading_as_the_error_suggests() -> None:
    lock = threading.Lock()

    def guarded() -> str:
        with lock:
            return "guarded"

    with workflow("threads_share_a_lock") as wf:
        group = (TaskWrapper("fine", lambda: "fine") | TaskWrapper("guarded", guarded)).with_execution(
            backend=CoordinationBackend.THREADING
        )
        _, context = wf.execute(ret_context=True)

    assert context.get_result(group.task_id) == {"fine": "fine", "guarded": "guarded"}
