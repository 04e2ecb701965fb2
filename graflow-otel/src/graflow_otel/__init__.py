"""graflow-otel: one OpenTelemetry trace per Graflow run, across processes.

Installed, it traces every run through the kernel's lifecycle hooks (the entry point
``otel`` loads :mod:`graflow_otel.plugin`); user code does not change. Like any
OpenTelemetry instrumentation it records through the API only, so nothing is exported,
and next to nothing is spent, until the SDK is configured: by the application, by the
standard ``OTEL_*`` variables, or in one line::

    import graflow_otel
    graflow_otel.configure(service_name="etl", exporter="otlp", endpoint="http://localhost:4318")

Log lines get ``trace_id`` and ``span_id`` through :func:`add_trace_ids` (a structlog
processor ``configure`` installs).
"""

from __future__ import annotations

from graflow_otel._version import VERSION as __version__
from graflow_otel.configure import EXPORTERS, configure
from graflow_otel.logs import add_trace_ids, install_log_processor

__all__ = ["EXPORTERS", "__version__", "add_trace_ids", "configure", "install_log_processor"]
