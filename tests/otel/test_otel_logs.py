"""Logs joined to traces: lines written inside a task carry the task span's ids."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry import trace

from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow_otel import add_trace_ids, install_log_processor
from tests.otel.otel_support import Spans, run_python


@pytest.fixture
def captured() -> Iterator[structlog.testing.LogCapture]:
    capture = structlog.testing.LogCapture()
    structlog.configure(processors=[add_trace_ids, capture])
    yield capture
    structlog.reset_defaults()


def test_log_lines_inside_a_task_carry_the_task_spans_trace_and_span_id(
    spans: Spans, captured: structlog.testing.LogCapture
) -> None:
    with workflow("logged") as wf:

        @task
        def step() -> None:
            structlog.get_logger().info("inside the task")

        wf.execute()
    structlog.get_logger().info("after the run")

    step_span = spans.one("graflow.task step")
    inside, after = captured.entries
    assert inside["event"] == "inside the task"
    assert inside["trace_id"] == trace.format_trace_id(step_span.context.trace_id)
    assert inside["span_id"] == trace.format_span_id(step_span.context.span_id)
    assert after == {"event": "after the run", "log_level": "info"}


def test_install_puts_the_processor_before_the_renderer_once() -> None:
    renderer = structlog.processors.JSONRenderer()
    stamper = structlog.processors.TimeStamper(fmt="iso")
    structlog.configure(processors=[stamper, renderer])
    try:
        assert install_log_processor() is True
        assert install_log_processor() is False
        assert structlog.get_config()["processors"] == [stamper, add_trace_ids, renderer]
    finally:
        structlog.reset_defaults()


def test_configure_adds_trace_ids_to_the_applications_structlog_output() -> None:
    code = """
import structlog
structlog.configure(processors=[structlog.processors.JSONRenderer()])

import graflow_otel
graflow_otel.configure(service_name="logs", exporter="none")

from opentelemetry import trace
from graflow.core.decorators import task
from graflow.core.workflow import workflow

with workflow("logged") as wf:
    @task
    def step():
        ctx = trace.get_current_span().get_span_context()
        structlog.get_logger().info("working", ids=[trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)])
    wf.execute()
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    logged = json.loads(line)
    assert logged["event"] == "working"
    assert [logged["trace_id"], logged["span_id"]] == logged["ids"]
    assert len(logged["trace_id"]) == 32 and len(logged["span_id"]) == 16
