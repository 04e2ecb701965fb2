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

__all__ = ["store_for"]


def store_for(config: Mapping[str, Any] | None) -> StateStore:
    """The store ``config`` points at: ``state_store`` if named, else whichever plugin claims the
    config (a ``redis_url``: Redis), else the ``local`` store of ``state_dir``."""
    config = dict(config or {})
    manager = get_plugin_manager()
    name = config.get("state_store") or manager.hook.graflow_state_store_for(config=config) or "local"
    store: StateStore = manager.resolve("graflow_state_stores", str(name))(config)
    if not store.durable:
        raise ConfigError(
            f"the {name!r} state store keeps no runs; point at a durable one (--state-dir, --redis-url)"
        )
    return store
