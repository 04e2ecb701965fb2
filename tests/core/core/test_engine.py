"""Engine semantics: DAG scheduling, results, limits and task failures (SPEC sections 3 and 4)."""

from __future__ import annotations

import sys

import pytest

from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import MaxStepsExceededError
from tests.core.ordering import assert_ran_before, recording_tasks

# --- DAG semantics --------------------------------------------------------------------------


def test_every_node_runs_once_in_a_diamond_of_plain_edges() -> None:
    log: list[str] = []
    with workflow("diamond") as wf:
        a, b, c, d = recording_tasks(log, "a", "b", "c", "d")
        a >> b
        a >> c
        b >> d
        c >> d
        assert wf.execute() == "d"
    assert sorted(log) == ["a", "b", "c", "d"]
    assert_ran_before(log, ["a"], ["b", "c"])
    assert_ran_before(log, ["b", "c"], ["d"])


def test_a_node_waits_for_its_slowest_predecessor_branch() -> None:
    log: list[str] = []
    with workflow("uneven") as wf:
        start, b1, b2, b3, join = recording_tasks(log, "start", "b1", "b2", "b3", "join")
        start >> join  # the short branch is done first ...
        start >> b1 >> b2 >> b3 >> join  # ... but join also waits for the long one
        wf.execute()
    assert log.count("join") == 1
    assert log[-1] == "join"
    assert_ran_before(log, ["start", "b1", "b2", "b3"], ["join"])


def test_a_node_waits_for_predecessors_from_independent_roots() -> None:
    log: list[str] = []
    with workflow("two_roots_join") as wf:
        r1, r2, r2b, join = recording_tasks(log, "r1", "r2", "r2b", "join")
        r1 >> join
        r2 >> r2b >> join
        wf.execute()
    assert log.count("join") == 1
    assert_ran_before(log, ["r1", "r2", "r2b"], ["join"])


def test_a_node_waits_for_a_group_and_a_plain_task_together() -> None:
    log: list[str] = []
    with workflow("mixed_join") as wf:
        a, b, c, d = recording_tasks(log, "a", "b", "c", "d")
        (a | b) >> d
        c >> d
        assert wf.execute() == "d"
    assert sorted(log) == ["a", "b", "c", "d"]
    assert_ran_before(log, ["a", "b", "c"], ["d"])


def test_a_group_member_runs_once_inside_its_group_only() -> None:
    log: list[str] = []
    with workflow("member_once") as wf:
        a, b, c = recording_tasks(log, "a", "b", "c")
        group = a | b
        group >> c
        _, ctx = wf.execute(ret_context=True)
    assert sorted(log) == ["a", "b", "c"]
    assert ctx.cycle_counts == {group.task_id: 1, "a": 1, "b": 1, "c": 1}


def test_when_a_group_runs_last_the_result_maps_member_ids_to_results() -> None:
    with workflow("group_last") as wf:
        src, a, b = recording_tasks([], "src", "a", "b")
        src >> (a | b)
        assert wf.execute() == {"a": "a", "b": "b"}


def test_one_engine_runs_many_workflows_independently() -> None:
    engine = WorkflowEngine()
    with workflow("one") as one:
        x, y = recording_tasks([], "x", "y")
        x >> y
    with workflow("two") as two:
        (z,) = recording_tasks([], "z")
    ctx_one, ctx_two = ExecutionContext.create(one.graph), ExecutionContext.create(two.graph)
    assert engine.execute(ctx_one) == "y"
    assert engine.execute(ctx_two) == "z"
    assert ctx_two.get_result("x") is None


# --- max_steps ----------------------------------------------------------------------------


def test_a_loop_past_max_steps_raises_naming_the_limit_and_the_last_task() -> None:
    runs: list[int] = []
    with workflow("endless") as wf:

        @task(inject_context=True, max_cycles=1_000)
        def poll(ctx: TaskExecutionContext) -> None:
            runs.append(ctx.cycle_count)
            ctx.next_iteration()

        with pytest.raises(MaxStepsExceededError) as excinfo:
            wf.execute(max_steps=5)

    assert runs == [1, 2, 3, 4, 5]  # stopped at the limit, not one task later
    error = excinfo.value
    assert error.max_steps == 5
    assert error.last_task_id == "poll"
    assert "max_steps=5" in str(error) and "'poll'" in str(error)
    assert "larger max_steps" in str(error)


def test_a_dag_longer_than_max_steps_is_never_a_silent_stop() -> None:
    log: list[str] = []
    with workflow("too_long") as wf:
        a, b, c = recording_tasks(log, "a", "b", "c")
        a >> b >> c
        with pytest.raises(MaxStepsExceededError, match=r"max_steps=2 \(last task: 'b'\)"):
            wf.execute(max_steps=2)
        assert log == ["a", "b"]
        assert wf.execute(max_steps=3) == "c"  # exactly enough steps is fine


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_steps_must_be_a_positive_int(bad: object) -> None:
    from graflow.exceptions import ConfigError

    with workflow("bad_steps") as wf:
        recording_tasks([], "a")
        with pytest.raises(ConfigError, match="max_steps must be a positive int"):
            wf.execute(max_steps=bad)  # type: ignore[arg-type]


# --- a task's exception ---------------------------------------------------------------------


class QuotaExceeded(Exception):
    pass


@pytest.mark.parametrize("inject_context", [False, True], ids=["plain", "with-context"])
def test_a_task_exception_propagates_as_itself_with_the_task_id(inject_context: bool) -> None:
    raised: list[BaseException] = []
    log: list[str] = []

    def fail(*_: object) -> None:
        error = QuotaExceeded("quota of 100 calls exceeded")
        raised.append(error)
        raise error

    with workflow("failing") as wf:
        (before,) = recording_tasks(log, "before")
        call_api = TaskWrapper("call_api", fail, inject_context=inject_context)
        (after,) = recording_tasks(log, "after")
        before >> call_api >> after
        with pytest.raises(QuotaExceeded) as excinfo:
            wf.execute()

    assert excinfo.value is raised[0]  # the very object, not a wrapper
    assert excinfo.type is QuotaExceeded
    assert excinfo.value.graflow_task_id == "call_api"  # type: ignore[attr-defined]
    assert log == ["before"]  # successors of a failed task do not run
    if sys.version_info >= (3, 11):
        assert any("'call_api'" in note for note in excinfo.value.__notes__)


def test_a_builtin_exception_type_is_kept_so_ordinary_except_clauses_work() -> None:
    with workflow("key_error") as wf:

        @task
        def lookup() -> int:
            return {}["missing"]  # type: ignore[no-any-return]

        try:
            wf.execute()
        except KeyError as exc:
            assert exc.graflow_task_id == "lookup"  # type: ignore[attr-defined]
        else:
            pytest.fail("KeyError did not propagate")
