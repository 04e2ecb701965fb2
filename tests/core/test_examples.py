"""The examples run as they are and produce what their docstrings promise."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.core.cli.output import summary_rows

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


def test_checkpointed_training_finishes_the_same_training_from_every_checkpoint(tmp_path: Path) -> None:
    module = load_example("checkpointed_training")

    full, restored = module.train_then_restore(str(tmp_path))

    assert full == {"w": 1.966, "b": -0.875, "epochs": 8}
    assert restored == {3: full, 6: full}
    for name in ("epoch_3", "epoch_6"):
        for suffix in (".pkl", ".meta.json", ".state.json"):
            assert (tmp_path / f"{name}{suffix}").exists()


def test_the_durable_run_walkthrough_kill_then_resume_without_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "graflow", "run", str(EXAMPLES / "durable_run.py"), "--durable"]
        + ["--state-dir", str(state), "--set", "pause=0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert driver.stdout is not None
        run_id = driver.stdout.readline().split()[1]
        for line in driver.stdout:
            if line.startswith("  started   crunch [iteration 3]"):
                break
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.communicate(timeout=30)

    resumed = subprocess.run(
        [sys.executable, "-m", "graflow", "resume", run_id, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # nowhere near the example's file
    )

    assert resumed.returncode == 0, resumed.stderr
    assert "Result: {'partitions': 6, 'total': 443}" in resumed.stdout  # as an uninterrupted run
    rows = summary_rows(resumed.stdout)
    assert rows["plan"][0] == "reused"
    counts = re.fullmatch(r"(\d+) \(\+(\d+) reused\)", rows["crunch"][1])
    assert counts is not None, rows["crunch"]
    ran, reused = map(int, counts.groups())
    assert ran + reused == 6 and reused >= 2
    assert f"started   crunch [iteration {reused + 1}]" in resumed.stdout


def test_agent_loop_example_loops_three_turns_then_summarizes_twice() -> None:
    example = load_example("agent_loop")
    result, context = example.agent_loop.execute(ret_context=True)
    assert set(result) == {"short_summary", "detailed_summary"}
    assert result["short_summary"].startswith("[short] sunny on turn 1")
    assert context.cycle_counts["agent"] == 3
    assert context.cycle_counts["tools"] == 2


def test_the_approval_example_runs_unattended_with_its_reviewer_bot() -> None:
    assert load_example("approval_workflow").main() == "v1.4.2 deployed to staging (approved by release-bot)"


def test_the_approval_walkthrough_is_answered_from_another_terminal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    driver = subprocess.Popen(
        [sys.executable, "-m", "graflow", "run", str(EXAMPLES / "approval_workflow.py"), "--durable"]
        + ["--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert driver.stdout is not None
        for answer in (["--approve", "--by", "ana"], ["--select", "canary"]):
            hint = next(line for line in driver.stdout if "answer: graflow feedback respond" in line)
            command = hint.split("answer: ", 1)[1].split()
            feedback_id = command[3]
            answered = _graflow("feedback", "respond", feedback_id, *answer, "--state-dir", str(state))
            assert answered.returncode == 0, answered.stderr
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate(timeout=30)
    assert driver.returncode == 0, err
    assert "Result: 'v1.4.2 deployed to canary (approved by ana)'" in out


def test_the_suspend_and_resume_walkthrough_exits_3_then_resumes_after_the_answer(tmp_path: Path) -> None:
    state = tmp_path / "state"
    suspended = _graflow(
        "run",
        str(EXAMPLES / "suspend_and_resume.py"),
        "--durable",
        "--state-dir",
        str(state),
        "--set",
        "wait=0.5",
    )
    assert suspended.returncode == 3, suspended.stderr
    run_id = suspended.stdout.split()[1]
    # The summary's own line for the question (progress printed one too, after "answer:").
    respond = next(
        line.split() for line in suspended.stdout.splitlines() if line.startswith("    graflow feedback")
    )

    assert _graflow(*respond[1:4], "--approve", "--by", "ana", "--state-dir", str(state)).returncode == 0
    resumed = _graflow("resume", run_id, "--state-dir", str(state), cwd=tmp_path)

    assert resumed.returncode == 0, resumed.stderr
    assert "Result: 'published 3 regions (total 1260), approved by ana'" in resumed.stdout
    rows = summary_rows(resumed.stdout)
    assert (rows["crunch"][0], rows["review"][0], rows["publish"][0]) == ("reused", "succeeded", "succeeded")


def _graflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graflow", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
