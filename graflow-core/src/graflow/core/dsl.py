"""The operator DSL: the node kinds it composes and the operators ``>>`` (then) and ``|`` (alongside).

Three kinds of node make a workflow graph, told apart by :attr:`Executable.kind`:

* a task (:class:`~graflow.core.task.TaskWrapper`, one Python function);
* a :class:`ParallelGroup` (``a | b``): members that run together, as one node;
* a :class:`Chain` (``a >> b``): a sequence, usable as one member of a group
  (``(a >> (b | c)) | d``); in the graph it is its elements joined by edges.

Every composition registers its nodes and edges in the graph being defined (see
:mod:`graflow.core.scope`), so ``extract >> transform`` inside ``with workflow(...)`` is
the whole program.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

from graflow.core import scope
from graflow.core.handlers.group_policy import resolve_policy
from graflow.core.routing import check_queue
from graflow.exceptions import ConfigError
from graflow.plugins.manager import get_plugin_manager

if TYPE_CHECKING:
    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.handlers.group_policy import GroupExecutionPolicy

__all__ = ["Chain", "Executable", "ParallelGroup", "chain", "combine", "parallel", "sequence"]

#: :attr:`Executable.kind` of each node kind.
TASK: Final = "task"
GROUP: Final = "group"
CHAIN: Final = "chain"
WORKFLOW: Final = "workflow"

_UNSET: Final = object()


class Executable:
    """Something the engine can run as one node: a task, a parallel group, a chain.

    ``a >> b`` makes ``b`` depend on ``a``; ``a | b`` groups independent nodes into a
    :class:`ParallelGroup`. Both register in the graph being defined.
    """

    task_id: str
    #: Which node kind this is (``"task"``, ``"group"``, ``"chain"``); the graph and the
    #: engine dispatch on it instead of on classes.
    kind: ClassVar[str] = TASK
    #: Name of the handler that runs this node (``None``: the engine's default, ``"direct"``).
    handler_type: str | None = None
    #: A group's members (empty for other kinds).
    members: Sequence[Executable] = ()

    @property
    def elements(self) -> list[Executable]:
        """The nodes this stands for in a sequence: a chain's elements, else itself."""
        return [self]

    @property
    def head(self) -> Executable:
        """The first node to run (a chain's first element)."""
        return self

    @property
    def tail(self) -> Executable:
        """The last node to run (a chain's last element)."""
        return self

    def iter_tasks(self) -> list[Executable]:
        """This node and every node it contains (members of groups, elements of chains)."""
        return [self]

    def namespaced(self, prefix: str) -> Executable:
        """A copy of this node whose id (and those of what it contains) starts with ``prefix``.

        How a nested workflow's tasks run inside the outer run without taking its ids:
        ``inner.load`` beside the outer ``load``.
        """
        copy = _copy.copy(self)
        copy.task_id = prefix + self.task_id
        return copy

    def __rshift__(self, other: Executable) -> Chain:
        return sequence(self, other)

    def __rrshift__(self, other: object) -> Chain:
        # Only reached when ``other`` is not a node (``3 >> t``, ``[a, b] >> t``):
        # sequence() rejects it with a message saying what was expected.
        return sequence(other, self)  # type: ignore[arg-type]

    def __lshift__(self, other: Executable) -> Chain:
        return sequence(other, self)

    def __rlshift__(self, other: object) -> Chain:
        return sequence(self, other)  # type: ignore[arg-type]

    def __or__(self, other: Executable) -> ParallelGroup:
        return combine(self, other)

    def __ror__(self, other: object) -> ParallelGroup:
        return combine(other, self)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_id!r}>"


class Chain(Executable):
    """A sequence of nodes built by ``>>``; runs its elements one after another.

    ``a >> b >> c >> ...`` builds chains left to right, so a chain keeps a link to the
    chain it extends and materializes its element list only when asked: building a
    chain of n tasks costs O(n), not O(n^2).
    """

    kind = CHAIN

    def __init__(self, left: Executable, right: Executable) -> None:
        #: The node (often a shorter chain) this chain extends, and what it appends.
        self.left = left
        self.right = right
        self._elements: list[Executable] | None = None

    @property
    def elements(self) -> list[Executable]:
        if self._elements is None:
            parts: list[Executable] = []
            node: Executable = self
            # Walk the left spine iteratively: a long chain must not recurse once per element.
            while isinstance(node, Chain) and not node.materialized:
                parts.append(node.right)
                node = node.left
            flat = list(node.elements)
            for part in reversed(parts):
                flat.extend(part.elements)
            self._elements = flat
        return self._elements

    @property
    def materialized(self) -> bool:
        """Whether :attr:`elements` has been worked out (then it is cached)."""
        return self._elements is not None

    @property
    def task_id(self) -> str:  # type: ignore[override]
        """Derived from the elements (``"a>>group_1"``), so renaming a group shows here too."""
        return ">>".join(e.task_id for e in self.elements)

    @property
    def head(self) -> Executable:
        return self.left.head

    @property
    def tail(self) -> Executable:
        return self.right.tail

    def iter_tasks(self) -> list[Executable]:
        found: list[Executable] = []
        for element in self.elements:
            found.extend(element.iter_tasks())
        return found

    def namespaced(self, prefix: str) -> Executable:
        elements = [e.namespaced(prefix) for e in self.elements]
        result = elements[0]
        for element in elements[1:]:
            result = Chain(result, element)
        return result


class ParallelGroup(Executable):
    """``a | b | c``: members that do not depend on each other, run as one graph node.

    The group's successors run once every member has an outcome and the group's policy
    accepts them. How members run (in order, threads, processes, a worker fleet) is the
    group's coordination backend, chosen with :meth:`with_execution`. Built directly,
    ``ParallelGroup([a, b], name="fetch")`` is the existing releases' form of ``(a | b)``.
    """

    kind = GROUP

    def __init__(
        self, members: Iterable[Executable] = (), group_id: str | None = None, *, name: str | None = None
    ) -> None:
        chosen = name or group_id
        self.members: list[Executable] = []
        #: The node id; an unnamed group gets ``group_N`` when a graph registers it.
        self.task_id = chosen or ""
        #: Whether the id was chosen by the user (a named group is never merged by ``|``).
        self.named = chosen is not None
        #: Whether ``|`` may still add members: made by ``|``, not yet named, configured or connected.
        self.open = False
        #: Name of the coordination backend (see :class:`CoordinationBackend`).
        self.backend: str = "threading"
        self.policy: GroupExecutionPolicy | None = None
        self.max_workers: int | None = None
        self.timeout: float | None = None
        #: The queue its members' tasks go to, unless a task names its own (see :mod:`graflow.core.routing`).
        self.queue: str | None = None
        self.configured = False
        graph = scope.current_graph()
        graph.add_node(self)
        for member in members:
            graph.add_member(self, _require_executable(member, "ParallelGroup"))

    def set_group_name(self, name: str) -> ParallelGroup:
        """Name the group node (its ``task_id``); returns the group for chaining."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a group name must be a non-empty string, got {name!r}")
        scope.current_graph().rename_node(self, name)
        self.named = True
        self.open = False
        return self

    def with_execution(
        self,
        backend: CoordinationBackend | str | Any = _UNSET,
        policy: GroupExecutionPolicy | str | Any = _UNSET,
        max_workers: int | None | Any = _UNSET,
        timeout: float | None | Any = _UNSET,
        queue: str | None | Any = _UNSET,
    ) -> ParallelGroup:
        """Choose how members run and how failures count; omitted arguments keep their value.

        ``backend``: a :class:`CoordinationBackend` (or its name); ``policy``: an
        :class:`~graflow.core.handlers.group_policy.ErrorHandlingPolicy` or policy object
        (``None``: the default, STRICT); ``max_workers``: bound on members running at once;
        ``timeout``: seconds after which a member still running counts as failed (the
        policy judges it); ``queue``: the queue its members' tasks go to on a worker fleet,
        unless a task names its own. A value that cannot work (an unknown backend, a policy that does
        not fit the members) raises :class:`~graflow.exceptions.ConfigError` here, before
        any run, and leaves the group as it was.
        """
        new_backend = self.backend if backend is _UNSET else _backend_name(backend, self.task_id)
        new_policy = self.policy
        if policy is not _UNSET:
            new_policy = None if policy is None else resolve_policy(policy, self)
        new_workers = self.max_workers if max_workers is _UNSET else _max_workers(max_workers, self.task_id)
        new_timeout = self.timeout if timeout is _UNSET else _timeout(timeout, self.task_id)
        new_queue = self.queue
        if queue is not _UNSET:
            new_queue = (
                None if queue is None else check_queue(queue, f"group {self.task_id or '(unnamed)'!r}")
            )
        self.backend = new_backend
        self.policy = new_policy
        self.max_workers = new_workers
        self.timeout = new_timeout
        self.queue = new_queue
        self.configured = True
        self.open = False
        return self

    def with_policy(self, policy: GroupExecutionPolicy | str) -> ParallelGroup:
        """The brief's form of ``with_execution(policy=...)``."""
        return self.with_execution(policy=policy)

    def iter_tasks(self) -> list[Executable]:
        found: list[Executable] = [self]
        for member in self.members:
            found.extend(member.iter_tasks())
        return found

    def namespaced(self, prefix: str) -> Executable:
        copy = _copy.copy(self)
        copy.task_id = prefix + self.task_id
        copy.members = [m.namespaced(prefix) for m in self.members]
        return copy

    @property
    def member_ids(self) -> list[str]:
        """The members' task ids, in order."""
        return [m.task_id for m in self.members]


def _backend_name(backend: object, group_id: str) -> str:
    """The backend's name, checked against the coordinators the plugins provide.

    An unknown name fails here, when the group is configured, not when the run reaches
    the group; a backend of a plugin that is not installed names the package to install.
    """
    value = getattr(backend, "value", backend)
    if not isinstance(value, str):
        raise ConfigError(
            f"group {group_id!r}: backend must be a CoordinationBackend (e.g. "
            f"CoordinationBackend.THREADING) or its name, got {type(backend).__name__} ({backend!r})"
        )
    name = value.lower()
    get_plugin_manager().resolve("graflow_coordinators", name)
    return name


def _max_workers(value: Any, group_id: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(
            f"group {group_id!r}: max_workers must be a whole number >= 1 (e.g. max_workers=4) "
            f"or None for the backend's default, got {value!r}"
        )
    return int(value)


def _timeout(value: Any, group_id: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
        raise ConfigError(
            f"group {group_id!r}: timeout must be a positive number of seconds "
            f"(e.g. timeout=30) or None for no limit, got {value!r}"
        )
    return float(value)


# --- the operators ------------------------------------------------------------------------


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


def sequence(left: Executable, right: Executable) -> Chain:
    """``left >> right``: ``right`` runs after ``left``; returns the combined chain."""
    _require_executable(left, ">>")
    _require_executable(right, ">>")
    graph = scope.current_graph()
    tail, head = left.tail, right.head
    # A chain's elements are already in the graph; only its ends need adding.
    graph.add_node(tail)
    graph.add_node(head)
    graph.add_edge(tail.task_id, head.task_id)
    for end in (tail, head):
        if isinstance(end, ParallelGroup):
            end.open = False  # connected: ``|`` nests it from now on instead of extending it
    return Chain(left, right)


def combine(left: Executable, right: Executable) -> ParallelGroup:
    """``left | right``: both run independently, as members of one parallel group.

    ``a | b | c`` makes one group of three: a group just made by ``|`` (not yet named,
    configured or connected) takes further members instead of nesting.
    """
    _require_executable(left, "|")
    _require_executable(right, "|")
    if isinstance(left, ParallelGroup) and left.open:
        scope.current_graph().add_member(left, right)
        return left
    group = ParallelGroup((left, right))
    group.open = True
    return group


def chain(*tasks: Executable) -> Executable:
    """``chain(a, b, c)`` is ``a >> b >> c``."""
    if not tasks:
        raise TypeError("chain() needs at least one task")
    result: Executable = _require_executable(tasks[0], "chain")
    if len(tasks) == 1:
        scope.current_graph().add_node(result)
    for nxt in tasks[1:]:
        result = sequence(result, nxt)
    return result


def parallel(*tasks: Executable) -> ParallelGroup:
    """``parallel(a, b, c)`` is ``a | b | c``, always a new group."""
    if not tasks:
        raise TypeError("parallel() needs at least one task")
    return ParallelGroup(_require_executable(t, "parallel") for t in tasks)
