"""Notification (SPEC 17): ``notification={"webhook_url": URL}`` POSTs the request as JSON.

The receiver is a real HTTP server on 127.0.0.1, started by the test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from graflow import task, workflow
from graflow.core.engine import WorkflowEngine
from graflow.hitl import FeedbackResponse
from tests.core.hitl.person import answer_when_asked
from tests.support.ports import free_port
from tests.support.waiting import wait_until


class Receiver:
    """Records every POST; answers the first ``failures`` of them with HTTP 500."""

    def __init__(self, failures: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append({"type": self.headers["Content-Type"], "json": json.loads(body)})
                failing = len(receiver.posts) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


def approval_flow(url: str) -> Any:
    with workflow("notified") as wf:

        @task(inject_context=True)
        def approve(ctx):
            notification = {"webhook_url": url}
            return ctx.request_approval(
                "Ship it?", timeout=20.0, notification=notification, metadata={"v": 2}
            ).approved

    return wf


def test_the_request_is_posted_as_json_to_the_webhook_when_it_is_made(receiver: Receiver) -> None:
    context = approval_flow(receiver.url).create_context()
    answer_when_asked(context, lambda r: FeedbackResponse(approved=True))

    assert WorkflowEngine().execute(context) is True

    post = wait_until(lambda: next(iter(receiver.posts), None), timeout=10, what="the webhook's POST")
    assert post["type"] == "application/json"
    sent = post["json"]
    assert sent["run_id"] == context.session_id and sent["task_id"] == "approve"
    assert sent["feedback_type"] == "approval" and sent["prompt"] == "Ship it?"
    assert sent["metadata"] == {"v": 2} and sent["status"] == "pending" and sent["feedback_id"]


def test_a_webhook_that_fails_is_retried() -> None:
    flaky = Receiver(failures=1)
    try:
        context = approval_flow(flaky.url).create_context()
        answer_when_asked(context, lambda r: FeedbackResponse(approved=True))
        WorkflowEngine().execute(context)

        wait_until(lambda: len(flaky.posts) >= 2, timeout=10, what="the retried POST")
        assert flaky.posts[0]["json"] == flaky.posts[1]["json"]
    finally:
        flaky.server.shutdown()


def test_a_webhook_that_is_down_never_fails_the_task_and_is_logged() -> None:
    down = f"http://127.0.0.1:{free_port()}/nobody-listens"
    context = approval_flow(down).create_context()
    answer_when_asked(context, lambda r: FeedbackResponse(approved=True))

    with capture_logs() as logs:
        assert WorkflowEngine().execute(context) is True
        failed = wait_until(
            lambda: next((e for e in logs if e["event"] == "feedback_webhook_failed"), None),
            timeout=10,
            what="the failed POST's warning",
        )
    assert failed["url"] == down and failed["attempt"] == 1 and "Connection refused" in failed["error"]
