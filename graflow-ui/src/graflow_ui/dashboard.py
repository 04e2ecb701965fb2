"""``Dashboard``: everything the pages and the API read and do, over one store.

The HTTP routes are thin: each calls one method here and returns its model. Reads go to
the store (and, over Redis, the fleet); answers go through
:meth:`~graflow.hitl.FeedbackManager.provide_feedback`, exactly as the CLI's; resume and
rerun start ``graflow`` processes (:mod:`graflow_ui.launcher`).
"""

from __future__ import annotations

from typing import Any

from graflow.cli.runs import task_history
from graflow.hitl import FeedbackManager, FeedbackResponse
from graflow.state.records import RunStatus
from graflow.state.store import StateStore
from graflow_ui.errors import Refused
from graflow_ui.fleet import Fleet, fleet_for
from graflow_ui.history import (
    RunFacts,
    added_tasks,
    feedback_view,
    result_view,
    run_summary,
    task_views,
    timeline,
)
from graflow_ui.launcher import Launcher
from graflow_ui.layout import layout
from graflow_ui.models import (
    Action,
    DeadLetterPage,
    FeedbackAnswer,
    FeedbackRequestView,
    GraphView,
    QueueDepth,
    QueueView,
    ResultView,
    RunDetail,
    RunPage,
    Schedule,
    ScheduleList,
    WorkerView,
)
from graflow_ui.schedules import StoreSchedules
from graflow_ui.settings import UISettings

__all__ = ["Dashboard", "NoFleetError", "NoSchedulesError"]


class NoFleetError(LookupError):
    """The store has no worker fleet (a local store): the fleet routes answer 404 saying so."""


class NoSchedulesError(LookupError):
    """The store keeps no schedules (the schedules routes answer 404 saying so)."""


class Dashboard:
    """The dashboard's reads and actions over ``store`` (one per app)."""

    def __init__(self, settings: UISettings, store: StateStore) -> None:
        self.settings = settings
        self.store = store
        backend = store.feedback()
        #: ``None`` when the store keeps no questions.
        self.feedback = FeedbackManager(backend) if backend is not None else None
        #: ``None`` without a fleet (a local store).
        self.fleet: Fleet | None = fleet_for(store, settings.depth_samples)
        kept = store.schedules()
        #: ``None`` when the store keeps no schedules.
        self.schedules = StoreSchedules(kept) if kept is not None else None
        self.launcher = Launcher(settings.store_config, settings.log_dir)

    # --- runs ----------------------------------------------------------------------------

    def runs(self, status: RunStatus | None, workflow: str | None, offset: int, limit: int) -> RunPage:
        infos, total = self.store.runs_page(status, workflow or None, offset=offset, limit=limit)
        return RunPage(runs=[run_summary(i) for i in infos], total=total, offset=offset, limit=limit)

    def run(self, run_id: str) -> RunDetail:
        saved = self.store.load(run_id)
        failures = self.store.failures(run_id)
        pending = self.feedback.list_pending_requests(run_id) if self.feedback is not None else []
        running_on = self.fleet.running_tasks(run_id) if self.fleet is not None else {}
        rows = task_history(saved)
        info = saved.info
        rerun_of = saved.plan.rerun_of
        return RunDetail(
            run=run_summary(info),
            rerun_of={"run_id": rerun_of[0], "from_task": rerun_of[1]} if rerun_of else None,
            tasks=task_views(saved, rows, RunFacts(failures, pending, running_on)),
            timeline=timeline(saved, rows, failures),
            failures=failures,
            pending_feedback=[feedback_view(r) for r in pending],
            launches=self.launcher.launches(run_id),
            resumable=info.holder is None and not info.status.finished,
        )

    def pulse(self, run_id: str) -> dict[str, Any]:
        """What changes when a run moves on: cheap to read every second, for the live page."""
        info = self.store.run(run_id)
        pending = self.feedback.list_pending_requests(run_id) if self.feedback is not None else []
        running = sorted(self.fleet.running_tasks(run_id)) if self.fleet is not None else []
        return {
            "run": run_summary(info).model_dump(),
            "failures": len(self.store.failures(run_id)),
            "pending_feedback": [r.feedback_id for r in pending],
            "running": running,
        }

    def graph(self, run_id: str) -> GraphView:
        saved = self.store.load(run_id)
        return layout(saved.plan.graph, saved.plan.start_nodes, added_tasks(saved.completions))

    def result(self, run_id: str, task_id: str) -> ResultView:
        results = self.store.load(run_id).results
        try:
            value = results[task_id]
        except KeyError:
            raise LookupError(
                f"task {task_id!r} of run {run_id} has no result (it did not complete)"
            ) from None
        return result_view(task_id, value, full=True)

    def resume(self, run_id: str) -> Action:
        info = self.store.run(run_id)
        if info.holder is not None:
            raise Refused(f"run {run_id} is being driven by {info.holder}: it goes on by itself")
        if info.status.finished:
            raise Refused(
                f"run {run_id} {info.status}: nothing is left to resume; rerun it from a task instead"
            )
        launch = self.launcher.resume(run_id)
        return Action(ok=True, message=f"resuming run {run_id} (pid {launch.pid})", launch=launch)

    def rerun(self, run_id: str, from_task: str) -> Action:
        saved = self.store.load(run_id)
        known = {row.task_id for row in task_history(saved)}
        if from_task not in known:
            raise LookupError(f"run {run_id} has no task {from_task!r}")
        launch = self.launcher.rerun(run_id, from_task)
        what = f"new run {launch.new_run_id}" if launch.new_run_id else f"pid {launch.pid}"
        return Action(ok=True, message=f"rerunning run {run_id} from {from_task!r}: {what}", launch=launch)

    # --- questions -------------------------------------------------------------------------

    def pending_feedback(self, run_id: str | None) -> list[FeedbackRequestView]:
        if self.feedback is None:
            return []
        return [feedback_view(r) for r in self.feedback.list_pending_requests(run_id)]

    def feedback_request(self, feedback_id: str) -> FeedbackRequestView:
        return feedback_view(self._manager().get_request(feedback_id))

    def answer(self, feedback_id: str, answer: FeedbackAnswer, who: str) -> FeedbackRequestView:
        manager = self._manager()
        given = answer.model_dump(
            exclude_none=True
        )  # read as FeedbackResponse reads it: nothing guessed here
        given.setdefault("responded_by", who)
        response = FeedbackResponse.from_json({**given, "feedback_id": feedback_id})
        return feedback_view(manager.provide_feedback(feedback_id, response))

    def _manager(self) -> FeedbackManager:
        if self.feedback is None:
            raise LookupError(f"{self.store.where} keeps no questions")
        return self.feedback

    # --- the fleet ---------------------------------------------------------------------------

    def workers(self) -> list[WorkerView]:
        return [WorkerView.model_validate(_known(record)) for record in self._fleet().workers()]

    def queues(self) -> list[QueueView]:
        fleet = self._fleet()
        now = fleet.sample() if not fleet.history() else fleet.history()[-1]
        return [
            QueueView(
                name=fleet.name,
                stream=fleet.stream,
                depth=now.depth,
                in_flight=now.in_flight,
                dead_letters=fleet.dead_letter_count(),
                history=fleet.history(),
                queues={name: QueueDepth(**depth) for name, depth in fleet.queue_depths().items()},
            )
        ]

    def dead_letters(self, limit: int) -> DeadLetterPage:
        fleet = self._fleet()
        return DeadLetterPage(letters=fleet.dead_letters(limit), total=fleet.dead_letter_count())

    def requeue(self, dead_id: str) -> Action:
        entry = self._fleet().requeue(dead_id)
        if entry is None:
            raise LookupError(f"no dead letter {dead_id!r} (requeued or discarded already?)")
        return Action(ok=True, message=f"dead letter {dead_id} is back on the queue as entry {entry}")

    def discard(self, dead_id: str) -> Action:
        if not self._fleet().discard(dead_id):
            raise LookupError(f"no dead letter {dead_id!r} (requeued or discarded already?)")
        return Action(ok=True, message=f"dead letter {dead_id} discarded")

    def _fleet(self) -> Fleet:
        if self.fleet is None:
            raise NoFleetError(
                f"{self.store.where} has no worker fleet: the fleet, its queue and dead letters are those "
                "of a Redis store (`graflow ui --redis-url URL --key-prefix P`)"
            )
        return self.fleet

    # --- schedules ---------------------------------------------------------------------------

    def schedule_list(self) -> ScheduleList:
        if self.schedules is None:
            return ScheduleList(available=False, message=_NO_SCHEDULER, schedules=[])
        return ScheduleList(
            available=True, message=self.schedules.description, schedules=self.schedules.schedules()
        )

    def pause(self, name: str) -> Schedule:
        return self._schedules().pause(name)

    def unpause(self, name: str) -> Schedule:
        return self._schedules().resume(name)

    def _schedules(self) -> StoreSchedules:
        if self.schedules is None:
            raise NoSchedulesError(_NO_SCHEDULER)
        return self.schedules


_NO_SCHEDULER = "this store keeps no schedules: they are kept in a state directory or in Redis"


def _known(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a heartbeat :class:`WorkerView` knows (a newer worker may publish more; a
    simpler one may name its running tasks by id alone)."""
    known = {k: v for k, v in record.items() if k in WorkerView.model_fields}
    running = known.get("running")
    known["running"] = [
        task if isinstance(task, dict) else {"task_id": str(task)}
        for task in (running if isinstance(running, list) else [])
    ]
    return known
