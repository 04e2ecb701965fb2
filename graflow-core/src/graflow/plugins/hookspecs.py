"""The hook specifications: the whole public surface a Graflow plugin can implement.

A plugin is a module (or object) with functions decorated by :data:`graflow.plugins.hookimpl`
whose names match the specifications below, published under the entry-point group
``graflow``. Graflow's own built-ins (:mod:`graflow.plugins.builtin`) implement the very
same hooks, so anything a built-in can do, a plugin can do.

There are five families:

* **providers** return ``{name: factory}`` mappings that make a name usable in user code
  (``@task(handler="gpu")``, ``queue_backend="redis"``, ``channel_backend="redis"``,
  ``with_execution(backend="threading")``);
* **lifecycle wrappers** surround a run, a task attempt and a parallel group. Implement
  them as ``@hookimpl(wrapper=True)`` generators (``result = yield``) to time, trace or
  guard the real work; the kernel skips them entirely when no plugin wraps. A wrapper
  that is sometimes idle sets ``fn.graflow_active = predicate`` (zero arguments) and does
  not count while the predicate is false at the start of a run (it is still called, and
  must pass through, when another plugin's wrapper is active);
* **carrier** hooks let plugin state (a trace context) travel with a task to another
  process (a worker, a container, a multiprocessing member);
* **events** tell plugins what they may want to show or forward (a question a task asks);
* **command line**: extra ``graflow`` subcommands.

Example: a third-party handler plugin is one function::

    from graflow.plugins import hookimpl

    @hookimpl
    def graflow_task_handlers():
        return {"gpu": GPUHandler}   # an instance, or a zero-argument factory
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from graflow.channels.base import Channel
    from graflow.coordination.coordinator import Coordinator
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import Executable, ParallelGroup
    from graflow.core.handler import TaskHandler
    from graflow.hitl.types import FeedbackRequest
    from graflow.queue.base import Placement
    from graflow.state.store import StateStore

PROJECT_NAME = "graflow"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: A factory building a queue backend from the run's ``config`` mapping.
QueueFactory = Callable[[Mapping[str, Any]], "Placement"]
#: A factory building a channel backend from ``(session_id, config)``.
ChannelFactory = Callable[[str, Mapping[str, Any]], "Channel"]
#: A factory building a state store from the run's ``config`` mapping.
StoreFactory = Callable[[Mapping[str, Any]], "StateStore"]


# --- providers -------------------------------------------------------------------------


@hookspec
def graflow_task_handlers() -> Mapping[str, TaskHandler | Callable[[], TaskHandler]]:
    """Return task handlers by name, each an instance or a zero-argument factory.

    Factories are called once, the first time a run needs that name, so a handler that
    is expensive to build (a Docker client) costs nothing until a task uses it.
    """


@hookspec
def graflow_queue_backends() -> Mapping[str, QueueFactory]:
    """Return queue backend factories by name (``"memory"``, ``"redis"``, ...)."""


@hookspec
def graflow_channel_backends() -> Mapping[str, ChannelFactory]:
    """Return channel backend factories by name (``"memory"``, ``"redis"``, ...)."""


@hookspec
def graflow_state_stores() -> Mapping[str, StoreFactory]:
    """Return state stores by name (``"memory"``, ``"local"``, ``"redis"``, ...).

    A run's state (its plan, one completion per step, results, status, lease) lives in
    the store chosen for it: see :mod:`graflow.state.store` for the contract. A store
    named like a queue backend is the one runs on that queue use (``redis``).
    """


@hookspec(firstresult=True)
def graflow_state_store_for(config: Mapping[str, Any]) -> str | None:
    """Name the state store that ``config`` points at, if it is yours (e.g. a ``redis_url``).

    Asked when a run is looked up by id (``graflow resume``, ``graflow runs``,
    ``WorkflowEngine().resume``) and ``config`` names no ``state_store``; ``None`` leaves
    the choice to others, and to the default, the ``local`` store.
    """


@hookspec
def graflow_coordinators() -> Mapping[str, Callable[[], Coordinator]]:
    """Return parallel-group coordinators by name (``"direct"``, ``"threading"``, ...)."""


# --- lifecycle wrappers ------------------------------------------------------------------


@hookspec(firstresult=True)
def graflow_run_workflow(context: ExecutionContext, run: Callable[[], Any]) -> Any:
    """Run a whole workflow: ``run()`` does the work and returns the last task's result.

    Wrap it (``wrapper=True``) to observe a run; do not call ``run`` yourself, the
    kernel's own implementation does.
    """


@hookspec(firstresult=True)
def graflow_run_task(
    task: Executable, context: ExecutionContext, attempt: int, run: Callable[[], Any]
) -> Any:
    """Run one attempt of one task (``attempt`` counts from 1 across retries)."""


@hookspec(firstresult=True)
def graflow_run_group(group: ParallelGroup, context: ExecutionContext, run: Callable[[], Any]) -> Any:
    """Run one parallel group: its members and its failure policy's verdict."""


# --- carrier -------------------------------------------------------------------------


@hookspec
def graflow_inject_carrier(carrier: MutableMapping[str, str]) -> None:
    """Write what must travel with a task to another process into ``carrier`` (str -> str)."""


@hookspec
def graflow_extract_carrier(carrier: Mapping[str, str]) -> None:
    """Restore, in the process that runs a task, what :func:`graflow_inject_carrier` wrote.

    Called right before the task runs, inside a fresh :mod:`contextvars` context, so
    whatever an implementation sets there lives exactly as long as the task.
    """


# --- events ---------------------------------------------------------------------------


@hookspec
def graflow_feedback_requested(request: FeedbackRequest, context: ExecutionContext) -> None:
    """A task asks a person (``ctx.request_feedback``): called in the process that asks, before it waits.

    The CLI's progress prints how to answer. A task that asks again after a resume calls
    it again (same ``request.feedback_id``) only if the question is still unanswered.
    Must not block: the task waits after it.
    """


# --- command line -------------------------------------------------------------------


@hookspec
def graflow_cli_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``graflow`` subcommands; each parser sets ``func=callable(args) -> int``."""
