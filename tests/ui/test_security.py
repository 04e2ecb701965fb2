"""Safe by default (SPEC 20): loopback names, the token on every route, POSTs only from the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graflow_ui.dashboard import Dashboard
from graflow_ui.security import COOKIE
from tests.ui.conftest import run_ids

ClientFor = Callable[..., TestClient]
TOKEN = "s3cret-token"


@pytest.fixture
def state(make_runs: Callable[..., Path]) -> Path:
    return make_runs("review")


def test_without_a_token_the_api_and_pages_answer_on_loopback(state: Path, client_for: ClientFor) -> None:
    client = client_for(state)

    assert client.get("/api/runs").status_code == 200
    assert client.get("/runs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_a_host_name_that_is_not_loopback_is_refused_against_dns_rebinding(
    state: Path, client_for: ClientFor
) -> None:
    client = client_for(state)

    answer = client.get("/api/runs", headers={"Host": "attacker.example:8265"})

    assert answer.status_code == 400 and "loopback names only" in answer.json()["detail"]
    assert client.get("/api/runs", headers={"Host": "localhost:8265"}).status_code == 200
    assert client.get("/api/runs", headers={"Host": "[::1]:8265"}).status_code == 200


def test_with_a_token_every_route_needs_it_as_a_bearer(state: Path, client_for: ClientFor) -> None:
    client = client_for(state, token=TOKEN)
    run_id = run_ids(state)["review"]

    for path in ("/api/runs", f"/api/runs/{run_id}", "/api/feedback", "/openapi.json", "/api/events/runs"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_pages_send_a_person_to_the_login_form_and_its_cookie_lets_them_in(
    state: Path, client_for: ClientFor
) -> None:
    client = client_for(state, token=TOKEN)

    sent = client.get("/runs", follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, "/login?next=/runs")
    assert client.get("/login").status_code == 200 and client.get("/static/app.css").status_code == 200

    wrong = client.post("/login", data={"token": "guess", "next": "/runs"}, follow_redirects=False)
    assert wrong.status_code == 401 and "That token is not this dashboard" in wrong.text

    logged_in = client.post("/login", data={"token": TOKEN, "next": "/feedback"}, follow_redirects=False)
    assert (logged_in.status_code, logged_in.headers["location"]) == (303, "/feedback")
    cookie = logged_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie  # a digest of it, not the token
    assert client.get("/runs").status_code == 200
    assert client.get("/api/runs").status_code == 200


def test_the_login_form_never_sends_a_person_to_another_site(state: Path, client_for: ClientFor) -> None:
    client = client_for(state, token=TOKEN)

    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = client.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/runs", target


def test_a_post_without_the_dashboards_header_or_a_bearer_is_refused(
    state: Path, client_for: ClientFor
) -> None:
    client = client_for(state)
    feedback_id = client.get("/api/feedback").json()[0]["feedback_id"]
    url = f"/api/feedback/{feedback_id}"

    bare = client.post(url, json={"approved": True})
    cross_site = client.post(
        url, json={"approved": True}, headers={"X-Graflow-Request": "1", "Origin": "https://evil.example"}
    )
    fetch_site = client.post(
        url, json={"approved": True}, headers={"X-Graflow-Request": "1", "Sec-Fetch-Site": "cross-site"}
    )

    assert bare.status_code == 403 and "X-Graflow-Request" in bare.json()["detail"]
    assert cross_site.status_code == 403 and "cross-site" in cross_site.json()["detail"]
    assert fetch_site.status_code == 403
    assert client.get("/api/feedback").json() != []  # nothing was answered
    same_site = client.post(
        url, json={"approved": True}, headers={"X-Graflow-Request": "1", "Origin": "http://127.0.0.1:8265"}
    )
    assert same_site.status_code == 200


def test_a_bearer_is_enough_for_a_script_to_post(state: Path, client_for: ClientFor) -> None:
    client = client_for(state, token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    feedback_id = client.get("/api/feedback", headers=headers).json()[0]["feedback_id"]

    answer = client.post(
        f"/api/feedback/{feedback_id}", json={"approved": False, "reason": "not today"}, headers=headers
    )

    assert answer.status_code == 200 and answer.json()["response"]["approved"] is False


def test_the_login_cookie_alone_does_not_make_a_post(state: Path, client_for: ClientFor) -> None:
    client = client_for(state, token=TOKEN)
    client.post("/login", data={"token": TOKEN})
    assert client.cookies.get(COOKIE)

    refused = client.post(f"/api/runs/{run_ids(state)['review']}/resume")

    assert refused.status_code == 403


def test_a_failure_inside_the_dashboard_answers_500_without_a_traceback(
    state: Path, client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: Dashboard, *args: object) -> None:
        raise RuntimeError("secret internals at /srv/app.py line 12")

    monkeypatch.setattr(Dashboard, "runs", explode)

    answer = client_for(state).get("/api/runs")

    assert answer.status_code == 500
    assert answer.json() == {"detail": "the dashboard failed to answer this request; its log says why"}
    assert "Traceback" not in answer.text and "secret internals" not in answer.text
