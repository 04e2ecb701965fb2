"""The operator DSL: ``>>`` (then), ``|`` (alongside), and their function forms.

``a >> b`` returns a :class:`Chain` so that a whole sequence can be used as one member
of a group: in ``(a >> (b | c)) | d`` the first member is the chain ``a >> (b | c)``.
Every composition registers its nodes and edges in the active workflow's graph.
"""

from __future__ import annotations

from typing import Any

from graflow.core.group import ParallelGroup
from graflow.core.task import Executable

__all__ = ["Chain", "chain", "combine", "parallel", "sequence"]


class Chain(Executable):
    """A sequence of nodes built by ``>>``; runs its elements one after another."""

    def __init__(self, elements: list[Executable]) -> None:
        self.elements = elements

    @property  # type: ignore[override]
    def task_id(self) -> str:
        """Derived from the elements (``"a>>group_1"``), so renaming a group shows here too."""
        return ">>".join(e.task_id for e in self.elements)

    @property
    def head(self) -> Executable:
        return self.elements[0]

    @property
    def tail(self) -> Executable:
        return self.elements[-1]

    def iter_tasks(self) -> list[Executable]:
        found: list[Executable] = []
        for element in self.elements:
            found.extend(element.iter_tasks())
        return found


def _require_executable(value: Any, operator: str) -> Executable:
    if not isinstance(value, Executable):
        raise TypeError(
            f"'{operator}' composes tasks: expected a @task function, a TaskWrapper, a group "
            f"or a chain, got {type(value).__name__} ({value!r}). Decorate the function with @task."
        )
    return value


def _elements(node: Executable) -> list[Executable]:
    return list(node.elements) if isinstance(node, Chain) else [node]


def sequence(left: Executable, right: Executable) -> Chain:
    """``left >> right``: ``right`` runs after ``left``; returns the combined chain."""
    from graflow.core.workflow import current_workflow_context

    _require_executable(left, ">>")
    _require_executable(right, ">>")
    graph = current_workflow_context().graph
    graph.add_node(left)
    graph.add_node(right)
    tail = left.tail if isinstance(left, Chain) else left
    head = right.head if isinstance(right, Chain) else right
    graph.add_edge(tail.task_id, head.task_id)
    return Chain(_elements(left) + _elements(right))


def combine(left: Executable, right: Executable) -> ParallelGroup:
    """``left | right``: both run independently, as members of one parallel group.

    ``a | b | c`` makes one group of three: a group just made by ``|`` (not yet named,
    configured or connected) takes further members instead of nesting.
    """
    from graflow.core.workflow import current_workflow_context

    _require_executable(left, "|")
    _require_executable(right, "|")
    graph = current_workflow_context().graph
    if isinstance(left, ParallelGroup) and getattr(left, "_open", False) and graph.is_open_group(left):
        graph.add_member(left, right)
        return left
    group = ParallelGroup([])
    group._open = True  # type: ignore[attr-defined]
    graph.add_node(group)
    graph.add_member(group, left)
    graph.add_member(group, right)
    return group


def chain(*tasks: Executable) -> Executable:
    """``chain(a, b, c)`` is ``a >> b >> c``."""
    if not tasks:
        raise TypeError("chain() needs at least one task")
    result: Executable = _require_executable(tasks[0], "chain")
    if len(tasks) == 1:
        from graflow.core.workflow import current_workflow_context

        current_workflow_context().graph.add_node(result)
    for nxt in tasks[1:]:
        result = sequence(result, nxt)
    return result


def parallel(*tasks: Executable) -> ParallelGroup:
    """``parallel(a, b, c)`` is ``a | b | c``, always a new group."""
    from graflow.core.workflow import current_workflow_context

    if len(tasks) < 1:
        raise TypeError("parallel() needs at least one task")
    graph = current_workflow_context().graph
    group = ParallelGroup([])
    graph.add_node(group)
    for member in tasks:
        graph.add_member(group, _require_executable(member, "parallel"))
    return group
