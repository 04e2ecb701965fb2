"""The dashboard in a real browser (SPEC 20): Playwright (from PyPI) driving Debian's Chromium.

A person opens the runs page, opens the suspended run, sees its tasks and their states,
approves the pending question through its form, presses Resume and watches the run
succeed. A screenshot of the run page is kept as an artifact (``$GRAFLOW_TEST_ARTIFACTS``,
default ``.artifacts/`` at the repository root). Without Chromium or Playwright the tests
skip, saying how to get them; with ``CI=true`` they fail instead (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.ui.conftest import ROOT, SUSPENDED_REVIEW, LiveServer, run_ids

ARTIFACTS = Path(os.environ.get("GRAFLOW_TEST_ARTIFACTS", ROOT / ".artifacts"))


def test_a_person_answers_the_approval_resumes_the_run_and_sees_it_succeed(
    make_runs: Callable[..., Path], live_server: Callable[..., LiveServer], page: Any
) -> None:
    state = make_runs("review")
    server = live_server(state)
    run_id = run_ids(state)["review"]

    page.goto(f"{server.url}/runs")
    row = page.locator(f"tr[data-run-id='{run_id}']")
    assert row.locator("td").nth(1).inner_text() == "review"
    assert row.locator(".badge").inner_text() == "suspended"

    row.locator("a").click()
    page.wait_for_url(f"{server.url}/runs/{run_id}", wait_until="domcontentloaded")
    page.wait_for_selector("#graph [data-task-id='approve'][data-state='waiting']")
    states = {
        task: page.get_attribute(f"#graph [data-task-id='{task}']", "data-state") for task in SUSPENDED_REVIEW
    }
    assert states == SUSPENDED_REVIEW
    assert page.locator("#timeline .bar-failed").count() == 1  # the retried attempt

    question = page.locator("#questions .question")
    assert "Publish the nightly report?" in question.inner_text()
    question.locator("textarea[name=reason]").fill("figures checked")
    question.locator("button.approve").click()
    page.wait_for_selector("#questions .empty")

    page.locator("#resume").click()
    page.wait_for_selector("#run-status .status-succeeded", timeout=60_000)
    page.wait_for_selector("#graph [data-task-id='publish'][data-state='done']")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-run-page.png"), full_page=True)
    assert page.locator("#launches .launch").count() == 1


def test_a_failed_runs_page_shows_the_error_and_its_traceback(
    make_runs: Callable[..., Path], live_server: Callable[..., LiveServer], page: Any
) -> None:
    state = make_runs("broken")
    server = live_server(state)
    run_id = run_ids(state)["broken"]

    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_selector("#graph [data-task-id='parse'][data-state='failed']")
    assert "row 3 has no date" in page.locator(".run-error").inner_text()
    page.locator("#errors details summary").click()
    assert 'raise ValueError("row 3 has no date")' in page.locator("#errors .traceback").inner_text()

    page.click("#graph [data-task-id='fetch']")
    assert "{'rows': 3}" in page.locator("#task-panel .result").inner_text()


def test_with_a_token_a_person_logs_in_once_and_the_pages_work(
    make_runs: Callable[..., Path], live_server: Callable[..., LiveServer], page: Any
) -> None:
    server = live_server(make_runs("broken"), token="s3cret")

    page.goto(f"{server.url}/runs")
    page.wait_for_url(f"{server.url}/login?next=/runs", wait_until="domcontentloaded")
    page.fill("input[name=token]", "s3cret")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/runs", wait_until="domcontentloaded")
    page.wait_for_selector("tr[data-run-id]")

    page.goto(f"{server.url}/schedules")
    page.wait_for_selector("#schedules p")
    assert "graflow scheduler" in page.locator("#schedules").inner_text()
