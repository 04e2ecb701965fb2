"""Lazy aliases for names that moved to plugin distributions (SPEC section 1)."""

from __future__ import annotations

import importlib
from typing import Any

from graflow.exceptions import PluginNotInstalledError


def load_plugin_attribute(module: str, attribute: str, package: str) -> Any:
    """``module.attribute`` from a plugin, or an ImportError naming the pip package."""
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name != module and not module.startswith(f"{exc.name}."):
            raise  # the plugin is there but one of *its* imports is missing: show that
        raise PluginNotInstalledError(f"{attribute}", package) from exc
    return getattr(loaded, attribute)
