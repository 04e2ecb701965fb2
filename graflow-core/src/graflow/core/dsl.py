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
    """A sequence of nodes built by ``>>``; runs its elements one after another.

    ``a >> b >> c >> ...`` builds chains left to right, so a chain keeps a link to the
    chain it extends and materializes its element list only when asked: building a
    chain of n tasks costs O(n), not O(n^2).
    """

    def __init__(self, left: Chain | Executable, right: Executable) -> None:
        self._left = left
        self._right = right
        self._elements: list[Executable] | None = None

    @property
    def elements(self) -> list[Executable]:
        if self._elements is None:
            tail: list[list[Executable]] = []
            node: Chain | Executable = self
            while isinstance(node, Chain) and node._elements is None:
                tail.append(_elements(node._right))
                node = node._left
            flat = list(node._elements) if isinstance(node, Chain) else [node]  # type: ignore[arg-type]
            for part in reversed(tail):
                flat.extend(part)
            self._elements = flat
        return self._elements

    @property
    def task_id(self) -> str:  # type: ignore[override]
        """Derived from the elements (``"a>>group_1"``), so renaming a group shows here too."""
        return ">>".join(e.task_id for e in self.elements)

    @property
    def head(self) -> Executable:
        node: Chain | Executable = self
        while isinstance(node, Chain):
            node = node._left
        return node

    @property
    def tail(self) -> Executable:
        right = self._right
        return right.tail if isinstance(right, Chain) else right

    def iter_tasks(self) -> list[Executable]:
        found: list[Executable] = []
        for element in self.elements:
            found.extend(element.iter_tasks())
        return found


def _require_executable(value: Any, operator: str) -> Executable:
    if not isinstance(value, Executable):
        hint = (
            "To run tasks side by side, combine them with |: (a | b) >> c."
            if isinstance(value, (list, tuple, set))
            else "Decorate the function with @task."
        )
        raise TypeError(
            f"'{operator}' composes tasks: expected a @task function, a TaskWrapper, a group "
            f"or a chain, got {type(value).__name__} ({value!r}). {hint}"
        )
    return value


def _elements(node: Executable) -> list[Executable]:
    return node.elements if isinstance(node, Chain) else [node]


def sequence(left: Executable, right: Executable) -> Chain:
    """``left >> right``: ``right`` runs after ``left``; returns the combined chain."""
    from graflow.core.workflow import current_workflow_context

    _require_executable(left, ">>")
    _require_executable(right, ">>")
    graph = current_workflow_context().graph
    tail = left.tail if isinstance(left, Chain) else left
    head = right.head if isinstance(right, Chain) else right
    # A chain's elements are already in the graph; only its ends need checking.
    graph.add_node(tail if isinstance(left, Chain) else left)
    graph.add_node(right if not isinstance(right, Chain) else head)
    graph.add_edge(tail.task_id, head.task_id)
    return Chain(left, right)


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
