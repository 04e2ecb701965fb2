"""Carrying on a run kept in a state store: resume it, or replay it from one task as a new run.

Both build an :class:`~graflow.core.context.ExecutionContext` whose history holds the
recorded steps, so :meth:`WorkflowEngine.execute <graflow.core.engine.WorkflowEngine.execute>`
replays them (their tasks do not run) and runs what is left. No source file is needed:
the graph comes from the store, functions by value.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from graflow.channels.memory import MemoryChannel
from graflow.core.context import ExecutionContext
from graflow.core.graph import TaskGraph
from graflow.exceptions import ConfigError
from graflow.plugins.manager import get_plugin_manager
from graflow.state.memory import IN_PROCESS
from graflow.state.opening import store_for
from graflow.state.records import RunStatus
from graflow.state.store import SavedRun, StateStore

__all__ = ["rerun_context", "resume_context", "store_for"]


def resume_context(run_id: str, config: Mapping[str, Any] | None = None) -> ExecutionContext:
    """The context that carries ``run_id`` on from where its history ends.

    A run that succeeded (or was canceled) is replayed read-only: nothing runs, its
    result comes back. Any other run's lease is taken (refused while a live driver holds it).
    """
    store = store_for(config)
    info = store.run(run_id)
    if info.status.finished:
        saved = store.load(run_id)
        context = _context(saved, config, store=IN_PROCESS)
    else:
        saved, journal = store.resume_run(run_id)
        context = _context(saved, config, store=store)
        context.journal = journal
    context.history = {c.key: c for c in saved.completions}
    return context


def rerun_context(run_id: str, from_task: str, config: Mapping[str, Any] | None = None) -> ExecutionContext:
    """A new run replaying ``run_id`` up to ``from_task``: that task and everything downstream run again."""
    store = store_for(config)
    saved = store.load(run_id)
    affected = _downstream(saved, from_task)
    kept = [c for c in saved.completions if c.task_id not in affected]
    kept_results = {c.task_id: saved.results[c.task_id] for c in kept if c.task_id in saved.results}
    plan = dataclasses.replace(saved.plan, run_id=uuid.uuid4().hex, rerun_of=(run_id, from_task))
    journal = store.start_run(plan)
    for completion in kept:
        journal.record(
            completion, saved.results.get(completion.task_id), has_result=completion.task_id in saved.results
        )
    channel = None
    if saved.channel is not None:  # an in-process channel: rebuilt from the kept steps' writes alone
        rebuilt = MemoryChannel(plan.run_id)
        for key, value in plan.initial_channel.items():
            rebuilt.set(key, value)
        for completion in kept:
            for method, args in completion.channel_ops:
                getattr(rebuilt, method)(*args)
        channel = rebuilt.snapshot()
    replayed = SavedRun(
        plan,
        dataclasses.replace(saved.info, run_id=plan.run_id, status=RunStatus.RUNNING),
        kept,
        kept_results,
        channel,
    )
    context = _context(replayed, config, store=store, copy_channel_of=None if channel is not None else run_id)
    context.journal = journal
    context.history = {c.key: c for c in kept}
    return context


def _context(
    saved: SavedRun,
    config: Mapping[str, Any] | None,
    *,
    store: StateStore,
    copy_channel_of: str | None = None,
) -> ExecutionContext:
    plan = saved.plan
    settings = {**plan.config, **(config or {})}
    manager = get_plugin_manager()
    queue = manager.resolve("graflow_queue_backends", plan.queue_backend)(settings)
    if saved.channel is not None:
        channel = MemoryChannel(plan.run_id)
        for key, value in saved.channel.items():
            channel.set(key, value)
    else:
        factory = manager.resolve("graflow_channel_backends", plan.channel_backend)
        channel = factory(plan.run_id, settings)
        if copy_channel_of is not None:  # a shared channel: the new run starts from the old run's values
            for key, value in factory(copy_channel_of, settings).snapshot().items():
                channel.set(key, value)
    context = ExecutionContext(
        plan.graph,
        start_nodes=list(plan.start_nodes),
        max_steps=plan.max_steps,
        channel=channel,
        queue=queue,
        config=settings,
        session_id=plan.run_id,
        workflow_name=plan.workflow,
        store=store,
    )
    context.backends = (plan.queue_backend, plan.channel_backend)
    if isinstance(saved.results, dict):
        context.results.update(saved.results)
    elif store.results_view(plan.run_id) is None:  # a store's lazy results, read through another store
        context.results = saved.results
    return context


def _downstream(saved: SavedRun, start: str) -> set[str]:
    """The task ids to run again: ``start``, what follows it in its branch and in the graph, the
    tasks those added at run time, and the groups around ``start`` (whose other members are kept)."""
    graph = saved.plan.graph
    added: dict[str, set[str]] = {}
    for completion in saved.completions:
        if completion.requests is not None:
            for executable, _goto in completion.requests.next_tasks:
                added.setdefault(completion.task_id, set()).update(t.task_id for t in executable.iter_tasks())
    known = set(graph.tasks) | {tid for ids in added.values() for tid in ids}
    if start not in known:
        raise ConfigError(
            f"run {saved.plan.run_id!r} has no task {start!r}; its tasks: {', '.join(sorted(known))}"
        )
    affected: set[str] = set()

    def whole(tid: str) -> None:
        """``tid`` with everything inside it and everything after it."""
        if tid in affected:
            return
        node = graph.find(tid)
        if node is None:  # a task added at run time
            affected.add(tid)
        else:
            affected.update(t.task_id for t in node.iter_tasks())
        for later in (*added.get(tid, ()), *(graph.successors(tid) if tid in graph.nodes else ())):
            whole(later)

    current = start
    while (owner := graph.owner_of(current)) is not None:
        # Inside a group: the rest of the branch runs again, and so does the group itself
        # (its other members' steps are kept, and replayed when it runs).
        for tid in (current, *_later_in_branch(graph, owner, current)):
            whole(tid)
        affected.add(owner)
        current = owner
    if current == start:
        whole(start)
    else:
        for later in graph.successors(current):
            whole(later)
    return affected


def _later_in_branch(graph: TaskGraph, group_id: str, task_id: str) -> Iterable[str]:
    """The elements after ``task_id`` in its member chain of ``group_id``."""
    for member in graph.get_node(group_id).members:
        ids = [e.task_id for e in member.elements]
        if task_id in ids:
            return ids[ids.index(task_id) + 1 :]
    return ()
