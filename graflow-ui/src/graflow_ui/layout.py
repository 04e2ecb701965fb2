"""The run graph, laid out for drawing: a small layered layout over the kernel's own graph.

Why here and not a JavaScript library: the kernel's graph already knows what a drawing
needs (groups and nested workflows as containers, the edges that close a cycle), a
layered layout of a workflow is a page of code, and a page that only draws boxes at given
places stays small and works offline. Mermaid's bundle would be several megabytes to
ship for the same picture, and it re-lays out from scratch on every live update.

The layout: each graph (the run's, or a nested workflow's) puts its nodes in layers by
longest path from its roots, ignoring the edges that close a cycle; a layer is ordered by
the mean position of its predecessors and wrapped into rows of at most :data:`WRAP`. A
group is a box of its members side by side (each member a column of its chain); a nested
workflow is a box around its own laid-out graph. Sizes are measured inside out, places
handed out outside in, and edges routed last, between the boxes' borders.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from graflow.core.render import to_mermaid
from graflow_ui.models import GraphEdge, GraphNode, GraphView

if TYPE_CHECKING:
    from graflow.core.dsl import Executable
    from graflow.core.graph import TaskGraph

__all__ = ["WRAP", "layout"]

TASK_W: Final = 168.0
TASK_H: Final = 34.0
GAP_X: Final = 28.0
GAP_Y: Final = 44.0
#: Inside a container: padding, and the height of its title.
PAD: Final = 12.0
TITLE: Final = 20.0
MARGIN: Final = 16.0
#: Most nodes side by side in one row (a wider layer, or group, wraps).
WRAP: Final = 12

NodeKind = Literal["task", "group", "workflow"]
EdgeKind = Literal["forward", "back", "added"]


def layout(
    graph: TaskGraph, start_nodes: Sequence[str], added: Iterable[tuple[str, Executable]] = ()
) -> GraphView:
    """``graph`` laid out, with what was ``added`` at run time as ``(by task id, task, chain or group)``."""
    top = _graph_block(graph, start_nodes, prefix="")
    top.add_runtime_tasks(list(added))
    canvas = _Canvas()
    top.measure()
    top.place(MARGIN, MARGIN, None, canvas)
    return GraphView(
        width=top.w + 2 * MARGIN + canvas.back_lanes * 10.0,
        height=top.h + 2 * MARGIN,
        nodes=canvas.nodes,
        edges=canvas.route(),
        mermaid=to_mermaid(graph),
    )


@dataclass
class _Canvas:
    """Where placed boxes and the edges between them are collected."""

    nodes: list[GraphNode] = field(default_factory=list)
    rects: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[tuple[str, str, EdgeKind]] = field(default_factory=list)
    back_lanes: int = 0

    def add(self, node: GraphNode) -> None:
        self.nodes.append(node)
        self.rects[node.id] = node

    def route(self) -> list[GraphEdge]:
        routed = []
        right = max((n.x + n.w for n in self.nodes), default=0.0)
        for source, target, kind in self.edges:
            a, b = self.rects.get(source), self.rects.get(target)
            if a is None or b is None:
                continue
            if kind == "back":
                self.back_lanes += 1
                lane = right + 10.0 * self.back_lanes
                points = [
                    (a.x + a.w, a.y + a.h / 2),
                    (lane, a.y + a.h / 2),
                    (lane, b.y + b.h / 2),
                    (b.x + b.w, b.y + b.h / 2),
                ]
            elif b.y >= a.y + a.h:  # below: bottom to top
                points = [(a.x + a.w / 2, a.y + a.h), (b.x + b.w / 2, b.y)]
            elif b.x >= a.x + a.w:  # same row (a wrapped layer, a task added beside): side to side
                points = [(a.x + a.w, a.y + a.h / 2), (b.x, b.y + b.h / 2)]
            else:
                points = [(a.x + a.w / 2, a.y), (b.x + b.w / 2, b.y + b.h)]
            routed.append(GraphEdge(source=source, target=target, kind=kind, points=points))
        return routed


class _Block(ABC):
    """Something to place: its size is known after :meth:`measure`."""

    w: float = 0.0
    h: float = 0.0

    def __init__(self, node_id: str, label: str) -> None:
        self.id = node_id
        self.label = label

    @abstractmethod
    def measure(self) -> None:
        """Set ``w`` and ``h`` (children first)."""

    @abstractmethod
    def place(self, x: float, y: float, parent: str | None, canvas: _Canvas) -> None:
        """Put the block's top-left corner at ``(x, y)`` and everything in it relative to that."""


class _TaskBlock(_Block):
    def measure(self) -> None:
        self.w, self.h = TASK_W, TASK_H

    def place(self, x: float, y: float, parent: str | None, canvas: _Canvas) -> None:
        canvas.add(
            GraphNode(id=self.id, label=self.label, kind="task", x=x, y=y, w=self.w, h=self.h, parent=parent)
        )


class _Rows:
    """Blocks in rows (each row centred), as a layer or a group's members are drawn."""

    def __init__(self, rows: list[list[_Block]], gap_y: float) -> None:
        self.rows = rows
        self.gap_y = gap_y
        self.w = self.h = 0.0

    def measure(self) -> None:
        for row in self.rows:
            for block in row:
                block.measure()
        widths = [sum(b.w for b in row) + GAP_X * (len(row) - 1) for row in self.rows]
        self.w = max(widths, default=0.0)
        self.h = sum(max(b.h for b in row) for row in self.rows) + self.gap_y * max(len(self.rows) - 1, 0)

    def place(self, x: float, y: float, parent: str | None, canvas: _Canvas) -> None:
        for row in self.rows:
            width = sum(b.w for b in row) + GAP_X * (len(row) - 1)
            left = x + (self.w - width) / 2
            for block in row:
                block.place(left, y, parent, canvas)
                left += block.w + GAP_X
            y += max(b.h for b in row) + self.gap_y


class _Column(_Block):
    """A chain: its elements one under the other (a member of a group)."""

    def __init__(self, elements: list[_Block]) -> None:
        super().__init__(elements[0].id, elements[0].label)
        self.elements = elements

    def measure(self) -> None:
        for element in self.elements:
            element.measure()
        self.w = max(e.w for e in self.elements)
        self.h = sum(e.h for e in self.elements) + GAP_Y * (len(self.elements) - 1)

    def place(self, x: float, y: float, parent: str | None, canvas: _Canvas) -> None:
        for element in self.elements:
            element.place(x + (self.w - element.w) / 2, y, parent, canvas)
            y += element.h + GAP_Y
        canvas.edges.extend((a.id, b.id, "forward") for a, b in itertools.pairwise(self.elements))


class _Container(_Block):
    """A box with a title around what it holds: a group's members, or a nested workflow's graph."""

    def __init__(self, node_id: str, label: str, kind: NodeKind, inside: _Rows | _GraphBlock) -> None:
        super().__init__(node_id, label)
        self.kind: NodeKind = kind
        self.inside = inside

    def measure(self) -> None:
        self.inside.measure()
        self.w = max(self.inside.w + 2 * PAD, TASK_W)
        self.h = self.inside.h + 2 * PAD + TITLE

    def place(self, x: float, y: float, parent: str | None, canvas: _Canvas) -> None:
        canvas.add(
            GraphNode(
                id=self.id, label=self.label, kind=self.kind, x=x, y=y, w=self.w, h=self.h, parent=parent
            )
        )
        self.inside.place(x + (self.w - self.inside.w) / 2, y + PAD + TITLE, self.id, canvas)


class _GraphBlock:
    """One graph's nodes in layers, and its edges (those closing a cycle marked ``back``)."""

    def __init__(self, blocks: dict[str, _Block], edges: list[tuple[str, str, EdgeKind]]) -> None:
        self.blocks = blocks
        self.edges = edges
        self.rows = _Rows([], GAP_Y)
        #: Where each node id of this graph or anything inside it is drawn at the top of this graph.
        self.owner: dict[str, str] = {}
        self.w = self.h = 0.0

    def add_runtime_tasks(self, added: list[tuple[str, Executable]]) -> None:
        """What was added at run time joins the layer after the node that added it; a node of the
        graph added again (run once more) gets only the edge."""
        for by, executable in added:
            if executable.task_id in self.owner:
                self.edges.append((by, executable.task_id, "added"))
                continue
            block = (
                _Column([_node_block(e, "") for e in executable.elements])
                if executable.kind == "chain"
                else _node_block(executable, "")
            )
            self.blocks[block.id] = block
            for inner in _ids_inside(block):
                self.owner[inner] = block.id
            self.edges.append((by, block.id, "added"))

    def measure(self) -> None:
        self.rows = _Rows(self._layered_rows(), GAP_Y)
        self.rows.measure()
        self.w, self.h = self.rows.w, self.rows.h

    def place(self, x: float, y: float, parent: str | None, canvas: _Canvas) -> None:
        self.rows.place(x, y, parent, canvas)
        canvas.edges.extend(self.edges)

    def _layered_rows(self) -> list[list[_Block]]:
        ids = list(self.blocks)
        preds: dict[str, list[str]] = {i: [] for i in ids}
        for a, b, kind in self.edges:
            a, b = self.owner.get(a, a), self.owner.get(b, b)
            if kind != "back" and a in preds and b in preds and a != b and a not in preds[b]:
                preds[b].append(a)
        layer: dict[str, int] = {}

        for node in ids:
            _iterative_depth(node, preds, layer)
        layers: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
        for node in ids:
            layers[layer[node]].append(node)
        position: dict[str, float] = {}
        for nodes in layers:  # barycentre: under the mean place of what each waits for
            ranked = sorted(
                enumerate(nodes),
                key=lambda item: _mean([position[p] for p in preds[item[1]] if p in position], item[0]),
            )
            nodes[:] = [node for _, node in ranked]
            position.update((node, float(i)) for i, node in enumerate(nodes))
        rows = []
        for nodes in layers:
            for start in range(0, len(nodes), WRAP):
                rows.append([self.blocks[n] for n in nodes[start : start + WRAP]])
        return rows


def _iterative_depth(root: str, preds: dict[str, list[str]], layer: dict[str, int]) -> None:
    """Longest path from a root to ``root`` over ``preds``, without recursion (a chain may be long).

    A predecessor met again on the current path (a cycle the back edges did not break) is ignored.
    """
    stack: list[tuple[str, int]] = [(root, 0)]
    on_path: set[str] = set()
    while stack:
        node, index = stack.pop()
        if node in layer:
            continue
        on_path.add(node)
        waiting = preds[node]
        while index < len(waiting) and (waiting[index] in layer or waiting[index] in on_path):
            index += 1
        if index < len(waiting):
            stack.append((node, index))
            stack.append((waiting[index], 0))
            continue
        on_path.discard(node)
        layer[node] = 1 + max((layer[p] for p in waiting if p in layer), default=-1)


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


# --- from the kernel's graph -----------------------------------------------------------------


def _graph_block(graph: TaskGraph, start_nodes: Sequence[str], prefix: str) -> _GraphBlock:
    loops = graph.loop_edges(list(start_nodes))
    blocks: dict[str, _Block] = {}
    owner: dict[str, str] = {}
    for node_id in graph.nodes:
        node_block = blocks[node_id] = _node_block(graph.get_node(node_id), prefix)
        for inner in _ids_inside(node_block):
            owner[inner] = node_id
    edges: list[tuple[str, str, EdgeKind]] = [
        (a, b, "back" if (a, b) in loops else "forward") for a, b in graph.edges
    ]
    graph_block = _GraphBlock(blocks, edges)
    graph_block.owner = owner
    return graph_block


def _node_block(node: Executable, prefix: str) -> _Block:
    label = node.task_id[len(prefix) :] if prefix and node.task_id.startswith(prefix) else node.task_id
    if node.kind == "group":
        columns: list[_Block] = [
            _Column([_node_block(element, prefix) for element in member.elements]) for member in node.members
        ]
        rows = [columns[start : start + WRAP] for start in range(0, len(columns), WRAP)]
        return _Container(node.task_id, label, "group", _Rows(rows, GAP_Y / 2))
    if node.kind == "workflow":
        inner_prefix = node.task_id + "."
        definition: TaskGraph = node.graph  # type: ignore[attr-defined]
        inner = definition.namespaced(inner_prefix)
        starts = [inner_prefix + tid for tid in definition.get_start_nodes()]
        return _Container(node.task_id, label, "workflow", _graph_block(inner, starts, inner_prefix))
    return _TaskBlock(node.task_id, label)


def _ids_inside(block: _Block) -> Iterable[str]:
    """The id of ``block`` and of everything drawn inside it."""
    yield block.id
    if isinstance(block, _Column):
        for element in block.elements:
            yield from _ids_inside(element)
    elif isinstance(block, _Container):
        inside = block.inside
        if isinstance(inside, _Rows):
            for row in inside.rows:
                for child in row:
                    yield from _ids_inside(child)
        else:
            yield from inside.owner
