"""Human in the loop on the fleet (SPEC 17): a task on a real ``graflow-worker`` asks, a CLI answers.

Real processes throughout: ``graflow run --queue redis`` drives, ``graflow-worker``
processes run the tasks, ``graflow feedback respond`` (another process) answers through
Redis, ``graflow resume`` carries a suspended run on. Each task appends its name to a
file, so a test can tell what ran and how often.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

from graflow.cli import EXIT_SUSPENDED
from tests.e2e.conftest import Fleet
from tests.e2e.test_durable_redis import _effects, _graflow, _store_args
from tests.support.waiting import wait_until

FLOW = """
from graflow import task, workflow

EFFECTS = {effects!r}


def effect(name):
    with open(EFFECTS, "a") as f:
        f.write(name + "\\n")


with workflow("fleet_release") as wf:

    @task
    def build():
        effect("build")
        return "v1.2"

    @task(inject_context=True)
    def approve(ctx):
        effect("approve")
        answer = ctx.request_selection(
            f"Deploy {{ctx.get_result('build')}} where?", ["staging", "prod"], timeout={timeout}, channel_key="target"
        )
        return answer.selected

    @task(inject_context=True)
    def deploy(ctx):
        effect("deploy")
        return f"{{ctx.get_result('build')}} to {{ctx.get_channel().get('target')}}"

    build >> approve >> deploy
"""


def _pending(fleet: Fleet, cwd: Path) -> list[dict[str, object]]:
    listed = _graflow("feedback", "list", "--json", *_store_args(fleet), cwd=cwd)
    out, _ = listed.communicate(timeout=60)
    assert listed.returncode == 0, out
    return json.loads(out)  # type: ignore[no-any-return]


def _respond(fleet: Fleet, cwd: Path, feedback_id: str, *answer: str) -> str:
    respond = _graflow("feedback", "respond", feedback_id, *answer, *_store_args(fleet), cwd=cwd)
    out, _ = respond.communicate(timeout=60)
    assert respond.returncode == 0, out
    return out


def test_a_task_on_a_worker_waits_past_the_visibility_timeout_and_is_answered_by_the_cli(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.start("one", "--max-concurrent-tasks", "1")
    fleet.start("two", "--max-concurrent-tasks", "1")
    effects = tmp_path / "effects.txt"
    source = tmp_path / "flow.py"
    source.write_text(FLOW.format(effects=str(effects), timeout=120.0))

    driver = _graflow("run", str(source), "--queue", "redis", *_store_args(fleet), cwd=tmp_path)
    try:
        [question] = wait_until(lambda: _pending(fleet, tmp_path) or None, 60, "the worker's task to ask")
        assert question["task_id"] == "approve" and question["options"] == ["staging", "prod"]
        # Waiting is running: its worker keeps the entry, no other worker takes it over.
        time.sleep(fleet.visibility_timeout * 2.5)
        answered = _respond(fleet, tmp_path, str(question["feedback_id"]), "--select", "prod", "--by", "ana")
        assert "selected 'prod' by ana" in answered
        assert "task 'approve' was waiting for it and carries on" in answered
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)

    assert driver.returncode == 0, output
    assert "Result: 'v1.2 to prod'" in output
    assert Counter(_effects(effects)) == Counter(["build", "approve", "deploy"]), fleet.logs()
    finished = [
        line
        for line in fleet.logs().splitlines()
        if '"task_id": "approve"' in line and "task_finished" in line
    ]
    assert len(finished) == 1, fleet.logs()  # one worker ran it, and only once


def test_a_fleet_run_suspends_and_the_cli_answers_and_resumes_it(fleet: Fleet, tmp_path: Path) -> None:
    fleet.start("one")
    effects = tmp_path / "effects.txt"
    source = tmp_path / "flow.py"
    source.write_text(FLOW.format(effects=str(effects), timeout=1.0))

    run = _graflow("run", str(source), "--queue", "redis", *_store_args(fleet), cwd=tmp_path)
    output, _ = run.communicate(timeout=120)

    assert run.returncode == EXIT_SUSPENDED, output
    run_id = output.splitlines()[0].split()[1]
    listed = _graflow("runs", "--json", "--status", "suspended", *_store_args(fleet), cwd=tmp_path)
    runs, _ = listed.communicate(timeout=60)
    assert [r["run_id"] for r in json.loads(runs)] == [run_id]
    [question] = _pending(fleet, tmp_path)
    answered = _respond(fleet, tmp_path, str(question["feedback_id"]), "--select", "staging")
    assert f"run {run_id} is suspended" in answered

    source.rename(tmp_path / "moved-away.py")
    resume = _graflow("resume", run_id, *_store_args(fleet), cwd=tmp_path)
    resumed, _ = resume.communicate(timeout=120)

    assert resume.returncode == 0, resumed
    assert "Result: 'v1.2 to staging'" in resumed
    # build ran once; approve asked twice (the second time, the stored answer came at once).
    assert Counter(_effects(effects)) == Counter(["build", "approve", "approve", "deploy"]), fleet.logs()
    assert _pending(fleet, tmp_path) == []


def test_bad_answers_through_redis_are_refused(fleet: Fleet, tmp_path: Path) -> None:
    fleet.start("one")
    source = tmp_path / "flow.py"
    source.write_text(FLOW.format(effects=str(tmp_path / "effects.txt"), timeout=0.5))
    run = _graflow("run", str(source), "--queue", "redis", *_store_args(fleet), cwd=tmp_path)
    run.communicate(timeout=120)
    [question] = _pending(fleet, tmp_path)
    qid = str(question["feedback_id"])

    wrong = subprocess.run(
        ["python", "-m", "graflow", "feedback", "respond", qid, "--select", "qa", *_store_args(fleet)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "'qa' is not one of its options" in wrong.stderr
    _respond(fleet, tmp_path, qid, "--select", "prod")
    second = subprocess.run(
        ["python", "-m", "graflow", "feedback", "respond", qid, "--select", "staging", *_store_args(fleet)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1 and "the first answer stands" in second.stderr
