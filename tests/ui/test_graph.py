"""The run's graph as the dashboard draws it: nested workflows and groups as boxes, back edges, added tasks.

On ``examples/agent_loop.py``, run for real: a static cycle (``agent >> tools >> agent``),
``tools`` a nested workflow holding a parallel group, and summaries added at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from graflow import parallel
from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow_ui.layout import WRAP, layout
from tests.ui.conftest import ROOT, graflow, run_ids


def _inside(inner: dict[str, Any], outer: dict[str, Any]) -> bool:
    return (
        outer["x"] < inner["x"]
        and inner["x"] + inner["w"] < outer["x"] + outer["w"]
        and outer["y"] < inner["y"]
        and inner["y"] + inner["h"] < outer["y"] + outer["h"]
    )


def test_the_agent_loop_is_drawn_with_its_nested_workflow_its_back_edge_and_its_added_tasks(
    tmp_path: Path, client_for: Callable[..., TestClient]
) -> None:
    state = tmp_path / "state"
    graflow("run", str(ROOT / "examples" / "agent_loop.py"), "--state-dir", str(state), check=True)
    run_id = run_ids(state)["agent_loop"]
    client = client_for(state)

    graph = client.get(f"/api/runs/{run_id}/graph").json()
    states = {t["task_id"]: t["state"] for t in client.get(f"/api/runs/{run_id}").json()["tasks"]}

    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = {(e["source"], e["target"]): e["kind"] for e in graph["edges"]}
    tools = nodes["tools"]
    assert tools["kind"] == "workflow"
    inner = [n for n in graph["nodes"] if n["id"].startswith("tools.")]
    assert {n["id"] for n in inner} >= {"tools.weather", "tools.calendar", "tools.merge"}
    assert all(_inside(n, tools) for n in inner)
    assert nodes["tools.merge"]["label"] == "merge"  # shown by its own name inside the box
    (group,) = [n for n in inner if n["kind"] == "group"]
    assert nodes["tools.weather"]["parent"] == group["id"] and _inside(nodes["tools.weather"], group)
    assert edges[("agent", "tools")] == "forward"
    assert edges[("tools", "agent")] == "back"
    # agent added a group of two summaries at run time (next_task): a box of its own, edge dotted
    (added,) = [target for (source, target), kind in edges.items() if kind == "added" and source == "agent"]
    assert nodes[added]["kind"] == "group"
    assert {n["id"] for n in graph["nodes"] if n["parent"] == added} == {"short_summary", "detailed_summary"}
    assert {tid: s for tid, s in states.items() if s != "done"} == {}


def test_a_wide_group_wraps_its_members_into_rows() -> None:
    with workflow("wide") as wf:
        members = []
        for number in range(WRAP * 2 + 1):

            @task(f"m{number}")
            def member() -> None:
                return None

            members.append(member)
        parallel(*members).set_group_name("fan")

    drawn = layout(wf.graph, wf.graph.get_start_nodes())

    rows = sorted({n.y for n in drawn.nodes if n.parent == "fan"})
    assert len(rows) == 3
    assert drawn.width < (WRAP + 1) * 200
