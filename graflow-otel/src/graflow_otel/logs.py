"""Logs joined to traces: a structlog processor that adds ``trace_id`` and ``span_id``.

Inside a task the current span is the task's, so every line a task logs can be found
from its span in Jaeger and the other way round. Add the processor to your own
structlog configuration anywhere before the renderer::

    import structlog
    from graflow_otel import add_trace_ids

    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_trace_ids,
        structlog.processors.JSONRenderer(),
    ])

:func:`graflow_otel.configure` does it for you (:func:`install_log_processor`) on the
structlog configuration in force when it is called. The ids are the hex forms Jaeger and
the W3C ``traceparent`` use (32 and 16 characters). Outside any span nothing is added.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from opentelemetry import trace

__all__ = ["add_trace_ids", "install_log_processor"]


def add_trace_ids(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the current span, if there is one."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(span_context.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(span_context.span_id))
    return event_dict


def install_log_processor() -> bool:
    """Insert :func:`add_trace_ids` into structlog's processors, just before the last one.

    The last processor is the renderer (or ``ProcessorFormatter.wrap_for_formatter``),
    so the ids are part of every rendered line. Returns ``False`` if it was already
    there. Loggers structlog has already cached keep their old processors: call this
    before logging starts (``configure`` does, when it runs at start-up).
    """
    import structlog

    processors = list(structlog.get_config()["processors"])
    if add_trace_ids in processors:
        return False
    processors.insert(max(len(processors) - 1, 0), add_trace_ids)
    structlog.configure(processors=processors)
    return True
