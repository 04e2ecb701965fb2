"""``with workflow("name") as wf``: the scope in which tasks are defined and composed."""

from __future__ import annotations

import sys
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Final

from graflow.core import scope
from graflow.core.context import ExecutionContext
from graflow.core.engine import WorkflowEngine
from graflow.core.graph import TaskGraph

if TYPE_CHECKING:
    from graflow.queue import QueueBackend

__all__ = ["WorkflowContext", "current_workflow_context", "workflow"]

_current: Final[ContextVar[WorkflowContext | None]] = ContextVar("graflow_workflow", default=None)


class WorkflowContext:
    """A named workflow: its graph, and a way to run it.

    Tasks defined (``@task``) or composed (``>>``, ``|``) inside the ``with`` block
    register in :attr:`graph`.
    """

    def __init__(self, name: str, *, strict: bool = True, graph: TaskGraph | None = None) -> None:
        self.name = name
        self.graph = graph if graph is not None else TaskGraph(strict=strict)
        self._tokens: list[tuple[Token[WorkflowContext | None], Token[TaskGraph | None]]] = []

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
    ) -> Any:
        """Run the workflow and return the last task's result (``(result, context)`` with ``ret_context``).

        ``start_node=None`` starts every node without predecessors. ``initial_channel``
        seeds the channel before the first task runs. ``durable=True`` keeps the run in the
        local state store (``config["state_dir"]``), so ``graflow resume`` can carry it on.
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
        )
        if initial_channel:
            channel = context.channel
            for key, value in initial_channel.items():
                channel.set(key, value)
        result = (engine or WorkflowEngine()).execute(context)
        return (result, context) if ret_context else result

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
        return f"<WorkflowContext {self.name!r} nodes={len(self.graph.nodes)}>"


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
