"""Graflow's own built-ins, registered through the same hooks as any plugin.

The lifecycle hooks' plain implementations here do the real work (``run()``); plugins
wrap them with ``@hookimpl(wrapper=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graflow.plugins import hookimpl

if TYPE_CHECKING:
    import argparse

    from graflow.channels.base import Channel
    from graflow.coordination.coordinator import Coordinator
    from graflow.core.handler import TaskHandler
    from graflow.queue.base import TaskQueue


def _direct_handler() -> TaskHandler:
    from graflow.core.handlers.direct import DirectTaskHandler

    return DirectTaskHandler()


def _memory_queue(config: Mapping[str, Any]) -> TaskQueue:
    from graflow.queue.memory import MemoryTaskQueue

    return MemoryTaskQueue()


def _memory_channel(session_id: str, config: Mapping[str, Any]) -> Channel:
    from graflow.channels.memory import MemoryChannel

    return MemoryChannel(session_id)


def _direct_coordinator() -> Coordinator:
    from graflow.coordination.direct import DirectCoordinator

    return DirectCoordinator()


def _threading_coordinator() -> Coordinator:
    from graflow.coordination.threaded import ThreadingCoordinator

    return ThreadingCoordinator()


def _multiprocessing_coordinator() -> Coordinator:
    from graflow.coordination.processes import MultiprocessingCoordinator

    return MultiprocessingCoordinator()


@hookimpl
def graflow_task_handlers() -> Mapping[str, Callable[[], TaskHandler]]:
    return {"direct": _direct_handler}


@hookimpl
def graflow_queue_backends() -> Mapping[str, Callable[[Mapping[str, Any]], TaskQueue]]:
    return {"memory": _memory_queue}


@hookimpl
def graflow_channel_backends() -> Mapping[str, Callable[[str, Mapping[str, Any]], Channel]]:
    return {"memory": _memory_channel}


@hookimpl
def graflow_coordinators() -> Mapping[str, Callable[[], Coordinator]]:
    return {
        "direct": _direct_coordinator,
        "threading": _threading_coordinator,
        "multiprocessing": _multiprocessing_coordinator,
    }


@hookimpl(trylast=True)
def graflow_run_workflow(run: Callable[[], Any]) -> Any:
    return run()


@hookimpl(trylast=True)
def graflow_run_task(run: Callable[[], Any]) -> Any:
    return run()


@hookimpl(trylast=True)
def graflow_run_group(run: Callable[[], Any]) -> Any:
    return run()


@hookimpl
def graflow_cli_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from graflow.cli.commands import add_core_commands

    add_core_commands(subparsers)
