"""Export set up in one line, or by the standard ``OTEL_*`` variables.

The plugin itself only uses the OpenTelemetry API; something has to install the SDK
and an exporter. That is the application's job, and :func:`configure` is the short way
to do it::

    import graflow_otel
    graflow_otel.configure(service_name="etl", exporter="otlp", endpoint="http://localhost:4318")

Arguments left out come from the standard variables (``OTEL_SERVICE_NAME``,
``OTEL_TRACES_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``, ...), which the SDK reads itself.

Processes Graflow starts or feeds (MULTIPROCESSING members, ``graflow-worker``) have no
application code to call ``configure``: there :func:`configure_from_environment` sets the
SDK up from the same variables when the first traced task arrives. ``configure`` writes
its arguments back to those variables so that member processes export like the driver.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Final

from opentelemetry import trace

from graflow.exceptions import ConfigError, PluginNotInstalledError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["EXPORTERS", "configure", "configure_from_environment"]

#: Exporter names ``configure`` and ``OTEL_TRACES_EXPORTER`` accept. ``otlp`` is OTLP over
#: HTTP/protobuf (port 4318: Jaeger, Tempo, an OpenTelemetry Collector); ``console``
#: prints finished spans to stdout; ``none`` records and propagates without exporting.
EXPORTERS: Final = ("console", "none", "otlp")

_TRACES_PATH: Final = "/v1/traces"
_DEFAULT_SERVICE: Final = "graflow"
_SDK_PACKAGE: Final = "graflow-otel[sdk]"


def configure(
    service_name: str | None = None,
    exporter: str | None = None,
    endpoint: str | None = None,
    *,
    timeout: float | None = None,
    logs: bool = True,
) -> TracerProvider:
    """Install the OpenTelemetry SDK as this process's tracer provider, exporting Graflow's spans.

    - ``service_name``: the service in Jaeger (else ``OTEL_SERVICE_NAME``, else ``graflow``);
    - ``exporter``: ``"otlp"`` (default), ``"console"`` or ``"none"``; else ``OTEL_TRACES_EXPORTER``;
    - ``endpoint``: the collector's OTLP/HTTP URL, e.g. ``http://localhost:4318`` (``/v1/traces``
      is added); else the ``OTEL_EXPORTER_OTLP_*ENDPOINT`` variables, else ``localhost:4318``;
    - ``timeout``: seconds one export may take, retries included (the exporter's default: 10);
    - ``logs``: also add :func:`~graflow_otel.logs.add_trace_ids` to structlog's processors.

    Spans are exported in batches from a background thread, so a slow or unreachable
    collector never slows a task; at exit, pending spans get at most ``timeout`` to go out.
    Call it once, at start-up. Returns the provider (``force_flush()``, ``shutdown()``).

    Raises :class:`~graflow.exceptions.ConfigError` for an unknown exporter name or a
    second call, and :class:`~graflow.exceptions.PluginNotInstalledError` without the SDK.
    """
    if exporter is not None:
        names = _exporter_names(exporter, "configure(exporter=...)")
    else:
        names = _exporter_names(os.environ.get("OTEL_TRACES_EXPORTER", "otlp"), "OTEL_TRACES_EXPORTER")
    url = _traces_url(endpoint) if endpoint is not None else None
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise PluginNotInstalledError("graflow_otel.configure()", _SDK_PACKAGE, str(exc)) from None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        raise ConfigError(
            "a tracer provider is already installed in this process (by an earlier configure() or by "
            "the application); configure tracing once, at start-up. To export to one more place, add a "
            "span processor to the existing provider instead."
        )
    provider = _install(service_name, names, url, timeout)
    _share_with_child_processes(service_name, names, url, timeout)
    if logs:
        from graflow_otel.logs import install_log_processor

        install_log_processor()
    return provider


class _EnvironmentSetup:
    """Whether :func:`configure_from_environment` already ran in this process, and what it did."""

    __slots__ = ("done", "installed", "lock")

    def __init__(self) -> None:
        self.done = False
        self.installed = False
        self.lock = threading.Lock()


_environment = _EnvironmentSetup()


def configure_from_environment() -> bool:
    """Set the SDK up from the ``OTEL_*`` variables once, if they ask for export; ``True`` if it did.

    For the processes Graflow runs tasks in: called when a traced task arrives. It does
    nothing when a provider is already installed, when ``OTEL_SDK_DISABLED`` is true, when
    neither ``OTEL_TRACES_EXPORTER`` nor an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` is set, or when
    the SDK is not installed. It never raises: a task must not fail for its telemetry.
    """
    state = _environment
    if state.done:
        return state.installed
    with state.lock:
        if not state.done:
            state.installed = _setup_from_environment()
            state.done = True
    return state.installed


def _setup_from_environment() -> bool:
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return False
    raw = env.get("OTEL_TRACES_EXPORTER")
    if raw is None:
        if not (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
            return False
        raw = "otlp"
    try:
        names = _exporter_names(raw, "OTEL_TRACES_EXPORTER")
    except ConfigError as exc:
        _warn("graflow_otel_env_ignored", error=str(exc))
        return False
    if names == ["none"]:
        return False
    try:
        _install(None, names, None, None)
    except ImportError as exc:
        _warn("graflow_otel_sdk_missing", error=f"{exc}; pip install '{_SDK_PACKAGE}'")
        return False
    return True


def _install(
    service_name: str | None, names: list[str], url: str | None, timeout: float | None
) -> TracerProvider:
    """Build the provider, its span processors and exporters; make it global; flush it at exit."""
    import multiprocessing.util

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    resource = Resource.create({SERVICE_NAME: service_name} if service_name else {})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: _DEFAULT_SERVICE}))
    # Shut down by the multiprocessing finalizer below rather than by the SDK's atexit hook:
    # that one never runs in a member process, which ends with os._exit().
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=timeout)))
        elif name == "console":
            # Printed as each span ends: the console is for watching a run as it happens.
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    # Runs at interpreter exit (multiprocessing registers it with atexit) and when a
    # multiprocessing child process finishes, so batched spans are not lost in either.
    multiprocessing.util.Finalize(None, provider.shutdown, exitpriority=10)
    return provider


def _share_with_child_processes(
    service_name: str | None, names: list[str], url: str | None, timeout: float | None
) -> None:
    """Write the settings to the standard variables, which member processes inherit."""
    env = os.environ
    env["OTEL_TRACES_EXPORTER"] = ",".join(names)
    if service_name:
        env["OTEL_SERVICE_NAME"] = service_name
    if url is not None:
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = url
    if timeout is not None:
        env["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] = str(timeout)


def _exporter_names(value: object, source: str) -> list[str]:
    """``"otlp"`` or ``"otlp,console"`` as a list of known names, or a ConfigError naming the valid ones."""
    valid = ", ".join(EXPORTERS)
    if not isinstance(value, str):
        raise ConfigError(f"{source}: the exporter must be a name ({valid}), got {type(value).__name__}")
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown or not names:
        shown = unknown[0] if unknown else value
        raise ConfigError(
            f"{source}: unknown exporter {shown!r}; valid exporters: {valid}. Jaeger, Tempo and "
            "OpenTelemetry Collectors are all reached with 'otlp' (OTLP over HTTP, port 4318)."
        )
    if "none" in names and len(names) > 1:
        raise ConfigError(f"{source}: 'none' cannot be combined with other exporters, got {value!r}")
    return names


def _traces_url(endpoint: object) -> str:
    """The full traces URL for a collector's base URL (``http://host:4318`` -> ``.../v1/traces``)."""
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            f"endpoint must be the collector's OTLP/HTTP URL, such as 'http://localhost:4318', got {endpoint!r}"
        )
    url = endpoint.rstrip("/")
    return url if url.endswith(_TRACES_PATH) else url + _TRACES_PATH


def _warn(event: str, **fields: str) -> None:
    import structlog

    structlog.get_logger("graflow_otel").warning(event, **fields)
