"""Suspension (SPEC 17): a durable run whose question goes unanswered is kept, then carried on.

The answer comes through a store opened afresh (as another process would open it), and
the run is resumed from its store alone (its functions by value). Every task appends its
name to a file, so a test can tell what ran again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from graflow import task, workflow
from graflow.core.engine import WorkflowEngine
from graflow.hitl import FeedbackManager, FeedbackResponse, FeedbackTimeoutError
from graflow.state.local import LocalStore
from graflow.state.records import RunStatus


class Log:
    """Names of the tasks that ran, in a file: resumed tasks are copies, and find it by its path."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __call__(self, name: str) -> None:
        with open(self.path, "a") as file:
            file.write(name + "\n")

    def taken(self) -> list[str]:
        """What ran since the last call."""
        path = Path(self.path)
        names = path.read_text().split() if path.exists() else []
        path.unlink(missing_ok=True)
        return names


@pytest.fixture
def did(tmp_path: Path) -> Log:
    return Log(tmp_path / "ran.txt")


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return {"state_dir": str(tmp_path / "state")}


def release_flow(did: Log) -> Any:
    with workflow("release") as wf:

        @task
        def build():
            did("build")
            return "v1.2"

        @task(inject_context=True, max_retries=3)
        def approve(ctx):
            did("approve")
            started = time.monotonic()
            answer = ctx.request_approval(f"Deploy {ctx.get_result('build')}?", timeout=0.3)
            return (answer.approved, time.monotonic() - started)

        @task(inject_context=True)
        def deploy(ctx):
            did("deploy")
            return "deployed" if ctx.get_result("approve")[0] else "held"

        build >> approve >> deploy
    return wf


def status(config: dict[str, Any], run_id: str) -> RunStatus:
    store = LocalStore(config["state_dir"])
    try:
        return store.run(run_id).status
    finally:
        store.close()


def test_an_unanswered_question_suspends_a_durable_run_and_its_answer_carries_it_on(
    did: Log,
    config: dict[str, Any],
) -> None:
    context = release_flow(did).create_context(durable=True, config=config)

    with pytest.raises(FeedbackTimeoutError) as suspended:
        WorkflowEngine().execute(context)

    run_id = context.session_id
    assert suspended.value.run_id == run_id and suspended.value.durable
    assert f"graflow resume {run_id}" in str(suspended.value)
    assert did.taken() == ["build", "approve"]  # neither retried nor failed: the run waits
    assert status(config, run_id) is RunStatus.SUSPENDED

    manager = FeedbackManager.for_store(config)  # as another process would
    [question] = manager.list_pending_requests(run_id)
    assert question.feedback_id == suspended.value.feedback_id and question.prompt == "Deploy v1.2?"
    manager.provide_feedback(question.feedback_id, FeedbackResponse(approved=True, responded_by="ana"))

    assert WorkflowEngine().resume(run_id, config) == "deployed"
    assert did.taken() == ["approve", "deploy"]  # only the waiting task and what follows it
    assert status(config, run_id) is RunStatus.SUCCEEDED


def test_the_resumed_task_gets_the_stored_answer_at_once(did: Log, config: dict[str, Any]) -> None:
    context = release_flow(did).create_context(durable=True, config=config)
    with pytest.raises(FeedbackTimeoutError) as suspended:
        WorkflowEngine().execute(context)
    FeedbackManager.for_store(config).provide_feedback(
        suspended.value.feedback_id, FeedbackResponse(approved=False)
    )

    resumed = WorkflowEngine()
    resumed.resume(context.session_id, config)

    saved = LocalStore(config["state_dir"]).load(context.session_id)
    approved, waited = saved.results["approve"]
    assert approved is False and waited < 0.1
    assert saved.results["deploy"] == "held"


def test_a_resumed_run_still_unanswered_suspends_again_with_the_same_question(
    did: Log, config: dict[str, Any]
) -> None:
    context = release_flow(did).create_context(durable=True, config=config)
    with pytest.raises(FeedbackTimeoutError) as first:
        WorkflowEngine().execute(context)

    with pytest.raises(FeedbackTimeoutError) as second:
        WorkflowEngine().resume(context.session_id, config)

    assert second.value.feedback_id == first.value.feedback_id
    assert len(FeedbackManager.for_store(config).list_pending_requests(context.session_id)) == 1
    assert status(config, context.session_id) is RunStatus.SUSPENDED


def test_a_group_member_that_suspends_keeps_its_siblings_results_and_only_it_runs_again(
    did: Log,
    config: dict[str, Any],
) -> None:
    with workflow("review") as wf:

        @task
        def lint():
            did("lint")
            return "clean"

        @task(inject_context=True)
        def sign_off(ctx):
            did("sign_off")
            return ctx.request_approval("Sign off?", timeout=0.3).approved

        @task(inject_context=True)
        def merge(ctx):
            did("merge")
            return (ctx.get_result("lint"), ctx.get_result("sign_off"))

        (lint | sign_off).with_execution(backend="threading") >> merge

    context = wf.create_context(durable=True, config=config)
    with pytest.raises(FeedbackTimeoutError) as suspended:
        WorkflowEngine().execute(context)
    assert sorted(did.taken()) == ["lint", "sign_off"]
    FeedbackManager.for_store(config).provide_feedback(
        suspended.value.feedback_id, FeedbackResponse(approved=True)
    )

    assert WorkflowEngine().resume(context.session_id, config) == ("clean", True)
    assert did.taken() == ["sign_off", "merge"]
