"""The product brief's chapter 6 ("Pythonic operator DSL") snippets, run as written.

Each test builds the brief's expression verbatim inside ``with workflow(...)`` and checks
the meaning its operator table gives: ``a >> b`` b depends on a; ``a | b`` independent;
``(a | b) >> c`` c after both; ``a >> (b | c)`` b and c after a.
"""

from __future__ import annotations

from typing import Any

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.workflow import workflow
from tests.core.ordering import assert_ran_before, recording_tasks


def run(wf: Any) -> tuple[Any, Any]:
    return wf.execute(ret_context=True)  # type: ignore[no-any-return]


# --- 構文 (syntax) ------------------------------------------------------------------------------


def test_sequential() -> None:
    log: list[str] = []
    with workflow("seed_sequential") as wf:
        task_a, task_b, task_c = recording_tasks(log, "task_a", "task_b", "task_c")
        task_a >> task_b >> task_c
        result, _ = run(wf)
    assert log == ["task_a", "task_b", "task_c"]
    assert result == "task_c"


def test_parallel() -> None:
    log: list[str] = []
    with workflow("seed_parallel") as wf:
        task_a, task_b, task_c = recording_tasks(log, "task_a", "task_b", "task_c")
        task_a | task_b | task_c
        assert len(wf.graph.nodes) == 1 and wf.graph.edges == []
        run(wf)
    assert sorted(log) == ["task_a", "task_b", "task_c"]


def test_diamond_combination() -> None:
    log: list[str] = []
    with workflow("seed_diamond") as wf:
        fetch, transform_a, transform_b, store = recording_tasks(
            log, "fetch", "transform_a", "transform_b", "store"
        )
        fetch >> (transform_a | transform_b) >> store
        result, _ = run(wf)
    assert result == "store"
    assert sorted(log) == ["fetch", "store", "transform_a", "transform_b"]
    assert_ran_before(log, ["fetch"], ["transform_a", "transform_b"])
    assert_ran_before(log, ["transform_a", "transform_b"], ["store"])


def test_multi_stage() -> None:
    log: list[str] = []
    names = ["load_a", "load_b", "validate", "process_a", "process_b", "save_db", "save_file"]
    with workflow("seed_multi_stage") as wf:
        load_a, load_b, validate, process_a, process_b, save_db, save_file = recording_tasks(log, *names)
        (load_a | load_b) >> validate >> (process_a | process_b) >> (save_db | save_file)
        run(wf)
    assert sorted(log) == sorted(names)
    assert_ran_before(log, ["load_a", "load_b"], ["validate"])
    assert_ran_before(log, ["validate"], ["process_a", "process_b"])
    assert_ran_before(log, ["process_a", "process_b"], ["save_db", "save_file"])


def test_named_parallel_group() -> None:
    with workflow("seed_named_group") as wf:

        @task
        def task_a() -> int:
            return 1

        @task
        def task_b() -> int:
            return 2

        @task
        def task_c() -> int:
            return 3

        @task(inject_context=True)
        def aggregate(context: TaskExecutionContext) -> int:
            return sum(context.get_result("parallel_tasks").values())

        (task_a | task_b | task_c).set_group_name("parallel_tasks") >> aggregate
        assert wf.graph.edges == [("parallel_tasks", "aggregate")]
        result, ctx = run(wf)

    assert result == 6
    assert [ctx.get_result(t) for t in ("task_a", "task_b", "task_c")] == [1, 2, 3]


# --- 演算子のセマンティクス (the operator table) ---------------------------------------------


def test_table_sequential_b_depends_on_a() -> None:
    with workflow("seed_table_seq") as wf:
        a, b = recording_tasks([], "a", "b")
        a >> b
        assert wf.graph.predecessors("b") == ["a"]


def test_table_parallel_adds_no_edge_between_a_and_b() -> None:
    with workflow("seed_table_par") as wf:
        a, b = recording_tasks([], "a", "b")
        group = a | b
        assert wf.graph.edges == []
        assert group.member_ids == ["a", "b"]


def test_table_fan_in_c_depends_on_both() -> None:
    log: list[str] = []
    with workflow("seed_table_fan_in") as wf:
        a, b, c = recording_tasks(log, "a", "b", "c")
        (a | b) >> c
        run(wf)
    assert log.count("c") == 1
    assert_ran_before(log, ["a", "b"], ["c"])


def test_table_fan_out_b_and_c_depend_on_a() -> None:
    log: list[str] = []
    with workflow("seed_table_fan_out") as wf:
        a, b, c = recording_tasks(log, "a", "b", "c")
        a >> (b | c)
        run(wf)
    assert_ran_before(log, ["a"], ["b", "c"])


# --- 一般的なDAGパターン (common DAG patterns) ------------------------------------------------


def test_linear_pipeline() -> None:
    log: list[str] = []
    with workflow("seed_linear") as wf:
        extract, validate, transform, load = recording_tasks(log, "extract", "validate", "transform", "load")
        extract >> validate >> transform >> load
        run(wf)
    assert log == ["extract", "validate", "transform", "load"]


def test_fan_out_one_to_many() -> None:
    log: list[str] = []
    regions = ["process_region_1", "process_region_2", "process_region_3"]
    with workflow("seed_fan_out") as wf:
        source, process_region_1, process_region_2, process_region_3 = recording_tasks(
            log, "source", *regions
        )
        source >> (process_region_1 | process_region_2 | process_region_3)
        result, _ = run(wf)
    assert log[0] == "source"
    assert sorted(log[1:]) == regions
    assert result == {r: r for r in regions}


def test_fan_in_many_to_one() -> None:
    log: list[str] = []
    sources = ["fetch_db", "fetch_api", "fetch_file"]
    with workflow("seed_fan_in") as wf:
        fetch_db, fetch_api, fetch_file, aggregate = recording_tasks(log, *sources, "aggregate")
        (fetch_db | fetch_api | fetch_file) >> aggregate
        run(wf)
    assert sorted(log[:3]) == sorted(sources)
    assert log[3:] == ["aggregate"]


def test_diamond_fan_out_and_fan_in() -> None:
    log: list[str] = []
    with workflow("seed_diamond_merge") as wf:
        fetch, transform_a, transform_b, merge, store = recording_tasks(
            log, "fetch", "transform_a", "transform_b", "merge", "store"
        )
        fetch >> (transform_a | transform_b) >> merge >> store
        result, _ = run(wf)
    assert result == "store"
    assert log[0] == "fetch"
    assert sorted(log[1:3]) == ["transform_a", "transform_b"]
    assert log[3:] == ["merge", "store"]


def test_multi_stage_pipeline() -> None:
    log: list[str] = []
    names = ["extract_a", "extract_b", "validate", "transform_a", "transform_b", "load_db", "load_s3"]
    with workflow("seed_multi_stage_pipeline") as wf:
        extract_a, extract_b, validate, transform_a, transform_b, load_db, load_s3 = recording_tasks(
            log, *names
        )
        (extract_a | extract_b) >> validate >> (transform_a | transform_b) >> (load_db | load_s3)
        run(wf)
    assert sorted(log[:2]) == ["extract_a", "extract_b"]
    assert log[2] == "validate"
    assert sorted(log[3:5]) == ["transform_a", "transform_b"]
    assert sorted(log[5:]) == ["load_db", "load_s3"]


def test_comparison_section_graflow_form() -> None:
    with workflow("seed_comparison") as wf:

        @task
        def fetch() -> list[int]:
            return [1, 2, 3]

        @task(inject_context=True)
        def transform_a(context: TaskExecutionContext) -> int:
            return sum(context.get_result("fetch"))

        @task(inject_context=True)
        def transform_b(context: TaskExecutionContext) -> int:
            return max(context.get_result("fetch"))

        @task(inject_context=True)
        def store(context: TaskExecutionContext) -> tuple[int, int]:
            return context.get_result("transform_a"), context.get_result("transform_b")

        fetch >> (transform_a | transform_b) >> store
        assert wf.execute() == (6, 3)
