"""How envelopes and outcomes become bytes, for every place a task runs outside the engine.

MULTIPROCESSING pools, Redis workers and Docker containers all go through here, so
one policy decides what travels and one message says what went wrong:

* **User code travels by value.** cloudpickle pickles a function by reference (module +
  name) whenever its module is importable here, which would make a worker import the
  user's ``etl.py``. A :class:`ByValue` policy names the modules the destination cannot
  import (the user's own scripts and modules) and registers them with cloudpickle for
  the duration of one dump, under one process-wide lock, because cloudpickle's registry
  is process-wide. Code from installed packages stays a reference.
* **Outcomes always travel.** An exception that would not unpickle on the other side is
  dropped (its type, message and traceback text remain); a result that cannot be pickled
  turns the outcome into a failure that says so. A task never leaves its driver waiting
  for bytes that could not be made.

Unpickling runs code: :func:`loads` only what you trust, or what a signature verified.
"""

from __future__ import annotations

import functools
import os
import pickle
import pickletools
import site
import sys
import sysconfig
import threading
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any, Final

import cloudpickle

from graflow.exceptions import TaskSerializationError
from graflow.remote.envelope import TaskEnvelope, TaskOutcome, failure

__all__ = [
    "ByValue",
    "carries_bytecode",
    "dumps",
    "dumps_by_value",
    "dumps_data",
    "dumps_envelope",
    "dumps_outcome",
    "loads",
    "serialization_error",
    "storable",
]

#: cloudpickle's by-value registry is process-wide; dumps that register modules take turns.
_REGISTRY_LOCK: Final = threading.Lock()


class ByValue:
    """Which loaded modules a destination cannot import, so their code must travel with the task.

    ``ByValue("a worker")`` suits processes that have this interpreter's installed
    packages (pool processes, ``graflow-worker``): the user's own modules travel,
    installed distributions (editable ones included) and the standard library don't.
    ``ByValue("a container", installed_are_local=False, library_paths=[...])`` suits a
    destination that only has its own site-packages and the given paths: everything
    loaded from elsewhere, editable installs included, travels.
    """

    def __init__(
        self,
        destination: str,
        *,
        installed_are_local: bool = True,
        library_paths: Iterable[str] = (),
        advice: str = "",
    ) -> None:
        #: Where payloads go, for messages ("a worker", "a container").
        self.destination = destination
        #: What else a user can do when a task cannot travel there (ends the error message).
        self.advice = advice
        self._installed_are_local = installed_are_local
        roots = [os.path.realpath(p) for p in (*_library_dirs(), *library_paths)]
        self._dirs = tuple(os.path.join(r, "") for r in roots if not os.path.isfile(r))
        self._files = frozenset(r for r in roots if os.path.isfile(r))
        self._decisions: dict[str, bool] = {}
        self._seen = 0
        self._modules: list[ModuleType] = []

    def is_user_module(self, name: str, module: object = None) -> bool:
        """Whether module ``name`` must travel by value (``__main__`` is left to cloudpickle)."""
        decided = self._decisions.get(name)
        if decided is None:
            decided = self._decisions[name] = self._decide(name, module or sys.modules.get(name))
        return decided

    def _decide(self, name: str, module: object) -> bool:
        if name == "__main__" or not isinstance(module, ModuleType):
            return False
        file = getattr(module, "__file__", None)
        if not isinstance(file, str):
            return False
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names:
            return False
        if self._installed_are_local and top in _installed_top_levels():
            return False
        path = os.path.realpath(file)
        return not (path.startswith(self._dirs) or path in self._files)

    def modules(self) -> list[ModuleType]:
        """The loaded user modules; recomputed only when the set of loaded modules changed.

        A count alone misses a module given back (the CLI loader unloads the workflow file's
        module) while another loads, so a cached module that is no longer loaded also counts.
        """
        loaded = len(sys.modules)
        if loaded != self._seen or any(sys.modules.get(m.__name__) is not m for m in self._modules):
            self._modules = [m for n, m in list(sys.modules.items()) if self.is_user_module(n, m)]
            self._seen = loaded
        return self._modules


@functools.cache
def _installed_top_levels() -> frozenset[str]:
    """Top-level import names that belong to an installed distribution (editable ones included).

    What :func:`importlib.metadata.packages_distributions` finds (a distribution's
    ``top_level.txt``, else the top level of the ``.py`` files its ``RECORD`` lists), read
    without building a path object per file: 5 ms instead of 70 on a hundred distributions,
    and a driver pays it before its first task leaves.
    """
    from importlib.metadata import distributions  # lazy: scans every installed distribution

    names: set[str] = set()
    for dist in distributions():
        declared = dist.read_text("top_level.txt")
        if declared and declared.strip():
            names.update(declared.split())
            continue
        for line in (dist.read_text("RECORD") or "").splitlines():
            path = line.split(",", 1)[0]
            if path.endswith(".py"):
                top, nested, _ = path.partition("/")
                names.add(top if nested else top[:-3])
    return frozenset(names)


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs.update(site.getsitepackages())
    dirs.add(site.getusersitepackages())
    return tuple(d for d in dirs if d)


def serialization_error(what: str, by_value: ByValue, exc: BaseException) -> TaskSerializationError:
    """The one wording for "this cannot be sent": what, where, why, and what to change."""
    advice = f", {by_value.advice}" if by_value.advice else ""
    return TaskSerializationError(
        f"{what} cannot be sent to {by_value.destination} ({type(exc).__name__}: {exc}). Tasks travel "
        "with cloudpickle: keep locks, connections, clients and open files out of the function's "
        f"closure and arguments (create them inside the task), and pass plain data between tasks{advice}."
    )


def dumps(value: Any) -> bytes:
    """``value`` as cloudpickle bytes (no by-value registration)."""
    payload: bytes = cloudpickle.dumps(value)
    return payload


def dumps_data(value: Any) -> bytes:
    """``value`` as pickle bytes, by the C pickler when everything in it is importable by name.

    That is what results and outcomes usually are (numbers, strings, containers, instances
    of installed classes), and what cloudpickle would write for them too, several times
    slower. A value holding a lambda or a class rebuilt by value makes the plain pickler
    refuse; cloudpickle then writes it as always.
    """
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return dumps(value)


def loads(payload: bytes) -> Any:
    """Inverse of the dumps here. Unpickling runs code: load only what you trust or verified."""
    return pickle.loads(payload)


def dumps_envelope(envelope: TaskEnvelope, by_value: ByValue, *, what: str | None = None) -> bytes:
    """The envelope as bytes, user code by value; :class:`TaskSerializationError` if it cannot travel.

    ``what`` names the task in that error (default ``task 'id'``).
    """
    return dumps_by_value(envelope, by_value, what=what or f"task {envelope.task_id!r}")


def dumps_by_value(value: Any, by_value: ByValue, *, what: str) -> bytes:
    """``value`` as bytes with the user's code inside (a graph, a result of a user class, ...).

    ``what`` names the value in the :class:`TaskSerializationError` raised if it cannot travel.
    """
    with _REGISTRY_LOCK:
        already = cloudpickle.list_registry_pickle_by_value()
        registered = [m for m in by_value.modules() if m.__name__ not in already]
        for module in registered:
            cloudpickle.register_pickle_by_value(module)
        try:
            return dumps(value)
        except Exception as exc:
            raise serialization_error(what, by_value, exc) from exc
        finally:
            for module in registered:
                cloudpickle.unregister_pickle_by_value(module)


def dumps_outcome(outcome: TaskOutcome) -> bytes:
    """The outcome as bytes; never fails because of what the task produced (see the module docs).

    What cannot travel is changed *in place* on ``outcome`` (an exception dropped, a result
    turned into the failure saying so), so whoever holds it, a worker counting its tasks,
    sees what the driver will.
    """
    if outcome.error is not None and not _round_trips(outcome.error):
        outcome.error = None
    try:
        return dumps_data(outcome)
    except Exception as exc:
        bad = TypeError(
            f"task {outcome.task_id!r} returned or requested something that cannot be sent back: it "
            f"cannot be pickled ({type(exc).__name__}: {exc}); return plain data (dicts, lists, "
            "numbers, strings) and keep such objects out of channel writes"
        )
        replacement = failure(outcome.task_id, bad, outcome.started_at)
        for name in ("success", "result", "error", "error_type", "error_message", "remote_traceback"):
            setattr(outcome, name, getattr(replacement, name))
        outcome.requests = None
        outcome.channel_ops = []
        outcome.step_recorded = False  # a failure is no step of the run
        return dumps(outcome)


def _round_trips(error: BaseException) -> bool:
    """Whether ``error`` unpickles again: one whose ``__init__`` takes other arguments than its
    ``args`` pickles fine but fails to load, and would take its whole outcome down with it."""
    try:
        pickle.loads(cloudpickle.dumps(error))
    except Exception:
        return False
    return True


def storable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that can be stored with a run (a client object cannot; its URL can)."""
    kept = {}
    for key, value in settings.items():
        try:
            dumps(value)
        except Exception:
            continue
        kept[key] = value
    return kept


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
