"""End to end with real ``graflow-worker`` processes: worker spans are children of the driver's.

Runs when graflow-redis and graflow-worker are installed next to graflow-otel and a Redis
server answers on ``GRAFLOW_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace

from tests.otel.otel_support import OtlpReceiver, Spans, parent_id
from tests.support.services import missing, ping_redis

pytest.importorskip("graflow_redis", reason="graflow-redis is not installed in this environment")
pytest.importorskip("graflow_worker", reason="graflow-worker is not installed in this environment")
pytest.importorskip("redis")

REDIS_URL = os.environ.get("GRAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    if not ping_redis(REDIS_URL):
        missing(f"no Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    return f"graflow-otel-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worker(redis_url: str, key_prefix: str, receiver: OtlpReceiver) -> Iterator[subprocess.Popen[str]]:
    """One ``graflow-worker`` process exporting its spans to the test's receiver."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url + "/v1/traces",
        OTEL_SERVICE_NAME="graflow-worker",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graflow_worker",
            "--worker-id",
            "otel-worker",
            "--redis-url",
            redis_url,
            "--key-prefix",
            key_prefix,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    process.terminate()
    process.wait(timeout=60)


def test_worker_spans_are_children_of_the_driver_spans(
    spans: Spans,
    receiver: OtlpReceiver,
    worker: subprocess.Popen[str],
    redis_url: str,
    key_prefix: str,
) -> None:
    from graflow.core.context import ExecutionContext
    from graflow.core.decorators import task
    from graflow.core.engine import WorkflowEngine
    from graflow.core.workflow import workflow

    with workflow("on_the_fleet") as wf:

        @task
        def produce() -> int:
            return 20

        @task(inject_context=True)
        def consume(ctx) -> int:  # type: ignore[no-untyped-def]
            return ctx.get_result("produce") + 1

        produce >> consume
        context = ExecutionContext.create(
            wf.graph,
            queue_backend="redis",
            channel_backend="redis",
            config={"redis_url": redis_url, "key_prefix": key_prefix},
            workflow_name="on_the_fleet",
        )
        assert WorkflowEngine().execute(context) == 21

    root = spans.one("graflow.workflow on_the_fleet")
    received = receiver.wait_for(
        lambda got: {s.name for s in got} >= {"graflow.task produce", "graflow.task consume"}
    )
    for name in ("graflow.task produce", "graflow.task consume"):
        driver_span = spans.one(name)
        assert parent_id(driver_span) == root.context.span_id
        (remote,) = [s for s in received if s.name == name]
        assert remote.trace_id == trace.format_trace_id(root.context.trace_id)
        assert remote.parent_span_id == trace.format_span_id(driver_span.context.span_id)
        assert remote.service_name == "graflow-worker"
