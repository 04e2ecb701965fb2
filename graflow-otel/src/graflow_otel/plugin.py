"""Graflow's lifecycle and carrier hooks, implemented with the OpenTelemetry API.

Loaded by Graflow's plugin manager through the entry point ``otel``: installing
graflow-otel is all it takes to trace every run (see :mod:`graflow_otel.spans` for what a
trace looks like). With no SDK configured the three wrappers report themselves idle
(``graflow_active``), so the kernel does not call them and a run costs what it did
without the plugin; they also return at once if another plugin's wrapper is active.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from graflow.core.task import current_task_context
from graflow.plugins import hookimpl
from graflow.remote.envelope import worker_name
from graflow_otel import propagation, spans
from graflow_otel._tracer import current_tracer, tracing_active
from graflow_otel.configure import configure_from_environment

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext, TaskExecutionContext
    from graflow.core.group import ParallelGroup
    from graflow.core.task import Executable

S = TypeVar("S")


class _RunTrace:
    """What one traced run remembers across its tasks: where dynamic tasks came from."""

    __slots__ = ("origins",)

    def __init__(self) -> None:
        #: Id of a task added by ``next_task`` -> (the adding task's id, its span's context).
        self.origins: dict[str, spans.Origin] = {}


#: The traced run this code runs in (member threads get a copy of the driver's context).
_run: Final[ContextVar[_RunTrace | None]] = ContextVar("graflow_otel_run", default=None)
#: Set when this attempt's trace context arrived in a carrier: the task runs in a process
#: other than the driver's.
_received: Final[ContextVar[bool]] = ContextVar("graflow_otel_received", default=False)


class _Worker:
    """``host:pid`` of this process, computed again only after a fork."""

    __slots__ = ("name", "pid")

    def __init__(self) -> None:
        self.pid = -1
        self.name = ""

    def get(self) -> str:
        pid = os.getpid()
        if pid != self.pid:
            self.name, self.pid = worker_name(), pid
        return self.name


_worker = _Worker()


# --- lifecycle wrappers --------------------------------------------------------------------


@hookimpl(wrapper=True)
def graflow_run_workflow(context: ExecutionContext) -> Generator[None, Any, Any]:
    tracer = current_tracer()
    if tracer is None:
        return (yield)
    span = spans.start_workflow(tracer, context)
    token = _run.set(_RunTrace())
    try:
        return (yield from _inside(span, spans.failed, spans.workflow_succeeded, context))
    finally:
        _run.reset(token)


@hookimpl(wrapper=True)
def graflow_run_task(task: Executable, context: ExecutionContext, attempt: int) -> Generator[None, Any, Any]:
    tracer = current_tracer()
    if tracer is None:
        return (yield)
    tctx = current_task_context()
    if tctx is not None and tctx.task is not task:
        tctx = None
    run = _run.get()
    span = spans.start_task(
        tracer,
        task,
        context,
        attempt,
        tctx,
        _worker.get(),
        origin=run.origins.get(task.task_id) if run is not None else None,
        received=_received.get(),
    )
    # The body of _inside(), spelled out: this runs once per task attempt.
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        result = yield
    except GeneratorExit:
        raise
    except BaseException as exc:
        _quietly(spans.failed, span, exc)
        raise
    else:
        if tctx is not None and tctx.has_requests:
            _quietly(_record_requests, span, tctx, run)
        return result
    finally:
        otel_context.detach(token)
        span.end()


@hookimpl(wrapper=True)
def graflow_run_group(group: ParallelGroup, context: ExecutionContext) -> Generator[None, Any, Any]:
    tracer = current_tracer()
    if tracer is None:
        return (yield)
    span = spans.start_group(tracer, group, context)
    return (yield from _inside(span, spans.group_failed, spans.group_succeeded, group))


# The kernel asks these once per run; while no SDK is configured it skips the wrappers.
graflow_run_workflow.graflow_active = tracing_active  # type: ignore[attr-defined]
graflow_run_task.graflow_active = tracing_active  # type: ignore[attr-defined]
graflow_run_group.graflow_active = tracing_active  # type: ignore[attr-defined]


def _inside(
    span: Span,
    on_failure: Callable[[Span, BaseException], None],
    on_success: Callable[[Span, S, Any], object],
    subject: S,
) -> Generator[None, Any, Any]:
    """Make ``span`` current around the wrapped work, record how it ended, end it."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        result = yield
    except GeneratorExit:  # pluggy closed the wrapper without running the work
        raise
    except BaseException as exc:
        _quietly(on_failure, span, exc)
        raise
    else:
        _quietly(on_success, span, subject, result)
        return result
    finally:
        otel_context.detach(token)
        span.end()


def _record_requests(span: Span, tctx: TaskExecutionContext, run: _RunTrace | None) -> None:
    """Events for what the task asked for; remember the span that added each dynamic task."""
    added = spans.task_succeeded(span, tctx)
    if added and run is not None:
        origin = (tctx.task_id, span.get_span_context())
        for task_id in added:
            run.origins[task_id] = origin


def _quietly(record: Callable[..., object], *args: Any) -> None:
    """Tracing must never change how a run ends: a failure to record is logged, not raised."""
    try:
        record(*args)
    except Exception as exc:  # pragma: no cover - only a bug in this package gets here
        import structlog

        structlog.get_logger("graflow_otel").warning("graflow_otel_record_failed", error=repr(exc))


# --- carrier -------------------------------------------------------------------------------


@hookimpl
def graflow_inject_carrier(carrier: MutableMapping[str, str]) -> None:
    propagation.inject(carrier)


@hookimpl
def graflow_extract_carrier(carrier: Mapping[str, str]) -> None:
    # A process that receives traced tasks (a member process, a worker) joins the trace
    # if the standard OTEL_* variables tell it where to export.
    configure_from_environment()
    propagation.extract(carrier)
    _received.set(True)
