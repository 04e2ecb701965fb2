"""Parallel groups: choose how members run and how their failures count.

python -m graflow run examples/parallel_groups.py
"""

import time

from graflow import CoordinationBackend, ErrorHandlingPolicy, task, workflow

with workflow("aggregate_sources") as aggregate_sources:

    @task
    def source_primary() -> dict:
        time.sleep(0.1)
        return {"rows": 120}

    @task
    def source_mirror() -> dict:
        time.sleep(0.1)
        return {"rows": 118}

    @task
    def source_flaky() -> dict:
        raise ConnectionError("source_flaky is down")

    @task(inject_context=True)
    def merge(ctx) -> int:
        fetched = ctx.get_result("fetch")  # the group's result: {member id: result} of the successes
        return sum(part["rows"] for part in fetched.values())

    fetch = (
        (source_primary | source_mirror | source_flaky)
        .set_group_name("fetch")
        .with_execution(
            backend=CoordinationBackend.THREADING,
            # Any 2 of the 3 sources are enough; CRITICAL_TASKS(["source_primary"]) would require that one.
            policy=ErrorHandlingPolicy.AT_LEAST_N(n=2),
        )
    )
    fetch >> merge


if __name__ == "__main__":
    print(aggregate_sources.execute())
