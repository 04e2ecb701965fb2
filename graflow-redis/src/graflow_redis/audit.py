"""``EntryAudit``: a driver notices a submission whose stream entry vanished, and sends it again.

Graflow removes an entry from the task stream in one place only: the FINISH script, which
records the outcome (and the submission's done marker) in the same breath. An entry that
is neither in the stream nor recorded was lost outside Graflow (an eviction, ``FLUSHDB``,
a manual ``XDEL``); without this audit its driver would wait for it forever while the
workers sit idle. Every ``interval`` seconds (at most half the visibility timeout) the
driver checks its waiting submissions in one pipeline, and submits the lost ones again
with the RESUBMIT script: same uid (its seal and done marker still apply), unless the
outcome was recorded meanwhile or the step's run lost its state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis

from graflow_redis import scripts
from graflow_redis.connection import script_pipeline
from graflow_redis.keys import Keys

__all__ = ["AUDIT_INTERVAL_CAP", "EntryAudit", "Watched"]

#: Longest pause between two audits, whatever the visibility timeout.
AUDIT_INTERVAL_CAP: Final = 5.0


@dataclass(frozen=True)
class Watched:
    """A waiting submission, as the audit sees it."""

    uid: str
    #: Its entry's id in ``stream`` ("" when unknown: an adopted submission, not audited).
    entry_id: str
    stream: str
    #: The entry's fields, to submit it again as it was.
    fields: Mapping[str, bytes | str]
    #: ``(run id, step key)`` of a step of a durable run.
    step: tuple[str, str] | None = None


class EntryAudit:
    """Finds and resubmits the lost entries of one driver (its listener thread calls it)."""

    def __init__(self, client: redis.Redis, keys: Keys, visibility_timeout: float) -> None:
        self.client = client
        self.keys = keys
        #: Seconds between two audits.
        self.interval = min(max(visibility_timeout / 2, 0.5), AUDIT_INTERVAL_CAP)
        self._next = 0.0
        self._resubmit = client.register_script(scripts.RESUBMIT)

    def due(self, now: float) -> bool:
        """Whether an audit is due at ``now`` (monotonic seconds); if so, the next is scheduled."""
        if now < self._next:
            return False
        self._next = now + self.interval
        return True

    def missing(self, watched: Sequence[Watched]) -> list[Watched]:
        """The submissions whose entry is in no stream and whose outcome is not recorded.

        The stream is read before the done marker: an entry finished between the two reads
        is found recorded, never missing.
        """
        audited = [w for w in watched if w.entry_id]
        if not audited:
            return []
        pipe = self.client.pipeline(transaction=False)
        for w in audited:
            pipe.xrange(w.stream, w.entry_id, w.entry_id)
            pipe.exists(self.keys.done(w.uid))
        answers = pipe.execute()
        return [
            w
            for w, found, done in zip(audited, answers[::2], answers[1::2], strict=True)
            if not found and not done
        ]

    def resubmit(self, lost: Sequence[Watched]) -> list[tuple[str, str]]:
        """Submit ``lost`` again; for each, ``("new", entry id)``, or ``("done" | "recorded" | "lost", "")``.

        See :data:`~graflow_redis.scripts.RESUBMIT` for what each answer means.
        """
        for _ in range(2):
            pipe = script_pipeline(self.client)
            for w in lost:
                run = self.keys.run(w.step[0] if w.step is not None else "none")
                keys = [w.stream, run.steps, run.plan, self.keys.done(w.uid)]
                fields = [part for pair in w.fields.items() for part in pair]
                pipe.evalsha(self._resubmit.sha, len(keys), *keys, w.step[1] if w.step else "", *fields)
            try:
                answers: list[Any] = pipe.execute()
            except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                self._resubmit.sha = self.client.script_load(scripts.RESUBMIT)
                continue
            return [(_text(a[0]), _text(a[1]) if len(a) > 1 else "") for a in answers]
        raise redis.exceptions.NoScriptError("the RESUBMIT script could not be loaded")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
