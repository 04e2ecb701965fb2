"""One trace across processes: the trace context rides in the carrier of every envelope."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import trace

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.plugins import get_plugin_manager
from graflow.remote.envelope import TaskEnvelope, worker_name
from graflow.remote.runner import run_envelope
from tests.otel.otel_support import OtlpReceiver, Spans, parent_id, run_python


def _hex_span(span_id: int) -> str:
    return trace.format_span_id(span_id)


def _hex_trace(trace_id: int) -> str:
    return trace.format_trace_id(trace_id)


def test_the_carrier_holds_the_w3c_traceparent_of_the_current_span(spans: Spans) -> None:
    carrier: dict[str, str] = {}
    with trace.get_tracer("test").start_as_current_span("driver") as span:
        get_plugin_manager().hook.graflow_inject_carrier(carrier=carrier)
        ctx = span.get_span_context()
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", _hex_trace(ctx.trace_id), _hex_span(ctx.span_id))
    assert int(flags, 16) & 0x01  # sampled: the other side records its spans too


def test_nothing_is_written_to_the_carrier_outside_any_span(spans: Spans) -> None:
    carrier: dict[str, str] = {}
    get_plugin_manager().hook.graflow_inject_carrier(carrier=carrier)
    assert carrier == {}


def test_a_task_run_from_an_envelope_continues_the_driver_trace(spans: Spans) -> None:
    # What a Redis worker does with a delivery: run_envelope() on one of its threads.
    def work() -> int:
        return 7

    remote_task = TaskWrapper("remote_work", work, register=False)
    with trace.get_tracer("test").start_as_current_span("driver") as driver:
        carrier: dict[str, str] = {}
        get_plugin_manager().hook.graflow_inject_carrier(carrier=carrier)
    envelope = TaskEnvelope(remote_task, "run-1", "distributed", attempt=2, carrier=carrier)
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(run_envelope(envelope)))
    worker.start()
    worker.join()

    assert outcomes[0].success and outcomes[0].result == 7
    remote = spans.one("graflow.task remote_work")
    assert remote.context.trace_id == driver.get_span_context().trace_id
    assert parent_id(remote) == driver.get_span_context().span_id
    assert remote.kind == trace.SpanKind.CONSUMER
    assert remote.attributes["graflow.task.attempt"] == 2
    assert remote.attributes["graflow.run.id"] == "run-1"
    assert remote.attributes["graflow.worker.id"] == worker_name()


def test_multiprocessing_members_spans_are_children_of_the_driver_spans(
    spans: Spans, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Member processes are spawned fresh: the standard variables tell them where to export.
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url + "/v1/traces")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "graflow-members")

    with workflow("across_processes") as wf:

        @task
        def prepare() -> int:
            return 1

        @task
        def left() -> str:
            return "left"

        @task
        def right() -> str:
            return "right"

        group = (left | right).set_group_name("members")
        group.with_execution(backend=CoordinationBackend.MULTIPROCESSING, max_workers=2)
        prepare >> group
        result, ctx = wf.execute(ret_context=True)

    assert ctx.get_result("members") == {"left": "left", "right": "right"}
    root = spans.one("graflow.workflow across_processes")
    group_span = spans.one("graflow.group members")
    driver_left = spans.one("graflow.task left")
    driver_right = spans.one("graflow.task right")
    assert parent_id(group_span) == root.context.span_id
    assert parent_id(driver_left) == group_span.context.span_id
    assert parent_id(driver_right) == group_span.context.span_id

    # The pool is shut down when the run ends, and member processes flush on exit.
    received = receiver.wait_for(
        lambda got: {s.name for s in got} >= {"graflow.task left", "graflow.task right"}
    )
    trace_id = _hex_trace(root.context.trace_id)
    for name, driver_span in (("graflow.task left", driver_left), ("graflow.task right", driver_right)):
        (member,) = [s for s in received if s.name == name]
        assert member.trace_id == trace_id
        assert member.parent_span_id == _hex_span(driver_span.context.span_id)
        assert member.service_name == "graflow-members"
        assert member.attributes["graflow.run.id"] == ctx.session_id
        assert member.attributes["graflow.worker.id"] != worker_name()  # it ran in another process


def test_without_an_sdk_the_carrier_stays_empty_and_the_kernel_skips_the_wrappers() -> None:
    code = """
from graflow.plugins import get_plugin_manager
manager = get_plugin_manager()
carrier = {}
manager.hook.graflow_inject_carrier(carrier=carrier)
loaded = "otel" in [p.name for p in manager.plugins() if not p.error]
print(loaded, carrier, [manager.wraps(h) for h in ("graflow_run_workflow", "graflow_run_task", "graflow_run_group")])
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True {} [False, False, False]"
