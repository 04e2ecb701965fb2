"""``with workflow(...)`` and running a workflow (SPEC section 4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graflow.core.context import ExecutionContext, TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.handler import TaskHandler
from graflow.core.task import TaskWrapper
from graflow.core.workflow import WorkflowContext, current_workflow_context, workflow
from graflow.queue import QueueBackend


def _recorder(log: list[str], name: str) -> Callable[[], str]:
    def record() -> str:
        log.append(name)
        return f"{name}-result"

    return record


def recording_tasks(log: list[str], *names: str) -> list[TaskWrapper]:
    """One task per name; each appends its id to ``log`` and returns ``"<id>-result"``."""
    return [TaskWrapper(name, _recorder(log, name)) for name in names]


# --- defining ---------------------------------------------------------------------------


def test_workflow_returns_a_named_context_with_a_graph() -> None:
    with workflow("etl") as wf:
        assert isinstance(wf, WorkflowContext)
        assert wf.name == "etl"
        assert len(wf.graph) == 0


def test_workflow_name_must_be_a_non_empty_string() -> None:
    with pytest.raises(TypeError, match="workflow name must be a non-empty string"):
        workflow("")


def test_tasks_defined_inside_the_block_register_in_its_graph() -> None:
    with workflow("etl") as wf:

        @task
        def extract() -> None:
            return None

        @task
        def load() -> None:
            return None

    assert wf.graph.nodes == ["extract", "load"]
    assert wf.graph.edges == []


def test_tasks_defined_outside_register_where_they_are_composed() -> None:
    log: list[str] = []
    shared_extract, shared_load = recording_tasks(log, "extract", "load")

    with workflow("first") as first:
        shared_extract >> shared_load
    with workflow("second") as second:
        (only,) = recording_tasks(log, "only")

    assert first.graph.edges == [("extract", "load")]
    assert second.graph.nodes == ["only"]
    assert "extract" not in second.graph


def test_current_workflow_context_is_the_innermost_active_block() -> None:
    with workflow("outer") as outer:
        assert current_workflow_context() is outer
        with workflow("inner") as inner:
            assert current_workflow_context() is inner
        assert current_workflow_context() is outer
    assert current_workflow_context() not in (outer, inner)


def test_tasks_composed_outside_any_workflow_land_in_the_default_context() -> None:
    default = current_workflow_context()
    a, b = recording_tasks([], "default_ctx_a", "default_ctx_b")
    a >> b
    assert default.name == "default"
    assert ("default_ctx_a", "default_ctx_b") in default.graph.edges
    assert current_workflow_context() is default


def test_show_info_describes_nodes_edges_and_groups(capsys: pytest.CaptureFixture[str]) -> None:
    with workflow("described") as wf:
        extract, t_a, t_b, load = recording_tasks([], "extract", "t_a", "t_b", "load")
        extract >> (t_a | t_b).set_group_name("transforms") >> load
    wf.show_info()
    out = capsys.readouterr().out
    assert "'described'" in out
    assert "start: extract" in out
    assert "extract >> transforms" in out and "transforms >> load" in out
    assert "group transforms: t_a | t_b" in out


# --- executing ------------------------------------------------------------------------------


def test_execute_returns_the_last_executed_tasks_result() -> None:
    log: list[str] = []
    with workflow("etl") as wf:
        extract, transform, load = recording_tasks(log, "extract", "transform", "load")
        extract >> transform >> load
        result = wf.execute()
    assert result == "load-result"
    assert log == ["extract", "transform", "load"]


def test_execute_without_start_node_starts_every_root() -> None:
    log: list[str] = []
    with workflow("two_roots") as wf:
        a, b, c, d = recording_tasks(log, "a", "b", "c", "d")
        a >> b
        c >> d
        wf.execute()
    assert sorted(log) == ["a", "b", "c", "d"]


def test_execute_with_all_arguments_returns_result_and_context() -> None:
    seen: dict[str, Any] = {}
    log: list[str] = []
    with workflow("etl") as wf:

        @task(inject_context=True)
        def extract(ctx: TaskExecutionContext) -> list[int]:
            seen["k"] = ctx.get_channel().get("k")
            log.append("extract")
            return [1, 2, 3]

        @task(inject_context=True)
        def load(ctx: TaskExecutionContext) -> int:
            log.append("load")
            return sum(ctx.get_result("extract"))

        (audit,) = recording_tasks(log, "audit")  # another root: not started
        extract >> load
        result, ctx = wf.execute("extract", max_steps=100, ret_context=True, initial_channel={"k": 1})

    assert result == 6
    assert isinstance(ctx, ExecutionContext)
    assert seen == {"k": 1}
    assert log == ["extract", "load"]
    assert ctx.get_result("extract") == [1, 2, 3]
    assert ctx.max_steps == 100


def test_starting_at_a_middle_node_skips_its_predecessors() -> None:
    log: list[str] = []
    with workflow("resume") as wf:
        extract, transform, load = recording_tasks(log, "extract", "transform", "load")
        extract >> transform >> load
        assert wf.execute("transform") == "load-result"
    assert log == ["transform", "load"]


def test_get_result_has_a_default_for_tasks_without_a_result() -> None:
    with workflow("results") as wf:
        (a,) = recording_tasks([], "a")
        _, ctx = wf.execute(ret_context=True)
    assert ctx.get_result("a") == "a-result"
    assert ctx.get_result("never_ran") is None
    assert ctx.get_result("never_ran", default="n/a") == "n/a"


def test_results_never_appear_in_the_channel() -> None:
    with workflow("separate") as wf:

        @task(inject_context=True)
        def produce(ctx: TaskExecutionContext) -> str:
            ctx.get_channel().set("note", "written on purpose")
            return "a result"

        @task
        def consume() -> int:
            return 42

        produce >> consume
        _, ctx = wf.execute(ret_context=True, initial_channel={"k": 1})

    assert sorted(ctx.channel.keys()) == ["k", "note"]
    assert ctx.get_channel() is ctx.channel
    assert ctx.get_result("produce") == "a result"


def test_running_a_workflow_twice_gives_the_same_result() -> None:
    with workflow("adaptive") as wf:

        @task(inject_context=True)
        def measure(ctx: TaskExecutionContext) -> float:
            ctx.next_task(TaskWrapper("cleanup", lambda: "cleaned"))  # a fresh task each run
            return 0.4

        @task
        def report() -> str:
            return "reported"

        measure >> report
        first, ctx1 = wf.execute(ret_context=True)
        second, ctx2 = wf.execute(ret_context=True)

    assert first == second
    assert ctx1.get_result("cleanup") == ctx2.get_result("cleanup") == "cleaned"
    assert ctx1.session_id != ctx2.session_id
    # Tasks added at run time belong to that run, not to the workflow's definition.
    assert wf.graph.nodes == ["measure", "report"]
    assert wf.graph.dynamic_edges == []
    assert ("measure", "cleanup") in ctx2.graph.dynamic_edges


def test_each_run_starts_with_a_fresh_channel() -> None:
    with workflow("fresh_channel") as wf:

        @task(inject_context=True)
        def count(ctx: TaskExecutionContext) -> int:
            return ctx.get_channel().atomic_add("runs")

        assert wf.execute() == 1
        assert wf.execute() == 1


# --- the low-level API --------------------------------------------------------------------


class GPUHandler(TaskHandler):
    def execute_task(self, task: Any, context: ExecutionContext) -> Any:
        result = f"gpu:{task.run()}"
        context.set_result(task.task_id, result)
        return result


def test_low_level_create_and_execute_behave_like_workflow_execute() -> None:
    log: list[str] = []
    with workflow("low_level") as wf:
        extract, load = recording_tasks(log, "extract", "load")

        @task(handler="gpu")
        def transform() -> str:
            log.append("transform")
            return "tensor"

        extract >> transform >> load

    context = ExecutionContext.create(
        wf.graph,
        start_node=None,
        max_steps=10_000,
        queue_backend=QueueBackend.MEMORY,
        channel_backend="memory",
        config={},
    )
    engine = WorkflowEngine()
    engine.register_handler("gpu", GPUHandler())
    last = engine.execute(context)

    assert last == "load-result"
    assert log == ["extract", "transform", "load"]
    assert context.get_result("transform") == "gpu:tensor"
    assert context.get_channel() is context.channel


@pytest.mark.parametrize("backend", [QueueBackend.MEMORY, "memory", "MEMORY"])
def test_queue_backend_accepts_the_enum_member_and_its_string(backend: Any) -> None:
    with workflow("backends") as wf:
        a, b = recording_tasks([], "a", "b")
        a >> b
        assert wf.execute(queue_backend=backend) == "b-result"
    context = ExecutionContext.create(wf.graph, queue_backend=backend)
    assert WorkflowEngine().execute(context) == "b-result"


def test_queue_backend_is_importable_from_the_context_module() -> None:
    from graflow.core.context import QueueBackend as FromContext

    assert FromContext is QueueBackend
    assert QueueBackend.MEMORY == "memory"
    assert QueueBackend.REDIS == "redis"


def test_a_run_that_adds_tasks_works_on_its_own_copy_so_the_definition_never_changes() -> None:
    with workflow("copied") as wf:

        @task(inject_context=True)
        def grow(ctx: TaskExecutionContext) -> None:
            ctx.next_task(TaskWrapper("added", lambda: "new"))

    context = ExecutionContext.create(wf.graph)
    assert context.graph.nodes == wf.graph.nodes
    WorkflowEngine().execute(context)
    assert context.graph is not wf.graph
    assert context.graph.nodes == ["grow", "added"]
    assert wf.graph.nodes == ["grow"]
    assert wf.graph.dynamic_edges == []


def test_a_run_that_adds_no_task_does_not_copy_the_graph() -> None:
    with workflow("shared") as wf:
        (a,) = recording_tasks([], "a")
    context = ExecutionContext.create(wf.graph)
    WorkflowEngine().execute(context)
    assert context.graph is wf.graph
