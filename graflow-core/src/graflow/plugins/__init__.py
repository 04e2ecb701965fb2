"""Graflow's plugin system: write ``@hookimpl`` functions, publish an entry point.

Every hook is documented in :mod:`graflow.plugins.hookspecs`. A plugin package needs::

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
"""

from __future__ import annotations

import pluggy

from graflow.plugins.hookspecs import PROJECT_NAME
from graflow.plugins.manager import GraflowPluginManager, PluginInfo, get_plugin_manager

#: Marks a function as a Graflow hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["GraflowPluginManager", "PluginInfo", "get_plugin_manager", "hookimpl"]
