"""Run state: :class:`ExecutionContext` (one per run) and :class:`TaskExecutionContext` (one per task run)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, TypeVar

from graflow.channels.memory import MemoryChannel
from graflow.channels.typed import TypedChannel
from graflow.core.dsl import Executable
from graflow.core.graph import TaskGraph
from graflow.core.requests import TaskRequests
from graflow.core.routing import check_priority
from graflow.exceptions import ConfigError, CycleLimitExceededError, GraphCompilationError
from graflow.hitl.manager import FeedbackManager, feedback_id
from graflow.hitl.types import (
    FeedbackError,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackTimeoutError,
    FeedbackType,
)
from graflow.plugins.manager import get_plugin_manager
from graflow.queue import QueueBackend
from graflow.queue.base import InProcess
from graflow.state.memory import IN_PROCESS

if TYPE_CHECKING:
    from graflow.channels.base import Channel
    from graflow.channels.recording import ChannelOp
    from graflow.core.frontier import Frontier
    from graflow.core.task import TaskWrapper
    from graflow.queue.base import Placement
    from graflow.state.records import Completion
    from graflow.state.store import RunJournal, StateStore

__all__ = [
    "ExecutionContext",
    "QueueBackend",
    "TaskExecutionContext",
    "current_task_context",
    "task_context",
]

M = TypeVar("M")

#: Iterations a task may run when neither ``@task(max_cycles=...)`` nor config says.
DEFAULT_MAX_CYCLES: Final = 100
#: Marks "no next_iteration data" (``None`` is valid data).
NO_DATA: Final = object()

#: The context of the task running in this thread. The engine sets it only for tasks
#: that need it (``inject_context``, parameters to fill, lifecycle wrappers), so a plain
#: task pays nothing; plugins read it through :func:`current_task_context`.
task_context: Final[ContextVar[TaskExecutionContext | None]] = ContextVar(
    "graflow_current_task", default=None
)


def current_task_context() -> TaskExecutionContext | None:
    """The :class:`TaskExecutionContext` of the task running here, if the engine set one."""
    return task_context.get()


def _backend_name(value: object, what: str) -> str:
    name = getattr(value, "value", value)
    if not isinstance(name, str):
        raise ConfigError(f"{what} must be a backend name or QueueBackend, got {type(value).__name__}")
    return name.lower()


class ExecutionContext:
    """Everything one run owns: its graph, channel, queue backend, results and limits.

    Build it with :meth:`create`, run it with :meth:`WorkflowEngine.execute
    <graflow.core.engine.WorkflowEngine.execute>`, then read results from it.
    """

    def __init__(
        self,
        graph: TaskGraph,
        *,
        start_nodes: list[str],
        max_steps: int,
        channel: Channel,
        queue: Placement,
        config: Mapping[str, Any],
        session_id: str,
        workflow_name: str | None = None,
        store: StateStore | None = None,
    ) -> None:
        self._graph = graph
        self._graph_owned = False
        self.start_nodes = start_nodes
        self.max_steps = max_steps
        self.channel = channel
        #: The run's queue backend: where its tasks execute (see :mod:`graflow.queue.base`).
        self.queue = queue
        self.config = config
        #: The run id.
        self.session_id = session_id
        self.workflow_name = workflow_name or "workflow"
        self.max_cycles: int = int(config.get("max_cycles", DEFAULT_MAX_CYCLES))
        #: The priority of the run's tasks that name none (``None``: the default, 5).
        self.priority: int | None = config.get("priority")
        #: Task id -> result (the return value, or what a handler stored). A store that
        #: holds results elsewhere (Redis) gives a mapping that reads from it when asked.
        self.results: MutableMapping[str, Any] = {}
        #: Task id -> how many times it started in this run.
        self.cycle_counts: dict[str, int] = {}
        #: Task id -> ``host:pid`` of the process that last ran it, for tasks run remotely.
        self.task_workers: dict[str, str] = {}
        #: Tasks whose handler stored a result itself (``set_result``) during the current
        #: attempt; the engine then keeps that result instead of the handler's return value.
        self.explicit_results: set[str] = set()
        #: How many task executions the run has made so far.
        self.steps = 0
        #: Names of the queue and channel backends, so a resumed run uses the same ones.
        self.backends: tuple[str, str] = ("memory", "memory")
        #: Where the run's state is kept (the in-process store keeps nothing).
        self.store: StateStore = store or IN_PROCESS
        view = self.store.results_view(session_id)
        if view is not None:
            self.results = view
        #: The run's write side in a durable store, once the run started (``None`` otherwise).
        self.journal: RunJournal | None = None
        #: Step key -> completion, of an earlier execution of this run being resumed:
        #: the engine replays these instead of running their tasks again.
        self.history: dict[str, Completion] | None = None
        #: The top-level scheduling state, once the run started (or restored from a checkpoint).
        self.frontier: Frontier | None = None
        #: Where the latest checkpoint of this run was written (``task_ctx.checkpoint()``).
        self.last_checkpoint_path: str | None = None
        self._feedback: FeedbackManager | None = None

    @classmethod
    def create(
        cls,
        graph: TaskGraph,
        start_node: str | None = None,
        max_steps: int = 10_000,
        queue_backend: QueueBackend | str = QueueBackend.MEMORY,
        channel_backend: str = "memory",
        config: Mapping[str, Any] | None = None,
        *,
        session_id: str | None = None,
        workflow_name: str | None = None,
        durable: bool = False,
        priority: int | None = None,
    ) -> ExecutionContext:
        """Resolve the backends by name and check the graph, before anything runs.

        ``config`` is passed to the backends (``redis_client``/``redis_url``, ``key_prefix``, ...)
        and may set ``max_cycles``, the default iteration budget per task. The run's state
        store follows the queue backend (a store of the same name, as for Redis), else it
        is the in-process store, or with ``durable=True`` the local one
        (``config["state_dir"]``); ``config["state_store"]`` names one explicitly.
        ``priority`` (0-9) is that of the run's tasks that name none (``config["priority"]``).
        """
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ConfigError(f"max_steps must be a positive int, got {max_steps!r}")
        config = dict(config or {})
        if priority is not None:
            config["priority"] = check_priority(priority, "the run")
        start_nodes = _start_nodes(graph, start_node)
        session_id = session_id or uuid.uuid4().hex
        manager = get_plugin_manager()
        queue_name = _backend_name(queue_backend, "queue_backend")
        channel_name = _backend_name(channel_backend, "channel_backend")
        store = _state_store(queue_name, durable, config)
        queue = manager.resolve("graflow_queue_backends", queue_name)(config)
        channel = manager.resolve("graflow_channel_backends", channel_name)(session_id, config)
        context = cls(
            graph,
            start_nodes=start_nodes,
            max_steps=max_steps,
            channel=channel,
            queue=queue,
            config=config,
            session_id=session_id,
            workflow_name=workflow_name,
            store=store,
        )
        context.backends = (queue_name, channel_name)
        return context

    @classmethod
    def for_one_task(
        cls,
        task: Executable,
        channel: Channel,
        *,
        session_id: str,
        workflow_name: str | None = None,
        max_cycles: int | None = None,
    ) -> ExecutionContext:
        """A run of ``task`` alone, in this process: for a task run on its own or sent elsewhere."""
        graph = TaskGraph()
        graph.add_node(task)
        return cls(
            graph,
            start_nodes=[task.task_id],
            max_steps=1,
            channel=channel,
            queue=InProcess(),
            config={} if max_cycles is None else {"max_cycles": max_cycles},
            session_id=session_id,
            workflow_name=workflow_name,
        )

    @property
    def graph(self) -> TaskGraph:
        """The run's graph: the workflow's own until the run adds a task, then the run's copy.

        Tasks added at run time appear here and never in the workflow's definition.
        """
        return self._graph

    def graph_for_update(self) -> TaskGraph:
        """The run's own graph, copied from the workflow's on first use (copy on write)."""
        if not self._graph_owned:
            self._graph = self._graph.copy()
            self._graph_owned = True
        return self._graph

    def get_channel(self) -> Channel:
        """The run's channel."""
        return self.channel

    def get_typed_channel(self, message_type: type[M]) -> TypedChannel[M]:
        """A view of the channel that validates values against ``message_type``."""
        return TypedChannel(self.channel, message_type)

    def set_result(self, task_id: str, value: Any) -> None:
        """Store a task's result (a handler may call this; otherwise its return value is stored)."""
        self.results[task_id] = value
        self.explicit_results.add(task_id)

    def get_result(self, task_id: str, default: Any = None) -> Any:
        """A task's result, or ``default`` if it has none (not run, or failed)."""
        return self.results.get(task_id, default)

    @property
    def completed_tasks(self) -> list[str]:
        """Ids of the tasks (and groups) that completed, in the order they first did."""
        return list(self.results)

    @property
    def feedback_manager(self) -> FeedbackManager:
        """The questions this run's tasks ask people, and the way to answer them (:mod:`graflow.hitl`).

        The run's store keeps them: an in-process run's are answered from another thread
        of this process; a durable run's from anywhere that reaches its store.
        """
        manager = self._feedback
        if manager is None:
            backend = self.store.feedback()
            if backend is None:
                raise FeedbackError(
                    f"run {self.session_id!r} has {self.store.where}, so it keeps no questions: a task "
                    "placed in a process apart from its run (a pool process of a run that is not "
                    "durable, a container) cannot ask one. Make the run durable (durable=True, or "
                    "`graflow run --durable`) so pool processes reach its store (Redis workers always "
                    "do), or ask from a task that runs in the driver (a container reaches no store)"
                )
            manager = self._feedback = FeedbackManager(backend)
        return manager

    @property
    def durable(self) -> bool:
        """Whether the run's state outlives this process."""
        return self.store.durable

    def __repr__(self) -> str:
        return f"<ExecutionContext {self.workflow_name!r} session={self.session_id[:8]} steps={self.steps}>"


def _state_store(queue: str, durable: bool, config: Mapping[str, Any]) -> StateStore:
    """``config["state_store"]``, else the queue backend's own store (Redis keeps every run), else
    the in-process store, or the local one for ``durable=True``."""
    manager = get_plugin_manager()
    chosen = config.get("state_store")
    if chosen:
        store: StateStore = manager.resolve("graflow_state_stores", str(chosen))(config)
        return store
    if queue in manager.names("graflow_state_stores"):
        store = manager.resolve("graflow_state_stores", queue)(config)
        if store.durable or not durable:
            return store
    return manager.resolve("graflow_state_stores", "local" if durable else "memory")(config)  # type: ignore[no-any-return]


def _start_nodes(graph: TaskGraph, start_node: str | None) -> list[str]:
    """Where the run starts, checked: a graph whose every node waits on a cycle names the cycle."""
    if start_node is None:
        start_nodes = graph.get_start_nodes()
        graph.validate(start_nodes)
        if not start_nodes:
            raise GraphCompilationError(
                "nothing to run: the graph has no tasks. Define tasks inside `with workflow(...)` "
                "or compose them with >> and |"
            )
        return start_nodes
    if start_node not in graph.nodes:
        known = ", ".join(graph.nodes) or "(none)"
        owner = graph.owner_of(start_node)
        hint = f" ({start_node!r} is a member of group {owner!r}; start at the group)" if owner else ""
        raise GraphCompilationError(
            f"unknown start node {start_node!r}{hint}; known nodes: {known}. Pass one of them, "
            "or start_node=None to start at every node without predecessors"
        )
    graph.validate([start_node])
    return [start_node]


class TaskExecutionContext:
    """What a running task sees of its run, and how it steers the run.

    Passed as the first argument to ``@task(inject_context=True)`` functions. Requests
    (``next_task``, ``next_iteration``, ``terminate_workflow``, ``cancel_workflow``) take
    effect when the task returns successfully; a task that raises requests nothing.
    """

    __slots__ = (
        "_asked",
        "_iteration_data",
        "_requests",
        "_started",
        "cycle_count",
        "execution_context",
        "journal_ops",
        "max_cycles",
        "max_retries",
        "retry_count",
        "task",
        "task_id",
    )

    def __init__(
        self,
        task: TaskWrapper,
        execution_context: ExecutionContext,
        cycle_count: int = 1,
        iteration_data: Any = NO_DATA,
    ) -> None:
        self.task = task
        self.task_id = task.task_id
        self.execution_context = execution_context
        #: 1 on the first run of the task, 2 on its first ``next_iteration``, ...
        self.cycle_count = cycle_count
        self.max_cycles: int = task.max_cycles or execution_context.max_cycles
        self.retry_count = 0
        self.max_retries = task.max_retries
        self._iteration_data = iteration_data
        self._started = time.perf_counter()
        self._requests: TaskRequests | None = None
        #: This step's channel writes, when the run's store keeps the channel (else ``None``).
        self.journal_ops: list[ChannelOp] | None = None
        self._asked = 0

    @classmethod
    def standalone(cls, task: TaskWrapper) -> TaskExecutionContext:
        """A context for ``task.run()`` outside any run: a fresh in-memory run of its own."""
        return cls(task, ExecutionContext.for_one_task(task, MemoryChannel(), session_id=uuid.uuid4().hex))

    # --- identity and data -----------------------------------------------------------

    @property
    def session_id(self) -> str:
        """The run id."""
        return self.execution_context.session_id

    @property
    def has_iteration_data(self) -> bool:
        return self._iteration_data is not NO_DATA

    @property
    def iteration_data(self) -> Any:
        """The ``data`` passed to the ``next_iteration`` that started this run of the task."""
        return None if self._iteration_data is NO_DATA else self._iteration_data

    def get_channel(self) -> Channel:
        return self.execution_context.channel

    def get_typed_channel(self, message_type: type[M]) -> TypedChannel[M]:
        return self.execution_context.get_typed_channel(message_type)

    def get_result(self, task_id: str, default: Any = None) -> Any:
        """A task's result; inside a nested workflow, a sibling's (by its own id) comes first."""
        results = self.execution_context.results
        namespace = getattr(self.task, "namespace", "")
        if namespace and namespace + task_id in results:
            return results[namespace + task_id]
        return results.get(task_id, default)

    def elapsed_time(self) -> float:
        """Seconds since this task started."""
        return time.perf_counter() - self._started

    def can_iterate(self) -> bool:
        """Whether ``next_iteration`` is still within ``max_cycles``."""
        return self.cycle_count < self.max_cycles

    # --- what the task asked for (read-only; for plugins and handlers) -------------------

    @property
    def requests(self) -> TaskRequests | None:
        """What this attempt asked for so far; ``None`` when it asked for nothing."""
        return self._requests

    @property
    def has_requests(self) -> bool:
        return self._requests is not None

    def _asking(self) -> TaskRequests:
        if self._requests is None:
            self._requests = TaskRequests()
        return self._requests

    def reset_requests(self) -> None:
        """Forget requests of a failed attempt, so a retry starts clean."""
        self._requests = None

    def for_attempt(self) -> TaskExecutionContext:
        """A context for one attempt that may be abandoned (a timed-out thread), so what it asks
        for after it was abandoned reaches nobody; :meth:`adopt_attempt` takes a finished one's."""
        attempt = TaskExecutionContext(
            self.task, self.execution_context, self.cycle_count, self._iteration_data
        )
        attempt.retry_count = self.retry_count
        attempt.journal_ops = [] if self.journal_ops is not None else None
        return attempt

    def adopt_attempt(self, attempt: TaskExecutionContext) -> None:
        """Take over what a finished :meth:`for_attempt` context asked for and wrote."""
        if attempt.requests is not None:
            self.adopt_requests(attempt.requests)
        if attempt.journal_ops and self.journal_ops is not None:
            self.journal_ops.extend(attempt.journal_ops)

    def adopt_requests(self, requests: TaskRequests) -> None:
        """Take over what the same attempt asked for elsewhere (a remote outcome's requests)."""
        self._asking().merge(requests)

    @property
    def requested_next_tasks(self) -> tuple[tuple[Executable, bool], ...]:
        """``(task, goto)`` for every ``next_task`` call of this attempt."""
        return tuple(self._requests.next_tasks) if self._requests else ()

    @property
    def requested_iteration(self) -> bool:
        """Whether this attempt called ``next_iteration``."""
        return self._requests is not None and self._requests.iterate

    @property
    def requested_termination(self) -> str | None:
        """The ``terminate_workflow`` message, if it was called."""
        return self._requests.terminate if self._requests else None

    @property
    def requested_cancellation(self) -> str | None:
        """The ``cancel_workflow`` message, if it was called."""
        return self._requests.cancel if self._requests else None

    # --- steering ----------------------------------------------------------------------

    def next_task(self, executable: Executable, goto: bool = False) -> str:
        """Run ``executable`` after this task; returns its id.

        A new or an existing task, a chain (``a >> b``: its tasks in order) or a group
        (``a | b``: under its own backend and policy). ``goto=True`` also skips this task's
        normal successors: control jumps there.
        """
        if not isinstance(executable, Executable):
            raise TypeError(
                "next_task() takes a task (a @task function or TaskWrapper), a chain (a >> b) or a "
                f"group (a | b), got {type(executable).__name__}"
            )
        self._asking().add_next(executable, goto)
        return executable.task_id

    def next_iteration(self, data: Any = None) -> None:
        """Run this task again after it returns; ``data`` is passed to that next run.

        The task's successors wait until a run that does not ask for another iteration.
        """
        if not self.can_iterate():
            raise CycleLimitExceededError(self.task_id, self.max_cycles)
        requests = self._asking()
        requests.iterate = True
        requests.iteration_data = data

    def terminate_workflow(self, message: str = "terminated") -> None:
        """Finish the run normally once this task returns; nothing else is started."""
        self._asking().terminate = message

    def cancel_workflow(self, message: str = "canceled") -> None:
        """Stop the run abnormally: ``execute`` raises :class:`GraflowWorkflowCanceledError`."""
        self._asking().cancel = message

    def checkpoint(self, path: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        """Write a checkpoint of the run once this task has completed (its requests applied).

        ``path`` (``.pkl`` is added) defaults to the state directory's ``checkpoints/``;
        ``context.last_checkpoint_path`` tells where it went. Inside a parallel group's
        member, the checkpoint is written when the group has completed.
        See :class:`graflow.core.checkpoint.CheckpointManager`.
        """
        self._asking().checkpoint = (path, dict(metadata or {}))

    # --- asking a person (graflow.hitl) ------------------------------------------------

    def request_feedback(
        self,
        feedback_type: FeedbackType | str,
        prompt: str,
        options: list[str] | None = None,
        timeout: float = 180.0,
        metadata: dict[str, Any] | None = None,
        notification: dict[str, Any] | None = None,
        channel_key: str | None = None,
        *,
        write_to_channel: bool | None = None,
    ) -> FeedbackResponse:
        """Ask a person and wait (at most ``timeout`` seconds) for the answer.

        The request is kept in the run's state store, where ``graflow feedback``, a
        :class:`~graflow.hitl.FeedbackManager` or the dashboard answers it; the waiting
        task sleeps until then. ``notification={"webhook_url": URL}`` POSTs the request
        as JSON when it is made; ``channel_key`` writes the answer to the channel for
        later tasks, as the existing releases do: its value (``approved``, ``text``,
        ``selected``, ...) under ``channel_key``, the whole answer as a dict under
        ``channel_key + ".__feedback_response__"`` (``write_to_channel=False`` keeps the
        key in the request without writing). No answer in time raises
        :class:`~graflow.hitl.FeedbackTimeoutError`: a durable run then *suspends*
        (``graflow resume`` after an answer runs this task again, and this call returns
        that answer at once); any other run fails.
        """
        kind = _feedback_kind(feedback_type)
        if kind in (FeedbackType.SELECTION, FeedbackType.MULTI_SELECTION):
            if not options or not all(isinstance(o, str) for o in options):
                raise ConfigError(f"a {kind} request needs options=[...]: a non-empty list of strings")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if write_to_channel and channel_key is None:
            raise ConfigError("write_to_channel=True needs channel_key=... (the key to write the answer to)")
        context = self.execution_context
        manager = context.feedback_manager
        self._asked += 1
        request = FeedbackRequest(
            feedback_id=feedback_id(context.session_id, self.task_id, self.cycle_count, self._asked),
            run_id=context.session_id,
            task_id=self.task_id,
            feedback_type=kind,
            prompt=prompt,
            options=list(options) if options is not None else None,
            metadata=dict(metadata or {}),
            timeout=float(timeout),
            channel_key=channel_key,
        )
        hook = get_plugin_manager().hook.graflow_feedback_requested
        response = manager.ask(request, notification, lambda asked: hook(request=asked, context=context))
        if response is None:
            raise FeedbackTimeoutError(
                request.feedback_id, context.session_id, timeout, durable=context.durable
            )
        if channel_key is not None and write_to_channel is not False:
            channel = self.get_channel()
            channel.set(channel_key, response.value)
            channel.set(f"{channel_key}.__feedback_response__", response.to_json())
        return response

    def request_approval(self, prompt: str, timeout: float = 180.0, **options: Any) -> FeedbackResponse:
        """Ask yes or no; ``answer.approved`` is the answer (``answer.reason`` may say why)."""
        return self.request_feedback(FeedbackType.APPROVAL, prompt, timeout=timeout, **options)

    def request_text_input(self, prompt: str, timeout: float = 180.0, **options: Any) -> FeedbackResponse:
        """Ask for text; ``answer.text`` is the answer."""
        return self.request_feedback(FeedbackType.TEXT, prompt, timeout=timeout, **options)

    def request_selection(
        self, prompt: str, options: list[str], timeout: float = 180.0, **extra: Any
    ) -> FeedbackResponse:
        """Ask for one of ``options``; ``answer.selected`` is the choice."""
        return self.request_feedback(FeedbackType.SELECTION, prompt, options, timeout=timeout, **extra)

    def request_multi_selection(
        self, prompt: str, options: list[str], timeout: float = 180.0, **extra: Any
    ) -> FeedbackResponse:
        """Ask for some of ``options``; ``answer.selected_multiple`` lists the choices."""
        return self.request_feedback(FeedbackType.MULTI_SELECTION, prompt, options, timeout=timeout, **extra)

    def request_custom(self, prompt: str, timeout: float = 180.0, **options: Any) -> FeedbackResponse:
        """Ask for any JSON object (described by ``metadata``); ``answer.custom_data`` is the answer."""
        return self.request_feedback(FeedbackType.CUSTOM, prompt, timeout=timeout, **options)

    def __repr__(self) -> str:
        return f"<TaskExecutionContext {self.task_id!r} cycle={self.cycle_count}>"


def _feedback_kind(value: FeedbackType | str) -> FeedbackType:
    try:
        return FeedbackType(value)
    except ValueError:
        kinds = ", ".join(repr(str(kind)) for kind in FeedbackType)
        raise ConfigError(
            f"feedback_type must be one of {kinds} (or graflow.hitl.FeedbackType), got {value!r}"
        ) from None
