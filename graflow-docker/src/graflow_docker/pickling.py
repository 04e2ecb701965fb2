"""Turning an envelope into bytes a container can load.

A container sees the standard library, its image's own packages and the graflow
runtime mounted by :mod:`graflow_docker.runtime`; it cannot import the user's
scripts, test modules or packages installed in editable mode. So every loaded
module that lives outside those places is pickled *by value* (cloudpickle ships the
code), while code from installed packages stays a reference resolved inside the
image (so a ``tensorflow`` image uses its own ``tensorflow``).
"""

from __future__ import annotations

import os
import pickletools
import site
import sys
import sysconfig
import threading
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import cloudpickle

from graflow.exceptions import TaskSerializationError
from graflow.remote.envelope import dumps

if TYPE_CHECKING:
    from graflow.remote.envelope import TaskEnvelope

__all__ = ["EnvelopePickler", "carries_bytecode"]

#: cloudpickle's by-value registry is process-wide; envelopes are pickled one at a
#: time so one handler's clean-up never unregisters a module another is using.
_REGISTRY_LOCK = threading.Lock()


class EnvelopePickler:
    """Pickles envelopes with user code by value; remembers which modules are user code."""

    def __init__(self, runtime_sources: Iterable[Path]) -> None:
        roots = {Path(p) for p in sysconfig.get_paths().values()}
        roots.update(Path(p) for p in site.getsitepackages())
        roots.add(Path(site.getusersitepackages()))
        roots.update(runtime_sources)
        resolved = [root.resolve() for root in roots]
        #: Directories (ending in a separator, so ``/venv`` does not cover ``/venv2``) and
        #: single-module files whose code the container can import by itself.
        self._dirs = tuple(os.path.join(str(root), "") for root in resolved if not root.is_file())
        self._files = frozenset(str(root) for root in resolved if root.is_file())
        #: module name -> whether it travels by value (user code).
        self._by_value: dict[str, bool] = {}

    def dumps(self, envelope: TaskEnvelope) -> bytes:
        """The envelope as bytes, or :class:`TaskSerializationError` saying what to change."""
        with _REGISTRY_LOCK:
            already = cloudpickle.list_registry_pickle_by_value()
            registered = [m for m in self._user_modules() if m.__name__ not in already]
            for module in registered:
                cloudpickle.register_pickle_by_value(module)
            try:
                return dumps(envelope)
            except Exception as exc:
                raise TaskSerializationError(
                    f"task {envelope.task_id!r} cannot be sent to a container ({type(exc).__name__}: {exc}). "
                    "The task, its closure, the channel's values and earlier results are pickled with "
                    "cloudpickle: keep locks, connections, clients and open files out of them (create them "
                    "inside the task), or run this task with another handler."
                ) from exc
            finally:
                for module in registered:
                    cloudpickle.unregister_pickle_by_value(module)

    def _user_modules(self) -> list[ModuleType]:
        modules = []
        for name, module in list(sys.modules.items()):
            flag = self._by_value.get(name)
            if flag is None:
                flag = self._by_value[name] = self._is_user_code(name, module)
            if flag:
                modules.append(module)
        return modules

    def _is_user_code(self, name: str, module: object) -> bool:
        if name == "__main__" or not isinstance(module, ModuleType):  # __main__ is by value anyway
            return False
        file = getattr(module, "__file__", None)
        if not isinstance(file, str):
            return False
        try:
            path = str(Path(file).resolve())
        except OSError:
            return False
        return not (path.startswith(self._dirs) or path in self._files)


def carries_bytecode(payload: bytes) -> bool:
    """Whether the pickle holds code objects, which only the same Python minor version can load.

    cloudpickle rebuilds a function shipped by value from ``_builtin_type("CodeType")``.
    """
    previous = None
    for _opcode, arg, _pos in pickletools.genops(payload):
        if isinstance(arg, str):
            if arg == "CodeType" and previous == "_builtin_type":
                return True
            previous = arg
    return False
