"""Span names, attributes and events: what a Graflow run looks like in a trace (SPEC section 13).

One run is one trace::

    graflow.workflow etl                 root (or a child of the caller's current span)
    ├── graflow.task extract             one span per attempt: retries are siblings
    ├── graflow.group fan_out            the policy's verdict in its attributes
    │   ├── graflow.task branch_a        members are children of their group
    │   │   └── graflow.task branch_a    ...and of the driver's span when they ran elsewhere
    │   └── graflow.task branch_b
    └── graflow.task load

Every span carries ``graflow.workflow.name`` and ``graflow.run.id``, so one search finds a
run. Iterations are spans of the same task with a growing ``graflow.task.cycle``; the span
that asked for more work has a ``graflow.next_iteration`` or ``graflow.next_task`` event,
and a task added at run time is marked ``graflow.task.dynamic`` and linked to the span
that added it. The functions here never raise into a run: they only read Graflow objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, Tracer

from graflow.exceptions import ParallelGroupError

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext, TaskExecutionContext
    from graflow.core.group import ParallelGroup
    from graflow.core.task import Executable

__all__ = [
    "GROUP_VERDICT",
    "RUN_ID",
    "TASK_ATTEMPT",
    "TASK_CYCLE",
    "TASK_HANDLER",
    "TASK_ID",
    "WORKER_ID",
    "WORKFLOW_NAME",
    "failed",
    "group_failed",
    "group_succeeded",
    "start_group",
    "start_task",
    "start_workflow",
    "task_succeeded",
    "workflow_succeeded",
]

# --- attribute keys ----------------------------------------------------------------------

#: The workflow's name (``with workflow("etl")``), on every span of the run.
WORKFLOW_NAME: Final = "graflow.workflow.name"
#: The run id (``ExecutionContext.session_id``), on every span of the run.
RUN_ID: Final = "graflow.run.id"
#: Steps the run took (set on the workflow span when it ends well).
RUN_STEPS: Final = "graflow.run.steps"
TASK_ID: Final = "graflow.task.id"
#: Handler name (``direct`` unless ``@task(handler=...)``).
TASK_HANDLER: Final = "graflow.task.handler"
#: 1 for the first attempt, 2 for the first retry, ...
TASK_ATTEMPT: Final = "graflow.task.attempt"
#: 1 on a task's first run in a run, 2 after its first ``next_iteration``, ...
TASK_CYCLE: Final = "graflow.task.cycle"
#: ``True`` for a task that ``next_task`` added (or re-ran) at run time.
TASK_DYNAMIC: Final = "graflow.task.dynamic"
#: The id of the task whose ``next_task`` added this one.
TASK_ADDED_BY: Final = "graflow.task.added_by"
#: ``host:pid`` of the process that ran the span (the driver, a member process, a worker).
WORKER_ID: Final = "graflow.worker.id"
GROUP_ID: Final = "graflow.group.id"
#: Coordination backend: ``direct``, ``threading``, ``multiprocessing``, ``redis``.
GROUP_BACKEND: Final = "graflow.group.backend"
#: The failure policy's name: ``strict``, ``best_effort``, ``at_least_2``, ...
GROUP_POLICY: Final = "graflow.group.policy"
GROUP_MEMBERS: Final = "graflow.group.members"
#: ``passed`` or ``failed``: what the policy decided.
GROUP_VERDICT: Final = "graflow.group.verdict"
GROUP_SUCCEEDED: Final = "graflow.group.succeeded"
GROUP_FAILED: Final = "graflow.group.failed"
#: On ``graflow.next_task`` events: whether the task skipped its normal successors.
GOTO: Final = "graflow.goto"
MESSAGE: Final = "graflow.message"

# --- events ------------------------------------------------------------------------------

EVENT_NEXT_TASK: Final = "graflow.next_task"
EVENT_NEXT_ITERATION: Final = "graflow.next_iteration"
EVENT_TERMINATE: Final = "graflow.terminate_workflow"
EVENT_CANCEL: Final = "graflow.cancel_workflow"

#: Where a dynamic task came from: ``(id of the task that added it, that task's span)``.
Origin = tuple[str, SpanContext]


# --- workflow ------------------------------------------------------------------------------


def start_workflow(tracer: Tracer, context: ExecutionContext) -> Span:
    """The run's span: a root, or a child of whatever span is current where ``execute`` was called."""
    name = context.workflow_name
    return tracer.start_span(
        f"graflow.workflow {name}", attributes={WORKFLOW_NAME: name, RUN_ID: context.session_id}
    )


def workflow_succeeded(span: Span, context: ExecutionContext, result: Any) -> None:
    span.set_attribute(RUN_STEPS, context.steps)


# --- task ----------------------------------------------------------------------------------


def start_task(
    tracer: Tracer,
    task: Executable,
    context: ExecutionContext,
    attempt: int,
    tctx: TaskExecutionContext | None,
    worker: str,
    *,
    origin: Origin | None = None,
    received: bool = False,
) -> Span:
    """The span of one attempt of one task.

    ``received``: the attempt arrived from another process (a member process, a worker),
    so the span is the consumer side of the driver's span for the same attempt.
    """
    tid = task.task_id
    attributes: dict[str, Any] = {
        TASK_ID: tid,
        TASK_HANDLER: task.handler_type or "direct",
        TASK_ATTEMPT: attempt,
        TASK_CYCLE: tctx.cycle_count if tctx is not None else context.cycle_counts.get(tid, 1),
        WORKER_ID: worker,
        WORKFLOW_NAME: context.workflow_name,
        RUN_ID: context.session_id,
    }
    links = None
    if origin is not None:
        attributes[TASK_DYNAMIC] = True
        attributes[TASK_ADDED_BY] = origin[0]
        links = [Link(origin[1], {TASK_ADDED_BY: origin[0]})]
    return tracer.start_span(
        f"graflow.task {tid}",
        kind=SpanKind.CONSUMER if received else SpanKind.INTERNAL,
        attributes=attributes,
        links=links,
    )


def task_succeeded(span: Span, tctx: TaskExecutionContext | None) -> list[str]:
    """Record what the attempt asked for as events; return the ids of tasks it added."""
    if tctx is None or not tctx.has_requests:
        return []
    added: list[str] = []
    for executable, goto in tctx.requested_next_tasks:
        added.append(executable.task_id)
        span.add_event(EVENT_NEXT_TASK, {TASK_ID: executable.task_id, GOTO: goto})
    if tctx.requested_iteration:
        span.add_event(EVENT_NEXT_ITERATION, {TASK_CYCLE: tctx.cycle_count + 1})
    if tctx.requested_termination is not None:
        span.add_event(EVENT_TERMINATE, {MESSAGE: tctx.requested_termination})
    if tctx.requested_cancellation is not None:
        span.add_event(EVENT_CANCEL, {MESSAGE: tctx.requested_cancellation})
    return added


# --- group ---------------------------------------------------------------------------------


def start_group(tracer: Tracer, group: ParallelGroup, context: ExecutionContext) -> Span:
    policy = group.policy
    return tracer.start_span(
        f"graflow.group {group.task_id}",
        attributes={
            GROUP_ID: group.task_id,
            GROUP_BACKEND: group.backend,
            GROUP_POLICY: policy.get_name() if policy is not None else "strict",
            GROUP_MEMBERS: group.member_ids,
            WORKFLOW_NAME: context.workflow_name,
            RUN_ID: context.session_id,
        },
    )


def group_succeeded(span: Span, group: ParallelGroup, results: Any) -> None:
    """The policy accepted the outcomes; ``results`` maps each member that succeeded to its result."""
    succeeded = [m for m in group.member_ids if isinstance(results, dict) and m in results]
    _verdict(span, "passed", succeeded, [m for m in group.member_ids if m not in succeeded])


def _verdict(span: Span, verdict: str, succeeded: Sequence[str], failed_ids: Sequence[str]) -> None:
    span.set_attributes(
        {GROUP_VERDICT: verdict, GROUP_SUCCEEDED: list(succeeded), GROUP_FAILED: list(failed_ids)}
    )


# --- failure -------------------------------------------------------------------------------


def failed(span: Span, exc: BaseException) -> None:
    """Status ERROR with the exception recorded (an ``exception`` event with its stack trace)."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def group_failed(span: Span, exc: BaseException) -> None:
    """Like :func:`failed`; when the policy failed the group, its verdict too."""
    if isinstance(exc, ParallelGroupError):
        _verdict(span, "failed", exc.successful_tasks, [tid for tid, _ in exc.failed_tasks])
    failed(span, exc)
