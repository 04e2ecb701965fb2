"""An outcome as plain data: JSON out of a remote side that is not trusted, checked before use.

:func:`~graflow.remote.codec.dumps_outcome` pickles, so loading its bytes runs whatever
code they name: fine for a process the driver trusts like the task's own code, fatal
for one it does not (a sandboxed container). :func:`dumps_plain_outcome` writes the
same :class:`~graflow.remote.envelope.TaskOutcome` as JSON, which loads as data and
nothing else, and :func:`loads_plain_outcome` reads it back against a strict schema.
The remote side runs the first (inside it only graflow-core is importable, hence this
module lives in the kernel), the driver the second.

The wire form, one JSON object::

    {"task_id": "t", "success": true, "result": DATA,
     "error": null | {"type": "ValueError", "message": "...", "traceback": "..."},
     "channel_ops": [["set", ["key", DATA, null]], ["atomic_add", ["n", 1]], ...],
     "requests": null | {"next_tasks": [{"task_id": "t2", "goto": false}], "iterate": false,
                         "iteration_data": DATA, "terminate": null | "...", "cancel": null | "...",
                         "checkpoint": null | {"metadata": {"k": DATA}}},
     "started_at": 0.0, "duration": 0.0, "worker": "host:pid"}

``DATA`` is JSON data exactly: ``dict`` with ``str`` keys, ``list``, ``str``, ``int``,
``float``, ``bool``, ``None``, nested at most :data:`MAX_DEPTH` deep. Nothing is
converted silently: a tuple, a set or an object in a result, a channel value or
``next_iteration`` data turns the outcome into a failure that names it. What cannot
be data at all is refused: ``next_task`` names tasks by id, so only tasks already in
the graph can be asked for; an exception comes back as its type name, message and
traceback text (:class:`~graflow.remote.envelope.RemoteTaskError` when raised); a
checkpoint cannot choose its path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from graflow.core.requests import TaskRequests
from graflow.exceptions import GraflowError
from graflow.remote.envelope import ChannelOp, TaskOutcome, failure

if TYPE_CHECKING:
    from graflow.core.dsl import Executable

__all__ = ["MAX_DEPTH", "InvalidOutcomeError", "dumps_plain_outcome", "loads_plain_outcome"]

#: How deeply a result, channel value or ``next_iteration`` data may nest.
MAX_DEPTH: Final = 100

#: The channel writes an outcome may carry (those :class:`~graflow.channels.recording.RecordingChannel`
#: records), with the kind of each argument: ``key`` a str, ``data`` JSON data,
#: ``ttl`` a number or null, ``amount`` a number.
_CHANNEL_OPS: Final[dict[str, tuple[str, ...]]] = {
    "set": ("key", "data", "ttl"),
    "delete": ("key",),
    "clear": (),
    "append": ("key", "data"),
    "prepend": ("key", "data"),
    "atomic_add": ("key", "amount"),
}
_OUTCOME_FIELDS: Final = frozenset(
    {"task_id", "success", "result", "error", "channel_ops", "requests", "started_at", "duration", "worker"}
)
_ERROR_FIELDS: Final = frozenset({"type", "message", "traceback"})
_REQUEST_FIELDS: Final = frozenset(
    {"next_tasks", "iterate", "iteration_data", "terminate", "cancel", "checkpoint"}
)
_SCALARS: Final = (str, int, float, bool, type(None))
_T = TypeVar("_T")


class InvalidOutcomeError(GraflowError, ValueError):
    """Bytes that should hold a plain outcome do not; the message says what was wrong where."""


class _NotData(Exception):
    """A value that is not JSON data; ``path`` grows as the walk unwinds (``[3]``, ``['rows']``)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def at(self, where: str) -> str:
        return where + "".join(reversed(self.path))


# --- the remote side --------------------------------------------------------------------


def dumps_plain_outcome(outcome: TaskOutcome) -> bytes:
    """The outcome as JSON bytes; never fails because of what the task produced.

    A value that is not JSON data, or a request that cannot be data, turns the outcome
    into a failure (``TypeError``) that names the task and the value, as
    :func:`~graflow.remote.codec.dumps_outcome` does for what cannot be pickled.
    """
    try:
        return _dumps(_plain(outcome))
    except (_NotData, ValueError) as exc:
        what = exc.problem if isinstance(exc, _NotData) else f"it cannot be written as JSON ({exc})"
        problem = TypeError(
            f"task {outcome.task_id!r} returned or requested something that cannot leave a sandbox: "
            f"{what}. Sandboxed tasks send back JSON data only (dict with str keys, list, str, int, float, "
            "bool, None): convert it in the task (a tuple or set to a list, an object to a dict)"
        )
        return _dumps(_plain(failure(outcome.task_id, problem, outcome.started_at)))


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _plain(outcome: TaskOutcome) -> dict[str, Any]:
    error = None
    if not outcome.success:
        error = {
            "type": outcome.error_type or "Exception",
            "message": outcome.error_message or "",
            "traceback": outcome.remote_traceback or "",
        }
    return {
        "task_id": outcome.task_id,
        "success": outcome.success,
        "result": _data(outcome.result, "its result", _NotData),
        "error": error,
        "channel_ops": [_plain_op(index, op) for index, op in enumerate(outcome.channel_ops)],
        "requests": _plain_requests(outcome.requests) if outcome.success else None,
        "started_at": outcome.started_at,
        "duration": outcome.duration,
        "worker": outcome.worker,
    }


def _plain_op(index: int, op: ChannelOp) -> list[Any]:
    method, args = op
    kinds = _CHANNEL_OPS.get(method)
    if kinds is None:
        raise _NotData(f"channel write {index} is {method!r}, which a sandbox cannot send back")
    if "data" in kinds:
        _data(
            args[kinds.index("data")], f"the value of channel write {index} ({method} {args[0]!r})", _NotData
        )
    return [method, list(args)]


def _plain_requests(requests: TaskRequests | None) -> dict[str, Any] | None:
    if requests is None:
        return None
    checkpoint = None
    if requests.checkpoint is not None:
        path, metadata = requests.checkpoint
        if path is not None:
            raise _NotData(
                f"checkpoint(path={path!r}) would let it choose where a file is written outside the "
                "sandbox; call checkpoint() without a path"
            )
        checkpoint = {"metadata": _data(metadata, "its checkpoint metadata", _NotData)}
    return {
        "next_tasks": [{"task_id": task.task_id, "goto": goto} for task, goto in requests.next_tasks],
        "iterate": requests.iterate,
        "iteration_data": _data(requests.iteration_data, "its next_iteration data", _NotData),
        "terminate": requests.terminate,
        "cancel": requests.cancel,
        "checkpoint": checkpoint,
    }


# --- JSON data, checked on both sides -----------------------------------------------------


def _data(value: Any, where: str, error: type[Exception] = InvalidOutcomeError) -> Any:
    """``value`` if it is JSON data, else ``error`` saying what in it is not and where it sits."""
    try:
        _check_data(value, 0)
    except _NotData as exc:
        raise error(f"{exc.at(where)} is {exc.problem}") from None
    return value


def _check_data(value: Any, depth: int) -> None:
    """Raise :class:`_NotData` unless ``value`` is JSON data exactly (no subclasses, no tuples)."""
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is not list and kind is not dict:
        name = (
            kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        )
        raise _NotData(f"of type {name}")
    if depth >= MAX_DEPTH:
        raise _NotData(f"nested more than {MAX_DEPTH} levels deep")
    if kind is list:
        for index, item in enumerate(value):
            try:
                _check_data(item, depth + 1)
            except _NotData as exc:
                exc.path.append(f"[{index}]")
                raise
        return
    for key, item in value.items():
        if type(key) is not str:
            raise _NotData(f"a dict with the {type(key).__name__} key {key!r} (JSON keys are str)")
        try:
            _check_data(item, depth + 1)
        except _NotData as exc:
            exc.path.append(f"[{key!r}]")
            raise


# --- the driver's side ------------------------------------------------------------------


def loads_plain_outcome(
    data: bytes, *, task_id: str, find_task: Callable[[str], Executable | None]
) -> TaskOutcome:
    """The outcome in ``data``, checked field by field; :class:`InvalidOutcomeError` if anything is off.

    ``task_id`` is the task that ran; ``find_task`` maps an id named by ``next_task``
    to the graph's task (``graph.find``), ``None`` for an unknown one. Nothing here
    runs code from ``data``; bound its size before reading it.
    """
    try:
        raw = json.loads(data)
    except RecursionError:
        raise InvalidOutcomeError(f"it nests more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # not UTF-8, not JSON, a number too long to convert
        raise InvalidOutcomeError(f"it is not JSON ({exc})") from None
    fields = _object(raw, "the outcome", _OUTCOME_FIELDS)
    if fields["task_id"] != task_id:
        raise InvalidOutcomeError(f"it is the outcome of {fields['task_id']!r}, not of {task_id!r}")
    success = _typed(fields["success"], "success", bool)
    error = fields["error"]
    outcome = TaskOutcome(
        task_id,
        success=success,
        result=_data(fields["result"], "result"),
        channel_ops=[
            _op(op, f"channel_ops[{i}]")
            for i, op in enumerate(_typed(fields["channel_ops"], "channel_ops", list))
        ],
        started_at=_number(fields["started_at"], "started_at"),
        duration=_number(fields["duration"], "duration"),
        worker=_typed(fields["worker"], "worker", str),
    )
    if success:
        if error is not None:
            raise InvalidOutcomeError("it succeeded and carries an error")
        outcome.requests = _requests(fields["requests"], find_task)
    else:
        error_fields = _object(error, "error", _ERROR_FIELDS)
        outcome.error_type = _typed(error_fields["type"], "error.type", str)
        outcome.error_message = _typed(error_fields["message"], "error.message", str)
        outcome.remote_traceback = _typed(error_fields["traceback"], "error.traceback", str)
        if fields["requests"] is not None or outcome.result is not None:
            raise InvalidOutcomeError("it failed and still carries a result or requests")
    return outcome


def _requests(value: Any, find_task: Callable[[str], Executable | None]) -> TaskRequests | None:
    if value is None:
        return None
    fields = _object(value, "requests", _REQUEST_FIELDS)
    requests = TaskRequests()
    for index, entry in enumerate(_typed(fields["next_tasks"], "requests.next_tasks", list)):
        where = f"requests.next_tasks[{index}]"
        named = _object(entry, where, frozenset({"task_id", "goto"}))
        wanted = _typed(named["task_id"], f"{where}.task_id", str)
        task = find_task(wanted)
        if task is None:
            raise InvalidOutcomeError(
                f"{where} asks for {wanted!r}, which is not a task of this workflow. From a sandbox only "
                "tasks already in the graph can be asked for, by id: a new task is code and would have to "
                f"be unpickled here. Add {wanted!r} to the workflow beforehand and pass that task to next_task"
            )
        requests.add_next(task, _typed(named["goto"], f"{where}.goto", bool))
    requests.iterate = _typed(fields["iterate"], "requests.iterate", bool)
    requests.iteration_data = _data(fields["iteration_data"], "requests.iteration_data")
    requests.terminate = _optional_str(fields["terminate"], "requests.terminate")
    requests.cancel = _optional_str(fields["cancel"], "requests.cancel")
    if fields["checkpoint"] is not None:
        checkpoint = _object(fields["checkpoint"], "requests.checkpoint", frozenset({"metadata"}))
        metadata = _typed(checkpoint["metadata"], "requests.checkpoint.metadata", dict)
        requests.checkpoint = (None, _data(metadata, "requests.checkpoint.metadata"))
    return requests


def _op(value: Any, where: str) -> ChannelOp:
    entry = _typed(value, where, list)
    if len(entry) != 2:
        raise InvalidOutcomeError(f"{where} must be [method, [arguments]], got {len(entry)} items")
    method = _typed(entry[0], f"{where}[0]", str)
    kinds = _CHANNEL_OPS.get(method)
    if kinds is None:
        allowed = ", ".join(sorted(_CHANNEL_OPS))
        raise InvalidOutcomeError(f"{where}: {method!r} is not a channel write (allowed: {allowed})")
    args = _typed(entry[1], f"{where}[1]", list)
    if len(args) != len(kinds):
        raise InvalidOutcomeError(f"{where}: {method} takes {len(kinds)} arguments, got {len(args)}")
    for index, (arg, kind) in enumerate(zip(args, kinds, strict=True)):
        at = f"{where}[1][{index}]"
        if kind == "key":
            _typed(arg, at, str)
        elif kind == "data":
            _data(arg, at)
        elif kind == "amount" or arg is not None:  # a ttl may be null
            _number(arg, at)
    return method, tuple(args)


def _object(value: Any, where: str, names: frozenset[str]) -> dict[str, Any]:
    fields = _typed(value, where, dict)
    missing, unknown = names - fields.keys(), fields.keys() - names
    if missing or unknown:
        parts = [
            f"missing {_names(missing)}" if missing else "",
            f"unknown {_names(unknown)}" if unknown else "",
        ]
        raise InvalidOutcomeError(f"{where} has the wrong fields: {', '.join(p for p in parts if p)}")
    return fields


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in sorted(names))


def _typed(value: Any, where: str, kind: type[_T]) -> _T:
    if type(value) is not kind:
        raise InvalidOutcomeError(f"{where} must be a JSON {_JSON_NAMES[kind]}, got {_json_kind(value)}")
    return value


def _optional_str(value: Any, where: str) -> str | None:
    return None if value is None else _typed(value, where, str)


def _number(value: Any, where: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise InvalidOutcomeError(f"{where} must be a finite number, got {_json_kind(value)}")
    return float(value)


_JSON_NAMES: Final[dict[type, str]] = {dict: "object", list: "array", str: "string", bool: "boolean"}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) in (int, float):
        return f"the number {value!r}"
    return {**_JSON_NAMES, int: "number", float: "number"}.get(type(value), type(value).__name__)
