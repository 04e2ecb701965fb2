"""Live pages (SPEC 20): Server-Sent Events fire when what a page shows changes in the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.ui.conftest import LiveServer, run_ids


def _events(stream: httpx.Response) -> Iterator[tuple[str, Any]]:
    """``(event, data)`` of each event on an open stream, as they come."""
    event = None
    for line in stream.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event is not None:
            yield event, json.loads(line.removeprefix("data: "))
            event = None


def test_the_runs_stream_sends_the_page_of_runs_at_once(
    make_runs: Callable[..., Path], live_server: Callable[..., LiveServer]
) -> None:
    state = make_runs("broken")
    server = live_server(state)

    with httpx.stream("GET", f"{server.url}/api/events/runs?limit=5", timeout=20) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        event, page = next(_events(stream))

    assert event == "runs"
    assert page["total"] == 1 and page["runs"][0]["workflow"] == "broken"


def test_a_runs_pulse_comes_again_when_its_question_is_answered(
    make_runs: Callable[..., Path], live_server: Callable[..., LiveServer]
) -> None:
    state = make_runs("review")
    server = live_server(state)
    run_id = run_ids(state)["review"]

    with httpx.Client(base_url=server.url, timeout=20) as client:
        with client.stream("GET", f"/api/events/runs/{run_id}") as stream:
            events = _events(stream)
            event, first = next(events)
            assert event == "pulse" and first["run"]["status"] == "suspended"
            (feedback_id,) = first["pending_feedback"]
            answered = client.post(
                f"/api/feedback/{feedback_id}", json={"approved": True}, headers={"X-Graflow-Request": "1"}
            )
            assert answered.status_code == 200
            event, second = next(events)

    assert event == "pulse" and second["pending_feedback"] == []


def test_the_stream_of_an_unknown_run_is_a_404_not_an_empty_stream(
    make_runs: Callable[..., Path], live_server: Callable[..., LiveServer]
) -> None:
    server = live_server(make_runs("broken"))

    answer = httpx.get(f"{server.url}/api/events/runs/unknown", timeout=20)

    assert answer.status_code == 404
