"""A job whose last task fails: the dashboard shows the run's error with its traceback."""

from graflow import task, workflow

with workflow("broken") as broken:

    @task
    def fetch() -> dict[str, int]:
        return {"rows": 3}

    @task
    def parse(fetch: dict[str, int] | None = None) -> None:
        raise ValueError("row 3 has no date")

    fetch >> parse
