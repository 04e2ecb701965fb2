"""What the run page shows of a run, worked out from what its store recorded.

A store records completed steps and failed attempts, not which task is running now, so
a task's state is read from the history: done (a step recorded), failed (its last
attempt gave up), retrying (an attempt failed, the run goes on), waiting (its question
has no answer yet), running (on a worker, by its heartbeat; else ready while a live
driver holds the run), skipped (the run finished without it), pending (the rest).
"""

from __future__ import annotations

import pprint
import reprlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from graflow.cli.runs import TaskHistory
from graflow.hitl.types import FeedbackRequest
from graflow.state.records import Completion, Failure, RunInfo, RunStatus
from graflow.state.store import SavedRun
from graflow_ui.models import (
    AttemptBar,
    FeedbackRequestView,
    ResultView,
    RunSummary,
    TaskState,
    TaskView,
)

if TYPE_CHECKING:
    from graflow.core.dsl import Executable

__all__ = [
    "FULL_RESULT_CHARS",
    "PREVIEW_CHARS",
    "RunFacts",
    "added_tasks",
    "feedback_view",
    "result_view",
    "run_summary",
    "task_views",
    "timeline",
]

#: Characters of a result shown on the run page; the rest is a click away.
PREVIEW_CHARS: Final = 300
#: Characters of a result shown at most when asked for all of it.
FULL_RESULT_CHARS: Final = 1_000_000

_PREVIEW = reprlib.Repr()
_PREVIEW.maxstring = _PREVIEW.maxother = PREVIEW_CHARS
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 20
_PREVIEW.maxlevel = 4


@dataclass(frozen=True)
class RunFacts:
    """What is known of a run besides its steps: failed attempts, open questions, fleet tasks."""

    failures: list[Failure]
    pending: list[FeedbackRequest]
    #: Task id -> the worker running it now (from the fleet's heartbeats; empty without a fleet).
    running_on: Mapping[str, str]


def run_summary(info: RunInfo) -> RunSummary:
    return RunSummary(**info.to_json(), holder=info.holder)


def feedback_view(request: FeedbackRequest) -> FeedbackRequestView:
    return FeedbackRequestView(**request.to_json())


def result_view(task_id: str, value: Any, *, full: bool = False) -> ResultView:
    """A result as text: a short ``repr`` for the page, or (``full``) all of it, pretty-printed."""
    if full:
        # pformat would cut a long string into a parenthesised concatenation of pieces.
        text = (
            repr(value)
            if isinstance(value, (str, bytes))
            else pprint.pformat(value, width=100, sort_dicts=False)
        )
        return ResultView(
            task_id=task_id,
            type=type(value).__name__,
            text=text[:FULL_RESULT_CHARS],
            size=len(text),
            truncated=len(text) > FULL_RESULT_CHARS,
        )
    text = _PREVIEW.repr(value)
    cut = len(text) > PREVIEW_CHARS
    return ResultView(
        task_id=task_id,
        type=type(value).__name__,
        text=text[:PREVIEW_CHARS],
        size=len(text),
        truncated=cut or "..." in text,
    )


def added_tasks(completions: list[Completion]) -> Iterator[tuple[str, Executable]]:
    """``(by, what)`` for everything a step added at run time (``next_task``: a task, a chain, a group), in order."""
    for completion in completions:
        requests = completion.requests
        for executable, _goto in requests.next_tasks if requests is not None else ():
            yield completion.task_id, executable


def task_views(saved: SavedRun, rows: list[TaskHistory], facts: RunFacts) -> list[TaskView]:
    """Every node of the run (``rows``: :func:`~graflow.cli.runs.task_history`) with its state."""
    done = {row.task_id for row in rows if row.status == "done"}
    judge = _Judge(saved, facts, done)
    kinds = {
        node.task_id: node.kind for _, added in added_tasks(saved.completions) for node in added.iter_tasks()
    }
    attempts = {c.task_id: c.attempts for c in saved.completions}
    views = []
    for row in rows:
        views.append(
            TaskView(
                task_id=row.task_id,
                kind=_kind(kinds.get(row.task_id, row.kind)),
                state=judge.state(row),
                occurrences=row.occurrences,
                attempts=attempts.get(row.task_id, 0),
                worker=facts.running_on.get(row.task_id) or (row.worker if row.worker != "-" else None),
                duration=row.duration,
                finished_at=row.finished_at,
                added=row.added,
                result=_result(saved.results, row.task_id) if row.task_id in done else None,
                feedback_id=judge.asking.get(row.task_id),
            )
        )
    return views


def _kind(kind: str) -> Literal["task", "group", "workflow"]:
    return "group" if kind == "group" else "workflow" if kind == "workflow" else "task"


class _Judge:
    """Decides each node's state from the run's history (see the module's doc for the rules)."""

    def __init__(self, saved: SavedRun, facts: RunFacts, done: set[str]) -> None:
        self.info = saved.info
        self.running_on = facts.running_on
        self.asking = {request.task_id: request.feedback_id for request in facts.pending}
        self.last_failure = {f.task_id: f for f in facts.failures}
        self.completed_at = {c.task_id: c.finished_at for c in saved.completions}
        live = self.info.status is RunStatus.RUNNING and self.info.holder is not None
        self.ready = _ready(saved, done) if live else set()

    def state(self, row: TaskHistory) -> TaskState:
        task_id = row.task_id
        failure = self.last_failure.get(task_id)
        failed_last = failure is not None and failure.finished_at > self.completed_at.get(task_id, 0.0)
        if task_id in self.asking:
            return "waiting"
        if failed_last and failure is not None and failure.final:
            return "failed"
        if task_id in self.running_on:
            return "running"
        if failed_last and self.info.status is RunStatus.RUNNING:
            return "retrying"
        if row.status == "done":
            return "done"
        if task_id in self.ready:
            return "running"
        return "skipped" if self.info.status.finished else "pending"


def _result(results: Mapping[str, Any], task_id: str) -> ResultView | None:
    try:
        value = results[task_id]
    except KeyError:
        return None
    return result_view(task_id, value)


def _ready(saved: SavedRun, done: set[str]) -> set[str]:
    """Ids of the nodes not done whose every predecessor is done, inside containers that are ready.

    Edges that close a cycle do not count: a node on a loop waits only for its other predecessors.
    """
    plan = saved.plan
    waits: dict[str, tuple[list[str], str | None]] = {}
    _collect_waits(plan.graph, plan.start_nodes, None, waits)
    ready: set[str] = set()
    for node_id in waits:  # containers come before what they hold
        preds, container = waits[node_id]
        if node_id in done:
            continue
        if all(p in done for p in preds) and (container is None or container in ready):
            ready.add(node_id)
    return ready


def _collect_waits(
    graph: Any, start_nodes: list[str], container: str | None, waits: dict[str, tuple[list[str], str | None]]
) -> None:
    loops = graph.loop_edges(start_nodes)
    for node_id in graph.nodes:
        preds = [p for p in graph.predecessors(node_id) if (p, node_id) not in loops]
        node = graph.get_node(node_id)
        waits[node_id] = (preds, container)
        _collect_inside(node, waits)


def _collect_inside(node: Any, waits: dict[str, tuple[list[str], str | None]]) -> None:
    if node.kind == "group":
        for member in node.members:
            previous: list[str] = []
            for element in member.elements:
                waits[element.task_id] = (previous, node.task_id)
                _collect_inside(element, waits)
                previous = [element.task_id]
    elif node.kind == "workflow":
        prefix = node.task_id + "."
        inner = node.graph.namespaced(prefix)
        _collect_waits(inner, [prefix + s for s in node.graph.get_start_nodes()], node.task_id, waits)


def timeline(saved: SavedRun, rows: list[TaskHistory], failures: list[Failure]) -> list[AttemptBar]:
    """A bar per attempt of each task (groups and nested workflows have none), in the order they started."""
    tasks = {row.task_id for row in rows if row.kind == "task"}
    ended_failing: dict[str, list[float]] = {}
    bars = []
    for failure in failures:
        ended_failing.setdefault(failure.task_id, []).append(failure.finished_at)
        bars.append(
            AttemptBar(
                task_id=failure.task_id,
                start=failure.started_at,
                end=failure.finished_at,
                outcome="failed",
                attempt=failure.attempt,
                worker=failure.worker or None,
            )
        )
    for completion in saved.completions:
        if completion.task_id not in tasks:
            continue
        end = completion.finished_at
        start = end - completion.duration
        # A duration measured around the retries starts at the first attempt: this one began
        # when the last failed attempt before it ended.
        earlier = [t for t in ended_failing.get(completion.task_id, ()) if start <= t <= end]
        bars.append(
            AttemptBar(
                task_id=completion.task_id,
                start=max([start, *earlier]),
                end=end,
                outcome="succeeded",
                attempt=completion.attempts,
                worker=completion.worker or None,
            )
        )
    bars.sort(key=lambda bar: (bar.start, bar.end))
    return bars
