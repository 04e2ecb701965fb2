"""The ``memory`` state store: a run lives in the memory of the process that executes it.

The default for runs on the memory queue. It keeps nothing, so it costs nothing: the
engine writes no journal for it and the hot path is unchanged. Runs that must outlive
their process use ``durable=True`` (the ``local`` store) or the Redis queue.

:data:`DETACHED` stands for the store of a run seen from a process that cannot reach it
(a pool process of a run that is not durable, a container): a task there has no store to
keep a question in, and is told so when it asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn

from graflow.exceptions import ConfigError
from graflow.hitl.backend import FeedbackBackend, InProcessFeedback
from graflow.plugins import hookimpl
from graflow.state.store import RunJournal, RunPlan, SavedRun, StateStore

if TYPE_CHECKING:
    from graflow.state.records import Completion, RunInfo, RunStatus

__all__ = ["DETACHED", "IN_PROCESS", "InProcessStore"]


class InProcessStore(StateStore):
    """Nothing is kept: the run's state is the engine's own objects."""

    durable = False

    @property
    def where(self) -> str:
        return "this process's memory"

    def start_run(self, plan: RunPlan) -> RunJournal:
        raise ConfigError("the in-process store keeps no runs; the engine writes no journal for it")

    def _not_kept(self) -> NoReturn:
        raise ConfigError(
            "runs on the in-process store are not kept, so there is nothing to list or resume; run "
            "with durable=True (or `graflow run --durable`) to keep a run in a local state directory"
        )

    def resume_run(self, run_id: str) -> tuple[SavedRun, RunJournal]:
        self._not_kept()

    def load(self, run_id: str) -> SavedRun:
        self._not_kept()

    def runs(
        self, status: RunStatus | None = None, workflow: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        return []

    def run(self, run_id: str) -> RunInfo:
        self._not_kept()

    def completions(self, run_id: str) -> list[Completion]:
        self._not_kept()

    def feedback(self) -> FeedbackBackend | None:
        return _QUESTIONS


class _DetachedStore(InProcessStore):
    """The store of a run whose state this process cannot reach."""

    @property
    def where(self) -> str:
        return "no store this process can reach"

    def feedback(self) -> FeedbackBackend | None:
        return None


#: The questions of in-process runs: they are answered from this process (another thread).
_QUESTIONS: Final = InProcessFeedback()
#: The store is stateless: every in-process run shares this one.
IN_PROCESS: Final = InProcessStore()
#: What a task placed in a process apart from its run's store sees (see the module's doc).
DETACHED: Final = _DetachedStore()


def _in_process(config: Mapping[str, Any]) -> StateStore:
    return IN_PROCESS


@hookimpl
def graflow_state_stores() -> Mapping[str, Callable[[Mapping[str, Any]], StateStore]]:
    return {"memory": _in_process}
