"""Opening the durable store a config points at: for commands and scripts that reach runs from outside.

``graflow resume``, ``runs`` and ``feedback``, and :meth:`FeedbackManager.for_store
<graflow.hitl.FeedbackManager.for_store>`, all find a store the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graflow.exceptions import ConfigError
from graflow.plugins.manager import get_plugin_manager
from graflow.state.store import StateStore

__all__ = ["store_for", "store_name"]


def store_name(config: Mapping[str, Any] | None) -> str:
    """The name of the store ``config`` points at: ``state_store`` if named, else whichever plugin
    claims the config (a ``redis_url``: ``redis``), else ``local`` (the store of ``state_dir``)."""
    config = config or {}
    claimed = get_plugin_manager().hook.graflow_state_store_for(config=config)
    return str(config.get("state_store") or claimed or "local")


def store_for(config: Mapping[str, Any] | None) -> StateStore:
    """The durable store ``config`` points at (see :func:`store_name`)."""
    config = dict(config or {})
    name = store_name(config)
    store: StateStore = get_plugin_manager().resolve("graflow_state_stores", name)(config)
    if not store.durable:
        raise ConfigError(
            f"the {name!r} state store keeps no runs; point at a durable one (--state-dir, --redis-url)"
        )
    return store
