"""A nightly job that needs a person's approval: the dashboard's tests run it as a durable run.

``extract`` feeds a parallel group (one member fails its first attempt, then succeeds on
the retry), ``approve`` asks a person and, with nobody answering within a moment,
suspends the run; ``publish`` runs once approved and the run is resumed.
"""

from graflow import TaskExecutionContext, task, workflow
from graflow.core.retry import RetryPolicy

with workflow("review") as review:

    @task
    def extract() -> list[int]:
        return list(range(5))

    @task
    def totals() -> dict[str, int]:
        return {"fr": 3, "jp": 4}

    @task(inject_context=True, retry_policy=RetryPolicy(max_retries=2, initial_interval=0.01, jitter=False))
    def customers(ctx: TaskExecutionContext) -> list[str]:
        if ctx.retry_count == 0:
            raise ConnectionError("the warehouse timed out")
        return ["acme", "globex"]

    @task(inject_context=True)
    def approve(ctx: TaskExecutionContext) -> bool:
        return ctx.request_approval("Publish the nightly report?", timeout=0.2).approved

    @task
    def publish() -> str:
        return "published: " + "x" * 1000

    extract >> (totals | customers).set_group_name("transform") >> approve >> publish
