"""The workflow engine: takes ready nodes, runs them through their handlers, releases successors.

One engine can run many workflows; the state of a run lives in its
:class:`~graflow.core.context.ExecutionContext` and in a private :class:`_Run`. The
per-task path is kept short on purpose: a plain task costs a queue pop, a handler call
and a few dict operations. Lifecycle hooks, the task context and retries are paid for
only by the tasks and runs that use them.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from graflow.core.context import NO_DATA, TaskExecutionContext
from graflow.core.dsl import Chain
from graflow.core.group import ParallelGroup
from graflow.core.handler import TaskHandler, TaskResult
from graflow.core.task import Executable, _current_task
from graflow.exceptions import (
    CycleLimitExceededError,
    DuplicateTaskError,
    ExecutorUnavailableError,
    GraflowError,
    GraflowWorkflowCanceledError,
    GraphCompilationError,
    MaxStepsExceededError,
    ParallelGroupError,
    attach_task_id,
)
from graflow.plugins.manager import get_plugin_manager
from graflow.queue.memory import MemoryTaskQueue

if TYPE_CHECKING:
    from graflow.coordination.coordinator import Coordinator
    from graflow.core.context import ExecutionContext
    from graflow.core.task import TaskWrapper
    from graflow.queue.base import TaskQueue
    from graflow.remote.executor import RemoteExecutor

__all__ = ["WorkflowEngine"]

DEFAULT_HANDLER: Final = "direct"


class WorkflowEngine:
    """Runs workflows. Handlers registered here take precedence over plugin-provided ones::

    engine = WorkflowEngine()
    engine.register_handler("gpu", GPUHandler())
    last_result = engine.execute(context)
    """

    def __init__(self) -> None:
        self._handlers: dict[str, TaskHandler] = {}

    def register_handler(self, name: str, handler: TaskHandler) -> None:
        """Make ``@task(handler=name)`` run through ``handler`` in this engine's runs."""
        if not isinstance(handler, TaskHandler):
            raise TypeError(
                f"register_handler({name!r}, ...) needs a TaskHandler instance, got {type(handler).__name__}"
            )
        self._handlers[name] = handler

    def execute(self, context: ExecutionContext, start_task_id: str | None = None) -> Any:
        """Run the workflow of ``context`` to the end; return the last executed task's result.

        A task's exception propagates as itself, with ``exc.graflow_task_id`` set.
        """
        if start_task_id is not None:
            if start_task_id not in context.graph.nodes:
                raise GraphCompilationError(
                    f"unknown start task {start_task_id!r}; known nodes: {', '.join(context.graph.nodes)}. "
                    "Pass one of them, or None to start at every node without predecessors."
                )
            context.start_nodes = [start_task_id]
        run = _Run(self, context)
        manager = get_plugin_manager()
        try:
            if manager.wraps("graflow_run_workflow"):
                return manager.hook.graflow_run_workflow(context=context, run=run.run)
            return run.run()
        finally:
            run.close()


class _Run:
    """The state of one execution of one context."""

    def __init__(self, engine: WorkflowEngine, context: ExecutionContext) -> None:
        self.context = context
        self.manager = get_plugin_manager()
        self.engine_handlers = engine._handlers
        self.handlers: dict[str | None, TaskHandler] = {}
        self._resolve_handlers(context.graph.tasks.values())
        self.wrap_task = self.manager.wraps("graflow_run_task")
        self.wrap_group = self.manager.wraps("graflow_run_group")
        self.steps = itertools.count(1)
        self.iteration_data: dict[str, Any] = {}
        self.terminated: str | None = None
        self.last_task_id: str | None = None
        self.coordinators: dict[str, Coordinator] = {}
        #: Where tasks run when the queue backend is remote (a worker fleet); ``None``: here.
        self.queue_executor: RemoteExecutor | None = getattr(context.queue, "executor", None)
        self.lock = threading.Lock()

    # --- handlers ---------------------------------------------------------------------

    def _resolve_handlers(self, tasks: Any) -> None:
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

    def run(self) -> Any:
        context = self.context
        graph = context.graph
        flow = _Flow(
            self,
            graph._nodes,
            graph._succ,
            {n: len(p) for n, p in graph._pred.items()},
            context.queue,
            top_level=True,
            executor=self.queue_executor,
        )
        for node in context.start_nodes:
            context.queue.enqueue(node)
        flow.drive()
        return context.results.get(self.last_task_id) if self.last_task_id else None

    def close(self) -> None:
        """Release coordinators' pools and the queue."""
        for coordinator in self.coordinators.values():
            coordinator.close()
        self.context.queue.close()

    def run_node(
        self, task: Executable, executor: RemoteExecutor | None = None
    ) -> TaskExecutionContext | None:
        """Execute one node; return its task context when it made requests, else ``None``.

        With an ``executor`` (a remote coordinator's), tasks whose handler is relocatable
        run there; the others still run here through their handler.
        """
        context = self.context
        step = next(self.steps)
        if step > context.max_steps:
            raise MaxStepsExceededError(context.max_steps, self.last_task_id)
        context.steps = step
        tid = task.task_id
        cycles = context.cycle_counts
        cycle = cycles[tid] = cycles.get(tid, 0) + 1
        if isinstance(task, ParallelGroup):
            self.run_group(task)
            return None
        handler = self.handlers[task.handler_type]
        wrapper: TaskWrapper = task  # type: ignore[assignment]
        if (
            wrapper.needs_context
            or wrapper.retry_policy is not None
            or self.wrap_task
            or (executor is not None and handler.relocatable)
        ):
            return self._run_with_context(wrapper, handler, cycle, executor)
        if cycle > (wrapper.max_cycles or context.max_cycles):
            raise CycleLimitExceededError(tid, wrapper.max_cycles or context.max_cycles)
        explicit = context._explicit
        explicit.discard(tid)
        try:
            result = handler.execute_task(task, context)
        except BaseException as exc:
            attach_task_id(exc, tid)
            raise
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
        executor: RemoteExecutor | None = None,
    ) -> TaskExecutionContext | None:
        """The full path: task context, retries, lifecycle hooks, remote execution."""
        context = self.context
        tid = task.task_id
        if cycle > (task.max_cycles or context.max_cycles):
            raise CycleLimitExceededError(tid, task.max_cycles or context.max_cycles)
        data = self.iteration_data.pop(tid, NO_DATA)
        tctx = TaskExecutionContext(task, context, cycle, data)
        # Set for remote attempts too: lifecycle wrappers read the attempt's context
        # (cycle, requests adopted from the outcome) through current_task_context().
        token = _current_task.set(tctx)
        try:
            if executor is not None and handler.relocatable:
                result = self._attempts(task, self._remote_call(task, tctx, executor, data), tctx)
            else:
                result = self._attempts(task, lambda: handler.execute_task(task, context), tctx)
        finally:
            _current_task.reset(token)
        explicit = context._explicit
        if tid in explicit:
            explicit.discard(tid)
        else:
            context.results[tid] = result
        self.last_task_id = tid
        return tctx if tctx.has_requests else None

    def _remote_call(
        self, task: TaskWrapper, tctx: TaskExecutionContext, executor: RemoteExecutor, data: Any
    ) -> Callable[[], Any]:
        """One attempt on ``executor``: ship an envelope, apply the outcome here.

        ``data`` (the ``next_iteration`` payload) travels through ``tctx``.
        """
        from graflow.remote.build import build_envelope
        from graflow.remote.envelope import apply_outcome

        context = self.context

        def call() -> Any:
            envelope = build_envelope(task, context, tctx, manager=self.manager)
            return apply_outcome(executor.execute(envelope), context, tctx)

        return call

    def _attempts(self, task: TaskWrapper, call: Callable[[], Any], tctx: TaskExecutionContext) -> Any:
        """Run ``call`` under the task's retry policy and the lifecycle hooks."""
        context = self.context
        policy = task.retry_policy
        attempt = 0
        while True:
            attempt += 1
            tctx.retry_count = attempt - 1
            context._explicit.discard(task.task_id)
            try:
                if self.wrap_task:
                    return self.manager.hook.graflow_run_task(
                        task=task, context=context, attempt=attempt, run=call
                    )
                return call()
            except Exception as exc:
                retriable = (
                    policy is not None and attempt <= policy.max_retries and not isinstance(exc, GraflowError)
                )
                if not retriable:
                    note = None
                    if attempt > 1:
                        note = f"graflow task {task.task_id!r} failed after {attempt} attempts"
                    attach_task_id(exc, task.task_id, note)
                    raise
                tctx.reset_requests()
                assert policy is not None
                delay = policy.delay(attempt)
                from graflow._log import get_logger

                get_logger().warning(
                    "task_retry",
                    task_id=task.task_id,
                    attempt=attempt,
                    max_retries=policy.max_retries,
                    delay=round(delay, 3),
                    error=f"{type(exc).__name__}: {exc}",
                )
                time.sleep(delay)
            except BaseException as exc:
                attach_task_id(exc, task.task_id)
                raise

    # --- groups -------------------------------------------------------------------------

    def run_group(self, group: ParallelGroup) -> None:
        from graflow.core.handlers.group_policy import ErrorHandlingPolicy

        policy = group.policy or ErrorHandlingPolicy.STRICT
        policy.validate(group)
        coordinator = self._coordinator(group.backend)
        context = self.context

        def run() -> dict[str, Any]:
            run_member = functools.partial(self.run_member, timeout=group.timeout)
            outcomes = coordinator.run_members(group, run_member, context)
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
        self, member: Executable, executor: RemoteExecutor | None = None, *, timeout: float | None = None
    ) -> TaskResult:
        """Run one member's branch; its failure becomes a failed :class:`TaskResult`.

        The branch is scheduled from the calling thread; with an ``executor`` its
        relocatable tasks run there. With the group's ``timeout``, a branch that outlives
        it starts no further task: its group has already judged it as failed.
        """
        started = time.perf_counter()
        elements = member.elements if isinstance(member, Chain) else [member]
        tasks = {e.task_id: e for e in elements}
        succ = {a.task_id: [b.task_id] for a, b in itertools.pairwise(elements)}
        succ[elements[-1].task_id] = []
        remaining = {e.task_id: (1 if i else 0) for i, e in enumerate(elements)}
        queue = MemoryTaskQueue() if timeout is None else _DeadlineQueue(member.task_id, timeout)
        queue.enqueue(elements[0].task_id)
        flow = _Flow(
            self, tasks, succ, remaining, queue, top_level=False, executor=executor or self.queue_executor
        )
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


class _DeadlineQueue(MemoryTaskQueue):
    """A member branch's queue that hands out no more work once the group's timeout has passed."""

    def __init__(self, member_id: str, timeout: float) -> None:
        super().__init__()
        self._member_id = member_id
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout

    def dequeue(self) -> str | None:
        task_id = super().dequeue()
        if task_id is not None and time.monotonic() > self._deadline:
            raise TimeoutError(
                f"member {self._member_id!r} outlived its group's timeout of {self._timeout}s; "
                f"{task_id!r} was not started"
            )
        return task_id


class _Flow:
    """Dependency scheduling over one graph: the whole run, or one group member's branch."""

    __slots__ = ("executor", "last", "queue", "remaining", "run", "succ", "tasks", "top_level")

    def __init__(
        self,
        run: _Run,
        tasks: dict[str, Executable],
        succ: dict[str, list[str]],
        remaining: dict[str, int],
        queue: TaskQueue,
        *,
        top_level: bool,
        executor: RemoteExecutor | None = None,
    ) -> None:
        self.run = run
        self.tasks = tasks
        self.succ = succ
        self.remaining = remaining
        self.queue = queue
        self.top_level = top_level
        self.executor = executor
        self.last: str | None = None

    def drive(self) -> None:
        queue = self.queue
        tasks = self.tasks
        run = self.run
        run_node = run.run_node
        executor = self.executor
        release = self.release
        while True:
            tid = queue.dequeue()
            if tid is None:
                return
            requests = run_node(tasks[tid], executor)
            self.last = tid
            if requests is None:
                release(tid)
            else:
                self.apply(tid, requests)
            if run.terminated is not None:
                queue.clear()
                return

    def release(self, tid: str) -> None:
        remaining = self.remaining
        for nxt in self.succ[tid]:
            left = remaining[nxt] - 1
            if left <= 0:
                # Reset, so a node re-entered through next_task() releases it again.
                remaining[nxt] = len(self.run.context.graph._pred[nxt]) if self.top_level else 1
                self.queue.enqueue(nxt)
            else:
                remaining[nxt] = left

    def apply(self, tid: str, tctx: TaskExecutionContext) -> None:
        """Carry out what a task asked for: cancel, new tasks, another iteration, terminate."""
        if tctx._cancel is not None:
            raise GraflowWorkflowCanceledError(
                f"workflow canceled by task {tid!r}: {tctx._cancel}", task_id=tid
            )
        for executable, _goto in tctx._next_tasks:
            self.queue.enqueue(self._add_dynamic(tid, executable))
        if tctx._iterate:
            self.run.iteration_data[tid] = tctx._iteration_payload
            self.queue.enqueue(tid)
        elif not tctx._goto:
            self.release(tid)
        if tctx._terminate is not None:
            self.run.terminated = tctx._terminate

    def _add_dynamic(self, from_id: str, executable: Executable) -> str:
        """Register a task added at run time; an existing node is simply run again."""
        run = self.run
        graph = run.context.graph
        nid = executable.task_id
        with run.lock:
            known = graph._tasks.get(nid)
            if known is not None and known is not executable and graph.strict:
                raise DuplicateTaskError(
                    nid,
                    f"next_task(): a different task is already registered as {nid!r}; give each "
                    f"dynamic task its own id (e.g. TaskWrapper(f'{nid}_{{n}}', fn)) or pass the existing task",
                )
            run._resolve_handlers(executable.iter_tasks())
            if self.top_level:
                graph.add_dynamic_edge(from_id, executable)
            else:
                graph.dynamic_edges.append((from_id, nid))
                graph._tasks.setdefault(nid, executable)
            if nid not in self.tasks:
                self.tasks[nid] = executable
                self.succ.setdefault(nid, [])
                self.remaining.setdefault(nid, 0)
        return nid


def _with_task(exc: Exception, task_id: str) -> Exception:
    """Reword a resolution error so it names the task that asked for the name."""
    exc.args = (f"task {task_id!r}: {exc.args[0]}", *exc.args[1:]) if exc.args else exc.args
    if isinstance(exc, ImportError) and exc.msg:  # str(ImportError) shows .msg, not .args
        exc.msg = f"task {task_id!r}: {exc.msg}"
    return exc
