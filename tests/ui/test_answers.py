"""Every kind of question is answered through the API as on the command line (SPEC 17, 20)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from graflow.hitl import FeedbackRequest, FeedbackType
from graflow.state.local import LocalStore
from tests.ui.conftest import LiveServer, run_ids

_POST = {"X-Graflow-Request": "1"}
QUESTIONS = {
    "approval": FeedbackRequest("q-approval", "", "deploy", FeedbackType.APPROVAL, "Deploy v1.2?"),
    "text": FeedbackRequest("q-text", "", "note", FeedbackType.TEXT, "What changed?"),
    "selection": FeedbackRequest(
        "q-select", "", "env", FeedbackType.SELECTION, "Where to?", ["staging", "prod"]
    ),
    "multi_selection": FeedbackRequest(
        "q-multi", "", "regions", FeedbackType.MULTI_SELECTION, "Which regions?", ["eu", "us", "jp"]
    ),
    "custom": FeedbackRequest("q-custom", "", "tune", FeedbackType.CUSTOM, "Thresholds?"),
}


@pytest.fixture
def asked(make_runs: Callable[..., Path]) -> Iterator[Path]:
    """A state directory whose ``broken`` run asked one question of every kind."""
    state = make_runs("broken")
    run_id = run_ids(state)["broken"]
    store = LocalStore(state)
    backend = store.feedback()
    for question in QUESTIONS.values():
        question.run_id = run_id
        backend.create(question)
    store.close()
    yield state


@pytest.mark.parametrize(
    ("kind", "answer", "stored"),
    [
        (
            "approval",
            {"approved": False, "reason": "not on a Friday"},
            {"approved": False, "reason": "not on a Friday"},
        ),
        ("text", {"text": "the March figures"}, {"text": "the March figures"}),
        ("selection", {"selected": "staging"}, {"selected": "staging"}),
        ("multi_selection", {"selected_multiple": ["eu", "jp"]}, {"selected_multiple": ["eu", "jp"]}),
        ("custom", {"custom_data": {"threshold": 0.8}}, {"custom_data": {"threshold": 0.8}}),
    ],
)
def test_each_kind_of_question_takes_its_own_answer(
    asked: Path,
    client_for: Callable[..., TestClient],
    kind: str,
    answer: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    feedback_id = QUESTIONS[kind].feedback_id

    answered = client_for(asked).post(f"/api/feedback/{feedback_id}", json=answer, headers=_POST)

    assert answered.status_code == 200, answered.text
    response = answered.json()["response"]
    assert {k: response[k] for k in stored} == stored
    assert response["response_type"] == kind and response["responded_by"].startswith("dashboard")


@pytest.mark.parametrize(
    ("kind", "answer", "why"),
    [
        ("selection", {"selected": "moon"}, "is not one of its options"),
        ("multi_selection", {"selected_multiple": ["eu", "mars"]}, "must be a list of its options"),
        ("custom", {"text": "no JSON"}, "needs custom_data"),
        ("text", {"approved": True}, "asks for a text"),
    ],
)
def test_an_answer_that_does_not_fit_is_refused_and_the_question_stays_open(
    asked: Path, client_for: Callable[..., TestClient], kind: str, answer: dict[str, Any], why: str
) -> None:
    client = client_for(asked)
    feedback_id = QUESTIONS[kind].feedback_id

    refused = client.post(f"/api/feedback/{feedback_id}", json=answer, headers=_POST)

    assert refused.status_code == 422 and why in refused.json()["detail"]
    assert client.get(f"/api/feedback/{feedback_id}").json()["status"] == "pending"


def test_the_questions_page_has_a_form_that_fits_each_kind(
    asked: Path, live_server: Callable[..., LiveServer], page: Any
) -> None:
    server = live_server(asked)

    page.goto(f"{server.url}/feedback")
    multi = page.locator("#q-q-multi")
    multi.locator("input[value=eu]").check()
    multi.locator("input[value=jp]").check()
    multi.locator("button[type=submit]").click()
    page.wait_for_selector("#q-q-multi", state="detached")
    single = page.locator("#q-q-select")
    single.locator("input[value=prod]").check()
    single.locator("button[type=submit]").click()
    page.wait_for_selector("#q-q-select", state="detached")
    custom = page.locator("#q-q-custom")
    custom.locator("textarea[name=custom_data]").fill("[1, 2]")
    custom.locator("button[type=submit]").click()
    assert "must be a JSON object" in custom.locator(".form-error").inner_text()

    store = LocalStore(asked)
    try:
        backend = store.feedback()
        assert backend.get("q-multi").response.selected_multiple == ["eu", "jp"]  # type: ignore[union-attr]
        assert backend.get("q-select").response.selected == "prod"  # type: ignore[union-attr]
        assert backend.get("q-custom").response is None
    finally:
        store.close()
