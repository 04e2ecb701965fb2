"""The graph being defined: where ``@task``, ``>>`` and ``|`` register what they build.

``with workflow("etl"):`` makes its graph the *defining* graph of the block (a
:mod:`contextvars` variable, so threads and tasks each see their own). Outside any
block, compositions go to one default graph per process, as the brief's module-level
snippets expect. While a run executes its tasks the scope is *detached*: tasks and
compositions a task creates at run time (for ``next_task``) never land in a workflow's
definition, so a long-running process does not grow a graph forever.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Final

from graflow.core.graph import TaskGraph

__all__ = ["current_graph", "default_graph", "defining_graph", "detached", "enter", "leave"]

#: A value of the scope variable meaning "a run is executing: register nothing".
_DETACHED: Final = TaskGraph(strict=False)

#: Where compositions made outside any ``with workflow`` block go (SPEC: the default workflow).
_DEFAULT: Final = TaskGraph(strict=False)

_scope: Final[ContextVar[TaskGraph | None]] = ContextVar("graflow_defining_graph", default=None)


def default_graph() -> TaskGraph:
    """The process's graph for compositions made outside any ``with workflow`` block."""
    return _DEFAULT


def defining_graph() -> TaskGraph | None:
    """The graph of the enclosing ``with workflow`` block; ``None`` outside one or while detached."""
    graph = _scope.get()
    return None if graph is _DETACHED else graph


def current_graph() -> TaskGraph:
    """Where a composition registers: the defining graph, else the default one.

    While detached (inside a running task) this is a fresh scratch graph, so what a task
    composes for ``next_task`` is checked like any composition but kept by nobody.
    """
    graph = _scope.get()
    if graph is None:
        return _DEFAULT
    if graph is _DETACHED:
        return TaskGraph(strict=False)
    return graph


def enter(graph: TaskGraph) -> Token[TaskGraph | None]:
    """Make ``graph`` the defining graph until :func:`leave` is called with the returned token."""
    return _scope.set(graph)


def leave(token: Token[TaskGraph | None]) -> None:
    _scope.reset(token)


@contextmanager
def detached() -> Iterator[None]:
    """Register nothing while the block runs (the engine wraps a run's execution in this)."""
    token = _scope.set(_DETACHED)
    try:
        yield
    finally:
        _scope.reset(token)
