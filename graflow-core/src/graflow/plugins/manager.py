"""The one plugin manager: loads the ``graflow`` entry points once, resolves names.

Providers are collected lazily and cached, so resolving ``"direct"`` or ``"memory"`` is
a dict lookup after the first run; registering or unregistering a plugin clears the
caches. A plugin that fails to import is recorded, not raised: it is reported by
``graflow plugins`` and in the error of whatever needed it, and never breaks runs that
do not use it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final

import pluggy

from graflow.core.handler import TaskHandler
from graflow.exceptions import ConfigError, PluginNotInstalledError
from graflow.plugins import hookspecs
from graflow.plugins.builtin import BUILTIN_PLUGINS
from graflow.plugins.missing import PACKAGE_FOR_ENTRY_POINT, PACKAGE_FOR_NAME

if TYPE_CHECKING:
    from graflow.coordination.coordinator import Coordinator

__all__ = ["GraflowPluginManager", "PluginInfo", "get_plugin_manager"]

ENTRY_POINT_GROUP: Final = "graflow"
#: The name ``graflow plugins`` shows for the kernel's own built-in plugin modules.
BUILTIN: Final = "builtin"

#: Provider hook name -> the word used for its names in messages.
_PROVIDERS: Final[dict[str, str]] = {
    "graflow_task_handlers": "handler",
    "graflow_queue_backends": "queue backend",
    "graflow_channel_backends": "channel backend",
    "graflow_coordinators": "coordination backend",
    "graflow_state_stores": "state store",
}


@dataclass
class PluginInfo:
    """What ``graflow plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    error: str | None = None
    #: Provider kind ("handler", ...) -> names it contributes.
    provides: dict[str, list[str]] = field(default_factory=dict)
    #: Non-provider hooks it implements (wrappers, carrier, CLI).
    hooks: list[str] = field(default_factory=list)


class GraflowPluginManager:
    """Graflow's pluggy manager plus name resolution for providers."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._load_entry_points = load_entry_points
        self._loaded = False
        self._lock = threading.RLock()
        self._providers: dict[str, dict[str, tuple[str, Any]]] = {}
        self._handlers: dict[str, TaskHandler] = {}
        #: Entry-point name -> (distribution, "ErrorType: message") of plugins that failed to load.
        self.failures: dict[str, tuple[str | None, str]] = {}
        self._distributions: dict[str, str] = {}

    # --- loading -------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            # By name, as pytest loads its own plugins: the built-ins sit above the kernel
            # modules this one serves, so importing them here would be an import cycle.
            for module_name in BUILTIN_PLUGINS:
                self._pm.register(importlib.import_module(module_name), name=module_name)
            if self._load_entry_points:
                self._load_from_entry_points()
            self._loaded = True

    def _load_from_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self._pm.has_plugin(ep.name) or ep.name in self.failures:
                continue
            dist = ep.dist.name if ep.dist is not None else None
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break unrelated runs
                self.failures[ep.name] = (dist, f"{type(exc).__name__}: {exc}")
                continue
            self._pm.register(plugin, name=ep.name)
            if dist:
                self._distributions[ep.name] = dist

    @property
    def hook(self) -> pluggy.HookRelay:
        """The pluggy hook relay, with every plugin loaded."""
        self._ensure_loaded()
        return self._pm.hook

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object at run time (tests, applications embedding Graflow)."""
        self._ensure_loaded()
        with self._lock:
            registered = self._pm.register(plugin, name=name)
            self._clear_caches()
        assert registered is not None
        return registered

    def get_plugin(self, name: str) -> object | None:
        """The plugin registered under ``name`` (an entry point's name, or a registration's), if any."""
        self._ensure_loaded()
        plugin: object | None = self._pm.get_plugin(name)
        return plugin

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        self._ensure_loaded()
        with self._lock:
            self._pm.unregister(name=name)
            self._clear_caches()

    def _clear_caches(self) -> None:
        self._providers.clear()
        self._handlers.clear()

    # --- providers -------------------------------------------------------------------

    def _provided(self, hook_name: str) -> dict[str, tuple[str, Any]]:
        """``name -> (plugin name, factory)``; later-registered plugins override earlier ones."""
        cached = self._providers.get(hook_name)
        if cached is not None:
            return cached
        self._ensure_loaded()
        with self._lock:
            merged: dict[str, tuple[str, Any]] = {}
            # get_hookimpls() lists in call order reversed: earliest registered first.
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                for key, value in (impl.function() or {}).items():
                    merged[key] = (impl.plugin_name, value)
            self._providers[hook_name] = merged
            return merged

    def names(self, hook_name: str) -> list[str]:
        """Sorted names provided through a provider hook."""
        return sorted(self._provided(hook_name))

    def resolve(self, hook_name: str, name: str) -> Any:
        """The factory registered under ``name``, or an error saying what to install."""
        entry = self._provided(hook_name).get(name)
        if entry is None:
            raise self.unknown_name_error(hook_name, name)
        return entry[1]

    def unknown_name_error(
        self, hook_name: str, name: str, extra_known: list[str] | None = None
    ) -> Exception:
        """The error for a name nobody provides: which plugin to install, or what exists."""
        kind = _PROVIDERS[hook_name]
        package = PACKAGE_FOR_NAME.get(name)
        if package is not None:
            failure = next((err for dist, err in self.failures.values() if dist == package), None)
            return PluginNotInstalledError(f"the {kind} {name!r}", package, failure)
        known = sorted(set(self.names(hook_name)) | set(extra_known or ()))
        # A plugin that failed to import may be the one that provides ``name``: say so.
        broken = "".join(
            f" Plugin {ep!r} failed to load and may provide it: {err}."
            for ep, (_, err) in self.failures.items()
        )
        return ConfigError(
            f"unknown {kind} {name!r}; known: {', '.join(known)}. "
            f"A plugin can add more (`graflow plugins` lists what is installed).{broken}"
        )

    def task_handler(self, name: str) -> TaskHandler:
        """The plugin-provided handler called ``name``, built once on first use."""
        handler = self._handlers.get(name)
        if handler is None:
            provided = self.resolve("graflow_task_handlers", name)
            handler = provided if isinstance(provided, TaskHandler) else provided()
            self._handlers[name] = handler
        return handler

    def coordinator(self, name: str) -> Coordinator:
        """A fresh coordinator for the backend called ``name``."""
        factory: Callable[[], Coordinator] = self.resolve("graflow_coordinators", name)
        return factory()

    def wraps(self, hook_name: str) -> bool:
        """Whether any plugin wraps the lifecycle hook now, so the kernel can skip it otherwise.

        A wrapper function may carry a ``graflow_active`` attribute, a zero-argument callable:
        while it returns false the wrapper does not count (a tracer with no SDK configured).
        The kernel asks once per run (per envelope on the remote side), not per task.
        """
        self._ensure_loaded()
        for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                active = getattr(impl.function, "graflow_active", None)
                if active is None or active():
                    return True
        return False

    # --- introspection -------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin and every one that failed to load."""
        self._ensure_loaded()
        infos: dict[str, PluginInfo] = {}
        for name, plugin in self._pm.list_name_plugin():
            if plugin is None:
                continue
            name = _shown_name(name)
            infos.setdefault(name, PluginInfo(name=name, distribution=self._distributions.get(name)))
        for hook_name, kind in _PROVIDERS.items():
            for key, (plugin_name, _) in self._provided(hook_name).items():
                infos[_shown_name(plugin_name)].provides.setdefault(kind, []).append(key)
        for hook_name in (
            "graflow_run_workflow",
            "graflow_run_task",
            "graflow_run_group",
            "graflow_inject_carrier",
            "graflow_extract_carrier",
            "graflow_feedback_requested",
            "graflow_cli_commands",
        ):
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name in infos:  # built-ins' own hooks are the kernel at work
                    infos[impl.plugin_name].hooks.append(hook_name)
        for name, (dist, error) in self.failures.items():
            infos[name] = PluginInfo(
                name=name, distribution=dist or PACKAGE_FOR_ENTRY_POINT.get(name), error=error
            )
        return list(infos.values())


def _shown_name(plugin_name: str) -> str:
    return BUILTIN if plugin_name in BUILTIN_PLUGINS else plugin_name


_manager: GraflowPluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> GraflowPluginManager:
    """The process-wide plugin manager (built, not loaded, on first call)."""
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = GraflowPluginManager()
    return _manager
