"""What ``graflow run`` knows about a run: a plugin that watches it through the lifecycle wrappers.

The engine has no code for the command line. :class:`RunProgress` is an ordinary plugin
with ``wrapper=True`` implementations of ``graflow_run_workflow``, ``graflow_run_task`` and
``graflow_run_group``; the CLI registers it for the duration of one run (see
:meth:`RunProgress.registered`). It keeps one :class:`TaskRecord` per task id and calls a
listener on every start and end, so the console can show progress as it happens.

A resumed or rerun run starts with a history (``context.history``): the steps an earlier
execution recorded, which the engine replays without running them. The plugin reads that
history when the run starts, so the summary shows those steps as ``reused`` instead of
as run again, or not run at all.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from graflow.hitl.types import FeedbackRequest, suspends
from graflow.plugins import get_plugin_manager, hookimpl

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable, ParallelGroup
    from graflow.core.graph import TaskGraph

__all__ = ["PLUGIN_NAME", "RunProgress", "Status", "TaskEvent", "TaskRecord", "graph_rows"]

#: The name the plugin is registered under while a CLI run lasts.
PLUGIN_NAME: Final = "graflow-cli-progress"

#: Where a task ran when it ran in this process.
LOCAL_WORKER: Final = "local"

#: ``reused``: not run by this execution, its recorded outcome replayed from an earlier one;
#: ``waiting``: it asked a person, got no answer in time, and its run suspended.
Status = Literal["running", "succeeded", "failed", "skipped", "reused", "waiting"]

#: What a listener is told: a task started, ended (``succeeded``, ``failed``, ``waiting``),
#: or ``asked`` a person (``record.question`` says what, and how to answer).
TaskEvent = Literal["started", "succeeded", "failed", "waiting", "asked"]


@dataclass
class TaskRecord:
    """One row of the summary: everything seen of one task (or group) id during the run."""

    task_id: str
    #: ``"task"`` or ``"group"``.
    kind: str
    #: The handler name (``"direct"`` by default); for a group, its coordination backend.
    handler: str
    #: Where it ran: ``"local"`` (this process), ``"process pool"``, ``"worker fleet"``;
    #: ``"-"`` for a group (its members say) and for what never ran.
    worker: str = "-"
    status: Status = "skipped"
    #: Attempts made: retries and ``next_iteration`` runs each count.
    runs: int = 0
    #: Steps of this task recorded by an earlier execution of the run and replayed, not run.
    reused: int = 0
    #: Seconds spent running, summed over all runs (retry back-off waits excluded).
    duration: float = 0.0
    #: ``"Type: message"`` of the last failure, if the last run failed.
    error: str | None = None
    #: Nesting depth in the graph (members of a group are one deeper than the group).
    depth: int = 0
    #: Of the latest run: its iteration (``next_iteration`` makes 2, 3, ...), its attempt
    #: (retries make 2, 3, ...) and the attempts the task is allowed.
    cycle: int = 1
    attempt: int = 1
    max_attempts: int = 1
    #: The question it asked a person, if it asked one (see :meth:`RunProgress.graflow_feedback_requested`).
    question: FeedbackRequest | None = None


Listener = Callable[[TaskEvent, TaskRecord], None]


class RunProgress:
    """Records every task and group of one run; tells ``listener`` as they start and end.

    Only the first run it sees is recorded (a task that runs a sub-workflow of its own
    does not add rows). Safe to use from the threads of a THREADING group.
    """

    def __init__(self, listener: Listener | None = None) -> None:
        self._listener = listener
        self._lock = threading.Lock()
        self._records: dict[str, TaskRecord] = {}
        #: The run being watched, once it started.
        self.context: ExecutionContext | None = None
        #: Wall-clock seconds of the whole run, once it ended.
        self.elapsed: float | None = None
        #: Task id -> steps the run's history holds for it (replayed, not run).
        self.reused: Counter[str] = Counter()

    # --- registration ------------------------------------------------------------------

    @contextmanager
    def registered(self) -> Iterator[RunProgress]:
        """Register with the plugin manager for the ``with`` block only."""
        manager = get_plugin_manager()
        manager.register(self, name=PLUGIN_NAME)
        try:
            yield self
        finally:
            manager.unregister(PLUGIN_NAME)

    # --- lifecycle wrappers -------------------------------------------------------------

    @hookimpl(wrapper=True)
    def graflow_run_workflow(self, context: ExecutionContext) -> Generator[None, Any, Any]:
        if self.context is not None:
            return (yield)
        self.context = context
        if context.history:
            self.reused = Counter(completion.task_id for completion in context.history.values())
        started = time.perf_counter()
        try:
            return (yield)
        finally:
            self.elapsed = time.perf_counter() - started

    @hookimpl(wrapper=True)
    def graflow_run_task(
        self, task: Executable, context: ExecutionContext, attempt: int
    ) -> Generator[None, Any, Any]:
        if context is not self.context:
            return (yield)
        record = self._start(
            task,
            context,
            "task",
            task.handler_type or "direct",
            "-",  # known when the attempt ends: here, or the process that reported the outcome
            attempt=attempt,
            max_attempts=getattr(task, "max_retries", 0) + 1,
        )
        try:
            return (yield from self._watch(record))
        finally:
            # Remote outcomes record the process that ran the task; anything else ran here.
            record.worker = context.task_workers.get(task.task_id, LOCAL_WORKER)

    @hookimpl(wrapper=True)
    def graflow_run_group(self, group: ParallelGroup, context: ExecutionContext) -> Generator[None, Any, Any]:
        if context is not self.context:
            return (yield)
        record = self._start(group, context, "group", group.backend, "-")
        return (yield from self._watch(record))

    @hookimpl
    def graflow_feedback_requested(self, request: FeedbackRequest, context: ExecutionContext) -> None:
        """A task of this run (in this process) asked a person: show the question."""
        if context is not self.context:
            return
        with self._lock:
            record = self._records.get(request.task_id)
            if record is None:
                return
            record.question = request
        self._tell("asked", record)

    def _start(
        self,
        node: Executable,
        context: ExecutionContext,
        kind: str,
        handler: str,
        worker: str,
        *,
        attempt: int = 1,
        max_attempts: int = 1,
    ) -> TaskRecord:
        with self._lock:
            record = self._records.get(node.task_id)
            if record is None:
                record = self._records[node.task_id] = TaskRecord(node.task_id, kind, handler)
            record.worker = worker
            record.status = "running"
            record.runs += 1
            record.cycle = context.cycle_counts.get(node.task_id, 1)
            record.attempt = attempt
            record.max_attempts = max_attempts
            record.error = None
        self._tell("started", record)
        return record

    def _watch(self, record: TaskRecord) -> Generator[None, Any, Any]:
        started = time.perf_counter()
        try:
            result = yield
        except BaseException as exc:
            waits = suspends(exc)
            with self._lock:
                record.duration += time.perf_counter() - started
                record.status = "waiting" if waits else "failed"
                record.error = None if waits else describe_error(exc)
            self._tell("waiting" if waits else "failed", record)
            raise
        with self._lock:
            record.duration += time.perf_counter() - started
            record.status = "succeeded"
        self._tell("succeeded", record)
        return result

    def _tell(self, event: TaskEvent, record: TaskRecord) -> None:
        if self._listener is not None:
            self._listener(event, record)

    # --- reading ---------------------------------------------------------------------

    def records(self) -> list[TaskRecord]:
        """One record per node of the run's graph (groups followed by their members), in dependency order.

        Nodes that never ran are ``"skipped"``, or ``"reused"`` when the run's history holds
        their steps; a task added at run time follows the task that added it, or, inside a
        group member, comes last, in the order it started.
        """
        with self._lock:
            seen = dict(self._records)
        rows: list[TaskRecord] = []
        context = self.context
        if context is not None:
            for node, depth in graph_rows(context.graph, context.start_nodes):
                record = seen.get(node.task_id) or _unseen(node.task_id, node)
                record.depth = depth
                rows.append(record)
        listed = {row.task_id for row in rows}
        rows.extend(record for tid, record in seen.items() if tid not in listed)
        listed.update(seen)
        # Replayed steps of tasks the graph does not list (added at run time inside a group member).
        for tid in self.reused:
            if tid not in listed:
                rows.append(_unseen(tid, context.graph.find(tid) if context is not None else None))
        for row in rows:
            row.reused = self.reused.get(row.task_id, 0)
            if row.reused and row.runs == 0:
                row.status = "reused"
        _nested_workflow_status(rows, context.cycle_counts if context is not None else {})
        return rows


def _unseen(task_id: str, node: Executable | None) -> TaskRecord:
    """The record of a node this execution did not start (``None``: a node the graph does not know)."""
    if node is None:
        return TaskRecord(task_id, "task", "-")
    if node.kind == "group":
        return TaskRecord(task_id, "group", node.backend)  # type: ignore[attr-defined]
    if node.kind == "workflow":
        return TaskRecord(task_id, "workflow", "-")
    return TaskRecord(task_id, "task", node.handler_type or "direct")


def _nested_workflow_status(rows: list[TaskRecord], cycle_counts: Mapping[str, int]) -> None:
    """A nested workflow's row says what its tasks (the rows under it) did: it has no hook of its own."""
    for index, row in enumerate(rows):
        if row.kind != "workflow":
            continue
        inner = []
        for below in rows[index + 1 :]:
            if below.depth <= row.depth:
                break
            inner.append(below)
        statuses = {r.status for r in inner}
        for status in ("failed", "running", "succeeded", "reused"):
            if status in statuses:
                row.status = status
                break
        row.runs = cycle_counts.get(row.task_id, 0)
        row.duration = sum(r.duration for r in inner if r.depth == row.depth + 1)


def graph_rows(graph: TaskGraph, start_nodes: list[str]) -> Iterator[tuple[Executable, int]]:
    """Every task and group of ``graph`` with its nesting depth: top-level nodes in dependency
    order, each group followed by its members (one deeper), chains flattened."""
    for node_id in _dependency_order(graph, start_nodes):
        yield from _walk(graph.get_node(node_id), 0)


def _walk(node: Executable, depth: int) -> Iterator[tuple[Executable, int]]:
    if node.kind == "chain":
        for element in node.elements:
            yield from _walk(element, depth)
        return
    yield node, depth
    if node.kind == "group":
        for member in node.members:
            yield from _walk(member, depth + 1)
    elif node.kind == "workflow":  # its tasks, with the ids they run under: "inner.load"
        inner = node.graph.namespaced(node.task_id + ".")  # type: ignore[attr-defined]
        for inner_id in _dependency_order(inner, inner.get_start_nodes()):
            yield from _walk(inner.get_node(inner_id), depth + 1)


def _dependency_order(graph: TaskGraph, start_nodes: list[str]) -> list[str]:
    """Top-level node ids, each after its predecessors (ties in insertion order).

    A task added at run time (``next_task``) comes after the task that added it.
    """
    succ: dict[str, list[str]] = {node: [] for node in graph.nodes}
    waiting = {node: len(graph.predecessors(node)) for node in graph.nodes}
    for origin, added in graph.dynamic_edges:  # the engine queues these before static successors
        if origin in succ and waiting.get(added) == 0 and added not in start_nodes:
            succ[origin].append(added)
            waiting[added] += 1
    for node in graph.nodes:
        succ[node].extend(graph.successors(node))
    ready = deque(node for node, count in waiting.items() if count == 0)
    order: list[str] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for nxt in succ[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    placed = set(order)
    order.extend(node for node in graph.nodes if node not in placed)
    return order


def describe_error(exc: BaseException) -> str:
    """``"Type: first line of the message"``, short enough for one line of output."""
    message = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
