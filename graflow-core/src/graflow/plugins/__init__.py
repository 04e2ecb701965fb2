"""Graflow's plugin system, and everything a plugin author needs from the kernel.

Write ``@hookimpl`` functions (every hook is documented in
:mod:`graflow.plugins.hookspecs`) and publish an entry point::

    # pyproject.toml
    [project.entry-points.graflow]
    gpu = "graflow_gpu"

    # graflow_gpu/__init__.py
    from graflow.plugins import hookimpl

    @hookimpl
    def graflow_task_handlers():
        return {"gpu": GPUHandler()}

After ``pip install graflow-gpu``, ``@task(handler="gpu")`` works with no registration
code and ``graflow plugins`` lists it.

The author surface, all importable from here (plugins import nothing private):

* :data:`hookimpl`, :func:`get_plugin_manager`, :class:`GraflowPluginManager`, :class:`PluginInfo`;
* :func:`get_logger`: structlog over the standard library's logging, as the kernel logs;
* the messages of remote execution: :class:`TaskEnvelope`, :class:`TaskOutcome`,
  :func:`build_envelope`, :func:`apply_outcome`, :func:`run_envelope`, :class:`RemoteExecutor`;
* the codec: :class:`ByValue`, :func:`dumps_envelope`, :func:`dumps_outcome`, :func:`loads`;
* carrier keys every plugin agrees on: :data:`TRACEPARENT`.

The remote-execution names load on first use, so a plugin that only contributes a
handler costs nothing more than :mod:`pluggy`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

import pluggy

from graflow.log import get_logger
from graflow.plugins.hookspecs import PROJECT_NAME
from graflow.plugins.manager import GraflowPluginManager, PluginInfo, get_plugin_manager

if TYPE_CHECKING:
    from graflow.remote.build import build_envelope
    from graflow.remote.codec import ByValue, dumps_envelope, dumps_outcome, loads
    from graflow.remote.envelope import TaskEnvelope, TaskOutcome, apply_outcome
    from graflow.remote.executor import RemoteExecutor
    from graflow.remote.runner import run_envelope

#: Marks a function as a Graflow hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: The carrier key of the W3C trace context (``graflow_inject_carrier``): written by a
#: tracing plugin, read by placements that must pass it on by other means (the Docker
#: handler sets it as ``TRACEPARENT`` in the container's environment).
TRACEPARENT: Final = "traceparent"

__all__ = [
    "TRACEPARENT",
    "ByValue",
    "GraflowPluginManager",
    "PluginInfo",
    "RemoteExecutor",
    "TaskEnvelope",
    "TaskOutcome",
    "apply_outcome",
    "build_envelope",
    "dumps_envelope",
    "dumps_outcome",
    "get_logger",
    "get_plugin_manager",
    "hookimpl",
    "loads",
    "run_envelope",
]

#: Lazily loaded names -> their module (the remote-execution surface pulls in cloudpickle).
_LAZY: Final = {
    "ByValue": "graflow.remote.codec",
    "dumps_envelope": "graflow.remote.codec",
    "dumps_outcome": "graflow.remote.codec",
    "loads": "graflow.remote.codec",
    "TaskEnvelope": "graflow.remote.envelope",
    "TaskOutcome": "graflow.remote.envelope",
    "apply_outcome": "graflow.remote.envelope",
    "build_envelope": "graflow.remote.build",
    "RemoteExecutor": "graflow.remote.executor",
    "run_envelope": "graflow.remote.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graflow.plugins' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
