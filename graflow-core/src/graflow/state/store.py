"""The state-store contract: where a run's state lives, so it can stop, move and come back.

A store is contributed through the ``graflow_state_stores`` hook, like queue and channel
backends: the in-process store (``memory``: nothing is kept, nothing costs), the local
durable store (``local``: SQLite under a state directory) and, in graflow-redis, the
Redis store. A run writes through a :class:`RunJournal`: its plan once, then one
:class:`~graflow.state.records.Completion` per successful step, atomically with that
step's result. :meth:`StateStore.resume_run` gives all of it back, so another process
can replay the history and carry on (see :mod:`graflow.core.run`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graflow.core.graph import TaskGraph
    from graflow.hitl.backend import FeedbackBackend
    from graflow.schedule.store import ScheduleStore
    from graflow.state.records import Completion, Failure, RunInfo, RunStatus

__all__ = ["RunJournal", "RunPlan", "SavedRun", "StateStore"]


@dataclass
class RunPlan:
    """What a run needs to start again anywhere, written once when it starts.

    The graph is the definition as the run started (functions travel by value); tasks
    added at run time are in the completions that added them.
    """

    run_id: str
    workflow: str
    graph: TaskGraph
    start_nodes: list[str]
    max_steps: int
    #: The run's config (backend options, ``max_cycles``, ...); a store keeps what can be
    #: stored of it (see :func:`graflow.remote.codec.storable`).
    config: dict[str, Any]
    queue_backend: str = "memory"
    channel_backend: str = "memory"
    #: The channel as the first task found it, for stores that keep the channel.
    initial_channel: dict[str, Any] = field(default_factory=dict)
    #: ``(run_id, task_id)`` when the run replays another from a task (``graflow rerun``).
    rerun_of: tuple[str, str] | None = None


@dataclass
class SavedRun:
    """What a store gives back to resume a run."""

    plan: RunPlan
    info: RunInfo
    #: Every completion, in the order they were recorded.
    completions: list[Completion]
    #: Task id -> latest result (a store may read them lazily, as :meth:`StateStore.results_view`).
    results: MutableMapping[str, Any]
    #: The channel as of the last completion, for stores that keep the channel (else ``None``).
    channel: dict[str, Any] | None = None


class RunJournal(ABC):
    """The write side of one run. Thread-safe: group members record from their threads."""

    run_id: str

    @abstractmethod
    def record(self, completion: Completion, result: Any, *, has_result: bool = True) -> None:
        """Record one successful step and its result in one atomic write.

        ``has_result=False`` records the step alone (its result was stored by whoever
        ran it, e.g. a worker that wrote it to the same store).
        """

    def record_failure(self, failure: Failure) -> None:
        """Keep an attempt that raised, for people to read (a dashboard); nothing replays it.

        The default keeps nothing: a store that cannot show failures loses no run state.
        A failure that cannot be written must not hide the task's own error, so an
        implementation logs its own trouble rather than raising it.
        """

    @abstractmethod
    def finish(self, status: RunStatus, error: str | None = None) -> None:
        """Record how the run ended (or that it suspended) and give up its lease."""

    def close(self) -> None:
        """Stop renewing the lease (the run's process is going away)."""


class StateStore(ABC):
    """Runs and their state, in one place."""

    #: Whether runs survive the process (the in-process store's do not).
    durable: bool = True
    #: Whether the store keeps the channel itself (its writes travel in completions):
    #: True for a store beside an in-process channel, False where the channel is shared storage.
    keeps_channel: bool = False
    #: Whether a placement may record a step in this store itself, atomically with its
    #: outcome (a Redis worker in a Redis store); the driver then does not record it again.
    records_remote_steps: bool = False

    def remote_spec(self) -> tuple[str, dict[str, Any]] | None:
        """How another process reaches this store: ``(store name, picklable config)``.

        ``None`` (the default): it cannot, and a task placed elsewhere gets copies of the
        results it may read. With a spec, it reads them from here when it asks.
        """
        return None

    def results_view(self, run_id: str) -> MutableMapping[str, Any] | None:
        """The results of ``run_id`` as a mapping read from the store when asked (``None``: a dict does)."""
        return None

    def feedback(self) -> FeedbackBackend | None:
        """Where the runs of this store keep their questions to people (:mod:`graflow.hitl`).

        ``None`` (the default): a task cannot ask here, because nobody could reach its
        question to answer it.
        """
        return None

    def schedules(self) -> ScheduleStore | None:
        """The schedules kept beside this store's runs (:mod:`graflow.schedule`); ``None``: none can be."""
        return None

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the store is, for messages (``/srv/flows/.graflow``, ``redis://host:6379/0 prefix graflow``)."""

    @abstractmethod
    def start_run(self, plan: RunPlan) -> RunJournal:
        """Record a new run and take its lease."""

    @abstractmethod
    def resume_run(self, run_id: str) -> tuple[SavedRun, RunJournal]:
        """Everything of ``run_id``, and its lease.

        Raises :class:`~graflow.exceptions.RunNotFoundError` for an unknown id and
        :class:`~graflow.exceptions.RunInUseError` when a live driver holds the lease.
        """

    @abstractmethod
    def runs(
        self, status: RunStatus | None = None, workflow: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        """Runs, newest first."""

    def runs_page(
        self,
        status: RunStatus | None = None,
        workflow: str | None = None,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[RunInfo], int]:
        """One page of :meth:`runs` (newest first) and how many runs match in all.

        The default reads every matching run; a store with an index answers from it.
        """
        found = self.runs(status, workflow)
        return found[offset : offset + limit], len(found)

    @abstractmethod
    def run(self, run_id: str) -> RunInfo:
        """One run (``RunNotFoundError`` if unknown)."""

    @abstractmethod
    def completions(self, run_id: str) -> list[Completion]:
        """A run's completions, in the order they were recorded."""

    def failures(self, run_id: str) -> list[Failure]:
        """The attempts of ``run_id`` that raised, in the order they ended (none kept by default)."""
        return []

    @abstractmethod
    def load(self, run_id: str) -> SavedRun:
        """Everything of ``run_id``, without taking its lease (to read it, or to replay it as a new run)."""

    def close(self) -> None:
        """Release connections."""
