"""``graflow feedback`` and suspended runs (SPEC 14, 16, 17), with real processes.

A durable ``graflow run`` suspends waiting for an approval (exit 3); a ``graflow feedback``
process answers it; a ``graflow resume`` process carries the run on, running only the
waiting task and what follows it. Every task appends its name to a side-effects file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graflow.cli import EXIT_SUSPENDED
from tests.core.cli.output import Run, summary_rows
from tests.core.cli.test_durable_cli import graflow, runs_json, side_effects
from tests.support.waiting import wait_until

RELEASE = """
from pathlib import Path

from graflow import task, workflow

HERE = Path(__file__).resolve().parent


def did(name):
    with (HERE / "side-effects.txt").open("a") as file:
        file.write(name + "\\n")


with workflow("release") as release:

    @task
    def build():
        did("build")
        return "v1.2"

    @task(inject_context=True)
    def approve(ctx):
        did("approve")
        answer = ctx.request_approval(f"Deploy {ctx.get_result('build')}?", timeout=TIMEOUT)
        return answer.approved

    @task(inject_context=True)
    def target(ctx):
        did("target")
        return ctx.request_selection("Where?", ["staging", "prod"], timeout=TIMEOUT).selected

    @task(inject_context=True)
    def deploy(ctx):
        did("deploy")
        return f"{ctx.get_result('build')} to {ctx.get_result('target')}" if ctx.get_result("approve") else "held"

    build >> approve >> target >> deploy
"""


def release_file(write: Any, timeout: float) -> Path:
    return write("release.py", RELEASE.replace("TIMEOUT", repr(timeout)))  # type: ignore[no-any-return]


@contextmanager
def driving(path: Path, state: Path) -> Iterator[subprocess.Popen[str]]:
    """A durable ``graflow run`` of ``path`` in a process of its own, killed at the end if still running."""
    driver = subprocess.Popen(
        [sys.executable, "-m", "graflow", "run", str(path), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield driver
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.communicate(timeout=30)


def pending(state: Path) -> list[dict[str, Any]]:
    listed = graflow("feedback", "list", "--json", "--state-dir", state)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)  # type: ignore[no-any-return]


def test_a_suspended_run_is_answered_and_resumed_by_other_processes(write, tmp_path: Path) -> None:
    path = release_file(write, 0.5)
    state = tmp_path / "state"

    suspended = graflow("run", path, "--state-dir", state)

    assert suspended.returncode == EXIT_SUSPENDED, suspended.stderr
    run_id = suspended.stdout.splitlines()[0].split()[1]
    [question] = pending(state)
    assert {k: question[k] for k in ("run_id", "task_id", "feedback_type", "prompt", "options")} == {
        "run_id": run_id,
        "task_id": "approve",
        "feedback_type": "approval",
        "prompt": "Deploy v1.2?",
        "options": None,
    }
    assert question["feedback_id"] and question["created_at"].endswith("Z")
    respond = f"graflow feedback respond {question['feedback_id']} --approve --state-dir {state}"
    assert respond in suspended.stdout  # the summary says how to answer, and how to carry on
    assert f"graflow resume {run_id} --state-dir {state}" in suspended.stdout
    assert summary_rows(suspended.stdout)["approve"][0] == "waiting"
    [info] = runs_json(state)
    assert info["status"] == "suspended"

    answered = graflow(
        "feedback", "respond", question["feedback_id"], "--approve", "--by", "ana", "--state-dir", state
    )
    assert answered.returncode == 0, answered.stderr
    assert "approved by ana" in answered.stdout
    assert f"graflow resume {run_id} --state-dir {state}" in answered.stdout

    # The next question suspends the run again: resume exits 3 too.
    again = graflow("resume", run_id, "--state-dir", state)
    assert again.returncode == EXIT_SUSPENDED, again.stderr
    [choice] = pending(state)
    assert choice["task_id"] == "target" and choice["options"] == ["staging", "prod"]
    assert (
        graflow(
            "feedback", "respond", choice["feedback_id"], "--select", "prod", "--state-dir", state
        ).returncode
        == 0
    )

    done = graflow("resume", run_id, "--state-dir", state)

    assert done.returncode == 0, done.stderr
    assert "Result: 'v1.2 to prod'" in done.stdout
    assert side_effects(tmp_path) == ["build", "approve", "approve", "target", "target", "deploy"]
    assert runs_json(state)[0]["status"] == "succeeded"
    assert pending(state) == []


def test_a_waiting_run_is_answered_by_another_process_and_carries_on_without_suspending(
    write, tmp_path: Path
) -> None:
    path = release_file(write, 60.0)
    state = tmp_path / "state"
    with driving(path, state) as driver:
        for answer in (["--approve"], ["--select", "staging"]):
            [question] = wait_until(lambda: pending(state) or None, 60, "a question")
            answered = graflow("feedback", "respond", question["feedback_id"], *answer, "--state-dir", state)
            assert answered.returncode == 0, answered.stderr
            assert f"task {question['task_id']!r} was waiting for it and carries on" in answered.stdout
        out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err
    assert "Result: 'v1.2 to staging'" in out
    assert "asked     approve (approval" in out  # progress shows the question as it is asked
    assert side_effects(tmp_path) == ["build", "approve", "target", "deploy"]


def test_bad_answers_are_refused_and_the_first_answer_stands(write, cli: Run, tmp_path: Path) -> None:
    state = tmp_path / "state"
    code, _, _ = cli("run", release_file(write, 0.2), "--state-dir", state)
    assert code == EXIT_SUSPENDED
    [question] = pending(state)
    qid = question["feedback_id"]

    assert cli("feedback", "respond", qid, "--text", "yes", "--state-dir", state)[0] == 2
    assert cli("feedback", "respond", qid, "--state-dir", state)[0] == 2
    code, _, err = cli("feedback", "respond", "no-such-id", "--approve", "--state-dir", state)
    assert code == 2 and "no feedback request 'no-such-id'" in err
    assert (
        cli(
            "feedback", "respond", qid, "--reject", "--reason", "Friday", "--by", "ana", "--state-dir", state
        )[0]
        == 0
    )
    code, _, err = cli("feedback", "respond", qid, "--approve", "--by", "bo", "--state-dir", state)

    assert code == 1
    assert "answered already by ana; the first answer stands" in err
    code, out, _ = cli("feedback", "show", qid, "--json", "--state-dir", state)
    shown = json.loads(out)
    assert shown["status"] == "answered"
    assert (
        shown["response"]["approved"],
        shown["response"]["reason"],
        shown["response"]["responded_by"],
    ) == (
        False,
        "Friday",
        "ana",
    )


def test_feedback_list_says_when_nothing_waits_and_help_has_examples(cli: Run, tmp_path: Path) -> None:
    code, out, _ = cli("feedback", "list", "--state-dir", tmp_path / "state")
    assert code == 0 and "no questions waiting for an answer" in out
    assert cli("feedback", "list", "--json", "--state-dir", tmp_path / "state")[1] == "[]\n"
    code, out, _ = cli("feedback", "respond", "--help")
    assert code == 0 and "graflow feedback respond 9c1e... --select staging" in out
    code, _, err = cli("feedback")
    assert code == 2 and "choose a command: list, show or respond" in err


def test_an_answer_arrives_in_well_under_a_second_from_another_process(write, tmp_path: Path) -> None:
    """The local store polls for answers from other processes; it must not feel slow to a person."""
    path = release_file(write, 60.0)
    state = tmp_path / "state"
    with driving(path, state):
        [question] = wait_until(lambda: pending(state) or None, 60, "a question")
        time.sleep(1.0)  # the waiting task's polling has slowed down to its longest pause
        answered = graflow("feedback", "respond", question["feedback_id"], "--approve", "--state-dir", state)
        assert answered.returncode == 0, answered.stderr
        answered_at = time.monotonic()
        wait_until(lambda: "target" in side_effects(tmp_path), 10, "the task to carry on")
        assert time.monotonic() - answered_at < 1.5
