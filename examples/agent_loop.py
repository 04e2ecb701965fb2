"""An agent loop, async tools, and a reusable sub-workflow: the language beyond DAGs.

    python -m graflow run examples/agent_loop.py
    python -m graflow graph examples/agent_loop.py      # the loop's closing edge is dashed

* ``plan >> agent >> tools >> agent`` is a static cycle with a way in: each time ``tools``
  finishes, ``agent`` runs again, until it jumps out with ``next_task(..., goto=True)``.
* ``tools`` is a nested workflow made by a template (a plain function returning a workflow):
  two async "API calls" that overlap their waits on the run's event loop.
* ``summarize`` is bound twice from one task (``summarize(task_id=..., style=...)``).
"""

import asyncio

from graflow import TaskExecutionContext, task, workflow
from graflow.core.workflow import WorkflowContext


def lookup_tools(name: str = "tools") -> WorkflowContext:
    """A workflow template: two async lookups side by side, then one merge."""
    with workflow(name) as tools:

        @task(inject_context=True, timeout=5)
        async def weather(ctx: TaskExecutionContext) -> str:
            await asyncio.sleep(0.05)  # an API call
            return f"sunny on turn {ctx.get_channel().get('turn')}"

        @task(timeout=5)
        async def calendar() -> str:
            await asyncio.sleep(0.05)
            return "free after 3pm"

        @task(inject_context=True)
        def merge(ctx: TaskExecutionContext) -> str:
            return f"{ctx.get_result('weather')}; {ctx.get_result('calendar')}"

        (weather | calendar) >> merge
    return tools


@task  # defined outside the workflow: a template, bound below into the tasks that run
def summarize(notes: list[str], style: str = "short") -> str:
    return f"[{style}] " + " | ".join(notes)


with workflow("agent_loop") as agent_loop:

    @task(inject_context=True)
    def plan(ctx: TaskExecutionContext) -> str:
        ctx.get_channel().set("turn", 0)
        return "find a time for a picnic"

    @task(inject_context=True, max_cycles=10)
    def agent(ctx: TaskExecutionContext) -> str:
        channel = ctx.get_channel()
        turn = channel.atomic_add("turn", 1)
        if turn > 1:
            channel.append("notes", ctx.get_result("tools"))
        if turn == 3:  # enough: leave the loop for two summaries, side by side
            short = summarize(task_id="short_summary", style="short")
            detailed = summarize(task_id="detailed_summary", style="detailed")
            ctx.next_task(short | detailed, goto=True)
        return f"turn {turn}"

    plan >> agent >> lookup_tools() >> agent


if __name__ == "__main__":
    print(agent_loop.execute())
