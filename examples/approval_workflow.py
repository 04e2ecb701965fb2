"""A release that waits for people: a yes/no approval, then a choice of where to deploy.

``approve`` asks for an approval (``request_approval``) and ``choose_target`` for one
of three environments (``request_selection``, its answer written to the channel as
``target`` for ``deploy`` to read). Each question waits up to ``wait`` seconds (default
600; ``--set wait=N``). With ``--set webhook=URL`` each question is also POSTed there as
JSON when it is asked (a chat bot, a pager), and a webhook that is down never fails the task.

Answer from another terminal while it waits (from the repository root)::

    $ graflow run examples/approval_workflow.py --durable --state-dir /tmp/graflow-demo
    run 7d41c0a2...
      started   approve
      asked     approve (approval, waits up to 10m 00s): Release v1.4.2 (142 tests passed)?
                answer: graflow feedback respond 3c9e... --approve --state-dir /tmp/graflow-demo

    $ graflow feedback list --state-dir /tmp/graflow-demo          # in another terminal
    $ graflow feedback respond 3c9e... --approve --reason "changelog reviewed" --by ana \\
          --state-dir /tmp/graflow-demo
    answered 3c9e... ('approve' of run 7d41c0a2...): approved (changelog reviewed) by ana
    task 'approve' was waiting for it and carries on

    $ graflow feedback respond 81fa... --select staging --state-dir /tmp/graflow-demo
    ...
    Result: 'v1.4.2 deployed to staging (approved by ana)'

A rejection ends the run without deploying (``terminate_workflow``). ``python
examples/approval_workflow.py`` runs it unattended: a reviewer thread answers through
``context.feedback_manager``, as a bot with a policy would. What happens when nobody
answers in time is the next example, ``suspend_and_resume.py``.
"""

from __future__ import annotations

import threading
import time

from graflow import TaskExecutionContext, task, workflow
from graflow.core.context import ExecutionContext
from graflow.core.engine import WorkflowEngine
from graflow.hitl import FeedbackResponse

ENVIRONMENTS = ["staging", "canary", "production"]

with workflow("release") as release:

    @task
    def build() -> dict[str, object]:
        return {"version": "v1.4.2", "tests_passed": 142}

    @task(inject_context=True)
    def approve(ctx: TaskExecutionContext) -> str:
        channel = ctx.get_channel()
        built = ctx.get_result("build")
        webhook = channel.get("webhook", None)
        answer = ctx.request_approval(
            f"Release {built['version']} ({built['tests_passed']} tests passed)?",
            timeout=float(channel.get("wait", 600)),
            metadata={"version": built["version"]},
            notification={"webhook_url": webhook} if webhook else None,
        )
        if not answer.approved:
            ctx.terminate_workflow(f"release rejected: {answer.reason or 'no reason given'}")
        return answer.responded_by or "someone"

    @task(inject_context=True)
    def choose_target(ctx: TaskExecutionContext) -> None:
        wait = float(ctx.get_channel().get("wait", 600))
        ctx.request_selection("Deploy where?", ENVIRONMENTS, timeout=wait, channel_key="target")

    @task(inject_context=True)
    def deploy(ctx: TaskExecutionContext) -> str:
        target = ctx.get_channel().get("target")
        version = ctx.get_result("build")["version"]
        return f"{version} deployed to {target} (approved by {ctx.get_result('approve')})"

    build >> approve >> choose_target >> deploy


def reviewer(context: ExecutionContext, stop: threading.Event) -> None:
    """A bot with a policy: approve releases whose tests passed, deploy them to staging."""
    manager = context.feedback_manager
    while not stop.is_set():
        for request in manager.list_pending_requests(context.session_id):
            if request.task_id == "approve":
                passed = "tests passed" in request.prompt
                answer = FeedbackResponse(approved=passed, reason="tests passed", responded_by="release-bot")
            else:
                answer = FeedbackResponse(selected="staging", responded_by="release-bot")
            manager.provide_feedback(request.feedback_id, answer)
        time.sleep(0.05)


def main() -> str:
    context = release.create_context()
    stop = threading.Event()
    bot = threading.Thread(target=reviewer, args=(context, stop), daemon=True)
    bot.start()
    try:
        result: str = WorkflowEngine().execute(context)
    finally:
        stop.set()
    return result


if __name__ == "__main__":
    print(main())
