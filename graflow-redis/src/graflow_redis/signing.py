"""Seals: an HMAC-SHA256 over a pickle *and the place it belongs*, for every pickle that crosses Redis.

Unpickling is code execution, so a process with a secret key unpickles nothing read from
Redis before its seal is verified. A seal binds the payload to a :class:`Slot`: its
purpose (a task entry, an outcome, a channel value, a run's plan, ...), the key prefix,
the run and the place within the run (a submission uid, a channel key, a step key, a
task id). A blob copied into another slot does not open there.

A sealed blob is ``MAGIC + mac + payload``::

    b"gfs1:"   32-byte HMAC-SHA256(key, context + payload)   payload (the pickle)

where ``context`` is the UTF-8 of ``"{len}:{text}"`` for each of purpose, prefix, run and
name in turn, ``len`` counted in characters (so no two slots share a context).

Several keys allow rotation: the first seals, any of them opens. A seal proves that a
key holder wrote this payload for this slot; it does not prove the payload is the
latest one written there (see the README's security section).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from enum import StrEnum
from typing import Final, NamedTuple, NoReturn

from graflow_redis.errors import SignatureError

__all__ = ["ENV_VAR", "MAGIC", "KeySpec", "Purpose", "Sealer", "Slot", "is_sealed", "parse_keys"]

#: Environment variable holding the shared secret (several comma-separated keys: the first signs).
ENV_VAR: Final = "GRAFLOW_SECRET_KEY"
#: How every sealed blob starts (never a pickle, never a number written as text).
MAGIC: Final = b"gfs1:"
_MAC_SIZE: Final = 32
_HEAD: Final = len(MAGIC) + _MAC_SIZE

#: A secret key as settings give it: text (comma-separated keys), bytes (one key), or a list of keys.
KeySpec = str | bytes | Sequence[str | bytes]


class Purpose(StrEnum):
    """What a sealed blob is; part of its slot, so a blob of one kind never opens as another."""

    TASK = "task"
    OUTCOME = "outcome"
    CHANNEL = "channel"
    CHANNEL_ITEM = "channel-item"
    PLAN = "plan"
    STEP = "step"
    RESULT = "result"
    QUESTION = "question"
    ANSWER = "answer"
    SCHEDULE = "schedule"


_WHAT: Final = {
    Purpose.TASK: "the task entry of submission {name}",
    Purpose.OUTCOME: "the outcome for submission {name}",
    Purpose.CHANNEL: "the value of channel key {name!r}",
    Purpose.CHANNEL_ITEM: "an item of channel list {name!r}",
    Purpose.PLAN: "the plan",
    Purpose.STEP: "the record of step {name!r}",
    Purpose.RESULT: "the result of task {name!r}",
    Purpose.QUESTION: "feedback request {name!r}",
    Purpose.ANSWER: "the answer to feedback request {name!r}",
    Purpose.SCHEDULE: "schedule {name!r}",
}


class Slot(NamedTuple):
    """Where a sealed blob belongs: ``Slot(Purpose.RESULT, "graflow", run_id, "extract")``.

    A tuple, not a dataclass: one is built for every blob sealed or opened.
    """

    purpose: Purpose
    #: The key prefix of the Redis keys the blob lives under.
    prefix: str
    #: The run (session id); empty for a submission made outside any run.
    run: str
    #: The place within the run: a submission uid, a channel key, a step key, a task id.
    name: str = ""

    def describe(self) -> str:
        """The slot in words, for errors: ``the result of task 'extract' of run 'r1' (key prefix 'graflow')``."""
        what = _WHAT[self.purpose].format(name=self.name)
        run = f" of run {self.run!r}" if self.run else ""
        return f"{what}{run} (key prefix {self.prefix!r})"

    def context(self) -> bytes:
        """What the MAC covers besides the payload: each field length-prefixed, so none runs into the next."""
        purpose, prefix, run, name = self  # a StrEnum formats as its value
        text = f"{len(purpose)}:{purpose}{len(prefix)}:{prefix}{len(run)}:{run}{len(name)}:{name}"
        return text.encode("utf-8", "surrogatepass")


def parse_keys(spec: KeySpec | None) -> list[bytes]:
    """The keys of a setting: ``"new,old"`` -> ``[b"new", b"old"]``; bytes are one key; a list, one per item.

    Blanks around commas are dropped, so are empty and repeated keys.
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        items: Sequence[str | bytes] = spec.split(",")
    elif isinstance(spec, bytes):
        items = [spec]
    else:
        items = spec
    keys: list[bytes] = []
    for item in items:
        key = item.strip().encode() if isinstance(item, str) else bytes(item)
        if key and key not in keys:
            keys.append(key)
    return keys


def is_sealed(blob: bytes) -> bool:
    """Whether ``blob`` is in the sealed format (says nothing about whether its seal is good)."""
    return blob[: len(MAGIC)] == MAGIC


class Sealer:
    """Seals and opens blobs with a list of keys: the first seals, any opens (key rotation).

    ``Sealer(["new", "old"])``; :meth:`from_keys` reads a setting or ``$GRAFLOW_SECRET_KEY``.
    It never travels: it cannot be pickled, and its repr shows no key (a worker's pool
    process gets the keys over a private pipe, see :mod:`graflow_redis.handover`).
    """

    __slots__ = ("__weakref__", "_keys", "_macs", "count")

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        parsed = parse_keys(keys)
        if not parsed:
            raise ValueError("a Sealer needs at least one non-empty key")
        #: How many keys open a seal.
        self.count = len(parsed)
        self._keys = tuple(parsed)
        # HMAC objects keyed once; each seal works on a copy, which skips re-deriving the key pads.
        self._macs = tuple(hmac.new(key, digestmod=hashlib.sha256) for key in parsed)

    @classmethod
    def from_keys(cls, spec: KeySpec | None) -> Sealer | None:
        """A sealer for ``spec``, else for ``$GRAFLOW_SECRET_KEY``; ``None`` when neither holds a key."""
        keys = parse_keys(spec) or parse_keys(os.environ.get(ENV_VAR))
        return cls(keys) if keys else None

    def _mac(self, index: int, context: bytes, payload: bytes) -> bytes:
        mac = self._macs[index].copy()
        mac.update(context)
        mac.update(payload)
        return mac.digest()

    def seal(self, slot: Slot, payload: bytes) -> bytes:
        """``payload`` sealed for ``slot`` with the first key."""
        return b"".join((MAGIC, self._mac(0, slot.context(), payload), payload))

    def open(self, slot: Slot, blob: bytes) -> bytes:
        """The payload of ``blob`` if it is sealed for ``slot`` with one of the keys; else :class:`SignatureError`."""
        if not is_sealed(blob):
            _refuse_unsealed(slot, blob)
        mac, payload = blob[len(MAGIC) : _HEAD], blob[_HEAD:]
        context = slot.context()
        for index in range(self.count):
            if hmac.compare_digest(self._mac(index, context, payload), mac):
                return payload
        keys = "the key" if self.count == 1 else f"any of the {self.count} keys"
        raise SignatureError(
            f"{slot.describe()} has a signature that does not match {keys} of this process: it was "
            "altered, copied here from another place (another submission, channel key, step, task, run "
            f"or key prefix), or signed with another key. Every driver and worker of key prefix "
            f"{slot.prefix!r} needs the same secret key (${ENV_VAR}); to rotate, list the new key first "
            "and keep the old one after it until every process has both"
        )

    def keys_for_child_process(self) -> tuple[bytes, ...]:
        """The keys, in order, for a child process this one starts and talks to over a private pipe.

        Only :mod:`graflow_redis.handover` calls this: a pool process must verify and sign
        as its worker does. Never write them anywhere else (Redis, argv, logs).
        """
        return self._keys

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Sealer holds secret keys and never travels: give each process its own")

    def __repr__(self) -> str:
        return f"<Sealer {self.count} key{'s' if self.count > 1 else ''}>"


def _refuse_unsealed(slot: Slot, blob: bytes) -> NoReturn:
    held = "an unsigned pickle" if blob[:1] == b"\x80" else f"{len(blob)} bytes that are not a Graflow seal"
    raise SignatureError(
        f"{slot.describe()} is not signed ({held}), and this process has a secret key, so it unpickles "
        "only what a key holder signed: it was written by a process without the key, or by someone "
        f"else. Give every driver and worker of key prefix {slot.prefix!r} the same secret key "
        f"(${ENV_VAR}, config secret_key, or graflow-worker --secret-key)"
    )
