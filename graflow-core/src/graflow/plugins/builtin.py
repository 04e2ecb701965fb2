"""Graflow's own built-in plugins: modules that implement the hooks beside their code.

The manager imports these by name and registers each exactly as it registers an
installed plugin, so anything a built-in can do, a plugin can do.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BUILTIN_PLUGINS"]

#: Module names, registered in this order before any installed plugin.
BUILTIN_PLUGINS: Final = (
    "graflow.core.handlers.direct",  # the ``direct`` handler
    "graflow.queue.memory",  # the ``memory`` queue backend
    "graflow.channels.memory",  # the ``memory`` channel backend
    "graflow.coordination.direct",  # CoordinationBackend.DIRECT
    "graflow.coordination.threaded",  # CoordinationBackend.THREADING
    "graflow.coordination.processes",  # CoordinationBackend.MULTIPROCESSING
    "graflow.state.memory",  # the ``memory`` state store (nothing kept)
    "graflow.state.local",  # the ``local`` state store (SQLite under a state directory)
    "graflow.core.engine",  # the kernel's own run and group implementations
    "graflow.core.attempt",  # the kernel's own task attempt implementation
    "graflow.cli.commands",  # ``graflow run``, ``graph``, ``plugins``
)
