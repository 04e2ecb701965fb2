"""A container's stdout and stderr, as one structlog event per line tagged with the task id.

Output is only ever logged, never interpreted: the handler's own messages (outcomes,
the frames of a warm container) travel on a separate file or socket, so nothing a
task prints can forge or hide them.
"""

from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from graflow.log import get_logger

__all__ = ["LOGGER", "MAX_LINE", "OutputLog"]

#: The logger every line goes to (looked up per line, so a later ``structlog.configure`` applies).
LOGGER: Final = "graflow.docker"
#: Characters of one line; a longer one is logged in pieces, so endless output without a
#: newline cannot grow this process's memory.
MAX_LINE: Final = 64 * 1024
_STREAMS: Final = ("stdout", "stderr")
_TAIL_LINES: Final = 30


class OutputLog:
    """Receives raw output frames; logs complete lines; keeps a tail of each stream for errors."""

    def __init__(self, task_id: str | None, **fields: Any) -> None:
        self._fields = fields
        self._task_id = task_id
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in _STREAMS}
        self._partial = dict.fromkeys(_STREAMS, "")
        self._tails: dict[str, deque[str]] = {s: deque(maxlen=_TAIL_LINES) for s in _STREAMS}
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
        *lines, partial = text.split("\n")
        while len(partial) > MAX_LINE:
            lines.append(partial[:MAX_LINE])
            partial = partial[MAX_LINE:]
        self._partial[stream] = partial
        for line in lines:
            self._line(stream, line)

    def close(self) -> None:
        """Log what is left of unterminated lines."""
        for stream in _STREAMS:
            rest = self._partial[stream] + self._decoders[stream].decode(b"", final=True)
            self._partial[stream] = ""
            if rest:
                self._line(stream, rest)

    # --- reading ------------------------------------------------------------------

    def tail(self, stream: str = "stderr") -> str:
        """The last lines written to ``stream``."""
        return "\n".join(self._tails[stream])

    # --- lines --------------------------------------------------------------------

    def _line(self, stream: str, line: str) -> None:
        while len(line) > MAX_LINE:
            self._emit(stream, line[:MAX_LINE])
            line = line[MAX_LINE:]
        self._emit(stream, line)

    def _emit(self, stream: str, line: str) -> None:
        self._tails[stream].append(line)
        if self.captured is not None:
            if stream == "stdout":
                self.captured.append(line)
            return
        get_logger(LOGGER).info(
            "task_output", task_id=self._task_id, stream=stream, line=line, **self._fields
        )
