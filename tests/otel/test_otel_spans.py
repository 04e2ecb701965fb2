"""What a run looks like as a trace: names, parent links, attributes, errors (SPEC section 13)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from graflow import ErrorHandlingPolicy, RetryPolicy
from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ParallelGroupError
from graflow.plugins import get_plugin_manager
from graflow.remote.envelope import worker_name
from tests.otel.otel_support import Spans, parent_id


def test_the_otel_plugin_is_loaded_through_its_entry_point() -> None:
    (info,) = [p for p in get_plugin_manager().plugins() if p.name == "otel"]
    assert info.distribution == "graflow-otel"
    assert info.error is None
    assert info.hooks == [
        "graflow_run_workflow",
        "graflow_run_task",
        "graflow_run_group",
        "graflow_inject_carrier",
        "graflow_extract_carrier",
    ]


def test_a_run_is_one_trace_under_a_root_workflow_span(spans: Spans) -> None:
    with workflow("etl") as wf:

        @task
        def extract() -> list[int]:
            return [1, 2, 3]

        @task
        def load() -> str:
            return "loaded"

        extract >> load
        result, ctx = wf.execute(ret_context=True)

    assert result == "loaded"
    root = spans.one("graflow.workflow etl")
    assert root.parent is None
    assert dict(root.attributes) == {
        "graflow.workflow.name": "etl",
        "graflow.run.id": ctx.session_id,
        "graflow.run.steps": 2,
    }
    extract_span, load_span = spans.one("graflow.task extract"), spans.one("graflow.task load")
    for span in (extract_span, load_span):
        assert span.context.trace_id == root.context.trace_id
        assert parent_id(span) == root.context.span_id
        assert span.status.status_code is StatusCode.UNSET
    assert dict(extract_span.attributes) == {
        "graflow.task.id": "extract",
        "graflow.task.handler": "direct",
        "graflow.task.attempt": 1,
        "graflow.task.cycle": 1,
        "graflow.worker.id": worker_name(),
        "graflow.workflow.name": "etl",
        "graflow.run.id": ctx.session_id,
    }
    assert extract_span.end_time <= load_span.start_time


def test_the_workflow_span_is_a_child_of_the_span_current_at_execute(spans: Spans) -> None:
    with workflow("nested") as wf:
        TaskWrapper("only", lambda: 1)
        with trace.get_tracer("app").start_as_current_span("request") as request:
            wf.execute()
    assert parent_id(spans.one("graflow.workflow nested")) == request.get_span_context().span_id


def test_a_failed_task_span_has_status_error_and_the_exception_recorded(spans: Spans) -> None:
    with workflow("failing") as wf:

        @task
        def explode() -> None:
            raise ValueError("disk full")

        with pytest.raises(ValueError, match="disk full"):
            wf.execute()

    failed = spans.one("graflow.task explode")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ValueError: disk full"
    (event,) = failed.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "disk full"
    root = spans.one("graflow.workflow failing")
    assert root.status.status_code is StatusCode.ERROR
    assert "graflow.run.steps" not in root.attributes


def test_each_retry_is_a_separate_attempt_span(spans: Spans) -> None:
    calls = []

    with workflow("retrying") as wf:

        @task(retry_policy=RetryPolicy(max_retries=2, initial_interval=0.0, jitter=False))
        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionError(f"attempt {len(calls)} lost the connection")
            return "ok"

        assert wf.execute() == "ok"

    attempts = sorted(spans.named("graflow.task flaky"), key=lambda s: s.start_time)
    assert [s.attributes["graflow.task.attempt"] for s in attempts] == [1, 2, 3]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert attempts[1].events[0].attributes["exception.message"] == "attempt 2 lost the connection"
    root = spans.one("graflow.workflow retrying")
    assert {parent_id(s) for s in attempts} == {root.context.span_id}


def test_a_group_span_parents_its_members_and_records_the_policy_verdict(spans: Spans) -> None:
    with workflow("fan_out") as wf:

        @task
        def fetch_a() -> str:
            return "a"

        @task
        def fetch_b() -> str:
            raise TimeoutError("b is down")

        @task
        def merge() -> str:
            return "merged"

        group = (fetch_a | fetch_b).set_group_name("fetch").with_policy(ErrorHandlingPolicy.BEST_EFFORT)
        group >> merge
        assert wf.execute() == "merged"

    root = spans.one("graflow.workflow fan_out")
    group_span = spans.one("graflow.group fetch")
    assert parent_id(group_span) == root.context.span_id
    assert group_span.status.status_code is StatusCode.UNSET
    assert group_span.attributes["graflow.group.policy"] == "best_effort"
    assert group_span.attributes["graflow.group.backend"] == "threading"
    assert group_span.attributes["graflow.group.members"] == ("fetch_a", "fetch_b")
    assert group_span.attributes["graflow.group.verdict"] == "passed"
    assert group_span.attributes["graflow.group.succeeded"] == ("fetch_a",)
    assert group_span.attributes["graflow.group.failed"] == ("fetch_b",)
    for member in ("fetch_a", "fetch_b"):
        assert parent_id(spans.one(f"graflow.task {member}")) == group_span.context.span_id
    assert spans.one("graflow.task fetch_b").status.status_code is StatusCode.ERROR
    assert parent_id(spans.one("graflow.task merge")) == root.context.span_id


def test_a_group_the_policy_fails_has_an_error_span_with_the_failing_verdict(spans: Spans) -> None:
    with workflow("strict") as wf:

        @task
        def good() -> int:
            return 1

        @task
        def bad() -> int:
            raise RuntimeError("bad member")

        (good | bad).set_group_name("pair")
        with pytest.raises(ParallelGroupError):
            wf.execute()

    group_span = spans.one("graflow.group pair")
    assert group_span.status.status_code is StatusCode.ERROR
    assert group_span.attributes["graflow.group.verdict"] == "failed"
    assert group_span.attributes["graflow.group.policy"] == "strict"
    assert group_span.attributes["graflow.group.failed"] == ("bad",)
    assert group_span.attributes["graflow.group.succeeded"] == ("good",)
    assert [e.attributes["exception.type"] for e in group_span.events] == [
        "graflow.exceptions.ParallelGroupError"
    ]
    root = spans.one("graflow.workflow strict")
    assert root.status.status_code is StatusCode.ERROR
    assert "graflow.group.verdict" not in root.attributes


def test_iterations_are_spans_of_the_same_task_with_a_growing_cycle(spans: Spans) -> None:
    with workflow("converge") as wf:

        @task(inject_context=True)
        def optimize(ctx: TaskExecutionContext) -> int:
            if ctx.cycle_count < 3:
                ctx.next_iteration()
            return ctx.cycle_count

        assert wf.execute() == 3

    runs = sorted(spans.named("graflow.task optimize"), key=lambda s: s.start_time)
    assert [s.attributes["graflow.task.cycle"] for s in runs] == [1, 2, 3]
    assert [[e.name for e in s.events] for s in runs] == [
        ["graflow.next_iteration"],
        ["graflow.next_iteration"],
        [],
    ]
    assert runs[0].events[0].attributes["graflow.task.cycle"] == 2


def test_a_dynamic_task_span_is_marked_and_linked_to_the_span_that_added_it(spans: Spans) -> None:
    with workflow("dynamic") as wf:

        @task(inject_context=True)
        def router(ctx: TaskExecutionContext) -> str:
            ctx.next_task(TaskWrapper("handle_large", lambda: "large"), goto=True)
            return "routed"

        @task
        def normal_path() -> str:
            return "normal"

        router >> normal_path
        assert wf.execute() == "large"

    router_span = spans.one("graflow.task router")
    (event,) = router_span.events
    assert event.name == "graflow.next_task"
    assert dict(event.attributes) == {"graflow.task.id": "handle_large", "graflow.goto": True}
    added = spans.one("graflow.task handle_large")
    assert added.attributes["graflow.task.dynamic"] is True
    assert added.attributes["graflow.task.added_by"] == "router"
    assert [link.context.span_id for link in added.links] == [router_span.context.span_id]
    assert "graflow.task.dynamic" not in router_span.attributes
    assert spans.named("graflow.task normal_path") == []
