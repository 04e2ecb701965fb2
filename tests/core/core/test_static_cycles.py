"""Static cycles (SPEC 18): ``agent >> tool >> agent`` runs when the run has a way into the loop."""

from __future__ import annotations

import pytest

from graflow import task, workflow
from graflow.cli.main import main as graflow_main
from graflow.core.context import TaskExecutionContext
from graflow.core.render import to_dot, to_mermaid
from graflow.core.task import TaskWrapper
from graflow.exceptions import CycleLimitExceededError, GraphCompilationError


def test_an_agent_loop_runs_until_a_task_jumps_out_with_goto() -> None:
    log: list[str] = []
    with workflow("agent_loop") as wf:
        answer = TaskWrapper("answer", lambda: log.append("answer") or "42", register=False)

        @task(inject_context=True, max_cycles=10)
        def agent(ctx: TaskExecutionContext) -> int:
            turn = ctx.get_channel().atomic_add("turns", 1)
            log.append(f"agent{turn}")
            if turn == 3:
                ctx.next_task(answer, goto=True)
            return turn

        @task
        def tool() -> None:
            log.append("tool")

        @task
        def question() -> None:
            log.append("question")

        question >> agent >> tool >> agent
        result = wf.execute()
    assert log == ["question", "agent1", "tool", "agent2", "tool", "agent3", "answer"]
    assert result == "42"


def test_a_loop_ends_when_a_task_terminates_the_run() -> None:
    with workflow("terminate_loop") as wf:

        @task(inject_context=True)
        def step(ctx: TaskExecutionContext) -> int:
            n = ctx.get_channel().atomic_add("n", 1)
            if n == 4:
                ctx.terminate_workflow("converged")
            return n

        @task
        def check() -> None:
            pass

        step >> check >> step
        result, context = wf.execute("step", ret_context=True)
    assert result == 4
    assert context.cycle_counts == {"step": 4, "check": 3}


def test_a_loop_with_no_exit_fails_at_its_targets_max_cycles() -> None:
    with workflow("runaway") as wf:

        @task(max_cycles=5)
        def ping() -> None:
            pass

        @task
        def pong() -> None:
            pass

        ping >> pong >> ping
        with pytest.raises(CycleLimitExceededError) as info:
            wf.execute("ping")
    assert info.value.task_id == "ping"
    assert info.value.max_cycles == 5


def test_a_node_on_a_loop_waits_only_for_its_predecessors_outside_the_loop() -> None:
    log: list[str] = []
    with workflow("join_into_loop") as wf:

        @task
        def a() -> None:
            log.append("a")

        @task
        def b() -> None:
            log.append("b")

        @task(inject_context=True)
        def body(ctx: TaskExecutionContext) -> None:
            n = ctx.get_channel().atomic_add("n", 1)
            log.append(f"body{n}")
            if n == 2:
                ctx.terminate_workflow()

        @task
        def again() -> None:
            log.append("again")

        a >> body
        b >> body
        body >> again >> body
        wf.execute()
    assert log == ["a", "b", "body1", "again", "body2"]


def test_a_cycle_entered_from_a_start_node_runs() -> None:
    with workflow("start_on_cycle") as wf:

        @task(inject_context=True)
        def left(ctx: TaskExecutionContext) -> int:
            n = ctx.get_channel().atomic_add("n", 1)
            if n >= 2:
                ctx.terminate_workflow()
            return n

        @task
        def right() -> None:
            pass

        left >> right >> left
        assert wf.execute("left") == 2


def test_a_cycle_with_no_way_in_fails_before_anything_runs_naming_it() -> None:
    log: list[str] = []
    with workflow("closed") as wf:
        root = TaskWrapper("root", lambda: log.append("root"))
        x = TaskWrapper("x", lambda: log.append("x"))
        y = TaskWrapper("y", lambda: log.append("y"))
        root >> TaskWrapper("after_root", lambda: None)
        x >> y >> x
        with pytest.raises(GraphCompilationError) as info:
            wf.execute()
    assert "x >> y >> x" in str(info.value)
    assert log == []


def test_a_cycle_of_the_whole_graph_without_a_start_names_the_cycle() -> None:
    with workflow("only_cycle") as wf:
        x = TaskWrapper("x", lambda: None)
        y = TaskWrapper("y", lambda: None)
        x >> y >> x
        with pytest.raises(GraphCompilationError, match="x >> y >> x"):
            wf.execute()


def test_edges_that_close_a_cycle_are_drawn_dashed() -> None:
    with workflow("drawn") as wf:
        start = TaskWrapper("start", lambda: None)
        agent = TaskWrapper("agent", lambda: None)
        tool = TaskWrapper("tool", lambda: None)
        start >> agent >> tool >> agent
    mermaid = to_mermaid(wf.graph)
    assert "tool -.-> agent" in mermaid
    assert "start --> agent" in mermaid
    assert "agent --> tool" in mermaid
    dot = to_dot(wf.graph)
    assert '"tool" -> "agent" [style=dashed];' in dot
    assert '"agent" -> "tool";' in dot


def test_graflow_graph_draws_a_loop(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    flow = tmp_path / "loop.py"
    flow.write_text(
        "from graflow import task, workflow\n"
        "with workflow('loop') as wf:\n"
        "    @task\n    def start(): pass\n"
        "    @task\n    def agent(): pass\n"
        "    @task\n    def tool(): pass\n"
        "    start >> agent >> tool >> agent\n"
    )
    assert graflow_main(["graph", str(flow)]) == 0
    assert "tool -.-> agent" in capsys.readouterr().out
