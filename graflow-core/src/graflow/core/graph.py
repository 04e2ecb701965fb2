"""The workflow graph: top-level nodes, their edges, and every task by id.

Top-level nodes are tasks and parallel groups; a group's members live inside the group
(``group.members``) and are not scheduled on their own, but every task of the graph,
members included, is registered by id so that ids stay unique and results can be found.
The graph knows nodes only through :class:`~graflow.core.dsl.Executable`'s interface
(``kind``, ``elements``, ``members``), so it imports none of the node classes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from graflow.core.render import to_mermaid
from graflow.exceptions import DuplicateTaskError, GraphCompilationError

if TYPE_CHECKING:
    from graflow.core.dsl import Executable, ParallelGroup

__all__ = ["NodeView", "SchedulingView", "TaskGraph"]


class NodeView(Mapping[str, "Executable"]):
    """The top-level nodes of a graph when it was asked: id -> node, in insertion order.

    It iterates its ids, so it reads like the list of them (``for tid in graph.nodes``,
    ``", ".join(graph.nodes)``, ``graph.nodes == ["a", "b"]``), and it is a mapping, as in
    the existing releases (``graph.nodes.keys()``, ``graph.nodes["a"]``).
    """

    __slots__ = ("_nodes",)

    def __init__(self, nodes: Mapping[str, Executable]) -> None:
        self._nodes = dict(nodes)

    def __getitem__(self, task_id: str) -> Executable:
        return self._nodes[task_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            return list(self._nodes) == list(other)
        if isinstance(other, Mapping):
            return dict(self._nodes) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NodeView({list(self._nodes)!r})"


@dataclass(frozen=True)
class SchedulingView:
    """What the engine schedules by: read-only views of one graph's live tables (no copies).

    Valid until the graph changes shape; a run that adds nodes asks for a new view.
    """

    #: Top-level node id -> node.
    nodes: Mapping[str, Executable]
    #: Top-level node id -> ids of the nodes that wait for it.
    successors: Mapping[str, Sequence[str]]
    #: Top-level node id -> ids of the nodes it waits for.
    predecessors: Mapping[str, Sequence[str]]


class TaskGraph:
    """Nodes and dependency edges of one workflow.

    ``strict`` graphs (those of ``with workflow(...)``) refuse a second, different task
    under an existing id; the implicit default graph replaces it, so re-running a
    notebook cell that redefines a task does what its author means.
    """

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self._tasks: dict[str, Executable] = {}
        self._owner: dict[str, str] = {}
        self._nodes: dict[str, Executable] = {}
        self._succ: dict[str, list[str]] = {}
        self._pred: dict[str, list[str]] = {}
        #: Edges added at run time by ``next_task`` (shown, not scheduled by dependency).
        self.dynamic_edges: list[tuple[str, str]] = []
        #: Bumped on every change, so validation results can be cached per shape.
        self.version = 0
        self._validated: tuple[int, tuple[str, ...]] | None = None
        #: ``(version, cycles)``: the graph's cycles as of that version (every run asks).
        self._cycles_seen: tuple[int, list[list[str]]] | None = None
        #: Known to have no cycle (kept up to date as edges are added), known to have one
        #: (False), or unknown (None: a walk that would have cost too much was skipped).
        self._acyclic: bool | None = True
        self._numbers = itertools.count(1)

    # --- reading ---------------------------------------------------------------------

    @property
    def nodes(self) -> NodeView:
        """The top-level nodes (id -> node), in insertion order; iterates their ids."""
        return NodeView(self._nodes)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """``(from_id, to_id)`` pairs between top-level nodes."""
        return [(a, b) for a, succ in self._succ.items() for b in succ]

    @property
    def tasks(self) -> dict[str, Executable]:
        """Every task of the graph by id, group members included (a copy)."""
        return dict(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __len__(self) -> int:
        return len(self._nodes)

    def get_node(self, task_id: str) -> Executable:
        """The task or group registered as ``task_id`` (members included)."""
        try:
            return self._tasks[task_id]
        except KeyError:
            raise GraphCompilationError(
                f"no task {task_id!r} in this graph; known: {', '.join(sorted(self._tasks)) or '(none)'}"
            ) from None

    def find(self, task_id: str) -> Executable | None:
        """The task registered as ``task_id`` (members included), or ``None``."""
        return self._tasks.get(task_id)

    def same_task(self, executable: Executable) -> Executable:
        """The graph's own task when ``executable`` is a copy of it, else ``executable``.

        A task that traveled (a remote ``next_task(existing_task)``, a step replayed from
        a store) comes back as a copy; matching it by id and function lets it mean "run
        that task again" exactly as in process, while a genuinely different task under a
        taken id still fails as a duplicate.
        """
        original = self._tasks.get(executable.task_id)
        if original is None or original is executable or type(original) is not type(executable):
            return executable
        mine = getattr(getattr(original, "func", None), "__qualname__", None)
        theirs = getattr(getattr(executable, "func", None), "__qualname__", None)
        return original if mine == theirs else executable

    def owner_of(self, task_id: str) -> str | None:
        """The id of the group that holds ``task_id`` as a member, if any."""
        return self._owner.get(task_id)

    def successors(self, task_id: str) -> list[str]:
        return list(self._succ.get(task_id, ()))

    def predecessors(self, task_id: str) -> list[str]:
        return list(self._pred.get(task_id, ()))

    def get_start_nodes(self) -> list[str]:
        """Top-level nodes without predecessors: where a run starts by default."""
        return [n for n in self._nodes if not self._pred[n]]

    def scheduling_view(self) -> SchedulingView:
        """The tables the engine schedules by, without copying them."""
        return SchedulingView(self._nodes, self._succ, self._pred)

    def groups(self) -> list[ParallelGroup]:
        """Every parallel group in the graph, nested ones included."""
        return cast("list[ParallelGroup]", [t for t in self._tasks.values() if t.kind == "group"])

    # --- building --------------------------------------------------------------------

    def add_node(self, task: Executable, task_id: str | None = None) -> str:
        """Add ``task`` as a top-level node (a chain adds each of its elements).

        ``task_id`` renames the task first; adding the same object twice is a no-op.
        """
        if task.kind == "chain":
            for element in task.elements:
                self.add_node(element)
            return task.task_id
        if task_id is not None and task_id != task.task_id:
            task.task_id = task_id
        if not task.task_id:
            task.task_id = self.automatic_id(task.kind)
        tid = task.task_id
        owner = self._owner.get(tid)
        if owner is not None and self._tasks.get(tid) is task:
            raise GraphCompilationError(
                f"task {tid!r} is a member of group {owner!r}; connect the group instead "
                f"(e.g. prev >> group >> next)"
            )
        if self._nodes.get(tid) is task:
            return tid
        self._register(task, owner=None)
        self._nodes[tid] = task
        self._succ.setdefault(tid, [])
        self._pred.setdefault(tid, [])
        self.version += 1
        return tid

    def automatic_id(self, kind: str) -> str:
        """``group_1``, ``group_2``, ...: the first free id for a node of ``kind`` in this graph."""
        while True:
            candidate = f"{kind}_{next(self._numbers)}"
            if candidate not in self._tasks:
                return candidate

    def remove_isolated(self, task: Executable) -> bool:
        """Take ``task`` out of the graph if it is a top-level node with no edge; True if it was."""
        tid = task.task_id
        if self._nodes.get(tid) is not task or self._succ[tid] or self._pred[tid]:
            return False
        del self._nodes[tid], self._succ[tid], self._pred[tid], self._tasks[tid]
        self.version += 1
        return True

    def add_edge(self, from_task: str | Executable, to_task: str | Executable) -> None:
        """``to_task`` runs after ``from_task``; both must be top-level nodes (tasks are added)."""
        a = self._node_id(from_task)
        b = self._node_id(to_task)
        if b not in self._succ[a]:
            if self._acyclic:
                self._acyclic = _not_reaching(self._succ, b, a)
            self._succ[a].append(b)
            self._pred[b].append(a)
            self.version += 1

    def _node_id(self, task: str | Executable) -> str:
        if isinstance(task, str):
            if task not in self._nodes:
                raise GraphCompilationError(
                    f"no top-level node {task!r}; add it first. Known: {', '.join(self._nodes) or '(none)'}"
                )
            return task
        return self.add_node(task)

    def add_member(self, group: Executable, member: Executable) -> None:
        """Make ``member`` part of ``group``: it leaves the top level, its edges move to the group.

        So ``fetch >> a; fetch >> b; (a | b) >> c`` means ``fetch >> (a | b) >> c``.
        """
        elements = member.elements
        inside = {e.task_id for e in elements}
        for element in elements:
            eid = element.task_id
            if self._owner.get(eid) not in (None, group.task_id) and self._tasks.get(eid) is element:
                raise GraphCompilationError(
                    f"task {eid!r} is already a member of group {self._owner[eid]!r}; "
                    "a task can belong to one group only"
                )
            if self._nodes.get(eid) is element:
                for pred in self._pred.pop(eid):
                    self._succ[pred].remove(eid)
                    if pred not in inside:
                        self.add_edge(pred, group.task_id)
                for succ in self._succ.pop(eid):
                    self._pred[succ].remove(eid)
                    if succ not in inside:
                        self.add_edge(group.task_id, succ)
                del self._nodes[eid]
        group.members.append(member)  # type: ignore[attr-defined]
        self._register_member(group, member)
        self.version += 1

    def rename_node(self, task: Executable, new_id: str) -> None:
        """Give a registered task or group a new id, keeping its edges and members."""
        old = task.task_id
        if old == new_id:
            return
        if self._tasks.get(old) is not task:  # not in this graph: nothing else to update
            task.task_id = new_id
            return
        if new_id in self._tasks:
            raise DuplicateTaskError(new_id)
        task.task_id = new_id
        self._tasks[new_id] = self._tasks.pop(old)
        if old in self._owner:
            self._owner[new_id] = self._owner.pop(old)
        for member, owner in self._owner.items():
            if owner == old:
                self._owner[member] = new_id
        if old in self._nodes:
            self._nodes = {(new_id if k == old else k): v for k, v in self._nodes.items()}
            for adjacency in (self._succ, self._pred):
                adjacency[new_id] = adjacency.pop(old)
                for lst in adjacency.values():
                    lst[:] = [new_id if x == old else x for x in lst]
        self.version += 1

    def _register(self, task: Executable, owner: str | None) -> None:
        """Record ``task`` (and, for a group, its members) under their ids."""
        existing = self._tasks.get(task.task_id)
        if existing is not None and existing is not task:
            if self.strict:
                raise DuplicateTaskError(task.task_id)
            if self._nodes.get(task.task_id) is existing:
                self._nodes[task.task_id] = task
        self._tasks[task.task_id] = task
        if owner is not None:
            self._owner[task.task_id] = owner
        for member in task.members:
            self._register_member(task, member)

    def _register_member(self, group: Executable, member: Executable) -> None:
        for element in member.elements:
            self._register(element, owner=group.task_id)

    # --- run-time additions ------------------------------------------------------------

    def add_dynamic_edge(self, from_id: str, to_task: Executable) -> None:
        """Record that top-level node ``from_id`` added ``to_task`` at run time.

        The task becomes a top-level node if it is new; the edge is shown, not scheduled
        (the engine queues the task itself).
        """
        tid = to_task.task_id
        if tid not in self._tasks:
            self._register(to_task, owner=None)
            self._nodes[tid] = to_task
            self._succ[tid] = []
            self._pred[tid] = []
        self._record_dynamic(from_id, tid)

    def add_dynamic_task(self, from_id: str, task: Executable) -> None:
        """Record that ``from_id``, inside a group member's branch, added ``task`` at run time.

        Such a task belongs to its branch: it is known by id (for results and summaries)
        but is not a top-level node.
        """
        self._tasks.setdefault(task.task_id, task)
        self._record_dynamic(from_id, task.task_id)

    def _record_dynamic(self, from_id: str, tid: str) -> None:
        if (from_id, tid) not in self.dynamic_edges:
            self.dynamic_edges.append((from_id, tid))
        self.version += 1

    # --- analysis ------------------------------------------------------------------

    def detect_cycles(self) -> list[list[str]]:
        """Cycles among top-level edges, each as ``[a, b, ..., a]``; empty for a DAG."""
        cycles: list[list[str]] = []
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in self._nodes:
            if root in state:
                continue
            path: list[str] = [root]
            iters = [iter(self._succ[root])]
            state[root] = 1
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    iters.pop()
                elif state.get(nxt) == 1:
                    cycles.append(path[path.index(nxt) :] + [nxt])
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(self._succ[nxt]))
        return cycles

    def validate(self, start_nodes: Sequence[str] | None = None) -> None:
        """Fail before a run starts if the graph cannot run: a cycle with no way in.

        A cycle is fine when the run can enter it: a start node on it, or an edge into it
        from outside (the existing releases' agent loop ``agent >> tool >> agent``). Every
        node of a cycle with no way in waits for another node of it, so it could never
        start. ``start_nodes`` defaults to the nodes without predecessors. The answer is
        cached until the graph changes.
        """
        starts = tuple(self.get_start_nodes() if start_nodes is None else start_nodes)
        if self._validated == (self.version, starts):
            return
        closed = [c for c in self._cycles() if not self._enterable(c, starts)]
        if closed:
            shown = "; ".join(" >> ".join([*c, c[0]]) for c in closed[:3])
            raise GraphCompilationError(
                f"the graph has a cycle with no way in: {shown}. Every task on it waits for another "
                "one on it, and no start node or edge from outside leads into it. Start the run on "
                "it (execute(start_node=...)), connect a task to it from outside, or loop with "
                "context.next_iteration() or context.next_task(task, goto=True) instead."
            )
        self._validated = (self.version, starts)

    def _cycles(self) -> list[list[str]]:
        """The node sets of the graph's cycles (strongly connected components with a loop), in node order.

        Cached until the graph changes: every run of a workflow asks, and the answer costs a
        walk of the whole graph.
        """
        if self._acyclic:
            return []
        seen = self._cycles_seen
        if seen is not None and seen[0] == self.version:
            return seen[1]
        found = self._find_cycles()
        self._cycles_seen = (self.version, found)
        self._acyclic = not found
        return found

    def _find_cycles(self) -> list[list[str]]:
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        found: list[list[str]] = []
        counter = 0
        for root in self._nodes:
            if root in index:
                continue
            work = [(root, iter(self._succ[root]))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, children = work[-1]
                child = next(children, None)
                if child is not None:
                    if child not in index:
                        index[child] = low[child] = counter
                        counter += 1
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, iter(self._succ[child])))
                    elif child in on_stack:
                        low[node] = min(low[node], index[child])
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in self._succ[node]:
                        order = {n: i for i, n in enumerate(self._nodes)}
                        found.append(sorted(component, key=order.__getitem__))
        return found

    def _enterable(self, cycle: list[str], starts: Sequence[str]) -> bool:
        inside = set(cycle)
        return bool(inside & set(starts)) or any(p not in inside for n in cycle for p in self._pred[n])

    def loop_edges(self, start_nodes: Sequence[str]) -> frozenset[tuple[str, str]]:
        """The edges that close a cycle, seen from ``start_nodes``: each re-runs its target.

        Found by a depth-first walk from the start nodes (then from each cycle's way in):
        an edge to a node still on the walk's path goes back into a cycle. Empty for a DAG.
        """
        if not self._cycles():
            return frozenset()
        back: set[tuple[str, str]] = set()
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        roots = [*start_nodes, *self._nodes]
        for root in roots:
            if root in state or root not in self._nodes:
                continue
            path_iters = [iter(self._succ[root])]
            path = [root]
            state[root] = 1
            while path_iters:
                nxt = next(path_iters[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    path_iters.pop()
                elif state.get(nxt) == 1:
                    back.add((path[-1], nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    path_iters.append(iter(self._succ[nxt]))
        return frozenset(back)

    def namespaced(self, prefix: str) -> TaskGraph:
        """A copy whose every id starts with ``prefix`` (tasks copied too): a nested workflow's
        graph as it runs inside another run."""
        other = TaskGraph(strict=self.strict)
        for tid, node in self._nodes.items():
            copy = node.namespaced(prefix)
            other._nodes[prefix + tid] = copy
            other._register(copy, owner=None)
        for tid, succ in self._succ.items():
            other._succ[prefix + tid] = [prefix + s for s in succ]
        for tid, pred in self._pred.items():
            other._pred[prefix + tid] = [prefix + p for p in pred]
        other.version = 1
        return other

    def copy(self) -> TaskGraph:
        """An independent copy of the structure (tasks are shared, not copied)."""
        other = TaskGraph(strict=self.strict)
        other._tasks = dict(self._tasks)
        other._owner = dict(self._owner)
        other._nodes = dict(self._nodes)
        other._succ = {k: list(v) for k, v in self._succ.items()}
        other._pred = {k: list(v) for k, v in self._pred.items()}
        other.dynamic_edges = list(self.dynamic_edges)
        other.version = self.version
        other._validated = self._validated
        other._cycles_seen = self._cycles_seen
        other._acyclic = self._acyclic
        return other

    # --- rendering -----------------------------------------------------------------

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (groups as subgraphs)."""
        return to_mermaid(self)

    def __repr__(self) -> str:
        return f"<TaskGraph nodes={len(self._nodes)} edges={len(self.edges)}>"


#: Nodes a cycle check on adding one edge may visit before giving up (the full check then runs once per run).
_WALK_BUDGET: Final = 256


def _not_reaching(succ: Mapping[str, list[str]], start: str, target: str) -> bool | None:
    """Whether ``target`` is out of reach from ``start`` (an edge ``target -> start`` closes no cycle).

    ``None`` when the walk would visit more than :data:`_WALK_BUDGET` nodes. Graphs are
    mostly built forwards (a new task after existing ones), where ``start`` has no successor
    yet and the answer is immediate.
    """
    if start == target:
        return False
    seen = {start}
    stack = [start]
    while stack:
        for nxt in succ[stack.pop()]:
            if nxt == target:
                return False
            if nxt not in seen:
                if len(seen) >= _WALK_BUDGET:
                    return None
                seen.add(nxt)
                stack.append(nxt)
    return True
