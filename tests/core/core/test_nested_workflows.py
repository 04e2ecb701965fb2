"""Nested workflows (SPEC 18): a workflow composes like a task and runs as one node of another."""

from __future__ import annotations

from graflow import parallel, task, workflow
from graflow.core.context import TaskExecutionContext
from graflow.core.render import to_mermaid
from graflow.core.task import TaskWrapper
from graflow.core.workflow import WorkflowContext


def cleaning(name: str = "clean") -> WorkflowContext:
    """A workflow template: a plain function that returns a workflow."""
    with workflow(name) as wf:

        @task(inject_context=True)
        def load(ctx: TaskExecutionContext) -> list[int]:
            ctx.get_channel().append("loaded_by", name)
            return [3, 1, 2]

        @task(inject_context=True)
        def tidy(ctx: TaskExecutionContext) -> list[int]:
            return sorted(ctx.get_result("load"))  # a sibling, by its own id

        load >> tidy
    return wf


def test_a_nested_workflow_runs_as_one_node_and_gives_its_last_tasks_result() -> None:
    inner = cleaning()
    log: list[str] = []
    with workflow("outer") as outer:

        @task
        def prep() -> None:
            log.append("prep")

        @task(inject_context=True)
        def report(ctx: TaskExecutionContext) -> tuple[object, object]:
            log.append("report")
            return ctx.get_result("clean"), ctx.get_result("clean.load")

        prep >> inner >> report
        result, context = outer.execute(ret_context=True)
    assert result == ([1, 2, 3], [3, 1, 2])
    assert log == ["prep", "report"]
    assert context.get_result("clean.tidy") == [1, 2, 3]
    assert "load" not in context.results  # inner tasks are known by "inner.task" outside


def test_a_nested_workflow_shares_the_outer_runs_channel() -> None:
    inner = cleaning()
    with workflow("channel_outer") as outer:

        @task(inject_context=True)
        def seed(ctx: TaskExecutionContext) -> None:
            ctx.get_channel().set("loaded_by", [])

        seed >> inner
        _, context = outer.execute(ret_context=True)
    assert context.channel.get("loaded_by") == ["clean"]


def test_one_workflow_can_appear_twice_under_two_names() -> None:
    inner = cleaning()
    with workflow("twice") as outer:
        first = inner.set_name("first")
        second = inner.set_name("second")
        first >> second
        _, context = outer.execute(ret_context=True)
    assert context.get_result("first") == [1, 2, 3]
    assert context.get_result("second") == [1, 2, 3]
    assert context.get_result("first.load") == [3, 1, 2]
    assert context.channel.get("loaded_by") == ["clean", "clean"]


def test_a_workflow_template_builds_independent_workflows() -> None:
    with workflow("templated") as outer:
        parallel(cleaning("north"), cleaning("south"))
        result = outer.execute()
    assert result == {"north": [1, 2, 3], "south": [1, 2, 3]}


def test_a_nested_workflow_still_runs_on_its_own() -> None:
    assert cleaning().execute() == [1, 2, 3]


def test_the_mermaid_graph_shows_a_nested_workflow_as_a_subgraph() -> None:
    inner = cleaning()
    with workflow("drawn") as outer:
        prep = TaskWrapper("prep", lambda: None)
        prep >> inner
    mermaid = to_mermaid(outer.graph)
    assert 'subgraph clean["clean (workflow)"]' in mermaid
    assert "clean_load --> clean_tidy" in mermaid
    assert "prep --> clean" in mermaid


def test_a_durable_run_with_a_nested_workflow_resumes_without_rerunning_its_steps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from graflow.core.engine import WorkflowEngine
    from graflow.core.resume import resume_context

    effects = str(tmp_path / "effects")  # the run's tasks travel by value: side effects go to a file

    def ran(name: str) -> None:
        with open(effects, "a") as f:
            f.write(name + "\n")

    with workflow("inner_steps") as inner:

        @task
        def one() -> int:
            ran("one")
            return 1

        @task(inject_context=True)
        def two(ctx: TaskExecutionContext) -> int:
            ran("two")
            if ctx.get_channel().get("fail", True):
                raise RuntimeError("crash")
            return ctx.get_result("one") + 1

        one >> two

    with workflow("outer_durable") as outer:
        start = TaskWrapper("start", lambda: ran("start"))
        start >> inner
        config = {"state_dir": str(tmp_path / "state")}
        context = outer.create_context(durable=True, config=config)
        try:
            WorkflowEngine().execute(context)
        except RuntimeError:
            pass

    resumed = resume_context(context.session_id, config)
    resumed.channel.set("fail", False)
    assert WorkflowEngine().execute(resumed) == 2
    with open(effects) as f:
        assert f.read().split() == ["start", "one", "two", "two"]
