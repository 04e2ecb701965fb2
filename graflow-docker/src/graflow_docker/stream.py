"""A container's stdout and stderr, as one structlog event per line tagged with the task id.

A warm container (``reuse=True``) runs many tasks; it writes a marker line before
and after each one (:data:`MARKER`), so every line is attributed to the task that
printed it, and the handler can wait until a task's last line has been logged.
"""

from __future__ import annotations

import codecs
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from graflow.log import get_logger

__all__ = ["LOGGER", "MARKER", "OutputLog"]

#: The logger every line goes to (looked up per line, so a later ``structlog.configure`` applies).
LOGGER: Final = "graflow.docker"

#: Starts a marker line: ``MARKER + "task <seq> <task_id>"`` or ``MARKER + "done <seq>"``.
MARKER: Final = "\x1egraflow-"
_STREAMS: Final = ("stdout", "stderr")
_TAIL_LINES: Final = 30


class OutputLog:
    """Receives raw output frames; logs complete lines; keeps a tail of each stream for errors."""

    def __init__(self, task_id: str | None, **fields: Any) -> None:
        self._fields = fields
        self._task_id: dict[str, str | None] = dict.fromkeys(_STREAMS, task_id)
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in _STREAMS}
        self._partial = dict.fromkeys(_STREAMS, "")
        self._tails: dict[str, deque[str]] = {s: deque(maxlen=_TAIL_LINES) for s in _STREAMS}
        self._done: dict[str, int] = dict.fromkeys(_STREAMS, -1)
        self._changed = threading.Condition()
        #: Every line of stdout, when :meth:`capture` was asked for (then nothing is logged).
        self.captured: list[str] | None = None

    def capture(self) -> OutputLog:
        """Keep stdout lines in :attr:`captured` instead of logging them (for graflow's own probes)."""
        self.captured = []
        return self

    # --- feeding ------------------------------------------------------------------

    def pump(self, frames: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Consume demultiplexed ``(stdout, stderr)`` frames until the stream ends."""
        try:
            for out, err in frames:
                if out:
                    self.feed("stdout", out)
                if err:
                    self.feed("stderr", err)
        except Exception:  # the container went away under us: keep what arrived
            pass
        finally:
            self.close()

    def feed(self, stream: str, data: bytes) -> None:
        text = self._partial[stream] + self._decoders[stream].decode(data)
        *lines, self._partial[stream] = text.split("\n")
        for line in lines:
            self._line(stream, line)

    def close(self) -> None:
        """Log what is left of unterminated lines; wake anyone waiting."""
        for stream in _STREAMS:
            rest = self._partial[stream] + self._decoders[stream].decode(b"", final=True)
            self._partial[stream] = ""
            if rest:
                self._line(stream, rest)
        with self._changed:
            self._done = dict.fromkeys(_STREAMS, 1 << 62)
            self._changed.notify_all()

    # --- reading ------------------------------------------------------------------

    def tail(self, stream: str = "stderr") -> str:
        """The last lines written to ``stream`` (by the current task, for a warm container)."""
        return "\n".join(self._tails[stream])

    def wait_done(self, seq: int, timeout: float) -> bool:
        """Block until both streams passed the end marker of task number ``seq``."""
        with self._changed:
            return self._changed.wait_for(lambda: min(self._done.values()) >= seq, timeout)

    # --- lines --------------------------------------------------------------------

    def _line(self, stream: str, line: str) -> None:
        if MARKER in line:
            before, _, marker = line.partition(MARKER)
            if before:
                self._emit(stream, before)
            self._marker(stream, marker)
            return
        self._emit(stream, line)

    def _marker(self, stream: str, marker: str) -> None:
        kind, _, rest = marker.partition(" ")
        if kind == "task":
            _seq, _, task_id = rest.partition(" ")
            self._task_id[stream] = task_id
            self._tails[stream].clear()
        elif kind == "done":
            with self._changed:
                self._done[stream] = int(rest)
                self._changed.notify_all()
        else:  # not ours after all: a task printed the marker prefix
            self._emit(stream, MARKER + marker)

    def _emit(self, stream: str, line: str) -> None:
        self._tails[stream].append(line)
        if self.captured is not None:
            if stream == "stdout":
                self.captured.append(line)
            return
        get_logger(LOGGER).info(
            "task_output", task_id=self._task_id[stream], stream=stream, line=line, **self._fields
        )
