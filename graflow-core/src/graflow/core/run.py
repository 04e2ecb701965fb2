"""One execution of one :class:`~graflow.core.context.ExecutionContext`: the scheduling loop.

The per-task path is kept short on purpose: a plain task costs a deque pop, a handler
call and a few dict operations. The task context, retries, lifecycle hooks and remote
placement are paid for only by the tasks and runs that use them, and the run's graph is
copied only if the run adds a task to it.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from graflow.core.attempt import run_with_retries
from graflow.core.context import NO_DATA, TaskExecutionContext, task_context
from graflow.core.handler import TaskHandler, TaskResult
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.exceptions import (
    CycleLimitExceededError,
    DuplicateTaskError,
    ExecutorUnavailableError,
    GraflowError,
    GraflowWorkflowCanceledError,
    MaxStepsExceededError,
    ParallelGroupError,
    attach_task_id,
)
from graflow.plugins.manager import GraflowPluginManager, get_plugin_manager
from graflow.remote.build import build_envelope
from graflow.remote.envelope import apply_outcome

if TYPE_CHECKING:
    from graflow.coordination.coordinator import Coordinator
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable, ParallelGroup
    from graflow.core.requests import TaskRequests
    from graflow.core.task import TaskWrapper
    from graflow.remote.executor import RemoteExecutor

__all__ = ["DEFAULT_HANDLER", "Deadline", "Run"]

DEFAULT_HANDLER: Final = "direct"


class Run:
    """The state of one execution of one context: handlers, coordinators, the loop."""

    def __init__(self, handlers: Mapping[str, TaskHandler], context: ExecutionContext) -> None:
        self.context = context
        self.manager = get_plugin_manager()
        self.engine_handlers = handlers
        self.handlers: dict[str | None, TaskHandler] = {}
        self.resolve_handlers(context.graph.tasks.values())
        #: The manager when some plugin wraps tasks (asked once per run), else ``None``.
        self.task_wrappers: GraflowPluginManager | None = (
            self.manager if self.manager.wraps("graflow_run_task") else None
        )
        self.wrap_group = self.manager.wraps("graflow_run_group")
        self.steps = itertools.count(1)
        self.iteration_data: dict[str, Any] = {}
        self.terminated: str | None = None
        self.last_task_id: str | None = None
        self.coordinators: dict[str, Coordinator] = {}
        #: Where tasks run when the queue backend places them elsewhere (a worker fleet).
        self.queue_executor: RemoteExecutor | None = context.queue.executor
        self.lock = threading.Lock()

    # --- handlers ---------------------------------------------------------------------

    def resolve_handlers(self, tasks: Iterable[Executable]) -> None:
        """Resolve every handler name the tasks use, failing before any task runs."""
        for task in tasks:
            name = task.handler_type
            if name not in self.handlers:
                self.handlers[name] = self._handler(name or DEFAULT_HANDLER, task.task_id)

    def _handler(self, name: str, task_id: str) -> TaskHandler:
        handler = self.engine_handlers.get(name)
        if handler is not None:
            return handler
        try:
            return self.manager.task_handler(name)
        except GraflowError as error:
            exc: Exception = error
            if name not in self.manager.names("graflow_task_handlers"):
                exc = self.manager.unknown_name_error(
                    "graflow_task_handlers", name, extra_known=list(self.engine_handlers)
                )
            raise _with_task(exc, task_id) from None

    # --- the run ------------------------------------------------------------------------

    def execute(self) -> Any:
        """Run from the start nodes to the end; the last executed task's result."""
        view = self.context.graph.scheduling_view()
        flow = Flow(
            self, view.nodes, view.successors, view.predecessors, top_level=True, executor=self.queue_executor
        )
        flow.ready.extend(self.context.start_nodes)
        flow.drive()
        return self.context.results.get(self.last_task_id) if self.last_task_id else None

    def close(self) -> None:
        """Release coordinators' pools and the queue backend."""
        for coordinator in self.coordinators.values():
            coordinator.close()
        self.context.queue.close()

    def run_node(
        self, task: Executable, executor: RemoteExecutor | None, deadline: Deadline | None = None
    ) -> TaskRequests | None:
        """Execute one node; return what it asked for, or ``None`` when it asked nothing.

        With an ``executor`` (a remote coordinator's, or the queue backend's), tasks whose
        handler is relocatable run there; the others still run here through their handler.
        With the ``deadline`` of a group member's branch, a node that finishes after it
        records nothing and raises :class:`TimeoutError`: its group has judged it already.
        """
        context = self.context
        step = next(self.steps)
        if step > context.max_steps:
            raise MaxStepsExceededError(context.max_steps, self.last_task_id)
        context.steps = step
        tid = task.task_id
        cycles = context.cycle_counts
        cycle = cycles[tid] = cycles.get(tid, 0) + 1
        if task.kind == "group":
            self.run_group(task)  # type: ignore[arg-type]
            if deadline is not None and deadline.expired():
                self._drop_late(tid, deadline)
            return None
        handler = self.handlers[task.handler_type]
        wrapper: TaskWrapper = task  # type: ignore[assignment]
        if (
            wrapper.needs_context
            or wrapper.retry_policy is not None
            or self.task_wrappers is not None
            or (executor is not None and handler.relocatable)
        ):
            return self._run_with_context(wrapper, handler, cycle, executor, deadline)
        if cycle > (wrapper.max_cycles or context.max_cycles):
            raise CycleLimitExceededError(tid, wrapper.max_cycles or context.max_cycles)
        explicit = context.explicit_results
        explicit.discard(tid)
        try:
            result = handler.execute_task(task, context)
        except BaseException as exc:
            attach_task_id(exc, tid)
            raise
        if deadline is not None and deadline.expired():
            self._drop_late(tid, deadline)
        if tid in explicit:
            explicit.discard(tid)
        else:
            context.results[tid] = result
        self.last_task_id = tid
        return None

    def _run_with_context(
        self,
        task: TaskWrapper,
        handler: TaskHandler,
        cycle: int,
        executor: RemoteExecutor | None,
        deadline: Deadline | None,
    ) -> TaskRequests | None:
        """The full path: task context, retries, lifecycle hooks, remote execution."""
        context = self.context
        tid = task.task_id
        if cycle > (task.max_cycles or context.max_cycles):
            raise CycleLimitExceededError(tid, task.max_cycles or context.max_cycles)
        tctx = TaskExecutionContext(task, context, cycle, self.iteration_data.pop(tid, NO_DATA))
        call: Callable[[], Any]
        if executor is not None and handler.relocatable:

            def call() -> Any:
                return apply_outcome(executor.execute(build_envelope(task, context, tctx)), context, tctx)

        else:

            def call() -> Any:
                return handler.execute_task(task, context)

        # Set for remote attempts too: lifecycle wrappers read the attempt's context
        # (cycle, requests adopted from the outcome) through current_task_context().
        token = task_context.set(tctx)
        try:
            result = run_with_retries(task, tctx, call, self.task_wrappers)
        finally:
            task_context.reset(token)
        if deadline is not None and deadline.expired():
            self._drop_late(tid, deadline)
        explicit = context.explicit_results
        if tid in explicit:
            explicit.discard(tid)
        else:
            context.results[tid] = result
        self.last_task_id = tid
        return tctx.requests

    def _drop_late(self, tid: str, deadline: Deadline) -> None:
        """Forget what a node of a timed-out member left behind and end its branch.

        The group counted the member as failed when its timeout expired, and a failed
        member has no result; only a thread or a fleet task can still be running then
        (a process is stopped), and its late result must not reach the tasks after the group.
        """
        context = self.context
        context.explicit_results.discard(tid)
        context.results.pop(tid, None)
        raise TimeoutError(
            f"member {deadline.member_id!r} outlived its group's timeout of {deadline.timeout}s; "
            f"{tid!r} finished too late to count"
        )

    # --- groups -------------------------------------------------------------------------

    def run_group(self, group: ParallelGroup) -> None:
        policy = group.policy or ErrorHandlingPolicy.STRICT
        policy.validate(group)
        coordinator = self._coordinator(group.backend)
        context = self.context

        def run() -> dict[str, Any]:
            clock = None if group.timeout is None else _GroupClock(group.timeout)

            def run_member(member: Executable, executor: RemoteExecutor | None) -> TaskResult:
                deadline = None if clock is None else clock.deadline(member.task_id)
                return self.run_member(member, executor, deadline=deadline)

            try:
                outcomes = coordinator.run_members(group, run_member, context)
            finally:
                if clock is not None:
                    clock.settled = True  # a member still running now was abandoned
            by_id = {o.task_id: o for o in outcomes}
            try:
                policy.on_group_finished(group.task_id, group.members, by_id, context)
            except ParallelGroupError as exc:
                cause = next((o.error for o in outcomes if o.error is not None), None)
                raise exc from cause
            results = {o.task_id: o.result for o in outcomes if o.success}
            context.results[group.task_id] = results
            return results

        if self.wrap_group:
            self.manager.hook.graflow_run_group(group=group, context=context, run=run)
        else:
            run()
        self.last_task_id = group.task_id

    def _coordinator(self, name: str) -> Coordinator:
        coordinator = self.coordinators.get(name)
        if coordinator is None:
            coordinator = self.coordinators[name] = self.manager.coordinator(name)
        return coordinator

    def run_member(
        self, member: Executable, executor: RemoteExecutor | None = None, *, deadline: Deadline | None = None
    ) -> TaskResult:
        """Run one member's branch; its failure becomes a failed :class:`TaskResult`.

        The branch is scheduled from the calling thread; with an ``executor`` its
        relocatable tasks run there. With its group's ``deadline``, a branch that outlives
        it starts no further task and keeps no late result: its group has already judged
        it as failed.
        """
        started = time.perf_counter()
        elements = member.elements
        tasks = {e.task_id: e for e in elements}
        succ: dict[str, list[str]] = {a.task_id: [b.task_id] for a, b in itertools.pairwise(elements)}
        succ[elements[-1].task_id] = []
        pred = {b.task_id: [a.task_id] for a, b in itertools.pairwise(elements)}
        flow = Flow(self, tasks, succ, pred, top_level=False, executor=executor or self.queue_executor)
        flow.deadline = deadline
        flow.ready.append(elements[0].task_id)
        try:
            flow.drive()
        except (GraflowWorkflowCanceledError, MaxStepsExceededError, ExecutorUnavailableError):
            raise
        except Exception as exc:
            return TaskResult(
                member.task_id,
                False,
                error_message=f"{type(exc).__name__}: {exc}",
                duration=time.perf_counter() - started,
                error=exc,
            )
        # The member's own result (a chain's: its last element's), not that of tasks it added at run time.
        result = self.context.results.get(elements[-1].task_id)
        return TaskResult(member.task_id, True, result, duration=time.perf_counter() - started)


class _GroupClock:
    """A group's timeout: counted from its first member's start, over once the group has its outcomes.

    One clock for the whole group, as its coordinator keeps one: a member that had to
    wait for a free worker gets what is left of the timeout, not a timeout of its own.
    A member still running once the coordinator returned was abandoned (a thread or a
    fleet task cannot be stopped) and counted as failed, so it is late whatever the clock says.
    """

    __slots__ = ("_lock", "at", "settled", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        #: Monotonic time the timeout expires; unknown (infinitely far) until a member starts.
        self.at = math.inf
        #: Whether the coordinator returned: every member has its outcome.
        self.settled = False
        self._lock = threading.Lock()

    def deadline(self, member_id: str) -> Deadline:
        with self._lock:
            if self.at == math.inf:
                self.at = time.monotonic() + self.timeout
        return Deadline(member_id, self)


class Deadline:
    """When a group member's branch must have finished: its share of the group's clock."""

    __slots__ = ("_clock", "member_id")

    def __init__(self, member_id: str, clock: _GroupClock) -> None:
        self.member_id = member_id
        self._clock = clock

    @property
    def timeout(self) -> float:
        return self._clock.timeout

    def expired(self) -> bool:
        clock = self._clock
        return clock.settled or time.monotonic() > clock.at


class Flow:
    """Dependency scheduling over one graph: the whole run, or one group member's branch.

    A node becomes ready when its last predecessor finishes. Waiting counts are kept only
    for nodes that have started waiting, so a run costs nothing per node it never reaches.
    """

    __slots__ = ("deadline", "executor", "pred", "ready", "remaining", "run", "succ", "tasks", "top_level")

    def __init__(
        self,
        run: Run,
        tasks: Mapping[str, Executable],
        succ: Mapping[str, Sequence[str]],
        pred: Mapping[str, Sequence[str]],
        *,
        top_level: bool,
        executor: RemoteExecutor | None = None,
    ) -> None:
        self.run = run
        self.tasks = tasks
        self.succ = succ
        self.pred = pred
        self.remaining: dict[str, int] = {}
        self.ready: deque[str] = deque()
        self.top_level = top_level
        self.executor = executor
        #: The group's deadline, for a member branch of a group with a timeout.
        self.deadline: Deadline | None = None

    def drive(self) -> None:
        ready = self.ready
        tasks = self.tasks
        run = self.run
        run_node = run.run_node
        executor = self.executor
        deadline = self.deadline
        release = self.release
        while ready:
            tid = ready.popleft()
            if deadline is not None and deadline.expired():
                raise TimeoutError(
                    f"member {deadline.member_id!r} outlived its group's timeout of {deadline.timeout}s; "
                    f"{tid!r} was not started"
                )
            requests = run_node(tasks[tid], executor, deadline)
            if requests is None:
                release(tid)
            else:
                self.apply(tid, requests)
                tasks = self.tasks  # a task added at run time may have given the run its own graph
            if run.terminated is not None:
                ready.clear()
                return

    def release(self, tid: str) -> None:
        remaining = self.remaining
        pred = self.pred
        for nxt in self.succ[tid]:
            # A node re-entered through next_task() releases its successors again: a
            # released node forgets its count, and waits for all predecessors anew.
            left = remaining.pop(nxt, None)
            if left is None:
                left = len(pred.get(nxt, ()))
            if left > 1:
                remaining[nxt] = left - 1
            else:
                self.ready.append(nxt)

    def apply(self, tid: str, requests: TaskRequests) -> None:
        """Carry out what a task asked for: cancel, new tasks, another iteration, terminate."""
        if requests.cancel is not None:
            raise GraflowWorkflowCanceledError(
                f"workflow canceled by task {tid!r}: {requests.cancel}", task_id=tid
            )
        for executable, _goto in requests.next_tasks:
            self.ready.append(self._add_dynamic(tid, executable))
        if requests.iterate:
            self.run.iteration_data[tid] = requests.iteration_data
            self.ready.append(tid)
        elif not requests.goto:
            self.release(tid)
        if requests.terminate is not None:
            self.run.terminated = requests.terminate

    def _add_dynamic(self, from_id: str, executable: Executable) -> str:
        """Register a task added at run time; an existing node is simply run again."""
        run = self.run
        nid = executable.task_id
        with run.lock:
            graph = run.context.graph
            known = graph.find(nid)
            if known is not None and known is not executable and graph.strict:
                raise DuplicateTaskError(
                    nid,
                    f"next_task(): a different task is already registered as {nid!r}; give each "
                    f"dynamic task its own id (e.g. TaskWrapper(f'{nid}_{{n}}', fn)) or pass the existing task",
                )
            run.resolve_handlers(executable.iter_tasks())
            graph = run.context.graph_for_update()
            if self.top_level:
                graph.add_dynamic_edge(from_id, executable)
                view = graph.scheduling_view()  # the copy's tables, if the graph was just copied
                self.tasks, self.succ, self.pred = view.nodes, view.successors, view.predecessors
            else:
                graph.add_dynamic_task(from_id, executable)
                if nid not in self.tasks:
                    self.tasks[nid] = executable  # type: ignore[index]
                    self.succ[nid] = []  # type: ignore[index]
        return nid


def _with_task(exc: Exception, task_id: str) -> Exception:
    """Reword a resolution error so it names the task that asked for the name."""
    exc.args = (f"task {task_id!r}: {exc.args[0]}", *exc.args[1:]) if exc.args else exc.args
    if isinstance(exc, ImportError) and exc.msg:  # str(ImportError) shows .msg, not .args
        exc.msg = f"task {task_id!r}: {exc.msg}"
    return exc
