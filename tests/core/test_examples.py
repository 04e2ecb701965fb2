"""The examples run as they are and produce what their docstrings promise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_runs_through_the_cli_as_the_readme_says() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "graflow", "run", str(EXAMPLES / "quickstart_etl.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for task_id in ("extract", "revenue_by_country", "top_customers", "load"):
        assert task_id in done.stdout


def test_quickstart_report_joins_both_parallel_transforms() -> None:
    report = load_example("quickstart_etl").etl.execute()
    assert report == {
        "orders": 4,
        "revenue": {"JP": 219.9, "US": 35.5, "KR": 250.0},
        "top_customers": ["kim", "ada"],
    }


def test_adaptive_example_adds_the_cleanup_task_at_run_time() -> None:
    module = load_example("dynamic_tasks")
    result, ctx = module.adaptive.execute(ret_context=True)
    assert result == "cleaned low-quality rows"
    assert ("measure_quality", "cleanup") in ctx.graph.dynamic_edges


def test_tuning_example_converges_then_saves() -> None:
    module = load_example("dynamic_tasks")
    result, ctx = module.tuning.execute(ret_context=True)
    final = ctx.get_result("optimize")
    assert final["accuracy"] >= 0.95
    assert final["iterations"] == ctx.cycle_counts["optimize"]
    assert result.startswith("saved model at 0.9")


@pytest.mark.parametrize(
    ("workflow_name", "expected"),
    [("orders", "order 7 shipped"), ("training", "COMPLETE after 4 epochs")],
)
def test_state_machine_examples_reach_their_final_state(workflow_name: str, expected: str) -> None:
    module = load_example("state_machines")
    result, ctx = getattr(module, workflow_name).execute(max_steps=100, ret_context=True)
    assert result == expected
    if workflow_name == "orders":
        assert ctx.channel.get("history") == ["NEW", "VALIDATED", "RESERVED", "PAID"]
        assert ctx.channel.get("order_state") == "SHIPPED"


def test_custom_handler_example_retries_caches_and_monitors() -> None:
    module = load_example("custom_handlers")
    engine, monitor = module.build_engine()
    result, ctx = module.handlers.execute(engine=engine, ret_context=True)
    assert ctx.get_result("flaky") == "ok after 3 attempts"
    assert ctx.get_result("expensive_lookup") == sum(i * i for i in range(10_000))
    assert result == "report written"
    assert [m["task"] for m in monitor.metrics] == ["report"]
    assert monitor.metrics[0]["status"] == "success"


def test_channels_example_sums_counters_and_rejects_a_malformed_profile() -> None:
    summary = load_example("channels").channels.execute()
    assert summary["processed"] == 100
    assert summary["events"] == ["a done", "b done"]
    assert summary["profile"] == {"user_id": "u1", "name": "Ada", "score": 0.5}
    assert "missing key(s) score" in summary["rejected"]


def test_parallel_groups_example_tolerates_one_failed_source() -> None:
    assert load_example("parallel_groups").aggregate_sources.execute() == 238
