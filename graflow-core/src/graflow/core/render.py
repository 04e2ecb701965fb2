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


def _loop_edges(graph: TaskGraph) -> frozenset[tuple[str, str]]:
    return graph.loop_edges(graph.get_start_nodes())


def _inner(node: Executable) -> TaskGraph:
    """A nested workflow's graph, with ids as they run inside the outer one (``inner.load``)."""
    graph: TaskGraph = node.graph.namespaced(node.task_id + ".")  # type: ignore[attr-defined]
    return graph


def to_mermaid(graph: TaskGraph) -> str:
    """A Mermaid ``flowchart TD``: groups and nested workflows are subgraphs, edges that close a cycle dashed."""
    lines = ["flowchart TD"]
    edges: list[tuple[str, str, bool]] = []

    def emit_graph(inner: TaskGraph, indent: str) -> None:
        loops = _loop_edges(inner)
        edges.extend((a, b, (a, b) in loops) for a, b in inner.edges)
        for tid in inner.nodes:
            emit(inner.get_node(tid), indent)

    def emit(node: Executable, indent: str) -> None:
        if node.kind == "group":
            lines.append(f'{indent}subgraph {_mermaid_id(node.task_id)}["{_label(node.task_id)} (parallel)"]')
            for member in node.members:
                for element in member.elements:
                    emit(element, indent + "    ")
                edges.extend((a, b, False) for a, b in _member_edges(member))
            lines.append(f"{indent}end")
        elif node.kind == "workflow":
            lines.append(f'{indent}subgraph {_mermaid_id(node.task_id)}["{_label(node.task_id)} (workflow)"]')
            emit_graph(_inner(node), indent + "    ")
            lines.append(f"{indent}end")
        else:
            lines.append(f'{indent}{_mermaid_id(node.task_id)}["{_label(node.task_id)}"]')

    emit_graph(graph, "    ")
    lines.extend(f"    {_mermaid_id(a)} {'-.->' if back else '-->'} {_mermaid_id(b)}" for a, b, back in edges)
    return "\n".join(lines)


def to_dot(graph: TaskGraph) -> str:
    """Graphviz ``digraph``: groups and nested workflows are clusters, edges that close a cycle dashed."""
    lines = ["digraph workflow {", "    rankdir=TB;", "    node [shape=box];"]
    edges: list[tuple[str, str, bool]] = []

    def emit_graph(inner: TaskGraph, indent: str) -> None:
        loops = _loop_edges(inner)
        edges.extend((a, b, (a, b) in loops) for a, b in inner.edges)
        for tid in inner.nodes:
            emit(inner.get_node(tid), indent)

    def emit(node: Executable, indent: str) -> None:
        if node.kind in ("group", "workflow"):
            lines.append(f'{indent}subgraph "cluster_{node.task_id}" {{')
            what = "parallel" if node.kind == "group" else "workflow"
            lines.append(f'{indent}    label="{node.task_id} ({what})";')
            lines.append(f'{indent}    "{node.task_id}" [shape=point];')
            if node.kind == "group":
                for member in node.members:
                    for element in member.elements:
                        emit(element, indent + "    ")
                    edges.extend((a, b, False) for a, b in _member_edges(member))
            else:
                emit_graph(_inner(node), indent + "    ")
            lines.append(f"{indent}}}")
        else:
            lines.append(f'{indent}"{node.task_id}";')

    emit_graph(graph, "    ")
    lines.extend(f'    "{a}" -> "{b}"{" [style=dashed]" if back else ""};' for a, b, back in edges)
    lines.append("}")
    return "\n".join(lines)


def _describe(node: Executable) -> str:
    if node.kind == "group":
        inner = " | ".join(_describe(m) for m in node.members)
        return f"[{node.task_id}: {inner}]"
    if node.kind == "workflow":
        return f"[{node.task_id}: workflow]"
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
