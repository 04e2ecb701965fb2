"""The wire formats between drivers and workers: a task entry and an outcome reply.

A task entry is a stream entry with the fields ``uid`` (one submission), ``task``
(its task id, readable without unpickling), ``session`` (the run), ``reply`` (the list
where the outcome goes) and ``payload``: the cloudpickled
:class:`~graflow.remote.envelope.TaskEnvelope`, sealed for ``(task, prefix, session, uid)``
when the driver has a secret key (see :mod:`graflow_redis.signing`).

An outcome reply is ``uid \\n blob`` pushed onto the driver's reply list, the blob the
pickled :class:`~graflow.remote.envelope.TaskOutcome`, sealed for ``(outcome, prefix,
session, uid)`` when the worker has a key. The driver also checks that the outcome is
for the task of the submission it answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graflow.remote.codec import dumps_outcome, loads
from graflow.remote.envelope import TaskEnvelope, TaskOutcome, worker_name
from graflow_redis.errors import OutcomeDecodeError, SignatureError, TaskRejectedError
from graflow_redis.signing import ENV_VAR, Purpose, Sealer, Slot, is_sealed

__all__ = [
    "EntryMeta",
    "RejectedEntry",
    "decode_envelope",
    "decode_outcome",
    "encode_outcome",
    "entry_fields",
    "read_meta",
    "rejected_outcome",
    "split_reply",
]


@dataclass(frozen=True)
class EntryMeta:
    """What can be read from a task entry without trusting or unpickling it."""

    entry_id: str
    uid: str
    task_id: str
    session_id: str
    reply: str
    #: The lane (stream) the entry was read from.
    stream: str = ""


class RejectedEntry(Exception):
    """An entry that cannot be run; ``reason`` says why (it goes to the dead-letter stream)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def entry_fields(
    uid: str, task_id: str, session_id: str, reply: str, payload: bytes
) -> dict[str, bytes | str]:
    """The stream fields of one submission (``payload`` already sealed, if it is to be)."""
    return {"uid": uid, "task": task_id, "session": session_id, "reply": reply, "payload": payload}


def _text(fields: Mapping[bytes, bytes], name: str) -> str:
    value = fields.get(name.encode())
    return value.decode("utf-8", "replace") if value is not None else ""


def read_meta(entry_id: str, fields: Mapping[bytes, bytes], stream: str = "") -> EntryMeta:
    """The plain-text fields of an entry read from ``stream`` (empty strings for missing ones)."""
    return EntryMeta(
        entry_id=entry_id,
        uid=_text(fields, "uid"),
        task_id=_text(fields, "task") or "?",
        session_id=_text(fields, "session"),
        reply=_text(fields, "reply"),
        stream=stream,
    )


def decode_envelope(
    meta: EntryMeta, fields: Mapping[bytes, bytes], sealer: Sealer | None, key_prefix: str
) -> TaskEnvelope:
    """Verify and unpickle an entry's envelope, or raise :class:`RejectedEntry` saying why.

    With a key, the payload must be sealed for this entry's ``(prefix, session, uid)``.
    """
    payload = fields.get(b"payload")
    if payload is None or not meta.uid:
        raise RejectedEntry("the entry has no payload or uid field: it was not written by a graflow driver")
    if sealer is not None:
        try:
            payload = sealer.open(Slot(Purpose.TASK, key_prefix, meta.session_id, meta.uid), payload)
        except SignatureError as exc:
            raise RejectedEntry(str(exc)) from None
    try:
        envelope = loads(payload)
    except Exception as exc:
        raise RejectedEntry(_unpickling_failed(exc, payload)) from None
    if not isinstance(envelope, TaskEnvelope):
        raise RejectedEntry(
            f"the payload is not a Graflow task envelope ({_a(envelope)}); it was not written by a graflow driver"
        )
    return envelope


def _unpickling_failed(exc: Exception, payload: bytes) -> str:
    if is_sealed(payload):  # only reached without a key: a keyed driver sent it
        return (
            "the task is signed, but this worker has no secret key to verify it: give every worker the "
            f"drivers' key (${ENV_VAR} or graflow-worker --secret-key)"
        )
    hint = ""
    if isinstance(exc, (ImportError, AttributeError)):
        hint = (
            "; code from installed packages is imported by name, so install the same packages on the workers"
        )
    return f"the task cannot be unpickled ({type(exc).__name__}: {exc}){hint}"


def _a(value: object) -> str:
    """``an int``, ``a dict``: what a foreign payload turned out to be, for messages."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def rejected_outcome(task_id: str, reason: str, dead_letter_stream: str, consumer: str) -> TaskOutcome:
    """The failure a driver gets for an entry that went to the dead-letter stream instead of running."""
    error = TaskRejectedError(task_id, reason, dead_letter_stream, consumer)
    return TaskOutcome(
        task_id,
        success=False,
        error=error,
        error_type=type(error).__name__,
        error_message=str(error),
        started_at=time.time(),
        worker=worker_name(),
    )


def encode_outcome(meta: EntryMeta, outcome: TaskOutcome, sealer: Sealer | None, key_prefix: str) -> bytes:
    """The reply answering the submission ``meta`` describes (its ``uid`` and ``session_id``)."""
    blob = dumps_outcome(outcome)
    if sealer is not None:
        blob = sealer.seal(Slot(Purpose.OUTCOME, key_prefix, meta.session_id, meta.uid), blob)
    return b"%s\n%s" % (meta.uid.encode(), blob)


def split_reply(raw: bytes) -> tuple[str, bytes]:
    """``(uid, blob)`` of an outcome reply (empty uid if malformed)."""
    head, sep, blob = raw.partition(b"\n")
    if not sep:
        return "", b""
    return head.decode("ascii", "replace"), blob


def decode_outcome(
    blob: bytes, *, uid: str, session_id: str, task_id: str, sealer: Sealer | None, key_prefix: str
) -> TaskOutcome:
    """Verify and unpickle the outcome of submission ``uid`` (of ``task_id``, in run ``session_id``),
    or raise :class:`OutcomeDecodeError`; an outcome of another task is refused too."""
    if sealer is not None:
        try:
            blob = sealer.open(Slot(Purpose.OUTCOME, key_prefix, session_id, uid), blob)
        except SignatureError as exc:
            raise OutcomeDecodeError(f"task {task_id!r}: its outcome was refused: {exc}") from None
    try:
        outcome: Any = loads(blob)
    except Exception as exc:
        if is_sealed(blob):
            raise OutcomeDecodeError(
                f"task {task_id!r} ran, but its outcome is signed and this driver has no secret key to "
                f"verify it: give the driver the workers' key (${ENV_VAR} or config secret_key)"
            ) from None
        raise OutcomeDecodeError(
            f"task {task_id!r} ran, but its outcome cannot be unpickled here "
            f"({type(exc).__name__}: {exc}); install on the driver what the task's result needs"
        ) from None
    if not isinstance(outcome, TaskOutcome):
        raise OutcomeDecodeError(
            f"task {task_id!r}: the reply for submission {uid} holds {_a(outcome)}, not a Graflow "
            "outcome; it was not written by a graflow worker"
        )
    if outcome.task_id != task_id:
        raise OutcomeDecodeError(
            f"task {task_id!r}: the reply for submission {uid} is the outcome of task "
            f"{outcome.task_id!r}, not of this one; it was refused (a reply meant for another submission "
            "was pushed here)"
        )
    return outcome
