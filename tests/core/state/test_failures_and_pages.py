"""What a durable run keeps for people to read (SPEC 20): failed attempts, and runs a page at a time.

Failures are kept beside the completions and never replayed; a page of runs is read
from the store's index, with the count of every run that matches.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from graflow.core.decorators import task
from graflow.core.retry import RetryPolicy
from graflow.core.workflow import workflow
from graflow.state.local import LocalStore
from graflow.state.records import RunStatus
from tests.core.state.test_local_store import _plan


def test_a_durable_run_keeps_each_failed_attempt_with_its_traceback(tmp_path: Path) -> None:
    calls: list[int] = []
    with workflow("flaky_flow") as wf:

        @task(retry_policy=RetryPolicy(max_retries=2, initial_interval=0.01, jitter=False))
        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise ValueError(f"upstream hiccup {len(calls)}")
            return "ok"

        @task
        def broken(flaky: str = "") -> None:
            raise KeyError("missing column")

        flaky >> broken

    with pytest.raises(KeyError):
        wf.execute(durable=True, config={"state_dir": str(tmp_path)})
    store = LocalStore(tmp_path)
    (run,) = store.runs()
    failures = store.failures(run.run_id)

    assert [(f.task_id, f.attempt, f.final) for f in failures] == [
        ("flaky", 1, False),
        ("flaky", 2, False),
        ("broken", 1, True),
    ]
    first = failures[0]
    assert (first.error_type, first.message) == ("ValueError", "upstream hiccup 1")
    assert "raise ValueError" in first.traceback and "Traceback (most recent call last)" in first.traceback
    assert first.started_at <= first.finished_at
    assert run.status is RunStatus.FAILED
    store.close()


def test_a_page_of_runs_is_newest_first_with_the_count_of_every_match(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    journals = []
    for number in range(7):
        journals.append(store.start_run(_plan(f"run-{number}", "etl" if number % 2 else "report")))
        time.sleep(0.002)
    journals[5].finish(RunStatus.FAILED, "task 'a': ValueError: no")
    try:
        page, total = store.runs_page(offset=2, limit=3)
        assert ([r.run_id for r in page], total) == (["run-4", "run-3", "run-2"], 7)
        page, total = store.runs_page(workflow="etl", limit=2)
        assert ([r.run_id for r in page], total) == (["run-5", "run-3"], 3)
        page, total = store.runs_page(RunStatus.FAILED)
        assert ([r.run_id for r in page], total) == (["run-5"], 1)
        assert store.runs_page(offset=50) == ([], 7)
    finally:
        for journal in journals:
            journal.close()
        store.close()
