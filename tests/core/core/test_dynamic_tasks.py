"""Tasks added while the workflow runs (brief chapter 2; SPEC sections 3 and 5).

The brief's snippets are kept as written; the functions they call (``check_quality``,
``train_model``, ...) are deterministic stand-ins defined by each test.
"""

from __future__ import annotations

from typing import Any

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import WorkflowContext, workflow
from graflow.exceptions import DuplicateTaskError, GraphCompilationError

# --- the brief's adaptive_processor ------------------------------------------------------------


def build_adaptive_workflow(quality: float, ran: list[str]) -> WorkflowContext:
    def check_quality() -> float:
        return quality

    def cleanup_low_quality_data() -> str:
        ran.append("cleanup")
        return "cleaned"

    def enhance_high_quality_data() -> str:
        ran.append("enhance")
        return "enhanced"

    def standard_processing() -> str:
        ran.append("process")
        return "processed"

    with workflow("adaptive") as wf:

        @task(inject_context=True)
        def adaptive_processor(context: TaskExecutionContext):
            data_quality = check_quality()

            if data_quality < 0.5:
                # その場でクリーンアップタスクを作成
                cleanup_task = TaskWrapper("cleanup", cleanup_low_quality_data)
                context.next_task(cleanup_task)
            elif data_quality > 0.9:
                # 強化タスクを作成
                enhance_task = TaskWrapper("enhance", enhance_high_quality_data)
                context.next_task(enhance_task)
            else:
                # 標準処理
                process_task = TaskWrapper("process", standard_processing)
                context.next_task(process_task)

    return wf


@pytest.mark.parametrize(
    ("quality", "branch", "result"),
    [
        (0.3, "cleanup", "cleaned"),
        (0.95, "enhance", "enhanced"),
        (0.7, "process", "processed"),
    ],
)
def test_adaptive_processor_adds_the_branch_its_data_quality_calls_for(
    quality: float, branch: str, result: str
) -> None:
    ran: list[str] = []
    wf = build_adaptive_workflow(quality, ran)

    last, ctx = wf.execute(ret_context=True)

    assert ran == [branch]
    assert last == result
    assert ctx.get_result(branch) == result
    assert ctx.graph.dynamic_edges == [("adaptive_processor", branch)]


def test_dynamic_tasks_appear_in_the_run_graph_but_not_in_the_workflow_definition() -> None:
    ran: list[str] = []
    wf = build_adaptive_workflow(0.3, ran)

    _, ctx = wf.execute(ret_context=True)

    assert "cleanup" in ctx.graph.nodes
    assert ctx.graph.get_node("cleanup").task_id == "cleanup"
    assert wf.graph.nodes == ["adaptive_processor"]
    assert wf.graph.dynamic_edges == []


def test_a_running_task_sees_dynamic_nodes_in_the_graph_of_its_run() -> None:
    seen: dict[str, Any] = {}

    with workflow("introspection") as wf:

        @task(inject_context=True)
        def inspect_graph(context: TaskExecutionContext) -> None:
            graph = context.execution_context.graph
            seen["nodes"] = graph.nodes
            seen["dynamic_edges"] = list(graph.dynamic_edges)

        @task(inject_context=True)
        def spawner(context: TaskExecutionContext) -> None:
            context.next_task(inspect_graph)

        wf.execute("spawner")  # both are top-level nodes; only spawner starts

    assert seen["dynamic_edges"] == [("spawner", "inspect_graph")]
    assert set(seen["nodes"]) >= {"spawner", "inspect_graph"}


def test_executing_the_same_workflow_twice_gives_identical_results() -> None:
    ran: list[str] = []
    wf = build_adaptive_workflow(0.95, ran)

    first, ctx1 = wf.execute(ret_context=True)
    second, ctx2 = wf.execute(ret_context=True)

    assert first == second == "enhanced"
    assert ran == ["enhance", "enhance"]
    assert ctx1.results == ctx2.results
    assert ctx1.graph.dynamic_edges == ctx2.graph.dynamic_edges == [("adaptive_processor", "enhance")]


# --- the brief's hyperparameter loop ------------------------------------------------------------


def test_hyperparameter_optimisation_iterates_until_convergence_then_saves_the_model() -> None:
    trained: list[float] = []
    saved: list[dict[str, float]] = []

    def train_model(params: dict[str, float]) -> float:
        trained.append(round(params["learning_rate"], 6))
        return round(params["accuracy"] + 0.1, 6)

    def save_model(params: dict[str, float]) -> str:
        saved.append(dict(params))
        return "saved"

    with workflow("hyperparameters") as wf:

        @task(inject_context=True)
        def optimize_hyperparameters(context: TaskExecutionContext, params=None):
            if params is None:
                params = {"learning_rate": 0.1, "accuracy": 0.5}

            # 訓練ステップ
            new_accuracy = train_model(params)

            if new_accuracy >= 0.95:
                # 収束 - 完了処理
                save_task = TaskWrapper("save_model", lambda: save_model(params))
                context.next_task(save_task)
            else:
                # 最適化を続行
                params["accuracy"] = new_accuracy
                params["learning_rate"] *= 0.95
                context.next_iteration(params)

        result, ctx = wf.execute(ret_context=True)

    # accuracy 0.5 -> 0.6 -> 0.7 -> 0.8 -> 0.9, and the fifth step reaches 1.0 >= 0.95
    assert len(trained) == 5
    assert trained == [round(0.1 * 0.95**n, 6) for n in range(5)]
    assert saved == [{"learning_rate": pytest.approx(0.1 * 0.95**4), "accuracy": 0.9}]
    assert result == "saved"
    assert ctx.cycle_counts["optimize_hyperparameters"] == 5
    assert ctx.graph.dynamic_edges == [("optimize_hyperparameters", "save_model")]


# --- ids of dynamic tasks ------------------------------------------------------------------------


def test_a_dynamic_task_reusing_the_id_of_a_different_task_is_refused_with_advice() -> None:
    with workflow("collision") as wf:

        @task
        def cleanup() -> str:
            return "the original cleanup"

        @task(inject_context=True)
        def spawner(context: TaskExecutionContext) -> None:
            context.next_task(TaskWrapper("cleanup", lambda: "an impostor"))

        spawner >> cleanup
        with pytest.raises(DuplicateTaskError) as info:
            wf.execute()

    error = info.value
    assert isinstance(error, GraphCompilationError)
    assert error.task_id == "cleanup"
    message = str(error)
    assert "next_task()" in message
    assert "'cleanup'" in message
    assert "its own id" in message


def test_next_task_with_an_existing_task_runs_it_again_and_then_its_successors() -> None:
    # Jumping back to a node re-enters the graph there, as a loop edge would in LangGraph.
    ran: list[str] = []

    with workflow("rerun_existing") as wf:

        @task
        def report() -> None:
            ran.append("report")

        @task(inject_context=True)
        def again(context: TaskExecutionContext) -> None:
            ran.append("again")
            if ran.count("report") == 1:
                context.next_task(report)

        report >> again
        wf.execute()

    assert ran == ["report", "again", "report", "again"]


def test_dynamic_tasks_can_add_further_dynamic_tasks() -> None:
    ran: list[str] = []

    def make_step(n: int) -> TaskWrapper:
        def step(context: TaskExecutionContext) -> int:
            ran.append(f"step{n}")
            if n < 3:
                context.next_task(make_step(n + 1))
            return n

        return TaskWrapper(f"step{n}", step, inject_context=True)

    with workflow("chained_dynamic") as wf:

        @task(inject_context=True)
        def begin(context: TaskExecutionContext) -> None:
            context.next_task(make_step(1))

        result, ctx = wf.execute(ret_context=True)

    assert ran == ["step1", "step2", "step3"]
    assert result == 3
    assert ctx.graph.dynamic_edges == [("begin", "step1"), ("step1", "step2"), ("step2", "step3")]


def test_a_dynamic_task_added_by_a_group_member_runs_before_the_group_completes() -> None:
    order: list[str] = []

    with workflow("dynamic_in_group") as wf:
        extra = TaskWrapper("extra", lambda: order.append("extra"), register=False)

        @task(inject_context=True)
        def member_a(context: TaskExecutionContext) -> None:
            order.append("member_a")
            context.next_task(extra)

        @task
        def member_b() -> None:
            order.append("member_b")

        @task
        def after() -> None:
            order.append("after")

        (member_a | member_b) >> after
        _, ctx = wf.execute(ret_context=True)

    assert sorted(order[:-1]) == ["extra", "member_a", "member_b"]
    assert order.index("extra") > order.index("member_a")
    assert order[-1] == "after"
    assert ("member_a", "extra") in ctx.graph.dynamic_edges
