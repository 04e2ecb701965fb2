"""The Grafana dashboard (graflow-worker/deploy/grafana/graflow.json) queries what the worker exports.

Every metric name in every panel's and variable's query must be a sample a worker's
registry actually exposes (after a few tasks, so that histograms and counters have
samples), and the dashboard must be importable: panels with unique ids inside the grid,
each query on the dashboard's Prometheus data source variable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from graflow_worker import TaskWorker
from graflow_worker.metrics import WorkerMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "graflow-worker" / "deploy" / "grafana" / "graflow.json"
_METRIC = re.compile(r"\bgraflow_[a-z_]+\b")
_LABELS = re.compile(r"\b(?:by|on|group_left)\s*\(([^)]*)\)")


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def _queries(dashboard: dict[str, Any]) -> list[str]:
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    found += [
        variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable
    ]
    return found


def _exported(queue: Any, make_task: Any) -> tuple[set[str], set[str]]:
    """Sample names and label names a worker exposes once it has run a task and failed one."""

    def boom() -> None:
        raise RuntimeError("no")

    metrics = WorkerMetrics(queue)
    queue.put(make_task("ok", lambda: 1))
    queue.put(make_task("bad", boom))
    with TaskWorker(
        queue, worker_id="w1", heartbeat_interval=0.05, fetch_block=0.05, observers=[metrics]
    ) as w:
        queue.wait_for(lambda: w.tasks_processed == 2)
    text = generate_latest(metrics.registry).decode()
    samples = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }
    labels = set(re.findall(r"([a-z_]+)=\"", text))
    return samples, labels


def test_every_metric_the_dashboard_queries_is_one_the_worker_exports(queue, make_task) -> None:
    samples, labels = _exported(queue, make_task)
    queries = _queries(_dashboard())

    queried = {name for query in queries for name in _METRIC.findall(query)}
    assert queried, "the dashboard queries no graflow metric"
    assert queried - samples == set()
    grouped = {
        label.strip()
        for q in queries
        for group in _LABELS.findall(q)
        for label in group.split(",")
        if label.strip()
    }
    assert grouped - labels - {"le", "instance"} == set()  # le: histogram buckets; instance: Prometheus's own


def test_the_dashboard_covers_throughput_latency_depth_dead_letters_and_in_flight() -> None:
    queries = " ".join(_queries(_dashboard()))

    for metric in (
        "graflow_worker_tasks_total",
        "graflow_worker_task_duration_seconds_bucket",
        "graflow_queue_depth",
        "graflow_dead_letters",
        "graflow_worker_tasks_in_flight",
    ):
        assert metric in queries, metric
    assert "by (status)" in queries and "by (key_prefix, status)" in queries


def test_the_dashboard_is_importable_json_with_distinct_panels_on_its_data_source() -> None:
    dashboard = _dashboard()
    panels = dashboard["panels"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}

    assert dashboard["uid"] == "graflow-fleet" and dashboard["title"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            for used in re.findall(r"\$(\w+)", target["expr"]):
                assert used in variables or used.startswith("__"), f"{panel['title']}: ${used}"
