"""``TaskGraph``: the graph API the DSL builds on (SPEC section 3)."""

from __future__ import annotations

import itertools

import pytest

from graflow.core.context import ExecutionContext
from graflow.core.engine import WorkflowEngine
from graflow.core.graph import TaskGraph
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import DuplicateTaskError, GraphCompilationError


def make_tasks(*names: str) -> list[TaskWrapper]:
    """Tasks that return their own id (built outside any workflow, so they register nowhere)."""
    return [TaskWrapper(name, lambda name=name: name) for name in names]


def diamond() -> TaskGraph:
    graph = TaskGraph()
    a, b, c, d = make_tasks("a", "b", "c", "d")
    for t in (a, b, c, d):
        graph.add_node(t)
    graph.add_edge("a", "b")
    graph.add_edge("a", "c")
    graph.add_edge("b", "d")
    graph.add_edge("c", "d")
    return graph


def test_nodes_and_edges_are_listed_in_insertion_order() -> None:
    graph = diamond()
    assert graph.nodes == ["a", "b", "c", "d"]
    assert graph.edges == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]


def test_successors_and_predecessors() -> None:
    graph = diamond()
    assert graph.successors("a") == ["b", "c"]
    assert graph.predecessors("d") == ["b", "c"]
    assert graph.predecessors("a") == []
    assert graph.successors("d") == []


def test_start_nodes_are_the_nodes_without_predecessors() -> None:
    graph = diamond()
    assert graph.get_start_nodes() == ["a"]
    (lonely,) = make_tasks("lonely")
    graph.add_node(lonely)
    assert graph.get_start_nodes() == ["a", "lonely"]


def test_add_node_returns_the_id_and_can_rename_the_task() -> None:
    graph = TaskGraph()
    (t,) = make_tasks("original")
    assert graph.add_node(t, task_id="renamed") == "renamed"
    assert t.task_id == "renamed"
    assert graph.nodes == ["renamed"]


def test_adding_the_same_task_twice_is_a_no_op() -> None:
    graph = TaskGraph()
    (t,) = make_tasks("t")
    graph.add_node(t)
    graph.add_node(t)
    assert graph.nodes == ["t"]


def test_adding_a_duplicate_edge_is_a_no_op() -> None:
    graph = diamond()
    graph.add_edge("a", "b")
    assert graph.edges.count(("a", "b")) == 1


def test_add_edge_accepts_tasks_and_adds_them_as_nodes() -> None:
    graph = TaskGraph()
    a, b = make_tasks("a", "b")
    graph.add_edge(a, b)
    assert graph.nodes == ["a", "b"]
    assert graph.edges == [("a", "b")]


def test_add_edge_to_an_unknown_id_names_the_known_nodes() -> None:
    graph = diamond()
    with pytest.raises(
        GraphCompilationError, match=r"no top-level node 'zz'; add it first\. Known: a, b, c, d"
    ):
        graph.add_edge("a", "zz")


def test_a_second_task_under_an_existing_id_is_a_duplicate() -> None:
    graph = TaskGraph()
    first, second = TaskWrapper("same", lambda: 1), TaskWrapper("same", lambda: 2)
    graph.add_node(first)
    with pytest.raises(DuplicateTaskError) as excinfo:
        graph.add_node(second)
    assert excinfo.value.task_id == "same"
    assert "give each task its own id" in str(excinfo.value)


def test_detect_cycles_is_empty_for_a_dag() -> None:
    assert diamond().detect_cycles() == []


def test_detect_cycles_returns_each_cycle_as_a_closed_path() -> None:
    graph = diamond()
    graph.add_edge("d", "b")
    assert graph.detect_cycles() == [["b", "d", "b"]]


def test_detect_cycles_finds_a_self_loop() -> None:
    graph = TaskGraph()
    (a,) = make_tasks("a")
    graph.add_edge(a, a)
    assert graph.detect_cycles() == [["a", "a"]]


def test_a_directly_built_graph_runs_in_the_engine() -> None:
    graph = diamond()
    context = ExecutionContext.create(graph)
    assert WorkflowEngine().execute(context) == "d"
    assert [context.get_result(n) for n in "abcd"] == ["a", "b", "c", "d"]


# --- Mermaid --------------------------------------------------------------------------------


def test_mermaid_shows_every_node_and_edge() -> None:
    text = diamond().to_mermaid()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart TD"
    for name in "abcd":
        assert f'{name}["{name}"]' in lines
    for a, b in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        assert f"{a} --> {b}" in lines
    assert sum("-->" in line for line in lines) == 4


def test_mermaid_draws_a_parallel_group_as_a_subgraph_with_its_members() -> None:
    with workflow("mermaid_groups") as wf:
        fetch, t_a, t_b, store = make_tasks("fetch", "t_a", "t_b", "store")
        group = (t_a | t_b).set_group_name("transforms")
        fetch >> group >> store
        text = wf.graph.to_mermaid()

    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("subgraph transforms"))
    end = lines.index("end", start)
    assert {'t_a["t_a"]', 't_b["t_b"]'} <= set(lines[start + 1 : end])
    assert 'fetch["fetch"]' in lines and 'store["store"]' in lines
    assert "fetch --> transforms" in lines
    assert "transforms --> store" in lines


def test_mermaid_ids_are_safe_for_task_ids_with_punctuation() -> None:
    graph = TaskGraph()
    a, b = TaskWrapper("load-db.v2", lambda: 1), TaskWrapper("report", lambda: 2)
    graph.add_edge(a, b)
    lines = [line.strip() for line in graph.to_mermaid().splitlines()]
    assert 'load_db_v2["load-db.v2"]' in lines
    assert "load_db_v2 --> report" in lines


@pytest.mark.parametrize("length", [3, 600])
def test_a_cycle_closed_by_the_last_edge_is_found_however_long(length: int) -> None:
    """Cycles are tracked as edges are added; a walk too long to make then is made once, at validation."""
    graph = TaskGraph()
    tasks = [TaskWrapper(f"t{i}", lambda: None, register=False) for i in range(length)]
    for a, b in itertools.pairwise(tasks):
        graph.add_edge(a, b)
    assert graph.loop_edges(["t0"]) == frozenset()

    graph.add_edge(tasks[-1], tasks[0])

    assert graph.loop_edges(["t0"]) == frozenset({(f"t{length - 1}", "t0")})
    with pytest.raises(GraphCompilationError, match="a cycle with no way in"):
        graph.validate([])
