"""Text renderings of a :class:`~graflow.core.graph.TaskGraph`: Mermaid, Graphviz dot, ASCII."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graflow.core.dsl import Executable
    from graflow.core.graph import TaskGraph

__all__ = ["to_ascii", "to_dot", "to_mermaid"]


def _mermaid_id(task_id: str) -> str:
    return re.sub(r"\W", "_", task_id)


def _label(task_id: str) -> str:
    return task_id.replace('"', "'")


def _member_edges(member: Executable) -> list[tuple[str, str]]:
    return [(a.task_id, b.task_id) for a, b in itertools.pairwise(member.elements)]


def to_mermaid(graph: TaskGraph) -> str:
    """A Mermaid ``flowchart TD``; each parallel group is a ``subgraph``."""
    lines = ["flowchart TD"]
    edges = list(graph.edges)

    def emit(node: Executable, indent: str) -> None:
        if node.kind == "group":
            lines.append(f'{indent}subgraph {_mermaid_id(node.task_id)}["{_label(node.task_id)} (parallel)"]')
            for member in node.members:
                for element in member.elements:
                    emit(element, indent + "    ")
                edges.extend(_member_edges(member))
            lines.append(f"{indent}end")
        else:
            lines.append(f'{indent}{_mermaid_id(node.task_id)}["{_label(node.task_id)}"]')

    for tid in graph.nodes:
        emit(graph.get_node(tid), "    ")
    lines.extend(f"    {_mermaid_id(a)} --> {_mermaid_id(b)}" for a, b in edges)
    return "\n".join(lines)


def to_dot(graph: TaskGraph) -> str:
    """Graphviz ``digraph``; each parallel group is a ``cluster``."""
    lines = ["digraph workflow {", "    rankdir=TB;", "    node [shape=box];"]
    edges = list(graph.edges)

    def emit(node: Executable, indent: str) -> None:
        if node.kind == "group":
            lines.append(f'{indent}subgraph "cluster_{node.task_id}" {{')
            lines.append(f'{indent}    label="{node.task_id} (parallel)";')
            lines.append(f'{indent}    "{node.task_id}" [shape=point];')
            for member in node.members:
                for element in member.elements:
                    emit(element, indent + "    ")
                edges.extend(_member_edges(member))
            lines.append(f"{indent}}}")
        else:
            lines.append(f'{indent}"{node.task_id}";')

    for tid in graph.nodes:
        emit(graph.get_node(tid), "    ")
    lines.extend(f'    "{a}" -> "{b}";' for a, b in edges)
    lines.append("}")
    return "\n".join(lines)


def _describe(node: Executable) -> str:
    if node.kind == "group":
        inner = " | ".join(_describe(m) for m in node.members)
        return f"[{node.task_id}: {inner}]"
    if node.kind == "chain":
        return "(" + " >> ".join(_describe(e) for e in node.elements) + ")"
    return node.task_id


def to_ascii(graph: TaskGraph) -> str:
    """One line per node in dependency order, with its successors: readable in any terminal."""
    order = _topological(graph)
    width = max((len(_describe(graph.get_node(t))) for t in order), default=0)
    lines = []
    for tid in order:
        succ = graph.successors(tid)
        arrow = f"  --> {', '.join(succ)}" if succ else ""
        lines.append(f"{_describe(graph.get_node(tid)).ljust(width)}{arrow}")
    return "\n".join(lines)


def _topological(graph: TaskGraph) -> list[str]:
    indegree = {n: len(graph.predecessors(n)) for n in graph.nodes}
    ready = [n for n, d in indegree.items() if d == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for succ in graph.successors(node):
            indegree[succ] -= 1
            if indegree[succ] == 0:
                ready.append(succ)
    order.extend(n for n in graph.nodes if n not in order)  # nodes on a cycle, last
    return order
