"""Where and how fast tasks run (SPEC 19): queues, priorities and limits as the kernel sees them.

A queue backend receives each task's routing in its envelope: the test registers one that
records envelopes and runs them in this process (``run_envelope``), so what a worker fleet
would be told is visible. Limits of tasks that start in this process are counted here;
they are measured by overlapping spans and start times, never by tight timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from graflow import task, workflow
from graflow.core.routing import Rate, Routing
from graflow.exceptions import ConfigError
from graflow.plugins import get_plugin_manager, hookimpl
from graflow.remote.envelope import TaskEnvelope, TaskOutcome
from graflow.remote.runner import run_envelope


class Recording:
    """A placement whose executor records every envelope and runs it here."""

    enforces_limits = False

    def __init__(self) -> None:
        self.envelopes: list[TaskEnvelope] = []

    @property
    def executor(self) -> Recording:
        return self

    def execute(self, envelope: TaskEnvelope) -> TaskOutcome:
        self.envelopes.append(envelope)
        return run_envelope(envelope)

    def close(self) -> None:
        pass


@pytest.fixture
def placement() -> Iterator[Recording]:
    recording = Recording()

    class Plugin:
        @hookimpl
        def graflow_queue_backends(self) -> Mapping[str, Callable[[Mapping[str, Any]], Recording]]:
            return {"recording": lambda config: recording}

    manager = get_plugin_manager()
    manager.register(Plugin(), name="recording-queue")
    try:
        yield recording
    finally:
        manager.unregister("recording-queue")


def routed(placement: Recording) -> dict[str, Routing | None]:
    return {envelope.task_id: envelope.routing for envelope in placement.envelopes}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": "gpu queue"}, "a queue name is 1-64 letters"),
        ({"queue": ""}, "a queue name is 1-64 letters"),
        ({"priority": 10}, "priority is a whole number from 0 \\(last\\) to 9 \\(first\\)"),
        ({"priority": True}, "priority is a whole number"),
        ({"rate_limit": "10 per second"}, "rate_limit takes 'N/s', 'N/m' or 'N/h'"),
        ({"rate_limit": "0/s"}, "rate_limit takes"),
        ({"max_concurrency": 0}, "max_concurrency is a whole number >= 1"),
        ({"concurrency_key": ""}, "concurrency_key is a non-empty string"),
    ],
)
def test_bad_routing_is_refused_where_the_task_is_defined(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        task(**options)(lambda: None)


def test_rates_read_as_written() -> None:
    assert Rate.parse("10/s", "t") == Rate(10, 1.0)
    assert Rate.parse(" 3 / min ", "t") == Rate(3, 60.0)
    assert str(Rate.parse("100/h", "t")) == "100/h"


def test_a_plain_task_has_no_routing_and_its_envelope_none(placement: Recording) -> None:
    with workflow("plain") as wf:

        @task
        def plain() -> int:
            return 1

    assert plain.routing is None
    wf.execute(queue_backend="recording")
    assert routed(placement) == {"plain": None}


def test_a_group_queue_reaches_its_members_and_a_tasks_own_queue_wins(placement: Recording) -> None:
    with workflow("queues") as wf:

        @task
        def render() -> str:
            return "frame"

        @task(queue="cpu")
        def encode() -> str:
            return "video"

        @task
        def publish() -> str:
            return "done"

        (render | encode).with_execution(queue="gpu") >> publish

    wf.execute(queue_backend="recording", priority=7)

    routes = routed(placement)
    assert routes["render"] == Routing(queue="gpu", priority=7)
    assert routes["encode"] == Routing(queue="cpu", priority=7)
    assert routes["publish"] == Routing(priority=7)


def test_a_tasks_own_priority_wins_over_the_runs(placement: Recording) -> None:
    with workflow("priorities") as wf:

        @task(priority=9, rate_limit="100/s", concurrency_key="api")
        def urgent() -> int:
            return 1

    wf.execute(queue_backend="recording", priority=2)

    assert routed(placement)["urgent"] == Routing(
        priority=9, rate_limit=Rate(100, 1.0), concurrency_key="api"
    )


def test_a_runs_priority_is_kept_for_its_resume(tmp_path: Any) -> None:
    with workflow("kept") as wf:

        @task
        def only() -> int:
            return 1

    context = wf.create_context(durable=True, priority=8, config={"state_dir": str(tmp_path)})
    assert context.priority == 8 and context.config["priority"] == 8
    with pytest.raises(ConfigError, match="priority is a whole number"):
        wf.create_context(priority=12)


def test_max_concurrency_bounds_tasks_running_at_once_in_process() -> None:
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    with workflow("capped") as wf:
        members = []
        for n in range(6):

            @task(f"call{n}", concurrency_key="vendor-api", max_concurrency=2)
            def call() -> None:
                started = time.monotonic()
                time.sleep(0.2)
                with lock:
                    spans.append((started, time.monotonic()))

            members.append(call)
        group = members[0]
        for member in members[1:]:
            group = group | member
        group.with_execution(backend="threading", max_workers=6)

    wf.execute()

    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert len(spans) == 6 and most == 2


def test_a_rate_limit_spaces_starts_in_process() -> None:
    starts: list[float] = []
    with workflow("rated") as wf:
        members = []
        for n in range(5):

            @task(f"ping{n}", concurrency_key="pings", rate_limit="2/s")
            def ping() -> None:
                starts.append(time.monotonic())

            members.append(ping)
        group = members[0]
        for member in members[1:]:
            group = group | member
        group.with_execution(backend="threading", max_workers=5)

    wf.execute()

    starts.sort()
    # No second holds more than two starts: the third waits for the first to be a second old.
    assert all(starts[i + 2] - starts[i] >= 0.95 for i in range(len(starts) - 2)), starts
