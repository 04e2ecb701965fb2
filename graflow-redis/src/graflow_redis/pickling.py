"""Which code travels by value: the user's own scripts and modules do, installed packages don't.

cloudpickle pickles a function by reference (module + name) whenever its module is
importable here, which would make a worker import the user's ``etl.py``. Before an
envelope is dumped, :func:`ship_by_value` registers the task function's module for
pickling by value, together with the user modules it reaches (helpers it calls,
modules it imports, classes it raises), so a worker needs only the installed packages.

Exception and result classes defined in a by-value module come back as the driver's own
classes: cloudpickle tracks classes it pickled by value, so ``except MyError`` in the
driver still catches a ``MyError`` raised on a worker.
"""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig
import threading
import types
import weakref
from typing import Any

import cloudpickle

__all__ = ["is_user_module", "ship_by_value"]

_lock = threading.Lock()
_decisions: dict[str, bool] = {}
_prepared: weakref.WeakSet[Any] = weakref.WeakSet()


@functools.cache
def _installed_top_levels() -> frozenset[str]:
    """Top-level import names that belong to an installed distribution (editable ones included)."""
    from importlib.metadata import packages_distributions

    return frozenset(packages_distributions())


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    try:
        dirs.update(site.getsitepackages())
        dirs.add(site.getusersitepackages())
    except AttributeError:  # virtualenvs with an old site.py
        pass
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


def is_user_module(name: str | None) -> bool:
    """Whether module ``name`` is the user's own code (not stdlib, not an installed package).

    ``__main__`` is left out: cloudpickle already ships it by value.
    """
    if not name or name == "__main__":
        return False
    decided = _decisions.get(name)
    if decided is not None:
        return decided
    top = name.partition(".")[0]
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    user = bool(
        file
        and top not in sys.stdlib_module_names
        and top not in _installed_top_levels()
        and not os.path.realpath(file).startswith(_library_dirs())
    )
    _decisions[name] = user
    return user


def ship_by_value(func: Any) -> None:
    """Register the user modules ``func`` lives in and reaches for pickling by value (once per function)."""
    try:
        if func in _prepared:
            return
    except TypeError:  # not weak-referenceable: walk it every time (cheap for plain objects)
        pass
    with _lock:
        _walk(func, set())
        try:
            _prepared.add(func)
        except TypeError:
            pass


def _register(module_name: str) -> bool:
    """Register ``module_name`` by value if it is user code; True if it is (walk its contents then)."""
    if not is_user_module(module_name):
        return False
    module = sys.modules[module_name]
    if module_name not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(module)
    return True


def _walk(obj: Any, seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, functools.partial):
        _walk(obj.func, seen)
        for value in (*obj.args, *obj.keywords.values()):
            _walk(value, seen)
        return
    if isinstance(obj, types.MethodType):
        _walk(obj.__func__, seen)
        return
    if isinstance(obj, types.ModuleType):
        if _register(obj.__name__):
            for value in list(vars(obj).values()):
                if isinstance(value, (types.FunctionType, type, types.ModuleType)):
                    _walk(value, seen)
        return
    if isinstance(obj, types.FunctionType):
        if not (_register(obj.__module__) or obj.__module__ == "__main__"):
            return
        for name in _global_names(obj.__code__):
            if name in obj.__globals__:
                _walk(obj.__globals__[name], seen)
        for cell in obj.__closure__ or ():
            try:
                _walk(cell.cell_contents, seen)
            except ValueError:  # an empty cell
                pass
        return
    if isinstance(obj, type):
        if _register(obj.__module__):
            for value in list(vars(obj).values()):
                if isinstance(value, (types.FunctionType, staticmethod, classmethod)):
                    _walk(getattr(value, "__func__", value), seen)
        return
    if callable(obj) and not isinstance(obj, types.BuiltinFunctionType):
        _walk(type(obj), seen)  # a callable instance: its class carries the code


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names
