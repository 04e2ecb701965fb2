"""``with workflow("name") as wf``: the scope in which tasks are defined and composed."""

from __future__ import annotations

import asyncio
import sys
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Final

from graflow.core import scope
from graflow.core.context import ExecutionContext
from graflow.core.dsl import WORKFLOW, Executable
from graflow.core.engine import WorkflowEngine
from graflow.core.graph import TaskGraph

if TYPE_CHECKING:
    from graflow.queue import QueueBackend

__all__ = ["WorkflowContext", "current_workflow_context", "workflow"]

_current: Final[ContextVar[WorkflowContext | None]] = ContextVar("graflow_workflow", default=None)


class WorkflowContext(Executable):
    """A named workflow: its graph, and a way to run it.

    Tasks defined (``@task``) or composed (``>>``, ``|``) inside the ``with`` block
    register in :attr:`graph`. A workflow is also a node of other workflows
    (``prep >> inner >> report``): it runs as one node, its tasks inside the outer run
    (same channel and backends); its result is its last task's result, and outside it its
    tasks' results are read as ``"inner.task_id"``. :meth:`set_name` gives the same
    workflow a second node id, to use it twice in one graph.
    """

    kind = WORKFLOW

    def __init__(self, name: str, *, strict: bool = True, graph: TaskGraph | None = None) -> None:
        self.name = name
        #: The node id of this workflow inside another one (its name, unless :meth:`set_name`).
        self.task_id = name
        self.graph = graph if graph is not None else TaskGraph(strict=strict)
        self._tokens: list[tuple[Token[WorkflowContext | None], Token[TaskGraph | None]]] = []

    def set_name(self, node_id: str) -> WorkflowContext:
        """This workflow as a node called ``node_id`` (a new node: the same workflow may appear twice)."""
        if not isinstance(node_id, str) or not node_id:
            raise TypeError(f"a node name must be a non-empty string, got {node_id!r}")
        node = WorkflowContext(self.name, graph=self.graph)
        node.task_id = node_id
        return node

    def __getstate__(self) -> dict[str, Any]:
        # A workflow travels as a node of another one's graph; an open ``with`` block does not.
        return {**self.__dict__, "_tokens": []}

    def __enter__(self) -> WorkflowContext:
        self._tokens.append((_current.set(self), scope.enter(self.graph)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        mine, graph = self._tokens.pop()
        scope.leave(graph)
        _current.reset(mine)

    def execute(
        self,
        start_node: str | None = None,
        max_steps: int = 10_000,
        ret_context: bool = False,
        initial_channel: dict[str, Any] | None = None,
        *,
        queue_backend: QueueBackend | str = "memory",
        channel_backend: str = "memory",
        config: dict[str, Any] | None = None,
        engine: WorkflowEngine | None = None,
        durable: bool = False,
        priority: int | None = None,
    ) -> Any:
        """Run the workflow and return the last task's result (``(result, context)`` with ``ret_context``).

        ``start_node=None`` starts every node without predecessors. ``initial_channel``
        seeds the channel before the first task runs. ``durable=True`` keeps the run in the
        local state store (``config["state_dir"]``), so ``graflow resume`` can carry it on.
        ``priority`` (0-9, higher first) is that of every task that names none, on a worker fleet.
        """
        context = ExecutionContext.create(
            self.graph,
            start_node=start_node,
            max_steps=max_steps,
            queue_backend=queue_backend,
            channel_backend=channel_backend,
            config=config,
            workflow_name=self.name,
            durable=durable,
            priority=priority,
        )
        if initial_channel:
            channel = context.channel
            for key, value in initial_channel.items():
                channel.set(key, value)
        result = (engine or WorkflowEngine()).execute(context)
        return (result, context) if ret_context else result

    async def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`execute` from a coroutine (same arguments): ``result = await wf.execute_async()``.

        The run goes on in a thread, so the caller's event loop stays free meanwhile.
        """
        return await asyncio.to_thread(self.execute, *args, **kwargs)

    def create_context(self, **kwargs: Any) -> ExecutionContext:
        """An :class:`ExecutionContext` for this workflow's graph (``ExecutionContext.create`` arguments)."""
        kwargs.setdefault("workflow_name", self.name)
        return ExecutionContext.create(self.graph, **kwargs)

    def info(self) -> str:
        """A short human-readable description: nodes, edges, groups, start nodes."""
        graph = self.graph
        lines = [
            f"Workflow {self.name!r}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
            f"{len(graph.tasks)} tasks",
            f"  start: {', '.join(graph.get_start_nodes()) or '(none)'}",
        ]
        lines.extend(f"  {a} >> {b}" for a, b in graph.edges)
        for group in graph.groups():
            lines.append(f"  group {group.task_id}: {' | '.join(group.member_ids)} ({group.backend})")
        return "\n".join(lines)

    def show_info(self) -> None:
        """Write :meth:`info` to standard output."""
        sys.stdout.write(self.info() + "\n")

    def to_mermaid(self) -> str:
        return self.graph.to_mermaid()

    def __repr__(self) -> str:
        node = "" if self.task_id == self.name else f" as {self.task_id!r}"
        return f"<WorkflowContext {self.name!r}{node} nodes={len(self.graph.nodes)}>"


def workflow(name: str) -> WorkflowContext:
    """Start a workflow definition: ``with workflow("etl") as wf: extract >> load``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"a workflow name must be a non-empty string, got {name!r}")
    return WorkflowContext(name)


#: The process's default workflow: what module-level compositions build (SPEC section 4).
_DEFAULT: Final = WorkflowContext("default", graph=scope.default_graph())


def current_workflow_context() -> WorkflowContext:
    """The workflow of the enclosing ``with`` block, else the process's default one."""
    return _current.get() or _DEFAULT
