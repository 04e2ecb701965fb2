"""Export: ``graflow_otel.configure`` and the ``OTEL_*`` variables, over real OTLP/HTTP.

``configure`` installs a process-wide provider, so each scenario runs in a fresh
interpreter and sends its spans to a receiver on 127.0.0.1 started by the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import graflow_otel
from graflow.exceptions import ConfigError
from tests.otel.otel_support import OtlpReceiver, ReceivedSpan, Spans, run_python
from tests.support.ports import free_port

CHAIN_RUN = """
from graflow.core.decorators import task
from graflow.core.workflow import workflow

with workflow("exported") as wf:
    @task
    def extract():
        return [1, 2, 3]

    @task
    def load():
        return "loaded"

    extract >> load
    print(wf.execute())
"""


def _by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {s.name: s for s in spans}


def _has(*names: str) -> Any:
    return lambda got: {s.name for s in got} >= set(names)


def test_configure_exports_the_run_over_otlp_http_with_its_parent_links(receiver: OtlpReceiver) -> None:
    code = (
        "import graflow_otel\n"
        f"graflow_otel.configure(service_name='otel-export', exporter='otlp', endpoint='{receiver.url}')\n"
        + CHAIN_RUN
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "loaded"

    got = _by_name(
        receiver.wait_for(_has("graflow.workflow exported", "graflow.task extract", "graflow.task load"))
    )
    root = got["graflow.workflow exported"]
    assert root.parent_span_id == ""
    assert root.attributes["graflow.workflow.name"] == "exported"
    for name in ("graflow.task extract", "graflow.task load"):
        assert got[name].trace_id == root.trace_id
        assert got[name].parent_span_id == root.span_id
        assert got[name].service_name == "otel-export"
    assert got["graflow.task load"].attributes["graflow.task.id"] == "load"
    assert set(receiver.paths) == {"/v1/traces"}


def test_the_standard_environment_variables_configure_the_export(receiver: OtlpReceiver) -> None:
    proc = run_python(
        "import graflow_otel\ngraflow_otel.configure()\n" + CHAIN_RUN,
        env={"OTEL_SERVICE_NAME": "from-env", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url},
    )
    assert proc.returncode == 0, proc.stderr

    got = _by_name(receiver.wait_for(_has("graflow.workflow exported", "graflow.task load")))
    assert got["graflow.workflow exported"].service_name == "from-env"


def test_member_processes_of_a_configured_driver_export_into_the_same_trace(receiver: OtlpReceiver) -> None:
    code = f"""
import graflow_otel
graflow_otel.configure(service_name="driver", endpoint="{receiver.url}")

from graflow.coordination.coordinator import CoordinationBackend
from graflow.core.decorators import task
from graflow.core.workflow import workflow

with workflow("spread") as wf:
    @task
    def square():
        return 4

    @task
    def cube():
        return 8

    (square | cube).set_group_name("math").with_execution(backend=CoordinationBackend.MULTIPROCESSING, max_workers=2)
    print(wf.execute() == {{"square": 4, "cube": 8}})
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"

    # Two spans per member: the driver's (dispatch) and the member process's (its child).
    received = receiver.wait_for(
        lambda got: (
            len([s for s in got if s.name in ("graflow.task square", "graflow.task cube")]) == 4
            and any(s.name == "graflow.group math" for s in got)
        )
    )
    by_id = {s.span_id: s for s in received}
    group = _by_name(received)["graflow.group math"]
    for name in ("graflow.task square", "graflow.task cube"):
        pair = [s for s in received if s.name == name]
        (remote,) = [s for s in pair if s.parent_span_id in by_id and by_id[s.parent_span_id].name == name]
        driver = by_id[remote.parent_span_id]
        assert driver.parent_span_id == group.span_id
        assert remote.trace_id == driver.trace_id == group.trace_id
        assert remote.attributes["graflow.worker.id"] != driver.attributes["graflow.worker.id"]


def test_the_console_exporter_prints_each_span_as_it_ends() -> None:
    proc = run_python("import graflow_otel\ngraflow_otel.configure(exporter='console')\n" + CHAIN_RUN)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    positions = [out.index(f'"name": "{name}"') for name in ("graflow.task extract", "graflow.task load")]
    assert positions == sorted(positions)
    assert out.index('"name": "graflow.workflow exported"') > positions[-1]  # the root ends last
    assert '"service.name": "graflow"' in out
    assert "loaded" in out.splitlines()  # the run's own output, beside the spans


def test_an_unreachable_collector_neither_fails_the_run_nor_outlasts_the_export_timeout() -> None:
    code = (
        "import graflow_otel\n"
        f"graflow_otel.configure(service_name='offline', endpoint='http://127.0.0.1:{free_port()}', timeout=2)\n"
        + CHAIN_RUN
    )
    # The subprocess's own timeout is the bound: 2 s of export at exit, plus start-up.
    proc = run_python(code, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "loaded"


class _StalledCollector:
    """Accepts exports and holds each response until released: a collector that hangs."""

    def __init__(self) -> None:
        self.export_started = threading.Event()
        self.release = threading.Event()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.export_started.set()
                collector.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stalled_collector() -> Iterator[_StalledCollector]:
    collector = _StalledCollector()
    yield collector
    collector.release.set()
    collector.server.shutdown()
    collector.server.server_close()


def test_a_run_finishes_while_the_collector_holds_an_export(stalled_collector: _StalledCollector) -> None:
    code = f"""
import sys, threading
import graflow_otel
provider = graflow_otel.configure(service_name="stalled", endpoint="{stalled_collector.url}", timeout=30)
from graflow.core.decorators import task
from graflow.core.workflow import workflow

def run(name):
    with workflow(name) as wf:
        @task
        def step():
            return name
        return wf.execute()

print(run("first"), flush=True)
threading.Thread(target=provider.force_flush, daemon=True).start()   # an export that will hang
sys.stdin.readline()                                                  # the test: "it is hanging now"
print(run("second"), flush=True)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "first"
        assert stalled_collector.export_started.wait(30), "the exporter never reached the collector"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "second"
        assert not stalled_collector.release.is_set()  # the export was still hanging meanwhile
    finally:
        stalled_collector.release.set()
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr


def test_an_unknown_exporter_name_fails_at_once_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        graflow_otel.configure(service_name="x", exporter="jaeger")
    message = str(caught.value)
    assert "unknown exporter 'jaeger'" in message
    assert "valid exporters: console, none, otlp" in message
    assert "'otlp'" in message and "4318" in message  # how Jaeger is reached instead


def test_an_unknown_exporter_in_otel_traces_exporter_is_reported_with_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,zipkin")
    with pytest.raises(
        ConfigError, match=r"OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'; valid exporters"
    ):
        graflow_otel.configure()


def test_an_endpoint_without_a_scheme_is_refused_with_an_example() -> None:
    with pytest.raises(
        ConfigError, match=r"OTLP/HTTP URL, such as 'http://localhost:4318', got 'localhost:4318'"
    ):
        graflow_otel.configure(endpoint="localhost:4318")


def test_configure_refuses_to_replace_a_provider_already_installed(spans: Spans) -> None:
    with pytest.raises(ConfigError, match="a tracer provider is already installed in this process"):
        graflow_otel.configure(service_name="again", exporter="console")
