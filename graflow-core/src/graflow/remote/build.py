"""Building the envelope for a task that is about to run somewhere else.

The engine (remote coordinators, a worker fleet) and handlers that place a task
themselves (the Docker handler) all ship the same :class:`TaskEnvelope`, so they
build it in one place and a task sees the same state wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from graflow.core.routing import Routing
from graflow.plugins.manager import GraflowPluginManager, get_plugin_manager
from graflow.remote.envelope import TaskEnvelope

if TYPE_CHECKING:
    from graflow.channels.base import Channel
    from graflow.core.context import ExecutionContext, TaskExecutionContext
    from graflow.core.task import TaskWrapper

__all__ = ["build_envelope"]


def build_envelope(
    task: TaskWrapper,
    context: ExecutionContext,
    tctx: TaskExecutionContext | None = None,
    *,
    share_channel: bool = True,
    step: str | None = None,
    queue: str | None = None,
    manager: GraflowPluginManager | None = None,
) -> TaskEnvelope:
    """The envelope that runs this attempt of ``task`` elsewhere as it would run here.

    ``tctx`` is the attempt's task context when the engine made one (iteration data,
    cycle and retry counts come from it); without one the task runs as its first
    attempt of the current cycle. ``share_channel=False`` always ships a snapshot of
    the channel (its writes are replayed here afterwards), for a remote side that
    cannot reach the run's channel backend, such as a container without network (and
    copies of the results, for the same reason). ``step`` is the attempt's step key in a
    durable run, for a placement that records steps itself; ``queue`` is the queue of the
    group the task runs in, if it names one. Plugins add what must travel (a trace
    context) through ``graflow_inject_carrier``.
    """
    manager = manager or get_plugin_manager()
    channel = context.channel
    spec = channel.remote_spec() if share_channel else None
    store = context.store.remote_spec() if share_channel else None
    carrier: dict[str, str] = {}
    manager.hook.graflow_inject_carrier(carrier=carrier)
    if tctx is not None:
        iteration = (tctx.has_iteration_data, tctx.iteration_data)
        cycle_count, max_cycles, attempt = tctx.cycle_count, tctx.max_cycles, tctx.retry_count + 1
    else:
        iteration = (False, None)
        cycle_count = context.cycle_counts.get(task.task_id, 1)
        max_cycles = getattr(task, "max_cycles", None) or context.max_cycles
        attempt = 1
    # Only a task given its context can read any result or channel key: it gets the channel
    # and the results (by reference where its side reaches the store, when it asks). A task
    # whose parameters are filled from the channel reads just those keys, so a snapshot holds
    # just those: what travels with a task never grows with the run. Others read nothing.
    if getattr(task, "inject_context", True):
        snapshot = channel.snapshot() if spec is None else None
        results = dict(context.results) if store is None else {}
    else:
        keys = getattr(task, "parameter_keys", ())
        snapshot = _values(channel, keys) if spec is None else None
        results = {}
    return TaskEnvelope(
        task,
        context.session_id,
        context.workflow_name,
        cycle_count=cycle_count,
        max_cycles=max_cycles,
        attempt=attempt,
        iteration=iteration,
        channel_snapshot=snapshot,
        channel_backend=spec,
        results=results,
        results_store=store,
        step=step,
        carrier=carrier,
        routing=_routing(task, queue, context.priority),
    )


def _values(channel: Channel, keys: Iterable[str]) -> dict[str, Any]:
    """A snapshot of the channel holding only ``keys`` (those that are set)."""
    return {key: channel.get(key) for key in keys if channel.exists(key)}


def _routing(task: TaskWrapper, queue: str | None, priority: int | None) -> Routing | None:
    """The task's routing, under its group's queue and its run's priority (``None``: nothing set)."""
    own: Routing | None = getattr(task, "routing", None)
    if own is None:
        return None if queue is None and priority is None else Routing(queue=queue, priority=priority)
    return own.under(queue, priority)
