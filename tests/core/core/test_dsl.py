"""The operator DSL: ``>>``, ``|``, ``chain()``, ``parallel()`` and named groups (SPEC section 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graflow.core.decorators import task
from graflow.core.dsl import Chain, chain, parallel
from graflow.core.group import ParallelGroup
from graflow.core.workflow import workflow
from graflow.exceptions import GraphCompilationError
from tests.core.ordering import assert_each_ran_once, assert_ran_before, recording_tasks

# --- >> ------------------------------------------------------------------------------------


def test_rshift_makes_the_right_task_depend_on_the_left() -> None:
    log: list[str] = []
    with workflow("seq") as wf:
        a, b = recording_tasks(log, "a", "b")
        b_then_a = b >> a  # written in the "wrong" order on purpose
        assert isinstance(b_then_a, Chain)
        assert wf.graph.edges == [("b", "a")]
        assert wf.execute() == "a"
    assert log == ["b", "a"]


def test_lshift_is_rshift_read_backwards() -> None:
    log: list[str] = []
    with workflow("lshift") as wf:
        a, b = recording_tasks(log, "a", "b")
        b << a
        assert wf.graph.edges == [("a", "b")]
        wf.execute()
    assert log == ["a", "b"]


def test_a_long_chain_runs_in_order() -> None:
    log: list[str] = []
    names = [f"step{i}" for i in range(8)]
    with workflow("long") as wf:
        tasks = recording_tasks(log, *names)
        pipeline = tasks[0]
        for nxt in tasks[1:]:
            pipeline = pipeline >> nxt
        assert pipeline.task_id == ">>".join(names)
        assert wf.execute() == "step7"
    assert log == names


# --- | ---------------------------------------------------------------------------------------


def test_pipe_makes_one_parallel_group_node() -> None:
    log: list[str] = []
    with workflow("pipe") as wf:
        a, b = recording_tasks(log, "a", "b")
        group = a | b
        assert isinstance(group, ParallelGroup)
        assert group.members == [a, b]
        assert wf.graph.nodes == [group.task_id]
        assert wf.graph.edges == []
        result = wf.execute()
    assert_each_ran_once(log, ["a", "b"])
    assert result == {"a": "a", "b": "b"}  # a group's result maps member ids to their results


def test_three_pipes_make_one_group_of_three() -> None:
    with workflow("pipe3") as wf:
        a, b, c = recording_tasks([], "a", "b", "c")
        group = a | b | c
        assert group.member_ids == ["a", "b", "c"]
        assert wf.graph.nodes == [group.task_id]


# --- fan-in, fan-out, nesting ---------------------------------------------------------------


def test_fan_in_runs_the_successor_once_after_every_member() -> None:
    log: list[str] = []
    with workflow("fan_in") as wf:
        a, b, c = recording_tasks(log, "a", "b", "c")
        group = a | b
        group >> c
        assert wf.graph.predecessors("c") == [group.task_id]
        assert wf.execute() == "c"
    assert_each_ran_once(log, ["a", "b", "c"])
    assert_ran_before(log, ["a", "b"], ["c"])


def test_fan_out_runs_every_member_after_the_source() -> None:
    log: list[str] = []
    with workflow("fan_out") as wf:
        a, b, c = recording_tasks(log, "a", "b", "c")
        a >> (b | c)
        wf.execute()
    assert_each_ran_once(log, ["a", "b", "c"])
    assert_ran_before(log, ["a"], ["b", "c"])


def test_diamond_fetch_transform_store() -> None:
    log: list[str] = []
    with workflow("diamond") as wf:
        fetch, t_a, t_b, store = recording_tasks(log, "fetch", "t_a", "t_b", "store")
        fetch >> (t_a | t_b) >> store
        assert wf.execute() == "store"
    assert_each_ran_once(log, ["fetch", "t_a", "t_b", "store"])
    assert_ran_before(log, ["fetch"], ["t_a", "t_b"])
    assert_ran_before(log, ["t_a", "t_b"], ["store"])


def test_multi_stage_pipeline_keeps_every_stage_boundary() -> None:
    log: list[str] = []
    names = ["l_a", "l_b", "v", "p_a", "p_b", "s_db", "s_file"]
    with workflow("multi_stage") as wf:
        l_a, l_b, v, p_a, p_b, s_db, s_file = recording_tasks(log, *names)
        (l_a | l_b) >> v >> (p_a | p_b) >> (s_db | s_file)
        assert len(wf.graph.nodes) == 4  # three groups and v
        wf.execute()
    assert_each_ran_once(log, names)
    assert_ran_before(log, ["l_a", "l_b"], ["v"])
    assert_ran_before(log, ["v"], ["p_a", "p_b"])
    assert_ran_before(log, ["p_a", "p_b"], ["s_db", "s_file"])


def test_a_chain_can_be_a_member_of_a_group() -> None:
    log: list[str] = []
    with workflow("nested") as wf:
        a, b, c, d = recording_tasks(log, "a", "b", "c", "d")
        outer = (a >> (b | c)) | d
        assert isinstance(outer, ParallelGroup)
        assert wf.graph.nodes == [outer.task_id]
        inner = outer.members[0]
        assert isinstance(inner, Chain) and inner.elements[0] is a
        assert outer.members[1] is d
        wf.execute()
    assert_each_ran_once(log, ["a", "b", "c", "d"])
    assert_ran_before(log, ["a"], ["b", "c"])


def test_edges_to_tasks_that_join_a_group_move_to_the_group() -> None:
    log: list[str] = []
    with workflow("moved_edges") as wf:
        fetch, a, b, c = recording_tasks(log, "fetch", "a", "b", "c")
        fetch >> a
        fetch >> b
        group = a | b
        group >> c
        assert sorted(wf.graph.edges) == sorted([("fetch", group.task_id), (group.task_id, "c")])
        assert sorted(wf.graph.nodes) == sorted(["fetch", group.task_id, "c"])
        wf.execute()
    assert_each_ran_once(log, ["fetch", "a", "b", "c"])
    assert_ran_before(log, ["fetch"], ["a", "b"])
    assert_ran_before(log, ["a", "b"], ["c"])


def test_a_group_member_cannot_also_be_connected_on_its_own() -> None:
    with workflow("member_edge") as wf:
        a, b, c = recording_tasks([], "a", "b", "c")
        group = a | b
        with pytest.raises(
            GraphCompilationError, match=rf"member of group '{group.task_id}'.*connect the group"
        ):
            a >> c
        assert wf.graph.edges == []


def test_a_task_belongs_to_one_group_only() -> None:
    with workflow("two_groups"):
        a, b, c = recording_tasks([], "a", "b", "c")
        a | b
        with pytest.raises(GraphCompilationError, match="'a' is already a member of group"):
            c | a


# --- function forms ----------------------------------------------------------------------


def test_chain_function_is_the_same_as_rshift() -> None:
    log: list[str] = []
    with workflow("chain_fn") as wf:
        a, b, c = recording_tasks(log, "a", "b", "c")
        chained = chain(a, b, c)
        assert chained.task_id == "a>>b>>c"
        assert wf.graph.edges == [("a", "b"), ("b", "c")]
        assert wf.execute() == "c"
    assert log == ["a", "b", "c"]


def test_chain_of_one_task_registers_it() -> None:
    with workflow("chain_one") as wf:
        (only,) = recording_tasks([], "only")
        assert chain(only) is only
        assert wf.graph.nodes == ["only"]


def test_chain_and_parallel_need_at_least_one_task() -> None:
    with workflow("empty_forms"):
        with pytest.raises(TypeError, match="at least one task"):
            chain()
        with pytest.raises(TypeError, match="at least one task"):
            parallel()


def test_parallel_function_makes_one_group() -> None:
    log: list[str] = []
    with workflow("parallel_fn") as wf:
        a, b, c, d = recording_tasks(log, "a", "b", "c", "d")
        group = parallel(a, b, c)
        assert isinstance(group, ParallelGroup)
        assert group.member_ids == ["a", "b", "c"]
        group >> d
        assert wf.graph.edges == [(group.task_id, "d")]
        wf.execute()
    assert_ran_before(log, ["a", "b", "c"], ["d"])


def test_function_and_operator_forms_compose() -> None:
    log: list[str] = []
    with workflow("mixed_forms") as wf:
        src, a, b, sink = recording_tasks(log, "src", "a", "b", "sink")
        chain(src, parallel(a, b), sink)
        wf.execute()
    assert_each_ran_once(log, ["src", "a", "b", "sink"])
    assert_ran_before(log, ["src"], ["a", "b"])
    assert_ran_before(log, ["a", "b"], ["sink"])


# --- named groups ---------------------------------------------------------------------------


def test_set_group_name_returns_the_group_and_names_its_node() -> None:
    with workflow("named") as wf:
        a, b, agg = recording_tasks([], "a", "b", "agg")
        group = a | b
        assert group.set_group_name("sources") is group
        assert group.task_id == "sources"
        group >> agg
        assert sorted(wf.graph.nodes) == ["agg", "sources"]
        assert wf.graph.edges == [("sources", "agg")]
        _, ctx = wf.execute(ret_context=True)
    assert ctx.get_result("sources") == {"a": "a", "b": "b"}


def test_renaming_a_connected_group_keeps_its_edges() -> None:
    with workflow("rename_later") as wf:
        src, a, b, sink = recording_tasks([], "src", "a", "b", "sink")
        group = a | b
        src >> group >> sink
        group.set_group_name("middle")
        assert sorted(wf.graph.edges) == [("middle", "sink"), ("src", "middle")]


def test_an_unnamed_group_has_an_automatic_unique_id() -> None:
    with workflow("auto_ids") as wf:
        a, b, c, d = recording_tasks([], "a", "b", "c", "d")
        first = a | b
        second = c | d
        assert first.task_id and second.task_id and first.task_id != second.task_id
        assert sorted(wf.graph.nodes) == sorted([first.task_id, second.task_id])


def test_a_named_group_is_not_extended_by_a_further_pipe() -> None:
    with workflow("named_closed"):
        a, b, c = recording_tasks([], "a", "b", "c")
        named = (a | b).set_group_name("pair")
        outer = named | c
        assert outer is not named
        assert named.member_ids == ["a", "b"]
        assert outer.member_ids == ["pair", "c"]


def test_group_name_must_be_a_non_empty_string() -> None:
    with workflow("bad_name"):
        a, b = recording_tasks([], "a", "b")
        with pytest.raises(TypeError, match="group name must be a non-empty string"):
            (a | b).set_group_name("")


# --- operands that are not tasks ------------------------------------------------------------


@pytest.mark.parametrize(
    "compose",
    [
        lambda t: t >> 3,
        lambda t: t | "extract",
        lambda t: 3 >> t,
        lambda t: "extract" | t,
        lambda t: t >> (lambda: None),
        lambda t: chain(t, print),
        lambda t: parallel(t, None),
    ],
    ids=["rshift", "pipe", "reflected-rshift", "reflected-pipe", "lambda", "chain", "parallel"],
)
def test_composing_something_that_is_not_a_task_says_what_was_expected(compose: Callable[[Any], Any]) -> None:
    with workflow("not_a_task") as wf:

        @task
        def real() -> None:
            return None

        with pytest.raises(TypeError, match=r"expected a @task function, a TaskWrapper.*Decorate"):
            compose(real)
        assert wf.graph.edges == []


def test_a_list_of_tasks_is_pointed_to_the_pipe_operator() -> None:
    """Airflow users write ``[a, b] >> c``; here a group is ``(a | b)``."""
    with workflow("airflow_list"):
        a, b, c = recording_tasks([], "a", "b", "c")
        with pytest.raises(TypeError, match=r"got list.*\(a \| b\) >> c"):
            [a, b] >> c  # type: ignore[operator]
        with pytest.raises(TypeError, match=r"got list.*\(a \| b\) >> c"):
            c >> [a, b]  # type: ignore[operator]
