"""The tracer to use right now, or ``None``: the one check that keeps an untraced run free.

OpenTelemetry's API hands out no-op tracers until an application installs an SDK
``TracerProvider``. Spans from a no-op tracer still cost a few microseconds each, so the
plugin asks this module first and, with no SDK, does nothing at all (and tells the kernel
so, through ``graflow_active``, that it need not call the wrappers).
"""

from __future__ import annotations

from typing import Final

from opentelemetry import trace

from graflow_otel._version import VERSION

__all__ = ["SCOPE_NAME", "current_tracer", "tracing_active"]

#: The instrumentation scope of every span Graflow makes.
SCOPE_NAME: Final = "graflow_otel"

_IDLE_PROVIDERS: Final = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


class _LastProvider:
    """The provider seen last and its tracer, swapped as one tuple so threads never mix them.

    A process sets its provider once, so after the first call this is an identity check.
    """

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple[object, trace.Tracer | None] = (None, None)


_last = _LastProvider()


def current_tracer() -> trace.Tracer | None:
    """Graflow's tracer from the global provider, or ``None`` when no SDK is configured."""
    provider = trace.get_tracer_provider()
    seen, tracer = _last.entry
    if provider is seen:
        return tracer
    tracer = None
    if not isinstance(provider, _IDLE_PROVIDERS):
        candidate = provider.get_tracer(SCOPE_NAME, VERSION)
        # An SDK disabled by OTEL_SDK_DISABLED hands out no-op tracers.
        if not isinstance(candidate, trace.NoOpTracer):
            tracer = candidate
    _last.entry = (provider, tracer)
    return tracer


def tracing_active() -> bool:
    """Whether spans would be recorded: the ``graflow_active`` predicate of the wrappers."""
    return current_tracer() is not None
