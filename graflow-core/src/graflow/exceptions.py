"""Every error Graflow raises on purpose.

Each class names one kind of mistake, and each message says what to do next. All of
them derive from :class:`GraflowError`, so ``except GraflowError`` catches anything
Graflow itself decided to stop on, while a task's own exception always propagates as
itself (with the failing task id attached, see :func:`attach_task_id`).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CheckpointError",
    "ConfigError",
    "CycleLimitExceededError",
    "DuplicateTaskError",
    "ExecutorUnavailableError",
    "GraflowError",
    "GraflowRuntimeError",
    "GraflowWorkflowCanceledError",
    "GraphCompilationError",
    "LockTimeoutError",
    "MaxStepsExceededError",
    "MissingTaskArgumentError",
    "ParallelGroupError",
    "PluginNotInstalledError",
    "RunInUseError",
    "RunNotFoundError",
    "RunStateLostError",
    "StateStoreError",
    "TaskSerializationError",
    "TaskTimeoutError",
    "attach_task_id",
]


class GraflowError(Exception):
    """Base class of every error raised by Graflow itself."""

    #: Whether a task's retry policy retries an attempt that failed with this error. Graflow's
    #: own errors say something about the workflow (bad arguments, limits), not about bad
    #: luck, so most are not; a timeout is.
    retriable: bool = False


class GraflowRuntimeError(GraflowError, RuntimeError):
    """The engine could not carry on for a reason that is not a task's own exception."""


class MissingTaskArgumentError(GraflowRuntimeError, TypeError):
    """A task parameter has no value: not passed, not in the channel, no default."""


class ExecutorUnavailableError(GraflowRuntimeError):
    """What runs tasks elsewhere cannot run them: a broken process pool, no live worker.

    This stops the run instead of counting as a failure of each task it touched, so
    a BEST_EFFORT group never "passes" because its infrastructure was down.
    """


class ConfigError(GraflowError, ValueError):
    """A setting passed to Graflow is missing, unknown or malformed."""


class GraphCompilationError(GraflowError):
    """The workflow graph cannot run as written (an inescapable cycle, an unknown node)."""


class DuplicateTaskError(GraphCompilationError):
    """Two different tasks were registered under one task id in the same graph."""

    def __init__(self, task_id: str, message: str | None = None) -> None:
        self.task_id = task_id
        super().__init__(
            message
            or f"a different task is already registered as {task_id!r} in this graph; "
            "give each task its own id (e.g. @task(id='...') or TaskWrapper('unique_id', fn)), "
            "or reuse the existing task object"
        )


class CycleLimitExceededError(GraflowError):
    """A task asked for more iterations than its ``max_cycles`` allows."""

    def __init__(self, task_id: str, max_cycles: int) -> None:
        self.task_id = task_id
        self.max_cycles = max_cycles
        super().__init__(
            f"task {task_id!r} asked for iteration {max_cycles + 1} but max_cycles is {max_cycles}; "
            f"raise it with @task(max_cycles=N) or stop iterating when "
            f"context.can_iterate() is False"
        )


class MaxStepsExceededError(GraflowError):
    """The run executed more tasks than ``max_steps`` allows: never a silent stop."""

    def __init__(self, max_steps: int, last_task_id: str | None) -> None:
        self.max_steps = max_steps
        self.last_task_id = last_task_id
        super().__init__(
            f"the run reached max_steps={max_steps} (last task: {last_task_id!r}) and was stopped; "
            "if the workflow is meant to run longer, pass a larger max_steps to execute()"
        )


class ParallelGroupError(GraflowError):
    """A parallel group's failure policy judged the group as failed."""

    def __init__(
        self,
        message: str,
        group_id: str,
        failed_tasks: Sequence[tuple[str, str]],
        successful_tasks: Sequence[str],
    ) -> None:
        self.group_id = group_id
        #: ``[(task_id, error_message), ...]`` of the members that failed.
        self.failed_tasks = list(failed_tasks)
        #: Ids of the members that succeeded.
        self.successful_tasks = list(successful_tasks)
        super().__init__(message)


class GraflowWorkflowCanceledError(GraflowError):
    """A task called ``cancel_workflow``: the run stopped abnormally."""

    def __init__(self, message: str, task_id: str | None = None) -> None:
        self.task_id = task_id
        super().__init__(message)


class TaskSerializationError(GraflowError, TypeError):
    """A task (or its result) cannot be pickled to travel to another process."""


class LockTimeoutError(GraflowError, TimeoutError):
    """A channel lock could not be acquired within its timeout."""


class PluginNotInstalledError(GraflowError, ImportError):
    """A name (handler, backend, alias module) belongs to a plugin that is not installed."""

    def __init__(self, what: str, package: str, reason: str | None = None) -> None:
        self.package = package
        detail = f" ({reason})" if reason else ""
        super().__init__(f"{what} needs the {package!r} distribution{detail}: pip install {package}")


class RunNotFoundError(GraflowError, LookupError):
    """No run with this id in the state store that was asked."""

    def __init__(self, run_id: str, where: str) -> None:
        self.run_id = run_id
        self.where = where
        super().__init__(
            f"no run {run_id!r} in {where}; `graflow runs` lists the runs there. Check the id, "
            "and that you point at the store the run used (--state-dir, or --redis-url and --key-prefix)"
        )


class RunInUseError(GraflowError):
    """A run is being executed by another live driver, which holds its lease."""

    def __init__(self, run_id: str, holder: str, seconds_left: float) -> None:
        self.run_id = run_id
        self.holder = holder
        super().__init__(
            f"run {run_id!r} is being executed by {holder} (its lease runs for {seconds_left:.0f}s more); "
            "wait for it to finish, or stop that process and resume once its lease has expired"
        )


class StateStoreError(GraflowRuntimeError):
    """The state store cannot be read or written: the run stops, and can be resumed once it is back."""


class RunStateLostError(StateStoreError):
    """What the store held for a run vanished (a flush, an eviction, a restart without persistence)."""


class TaskTimeoutError(GraflowError, TimeoutError):
    """An attempt of a task ran longer than its ``@task(timeout=...)``; retried like any failure."""

    retriable = True

    def __init__(self, task_id: str, timeout: float, what_happened: str = "") -> None:
        self.task_id = task_id
        self.timeout = timeout
        detail = f" ({what_happened})" if what_happened else ""
        super().__init__(
            f"task {task_id!r} ran longer than its timeout of {timeout:g}s{detail}; raise "
            "@task(timeout=...), or make the task faster"
        )

    def __reduce__(self) -> tuple[type, tuple[str, float, str]]:
        return (type(self), (self.task_id, self.timeout, ""))


class CheckpointError(GraflowError):
    """A checkpoint file cannot be written, read or used."""


def attach_task_id(exc: BaseException, task_id: str, note: str | None = None) -> BaseException:
    """Record which task raised ``exc`` without changing its type.

    The exception keeps its class and traceback, so ``except ValueError`` in user code
    still works; ``exc.graflow_task_id`` and (on Python 3.11+) a note name the task.
    The innermost task wins: an exception that already carries an id keeps it.
    """
    if getattr(exc, "graflow_task_id", None) is None:
        try:
            exc.graflow_task_id = task_id  # type: ignore[attr-defined]
        except AttributeError:  # exceptions with __slots__ cannot take attributes
            pass
        if hasattr(exc, "add_note"):
            exc.add_note(note or f"raised by graflow task {task_id!r}")
    return exc
