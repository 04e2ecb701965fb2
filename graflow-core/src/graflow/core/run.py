"""One execution of one :class:`~graflow.core.context.ExecutionContext`: the scheduling loop.

The per-task path is kept short on purpose: a plain task costs a deque pop, a handler
call and a few dict operations. The task context, retries, lifecycle hooks, remote
placement and the state store's journal are paid for only by the tasks and runs that
use them, and the run's graph is copied only if the run adds a task to it.

A durable run records each successful step (see :mod:`graflow.state.records`). A resumed
run executes from its start again, but a step found in its history is *replayed*: its
recorded requests are applied and its task does not run. Scheduling is deterministic
given the steps' requests, so replaying them rebuilds exactly what the run had decided.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from graflow.channels.recording import RecordingChannel
from graflow.core.aio import RunLoop, run_loop
from graflow.core.attempt import call_with_timeout, run_with_retries
from graflow.core.context import NO_DATA, TaskExecutionContext, task_context
from graflow.core.frontier import Frontier
from graflow.core.handler import TaskHandler, TaskResult
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.limits import LIMITS
from graflow.core.requests import TaskRequests
from graflow.core.routing import Routing
from graflow.exceptions import (
    CycleLimitExceededError,
    DuplicateTaskError,
    ExecutorUnavailableError,
    GraflowError,
    GraflowRuntimeError,
    GraflowWorkflowCanceledError,
    MaxStepsExceededError,
    ParallelGroupError,
    StateStoreError,
    attach_task_id,
)
from graflow.hitl.types import suspends
from graflow.plugins.manager import GraflowPluginManager, get_plugin_manager
from graflow.remote.build import build_envelope
from graflow.remote.envelope import apply_outcome
from graflow.state.records import ROOT_FLOW, Completion, RunStatus, step_key
from graflow.state.store import RunPlan

if TYPE_CHECKING:
    from graflow.channels.recording import ChannelOp
    from graflow.coordination.coordinator import Coordinator
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable, ParallelGroup
    from graflow.core.graph import TaskGraph
    from graflow.core.task import TaskWrapper
    from graflow.core.workflow import WorkflowContext as WorkflowNode
    from graflow.remote.executor import RemoteExecutor

__all__ = ["DEFAULT_HANDLER", "Deadline", "Flow", "Run"]

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
        self.steps = itertools.count(context.steps + 1)
        self.terminated: str | None = None
        self.last_task_id: str | None = None
        self.coordinators: dict[str, Coordinator] = {}
        #: Where tasks run when the queue backend places them elsewhere (a worker fleet).
        self.queue_executor: RemoteExecutor | None = context.queue.executor
        self.lock = threading.Lock()
        #: Whether steps are recorded or replayed: a durable store, or a history to replay.
        self.recording = context.store.durable or context.history is not None
        #: Checkpoints asked for by group members, written once their group completed.
        self.pending_checkpoints: list[tuple[str | None, dict[str, Any]]] = []
        #: Channel writes made outside any task (a handler, a coordinator), kept with the next step.
        self.loose_ops: list[ChannelOp] = []
        #: Nested workflow node id -> its graph, namespaced for this run (built on first use).
        self._inner_graphs: dict[str, TaskGraph] = {}
        #: The run's event loop for async tasks, started the first time one runs.
        self.loop = RunLoop(f"graflow-loop-{context.session_id[:8]}")
        frontier = context.frontier
        if frontier is None:
            frontier = context.frontier = Frontier.starting_at(context.start_nodes)
        self.frontier = frontier
        self.iteration_data = frontier.iteration_data

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
        """Run from the frontier to the end; the last executed task's result."""
        context = self.context
        if context.store.durable and context.journal is None:
            self._start_journal()
        if (
            context.journal is not None
            and context.store.keeps_channel
            and context.channel.remote_spec() is None
        ):
            # Keep the in-process channel's writes with the step that made them (the store rebuilds it).
            context.channel = RecordingChannel(context.channel, self._keep_op)
        graph = context.graph
        graph.validate(context.start_nodes)
        view = graph.scheduling_view()
        flow = Flow(
            self,
            view.nodes,
            view.successors,
            view.predecessors,
            key=ROOT_FLOW,
            executor=self.queue_executor,
            top_level=True,
        )
        flow.loops = _loops(graph.loop_edges(context.start_nodes))
        token = run_loop.set(self.loop)
        try:
            flow.drive()
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            run_loop.reset(token)
        self._finish(None)
        return context.results.get(self.last_task_id) if self.last_task_id else None

    def _start_journal(self) -> None:
        """Record the run's plan in its durable store."""
        context = self.context
        channel = context.channel
        keeps_channel = context.store.keeps_channel and channel.remote_spec() is None
        plan = RunPlan(
            run_id=context.session_id,
            workflow=context.workflow_name,
            graph=context.graph,
            start_nodes=list(context.start_nodes),
            max_steps=context.max_steps,
            config=dict(context.config),
            queue_backend=context.backends[0],
            channel_backend=context.backends[1],
            initial_channel=channel.snapshot() if keeps_channel else {},
        )
        context.journal = context.store.start_run(plan)

    def _keep_op(self, op: ChannelOp) -> None:
        tctx = task_context.get()
        if tctx is not None and tctx.journal_ops is not None:
            tctx.journal_ops.append(op)
        else:
            self.loose_ops.append(op)

    def _finish(self, exc: BaseException | None) -> None:
        journal = self.context.journal
        if journal is None:
            return
        if isinstance(exc, StateStoreError):
            journal.close()  # the store is what failed: nothing more can be written to it
            return
        if exc is None:
            journal.finish(RunStatus.SUCCEEDED)
        elif suspends(exc):  # a question nobody answered in time: kept, to resume once answered
            journal.finish(RunStatus.SUSPENDED, str(exc)[:2000])
        elif isinstance(exc, GraflowWorkflowCanceledError):
            journal.finish(RunStatus.CANCELED, str(exc))
        else:
            task_id = getattr(exc, "graflow_task_id", None)
            where = f"task {task_id!r}: " if task_id else ""
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__  # Ctrl-C has no message
            journal.finish(RunStatus.FAILED, f"{where}{what}"[:2000])

    def close(self) -> None:
        """Release coordinators' pools, the event loop and the queue backend."""
        for coordinator in self.coordinators.values():
            coordinator.close()
        self.loop.close()
        self.context.queue.close()

    def run_node(self, task: Executable, flow: Flow) -> TaskRequests | None:
        """Execute one node; return what it asked for, or ``None`` when it asked nothing.

        With an executor (a remote coordinator's, or the queue backend's), tasks whose
        handler is relocatable run there; the others still run here through their handler.
        """
        context = self.context
        step = next(self.steps)
        if step > context.max_steps:
            raise MaxStepsExceededError(context.max_steps, self.last_task_id)
        context.steps = step
        tid = task.task_id
        cycles = context.cycle_counts
        cycle = cycles[tid] = cycles.get(tid, 0) + 1
        if self.recording:
            return self._run_recorded(task, flow, cycle)
        if task.kind != "task":
            requests = self._run_container(task, flow, None)
            if flow.deadline is not None and flow.deadline.expired():
                self._drop_late(tid, flow.deadline)
            return requests
        handler = self.handlers[task.handler_type]
        wrapper: TaskWrapper = task  # type: ignore[assignment]
        executor = flow.executor
        if (
            wrapper.needs_context
            or wrapper.retry_policy is not None
            or self.task_wrappers is not None
            or (executor is not None and handler.relocatable)
        ):
            return self._run_with_context(wrapper, handler, cycle, executor, None, flow)
        if cycle > (wrapper.max_cycles or context.max_cycles):
            raise CycleLimitExceededError(tid, wrapper.max_cycles or context.max_cycles)
        explicit = context.explicit_results
        explicit.discard(tid)
        try:
            result = handler.execute_task(task, context)
        except BaseException as exc:
            attach_task_id(exc, tid)
            raise
        if flow.deadline is not None and flow.deadline.expired():
            self._drop_late(tid, flow.deadline)
        if tid in explicit:
            explicit.discard(tid)
        else:
            context.results[tid] = result
        self.last_task_id = tid
        return None

    def _run_recorded(self, task: Executable, flow: Flow, cycle: int) -> TaskRequests | None:
        """A step of a durable or resumed run: replayed from the history, or run and recorded."""
        tid = task.task_id
        occurrences = flow.occurrences
        occurrence = occurrences[tid] = occurrences.get(tid, 0) + 1
        key = step_key(flow.key, tid, occurrence)
        history = self.context.history
        if history is not None:
            done = history.pop(key, None)
            if done is not None:
                self.last_task_id = tid
                return self._replayed(done)
        if task.kind != "task":
            requests = self._run_container(task, flow, key)
            if flow.deadline is not None and flow.deadline.expired():
                self._drop_late(tid, flow.deadline)
            return requests
        handler = self.handlers[task.handler_type]
        executor = flow.executor if handler.relocatable else None
        return self._run_with_context(task, handler, cycle, executor, key, flow)  # type: ignore[arg-type]

    def _replayed(self, done: Completion) -> TaskRequests | None:
        """What a recorded step asked for, applied again without running it (no new checkpoint)."""
        recorded = done.requests
        if recorded is None:
            return None
        graph = self.context.graph
        return TaskRequests(
            next_tasks=[(graph.same_task(ex), goto) for ex, goto in recorded.next_tasks],
            goto=recorded.goto,
            iterate=recorded.iterate,
            iteration_data=recorded.iteration_data,
            terminate=recorded.terminate,
            cancel=recorded.cancel,
        )

    def _run_with_context(
        self,
        task: TaskWrapper,
        handler: TaskHandler,
        cycle: int,
        executor: RemoteExecutor | None,
        key: str | None,
        flow: Flow,
    ) -> TaskRequests | None:
        """The full path: task context, retries, lifecycle hooks, remote execution, the journal."""
        context = self.context
        deadline = flow.deadline
        tid = task.task_id
        if cycle > (task.max_cycles or context.max_cycles):
            raise CycleLimitExceededError(tid, task.max_cycles or context.max_cycles)
        tctx = TaskExecutionContext(task, context, cycle, self.iteration_data.pop(tid, NO_DATA))
        journal = context.journal
        if journal is not None and isinstance(context.channel, RecordingChannel):
            tctx.journal_ops = []
        call: Callable[[], Any]
        recorded_remotely = [False]
        if executor is not None and handler.relocatable:
            step = key if context.store.records_remote_steps else None

            def call() -> Any:
                outcome = executor.execute(build_envelope(task, context, tctx, step=step, queue=flow.queue))
                recorded_remotely[0] = outcome.step_recorded
                return apply_outcome(outcome, context, tctx)

        elif task.timeout is not None and not task.is_async:  # an async task's coroutine is cancelled instead
            timeout = task.timeout

            def call() -> Any:
                return call_with_timeout(lambda: handler.execute_task(task, context), tctx, timeout)

        else:

            def call() -> Any:
                return handler.execute_task(task, context)

        routing = task.routing
        if (
            routing is not None
            and routing.limited
            and not (executor is not None and executor.enforces_limits)
        ):
            call = _limited(call, routing.limit_key(tid), routing)
        # Set for remote attempts too: lifecycle wrappers read the attempt's context
        # (cycle, requests adopted from the outcome) through current_task_context().
        started = time.perf_counter()
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
            result = context.results[tid]
        else:
            context.results[tid] = result
        self.last_task_id = tid
        if journal is not None and key is not None and not recorded_remotely[0]:
            duration = time.perf_counter() - started
            self._record(key, tid, tctx.requests, tctx.journal_ops, result, duration, tctx.retry_count + 1)
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

    def _record(
        self,
        key: str,
        tid: str,
        requests: TaskRequests | None,
        ops: list[ChannelOp] | None,
        result: Any,
        duration: float,
        attempts: int = 1,
    ) -> None:
        journal = self.context.journal
        assert journal is not None
        if self.loose_ops:
            with self.lock:
                ops, self.loose_ops = [*self.loose_ops, *(ops or ())], []
        worker = self.context.task_workers.get(tid, "")
        journal.record(Completion(key, tid, requests, ops or [], worker, duration, attempts), result)

    # --- nodes that hold other nodes: groups, nested workflows --------------------------------

    def _run_container(self, node: Executable, flow: Flow, key: str | None) -> TaskRequests | None:
        if node.kind == "group":
            return self.run_group(node, flow, key)  # type: ignore[arg-type]
        if node.kind == "workflow":
            return self.run_workflow(node, flow, key)  # type: ignore[arg-type]
        raise GraflowRuntimeError(f"node {node.task_id!r} is a {node.kind!r}, which the engine cannot run")

    def run_workflow(self, node: WorkflowNode, flow: Flow, key: str | None) -> TaskRequests | None:
        """Run a nested workflow as one node: its tasks, namespaced ``"<node id>."``, in a flow of their own.

        Its result is the result of the last of its tasks that ran.
        """
        context = self.context
        nid = node.task_id
        prefix = nid + "."
        started = time.perf_counter()
        with self.lock:
            inner = self._inner_graphs.get(nid)
            if inner is None:
                inner = self._inner_graphs[nid] = node.graph.namespaced(prefix)
                self.resolve_handlers(inner.tasks.values())
        starts = [prefix + tid for tid in node.graph.get_start_nodes()]
        inner.validate(starts)
        view = inner.scheduling_view()
        sub = Flow(
            self,
            view.nodes,
            view.successors,
            view.predecessors,
            key=f"{key if key is not None else flow.key}/{nid}",
            executor=flow.executor,
        )
        sub.loops = _loops(inner.loop_edges(starts))
        sub.deadline = flow.deadline
        sub.ready.extend(starts)
        sub.drive()
        result = context.results.get(self.last_task_id) if self.last_task_id else None
        context.results[nid] = result
        self.last_task_id = nid
        if key is not None and context.journal is not None:
            self._record(key, nid, None, None, result, time.perf_counter() - started)
        return None

    # --- groups -------------------------------------------------------------------------

    def run_group(self, group: ParallelGroup, flow: Flow, key: str | None) -> TaskRequests | None:
        policy = group.policy or ErrorHandlingPolicy.STRICT
        policy.validate(group)
        coordinator = self._coordinator(group.backend)
        context = self.context
        started = time.perf_counter()
        prefix = None if key is None else f"{key}/"
        queue = group.queue or flow.queue

        def run() -> dict[str, Any]:
            clock = None if group.timeout is None else _GroupClock(group.timeout)

            def run_member(member: Executable, executor: RemoteExecutor | None) -> TaskResult:
                deadline = None if clock is None else clock.deadline(member.task_id)
                return self.run_member(member, executor, deadline=deadline, flow_prefix=prefix, queue=queue)

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
            results = self.manager.hook.graflow_run_group(group=group, context=context, run=run)
        else:
            results = run()
        self.last_task_id = group.task_id
        if key is not None and context.journal is not None:
            self._record(key, group.task_id, None, None, results, time.perf_counter() - started)
        # Members' checkpoints are written by the top-level flow, now that the group completed.
        return TaskRequests() if self.pending_checkpoints else None

    def _coordinator(self, name: str) -> Coordinator:
        coordinator = self.coordinators.get(name)
        if coordinator is None:
            coordinator = self.coordinators[name] = self.manager.coordinator(name)
        return coordinator

    def run_member(
        self,
        member: Executable,
        executor: RemoteExecutor | None = None,
        *,
        deadline: Deadline | None = None,
        flow_prefix: str | None = None,
        queue: str | None = None,
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
        key = f"{flow_prefix or ''}{member.task_id}"
        flow = Flow(self, tasks, succ, pred, key=key, executor=executor or self.queue_executor, queue=queue)
        flow.deadline = deadline
        flow.ready.append(elements[0].task_id)
        try:
            flow.drive()
        except (
            GraflowWorkflowCanceledError,
            MaxStepsExceededError,
            ExecutorUnavailableError,
            StateStoreError,
        ):
            raise
        except Exception as exc:
            if suspends(exc):  # the run waits for an answer: the member neither failed nor succeeded
                raise
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

    def write_checkpoints(self) -> None:
        """Write the checkpoints asked for by the step that just completed (or its group's members)."""
        from graflow.core.checkpoint import CheckpointManager  # lazy: the codec loads cloudpickle

        with self.lock:
            asked, self.pending_checkpoints = self.pending_checkpoints, []
        for path, metadata in asked:
            CheckpointManager.create_checkpoint(self.context, path, metadata)


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
    The top-level flow works on the run's :class:`~graflow.core.frontier.Frontier`.
    """

    __slots__ = (
        "deadline",
        "executor",
        "key",
        "loops",
        "occurrences",
        "pred",
        "queue",
        "ready",
        "remaining",
        "run",
        "succ",
        "tasks",
        "top_level",
    )

    def __init__(
        self,
        run: Run,
        tasks: Mapping[str, Executable],
        succ: Mapping[str, Sequence[str]],
        pred: Mapping[str, Sequence[str]],
        *,
        key: str,
        executor: RemoteExecutor | None = None,
        top_level: bool = False,
        queue: str | None = None,
    ) -> None:
        self.run = run
        self.tasks = tasks
        self.succ = succ
        self.pred = pred
        #: This flow's part of step keys (``""`` at the top level).
        self.key = key
        #: The run's own graph (not a group member's branch, not a nested workflow).
        self.top_level = top_level
        self.executor = executor
        #: The queue of the group this branch belongs to (the innermost that names one).
        self.queue = queue
        if self.top_level:
            frontier = run.frontier
            self.ready: deque[str] = frontier.ready
            self.remaining: dict[str, int] = frontier.remaining
            self.occurrences: dict[str, int] = frontier.occurrences
        else:
            self.ready = deque()
            self.remaining = {}
            self.occurrences = {}
        #: The group's deadline, for a member branch of a group with a timeout.
        self.deadline: Deadline | None = None
        #: Of a graph with cycles: node -> the targets of its edges that close a cycle.
        self.loops: Mapping[str, frozenset[str]] = {}

    def drive(self) -> None:
        ready = self.ready
        tasks = self.tasks
        run = self.run
        run_node = run.run_node
        release = self.release
        deadline = self.deadline
        while ready:
            tid = ready.popleft()
            if deadline is not None and deadline.expired():
                raise TimeoutError(
                    f"member {deadline.member_id!r} outlived its group's timeout of {deadline.timeout}s; "
                    f"{tid!r} was not started"
                )
            requests = run_node(tasks[tid], self)
            if requests is None:
                release(tid)
            else:
                self.apply(tid, requests)
                tasks = self.tasks  # a task added at run time may have given the run its own graph
            if run.terminated is not None:
                ready.clear()
                return

    def release(self, tid: str) -> None:
        if self.loops:
            self._release_in_loops(tid)
            return
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

    def _release_in_loops(self, tid: str) -> None:
        """:meth:`release` in a graph with cycles: an edge that closes one re-runs its target now,
        and a node waits only for its predecessors outside the cycles that lead back to it."""
        loops = self.loops
        back = loops.get(tid, frozenset())
        remaining = self.remaining
        for nxt in self.succ[tid]:
            if nxt in back:
                self.ready.append(nxt)
                continue
            left = remaining.pop(nxt, None)
            if left is None:
                left = sum(1 for p in self.pred.get(nxt, ()) if nxt not in loops.get(p, ()))
            if left > 1:
                remaining[nxt] = left - 1
            else:
                self.ready.append(nxt)

    def apply(self, tid: str, requests: TaskRequests) -> None:
        """Carry out what a task asked for: cancel, new tasks, another iteration, terminate, checkpoint."""
        run = self.run
        if requests.cancel is not None:
            raise GraflowWorkflowCanceledError(
                f"workflow canceled by task {tid!r}: {requests.cancel}", task_id=tid
            )
        for executable, _goto in requests.next_tasks:
            self.ready.append(self._add_dynamic(tid, executable))
        if requests.iterate:
            run.iteration_data[tid] = requests.iteration_data
            self.ready.append(tid)
        elif not requests.goto:
            self.release(tid)
        if requests.terminate is not None:
            run.terminated = requests.terminate
        if requests.checkpoint is not None:
            with run.lock:
                run.pending_checkpoints.append(requests.checkpoint)
        if self.top_level and run.pending_checkpoints:
            run.write_checkpoints()

    def _add_dynamic(self, from_id: str, executable: Executable) -> str:
        """Register what a task added at run time; return the node to queue now.

        A task or a group becomes a node (an existing one simply runs again); a chain's
        elements become nodes joined by edges, and its head runs first.
        """
        run = self.run
        elements = executable.elements
        with run.lock:
            graph = run.context.graph
            for element in elements:
                self._check_new(graph, element)
            run.resolve_handlers(executable.iter_tasks())
            graph = run.context.graph_for_update()
            for element in elements:
                if self.top_level:
                    graph.add_dynamic_edge(from_id, element)
                else:
                    graph.add_dynamic_task(from_id, element)
                    self.tasks.setdefault(element.task_id, element)  # type: ignore[attr-defined]
                    self.succ.setdefault(element.task_id, [])  # type: ignore[attr-defined]
            for before, after in itertools.pairwise(elements):
                if self.top_level:
                    graph.add_edge(before.task_id, after.task_id)
                else:
                    self.succ[before.task_id] = [after.task_id]  # type: ignore[index]
                    self.pred[after.task_id] = [before.task_id]  # type: ignore[index]
            if self.top_level:
                view = graph.scheduling_view()  # the copy's tables, if the graph was just copied
                self.tasks, self.succ, self.pred = view.nodes, view.successors, view.predecessors
        return elements[0].task_id

    @staticmethod
    def _check_new(graph: TaskGraph, node: Executable) -> None:
        """A node added at run time may rerun a node; it may not take a different node's id.

        An unnamed group made at run time (``ctx.next_task(a | b)``) gets a free id instead.
        """
        nid = node.task_id
        known = graph.find(nid)
        if known is None or known is node:
            return
        if node.kind == "group" and not getattr(node, "named", True):
            node.task_id = graph.automatic_id("group")
            return
        if graph.strict:
            raise DuplicateTaskError(
                nid,
                f"next_task(): a different task is already registered as {nid!r}; give each "
                f"dynamic task its own id (e.g. TaskWrapper(f'{nid}_{{n}}', fn)) or pass the existing task",
            )


def _limited(call: Callable[[], Any], key: str, routing: Routing) -> Callable[[], Any]:
    """``call`` counted against its limits in this process (see :mod:`graflow.core.limits`)."""

    def limited() -> Any:
        with LIMITS.slot(key, routing):
            return call()

    return limited


def _loops(edges: frozenset[tuple[str, str]]) -> dict[str, frozenset[str]]:
    by_source: dict[str, set[str]] = {}
    for source, target in edges:
        by_source.setdefault(source, set()).add(target)
    return {source: frozenset(targets) for source, targets in by_source.items()}


def _with_task(exc: Exception, task_id: str) -> Exception:
    """Reword a resolution error so it names the task that asked for the name."""
    exc.args = (f"task {task_id!r}: {exc.args[0]}", *exc.args[1:]) if exc.args else exc.args
    if isinstance(exc, ImportError) and exc.msg:  # str(ImportError) shows .msg, not .args
        exc.msg = f"task {task_id!r}: {exc.msg}"
    return exc
