"""Asking (SPEC 17): ``ctx.request_feedback`` and its shortcuts, wherever the task runs in process.

A helper thread plays the person (:func:`~tests.core.hitl.person.answer_when_asked`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graflow import task, workflow
from graflow.core.engine import WorkflowEngine
from graflow.exceptions import ConfigError
from graflow.hitl import FeedbackError, FeedbackRequest, FeedbackResponse, FeedbackTimeoutError
from tests.core.hitl.person import answer_when_asked


def test_an_approval_answered_from_another_thread_lets_the_task_carry_on_with_it() -> None:
    with workflow("deploy") as wf:

        @task(inject_context=True)
        def approve(ctx):
            answer = ctx.request_approval("Deploy v1.2?", timeout=20.0)
            return (answer.approved, answer.responded_by, answer.reason)

        @task(inject_context=True)
        def deploy(ctx):
            return "deployed" if ctx.get_result("approve")[0] else "held"

        approve >> deploy

    context = wf.create_context()
    person = answer_when_asked(
        context, lambda r: FeedbackResponse(approved=True, reason="ok", responded_by="ana")
    )

    assert WorkflowEngine().execute(context) == "deployed"
    assert context.results["approve"] == (True, "ana", "ok")
    person.join(5)


def test_the_waiting_task_sleeps_until_the_answer_and_wakes_at_once() -> None:
    with workflow("wake") as wf:

        @task(inject_context=True)
        def ask(ctx):
            ctx.request_text_input("Name?", timeout=30.0)
            return time.monotonic()

    context = wf.create_context()
    answered_at: list[float] = []

    def respond(request: FeedbackRequest) -> FeedbackResponse:
        time.sleep(0.3)
        answered_at.append(time.monotonic())
        return FeedbackResponse(text="ana")

    answer_when_asked(context, respond)
    started = time.process_time()
    resumed_at = WorkflowEngine().execute(context)

    assert resumed_at - answered_at[0] < 0.2  # woken by the answer, not by a timer
    assert time.process_time() - started < 0.25  # and it slept meanwhile: no busy polling


def test_the_answer_and_the_whole_response_are_written_to_the_channel_for_later_tasks() -> None:
    with workflow("channel") as wf:

        @task(inject_context=True)
        def choose(ctx):
            ctx.request_selection("Region?", ["eu", "us"], timeout=20.0, channel_key="region")

        @task(inject_context=True)
        def use(ctx):
            channel = ctx.get_channel()
            return (channel.get("region"), channel.get("region.__feedback_response__")["responded_by"])

        choose >> use

    context = wf.create_context()
    answer_when_asked(context, lambda r: FeedbackResponse(selected="eu", responded_by="ana"))

    assert WorkflowEngine().execute(context) == ("eu", "ana")


def test_members_of_a_threading_group_each_ask_and_each_get_their_own_answer() -> None:
    with workflow("review") as wf:

        @task(inject_context=True)
        def legal(ctx):
            return ctx.request_approval("Legal OK?", timeout=20.0).approved

        @task(inject_context=True)
        def security(ctx):
            return ctx.request_approval("Security OK?", timeout=20.0).approved

        (legal | security).with_execution(backend="threading")

    context = wf.create_context()
    answer_when_asked(context, lambda r: FeedbackResponse(approved=r.prompt.startswith("Legal")), count=2)

    WorkflowEngine().execute(context)

    assert context.results["legal"] is True
    assert context.results["security"] is False


def test_no_answer_in_time_fails_a_run_that_is_not_durable_saying_how_to_make_it_durable() -> None:
    attempts: list[int] = []
    with workflow("impatient") as wf:

        @task(inject_context=True, max_retries=2)
        def approve(ctx):
            attempts.append(1)
            ctx.request_approval("OK?", timeout=0.2)

    context = wf.create_context()
    with pytest.raises(FeedbackTimeoutError, match=r"durable=True") as caught:
        WorkflowEngine().execute(context)

    assert caught.value.run_id == context.session_id and not caught.value.durable
    assert attempts == [1]  # nobody answered: asking again would only wait again
    assert context.feedback_manager.list_pending_requests() == []  # nothing left behind


def test_a_question_sent_to_a_process_pool_of_a_run_that_is_not_durable_fails_saying_why() -> None:
    with workflow("pool") as wf:

        @task(inject_context=True)
        def ask(ctx):
            return ctx.request_approval("OK?", timeout=5.0).approved

        @task
        def other():
            return 1

        (ask | other).with_execution(backend="multiprocessing")

    with pytest.raises(Exception, match="cannot ask one. Make the run durable") as caught:
        wf.execute()
    cause: BaseException | None = caught.value
    while cause is not None and not isinstance(cause, FeedbackError):
        cause = cause.__cause__
    assert isinstance(cause, FeedbackError)


def test_a_durable_runs_pool_process_asks_through_the_local_store_and_is_answered_from_the_driver(
    tmp_path: Path,
) -> None:
    with workflow("pool") as wf:

        @task(inject_context=True)
        def ask(ctx):
            return ctx.request_selection("Which?", ["a", "b"], timeout=20.0).selected

        @task
        def other():
            return 1

        (ask | other).with_execution(backend="multiprocessing")

    context = wf.create_context(durable=True, config={"state_dir": str(tmp_path / "state")})
    answer_when_asked(context, lambda r: FeedbackResponse(selected="b"))

    WorkflowEngine().execute(context)

    assert context.results["ask"] == "b"
    assert context.task_workers["ask"] != ""  # it did run in a pool process


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ctx: ctx.request_feedback("yes-no", "?"), "feedback_type must be one of 'approval'"),
        (lambda ctx: ctx.request_selection("?", []), "needs options"),
        (lambda ctx: ctx.request_approval("?", timeout=0), "timeout must be a positive number"),
        (
            lambda ctx: ctx.request_approval("?", write_to_channel=True),
            "write_to_channel=True needs channel_key",
        ),
    ],
)
def test_a_malformed_question_is_refused_before_anything_is_asked(
    call: Callable[[Any], Any], message: str
) -> None:
    with workflow("bad") as wf:

        @task(inject_context=True)
        def ask(ctx):
            call(ctx)

    context = wf.create_context()
    with pytest.raises(ConfigError, match=message):
        WorkflowEngine().execute(context)
    assert context.feedback_manager.list_pending_requests() == []
