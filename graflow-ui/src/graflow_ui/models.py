"""The JSON the API answers with: what ``/openapi.json`` describes, and what the pages read.

Names follow the CLI's JSON (``graflow runs --json``, ``graflow feedback list --json``), so a
script moves between the two without renaming anything. Times are ISO 8601 in UTC where the
CLI prints them so; the timeline's times are epoch seconds, which a chart needs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from graflow.state.records import Failure

__all__ = [
    "Action",
    "AttemptBar",
    "DeadLetter",
    "DeadLetterPage",
    "DepthSample",
    "FeedbackAnswer",
    "FeedbackRequestView",
    "GraphEdge",
    "GraphNode",
    "GraphView",
    "Launch",
    "Problem",
    "QueueDepth",
    "QueueView",
    "ResultView",
    "RunDetail",
    "RunPage",
    "RunSummary",
    "Schedule",
    "ScheduleList",
    "TaskState",
    "TaskView",
    "WorkerView",
]

#: Where a task stands, as the run page colours it.
TaskState = Literal["done", "running", "retrying", "waiting", "failed", "pending", "skipped"]


class Problem(BaseModel):
    """An error: what went wrong and what to do (never a server traceback)."""

    detail: str


class RunSummary(BaseModel):
    """One run, as a row of ``graflow runs --json``."""

    run_id: str
    workflow: str
    status: str
    started_at: str | None
    finished_at: str | None
    tasks_done: int
    tasks_total: int
    error: str | None = None
    #: ``host:pid`` of the live driver, if one holds the run now.
    holder: str | None = None


class RunPage(BaseModel):
    """A page of runs, newest first, and how many match in all."""

    runs: list[RunSummary]
    total: int
    offset: int
    limit: int


class ResultView(BaseModel):
    """A task's result as text: ``repr`` (or JSON), cut to a preview unless asked for in full."""

    task_id: str
    type: str
    text: str
    #: Characters of the whole text; ``text`` is shorter when ``truncated``.
    size: int
    truncated: bool


class TaskView(BaseModel):
    """One node of the run (task, group or nested workflow) and what happened to it."""

    task_id: str
    kind: Literal["task", "group", "workflow"]
    state: TaskState
    #: Recorded steps: iterations and re-entries each add one.
    occurrences: int = 0
    #: Attempts of its latest step (more than 1: it was retried).
    attempts: int = 0
    worker: str | None = None
    #: Seconds, summed over its steps.
    duration: float = 0.0
    finished_at: str | None = None
    #: Added at run time (``next_task``) rather than defined in the workflow.
    added: bool = False
    result: ResultView | None = None
    #: Its pending question, if it waits for a person's answer.
    feedback_id: str | None = None


class AttemptBar(BaseModel):
    """One bar of the timeline: an attempt of a task, from start to end (epoch seconds)."""

    task_id: str
    start: float
    end: float
    outcome: Literal["succeeded", "failed"]
    #: Which attempt of its step (2 and up: a retry).
    attempt: int
    worker: str | None = None


class GraphNode(BaseModel):
    """A box of the drawn graph, placed by the server (pixels, top-left origin)."""

    id: str
    label: str
    kind: Literal["task", "group", "workflow"]
    x: float
    y: float
    w: float
    h: float
    #: The group or nested workflow drawn around it.
    parent: str | None = None


class GraphEdge(BaseModel):
    source: str
    target: str
    #: ``back``: closes a cycle (drawn dashed); ``added``: a task added at run time.
    kind: Literal["forward", "back", "added"]
    #: The polyline to draw, from the source's border to the target's.
    points: list[tuple[float, float]]


class GraphView(BaseModel):
    """The run's graph, laid out: containers before what they hold, so drawing in order nests them."""

    width: float
    height: float
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    #: The same graph as Mermaid text (``graflow graph``), for pasting elsewhere.
    mermaid: str


class FeedbackRequestView(BaseModel):
    """A question a task asked (``graflow feedback list --json``), with its answer once given."""

    feedback_id: str
    run_id: str
    task_id: str
    feedback_type: Literal["approval", "text", "selection", "multi_selection", "custom"]
    prompt: str
    options: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    timeout: float
    channel_key: str | None = None
    created_at: str | None = None
    status: Literal["pending", "answered"]
    response: dict[str, Any] | None = None


class FeedbackAnswer(BaseModel):
    """A ``FeedbackResponse`` as JSON, without ``feedback_id`` (the URL names the request).

    Fill the field the request's type asks for: ``approved`` (with an optional ``reason``),
    ``text``, ``selected``, ``selected_multiple`` or ``custom_data``.
    """

    response_type: Literal["approval", "text", "selection", "multi_selection", "custom"] | None = None
    approved: bool | None = None
    reason: str | None = None
    text: str | None = None
    selected: str | None = None
    selected_multiple: list[str] | None = None
    custom_data: dict[str, Any] | None = None
    responded_by: str | None = None


class Launch(BaseModel):
    """A ``graflow resume`` or ``graflow rerun`` process the dashboard started."""

    launch_id: str
    run_id: str
    command: list[str]
    pid: int
    started_at: str | None
    #: ``None`` while it runs; else its exit status (0 succeeded, 1 failed, 3 suspended).
    exit_code: int | None
    log_path: str
    #: The run it drives: the same run for a resume, a new one for a rerun (once it printed it).
    new_run_id: str | None = None
    #: The last lines of its output.
    log_tail: str = ""


class RunDetail(BaseModel):
    """Everything the run page shows, but the drawn graph (``GET /api/runs/{id}/graph``)."""

    run: RunSummary
    rerun_of: dict[str, str] | None = None
    tasks: list[TaskView]
    timeline: list[AttemptBar]
    #: Each attempt that raised, with the traceback from where it ran (the store's own record).
    failures: list[Failure]
    pending_feedback: list[FeedbackRequestView]
    launches: list[Launch]
    #: Whether ``POST /api/runs/{id}/resume`` would start anything now.
    resumable: bool


class Action(BaseModel):
    """What a button did."""

    ok: bool
    message: str
    launch: Launch | None = None


class WorkerView(BaseModel):
    """A live worker, as its last heartbeat says (``graflow-worker status``)."""

    worker_id: str
    host: str | None = None
    pid: int | None = None
    state: str | None = None
    max_concurrent_tasks: int | None = None
    #: ``task_id``, ``session_id`` (the run), ``attempt``, ``since`` of each task it runs.
    running: list[dict[str, Any]] = Field(default_factory=list)
    tasks_processed: int = 0
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    total_execution_time: float = 0.0
    started: float | None = None
    last_seen: float | None = None


class DepthSample(BaseModel):
    at: float
    depth: int
    in_flight: int


class QueueDepth(BaseModel):
    """Entries of one queue waiting for a worker, and held by one."""

    waiting: int
    running: int


class QueueView(BaseModel):
    """The fleet of a key prefix: where its entries wait, its depth over the last minutes, and
    the depth of each of its queues now."""

    name: str
    stream: str
    depth: int
    in_flight: int
    dead_letters: int
    history: list[DepthSample]
    queues: dict[str, QueueDepth] = {}


class DeadLetter(BaseModel):
    """An entry no worker could run, and why."""

    id: str
    task: str | None = None
    run_id: str | None = None
    reason: str | None = None
    worker: str | None = None
    at: float | None = None
    #: Bytes of the (unread) payload.
    payload_size: int = 0


class DeadLetterPage(BaseModel):
    letters: list[DeadLetter]
    total: int


class Schedule(BaseModel):
    """A schedule, as a schedules provider reports it."""

    name: str
    workflow: str
    #: ``cron */5 * * * *`` or ``every 300s``.
    trigger: str
    next_fire_at: str | None = None
    paused: bool = False


class ScheduleList(BaseModel):
    """The schedules of the store, or why there are none to show."""

    available: bool
    #: Who provides them, or what to install when nobody does.
    message: str
    schedules: list[Schedule]
