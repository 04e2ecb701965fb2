"""A question nobody answers in time: the durable run suspends, and carries on after the answer.

``review`` asks whether to publish the report and waits ``wait`` seconds (default 5;
``--set wait=N``). Nobody answers, so the durable run *suspends*: its state stays in the
state directory, ``graflow run`` exits with status 3, and no process is left waiting.
The answer can come hours later, from anywhere that reaches the state directory; then
``graflow resume`` runs ``review`` again, whose question now returns the stored answer at
once, and what follows it. ``crunch``, done before the question, does not run again.

Walkthrough (from the repository root)::

    $ graflow run examples/suspend_and_resume.py --durable --state-dir /tmp/graflow-hitl
    run 0e8a51f3...
      succeeded crunch [2 ms]
      asked     review (approval, waits up to 5.00 s): Publish the report (3 regions, total 1,260)?
      waiting   review [5.00 s]: no answer in time, the run suspends
    ...
    The run is suspended, waiting for 1 answer:
      review: Publish the report (3 regions, total 1,260)?
        graflow feedback respond 5b2d... --approve --state-dir /tmp/graflow-hitl
    then `graflow resume 0e8a51f3... --state-dir /tmp/graflow-hitl` carries it on
    $ echo $?
    3

    $ graflow runs --status suspended --state-dir /tmp/graflow-hitl
    $ graflow feedback respond 5b2d... --approve --by ana --state-dir /tmp/graflow-hitl
    run 0e8a51f3... is suspended: `graflow resume 0e8a51f3... --state-dir /tmp/graflow-hitl` carries it on ...

    $ graflow resume 0e8a51f3... --state-dir /tmp/graflow-hitl
      started   review
      succeeded review [1 ms]
      started   publish
    | crunch  | reused    | ...
    Result: 'published 3 regions (total 1260), approved by ana'

In Python the same run raises :class:`graflow.hitl.FeedbackTimeoutError` from
``execute(..., durable=True)`` (with ``feedback_id`` and ``run_id``), and
``WorkflowEngine().resume(run_id, config={"state_dir": ...})`` carries it on. A run
that is not durable cannot suspend: there, the timeout is the task's failure.
"""

from __future__ import annotations

from graflow import TaskExecutionContext, task, workflow

with workflow("report") as report:

    @task
    def crunch() -> dict[str, int]:
        return {"emea": 410, "amer": 530, "apac": 320}

    @task(inject_context=True)
    def review(ctx: TaskExecutionContext) -> str:
        totals = ctx.get_result("crunch")
        answer = ctx.request_approval(
            f"Publish the report ({len(totals)} regions, total {sum(totals.values()):,})?",
            timeout=float(ctx.get_channel().get("wait", 5)),
        )
        if not answer.approved:
            ctx.cancel_workflow(f"not published: {answer.reason or 'rejected'}")
        return answer.responded_by or "someone"

    @task(inject_context=True)
    def publish(ctx: TaskExecutionContext) -> str:
        totals = ctx.get_result("crunch")
        return f"published {len(totals)} regions (total {sum(totals.values())}), approved by {ctx.get_result('review')}"

    crunch >> review >> publish
