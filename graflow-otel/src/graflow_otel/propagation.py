"""The trace context in and out of a task's carrier (W3C Trace Context).

The kernel puts a ``carrier`` (``str -> str``) into every envelope it sends to another
process: a MULTIPROCESSING member, a Redis worker, a Docker container. Writing the
current span there and reading it back on the other side makes the remote task's span a
child of the driver's, so a distributed run is one trace.

The global OpenTelemetry propagator is used (``OTEL_PROPAGATORS``, by default W3C
``tracecontext`` and ``baggage``); the kernel's carrier key
:data:`graflow.plugins.TRACEPARENT` is always written as well, since placements that
cannot run the propagator (the Docker handler) pass that one key on by themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from graflow.plugins import TRACEPARENT

__all__ = ["TRACEPARENT", "extract", "inject"]

_W3C: Final = TraceContextTextMapPropagator()


def inject(carrier: MutableMapping[str, str]) -> None:
    """Write the current trace context into ``carrier``; nothing when there is no span."""
    propagate.inject(carrier)
    if TRACEPARENT not in carrier:
        _W3C.inject(carrier)


def extract(carrier: Mapping[str, str]) -> None:
    """Make the carrier's trace context current in this :mod:`contextvars` context.

    Nothing is detached: the kernel calls this inside a fresh context that ends with
    the task, so the context lives exactly as long as the attempt.
    """
    ctx = propagate.extract(carrier)
    if TRACEPARENT in carrier and not trace.get_current_span(ctx).get_span_context().is_valid:
        ctx = _W3C.extract(carrier, context=ctx)
    otel_context.attach(ctx)
