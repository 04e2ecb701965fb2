"""The wire formats between drivers and workers: a task entry and an outcome reply.

A task entry is a stream entry with the fields ``uid`` (one submission), ``task``
(its task id, readable without unpickling), ``session``, ``reply`` (the list where the
outcome goes), ``payload`` (the cloudpickled :class:`~graflow.remote.envelope.TaskEnvelope`)
and, when the driver has a secret key, ``sig`` (HMAC of the payload).

An outcome reply is ``uid \\n signature \\n payload`` pushed onto the driver's reply
list, the signature empty when the worker has no key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graflow.remote.codec import dumps_outcome, loads
from graflow.remote.envelope import TaskEnvelope, TaskOutcome, worker_name
from graflow_redis.errors import OutcomeDecodeError, SignatureError, TaskRejectedError
from graflow_redis.signing import Signer

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


class RejectedEntry(Exception):
    """An entry that cannot be run; ``reason`` says why (it goes to the dead-letter stream)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def entry_fields(
    uid: str, task_id: str, session_id: str, reply: str, payload: bytes, signature: str | None
) -> dict[str, bytes | str]:
    """The stream fields of one submission."""
    fields: dict[str, bytes | str] = {
        "uid": uid,
        "task": task_id,
        "session": session_id,
        "reply": reply,
        "payload": payload,
    }
    if signature:
        fields["sig"] = signature
    return fields


def _text(fields: Mapping[bytes, bytes], name: str) -> str:
    value = fields.get(name.encode())
    return value.decode("utf-8", "replace") if value is not None else ""


def read_meta(entry_id: str, fields: Mapping[bytes, bytes]) -> EntryMeta:
    """The plain-text fields of an entry (empty strings for missing ones)."""
    return EntryMeta(
        entry_id=entry_id,
        uid=_text(fields, "uid"),
        task_id=_text(fields, "task") or "?",
        session_id=_text(fields, "session"),
        reply=_text(fields, "reply"),
    )


def decode_envelope(fields: Mapping[bytes, bytes], signer: Signer | None) -> TaskEnvelope:
    """Verify and unpickle an entry's envelope, or raise :class:`RejectedEntry` saying why."""
    payload = fields.get(b"payload")
    if payload is None or not fields.get(b"uid"):
        raise RejectedEntry("the entry has no payload or uid field: it was not written by a graflow driver")
    if signer is not None:
        try:
            signer.verify(payload, fields.get(b"sig"), "the task payload")
        except SignatureError as exc:
            raise RejectedEntry(str(exc)) from None
    try:
        envelope = loads(payload)
    except Exception as exc:
        hint = ""
        if isinstance(exc, (ImportError, AttributeError)):
            hint = "; code from installed packages is imported by name, so install the same packages on the workers"
        raise RejectedEntry(f"the task cannot be unpickled ({type(exc).__name__}: {exc}){hint}") from None
    if not isinstance(envelope, TaskEnvelope):
        raise RejectedEntry(f"the payload is a {type(envelope).__name__}, not a TaskEnvelope")
    return envelope


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


def encode_outcome(uid: str, outcome: TaskOutcome, signer: Signer | None) -> bytes:
    """An outcome reply for submission ``uid``."""
    payload = dumps_outcome(outcome)
    signature = signer.sign(payload) if signer is not None else ""
    return b"%s\n%s\n%s" % (uid.encode(), signature.encode(), payload)


def split_reply(raw: bytes) -> tuple[str, bytes, bytes]:
    """``(uid, signature, payload)`` of an outcome reply (empty uid if malformed)."""
    head, sep, rest = raw.partition(b"\n")
    signature, sep2, payload = rest.partition(b"\n")
    if not (sep and sep2):
        return "", b"", b""
    return head.decode("ascii", "replace"), signature, payload


def decode_outcome(task_id: str, signature: bytes, payload: bytes, signer: Signer | None) -> TaskOutcome:
    """Verify and unpickle an outcome payload, or raise :class:`OutcomeDecodeError`."""
    if signer is not None:
        try:
            signer.verify(payload, signature, f"the outcome of task {task_id!r}")
        except SignatureError as exc:
            raise OutcomeDecodeError(str(exc)) from None
    try:
        outcome: Any = loads(payload)
    except Exception as exc:
        raise OutcomeDecodeError(
            f"task {task_id!r} ran, but its outcome cannot be unpickled here "
            f"({type(exc).__name__}: {exc}); install on the driver what the task's result needs"
        ) from None
    if not isinstance(outcome, TaskOutcome):
        raise OutcomeDecodeError(
            f"task {task_id!r}: the reply holds a {type(outcome).__name__}, not an outcome"
        )
    return outcome
