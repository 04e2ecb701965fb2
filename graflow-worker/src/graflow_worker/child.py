"""One pool process of ``graflow-worker --pool processes``: its loop, and the worker's handle on it.

The protocol is two messages on a duplex pipe, both already bytes: the worker sends an
envelope as :mod:`graflow.remote.codec` pickles it, the child answers with the outcome as
:func:`graflow.remote.runner.run_payload` encodes it. An empty message asks the child to
exit. One envelope at a time: the child runs its task on its main thread, so a task's
``timeout`` stops it with an alarm, as in any other pool process.

A child that dies mid-task (killed, ``os._exit``, a crash in C code) closes its end of the
pipe, so :meth:`Child.run` raises :class:`ChildLost` instead of waiting forever. A child that
cannot run an envelope at all (it cannot load it) answers :data:`BROKEN` and a traceback,
which becomes :class:`ChildError` and so the task's failure, as on a pool thread.

A child is not a daemon process, so a task may start processes of its own (a
``ProcessPoolExecutor``) as it could on a thread; :class:`~graflow_worker.processes.ProcessPool`
kills its children itself when the worker stops or its interpreter exits.

A child ignores SIGINT and SIGTERM: Ctrl-C in a terminal reaches the whole process group,
and a worker that drains must not see its tasks aborted under it. The worker stops its
children itself, and a child whose worker vanished (SIGKILL) exits within a second, even
mid-task: nobody is left to complete that task, and its entry is delivered again anyway.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Final

from graflow.remote.runner import run_payload
from graflow_redis.handover import Handover, adopt

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

__all__ = ["BROKEN", "Child", "ChildError", "ChildLost", "serve"]

#: Seconds between two checks, in a child, that its worker is still alive.
ORPHAN_CHECK: Final = 1.0
#: Seconds the worker waits for a dead child's exit status, for the log.
EXIT_STATUS_WAIT: Final = 2.0


#: First byte of an answer that is not an outcome (a pickle starts with ``\x80``): the child
#: could not run the envelope at all, and the traceback text follows.
BROKEN: Final = b"!"


class ChildLost(Exception):
    """The child process ended before it answered: it died, or was killed."""


class ChildError(Exception):
    """The child could not run an envelope (it could not load it, say); carries its traceback text."""


class Child:
    """The worker's handle on one pool process; used by one pool thread at a time."""

    def __init__(
        self, context: BaseContext, parent: Handover, name: str, setup: Callable[[], object] | None = None
    ) -> None:
        ours, theirs = context.Pipe(duplex=True)
        self.process = context.Process(  # type: ignore[attr-defined]
            target=serve, args=(theirs, parent, os.getpid(), setup), name=name, daemon=False
        )
        self.process.start()
        theirs.close()  # else the pipe stays open when the child dies, and run() would wait forever
        self._conn: Connection = ours
        #: Envelopes sent to this child so far (for ``--max-tasks-per-child``).
        self.tasks = 0

    @property
    def pid(self) -> int | None:
        pid: int | None = self.process.pid
        return pid

    def run(self, payload: bytes) -> bytes:
        """Run one encoded envelope in the child; the encoded outcome.

        :class:`ChildLost` when the child died first, :class:`ChildError` when it could not
        run the envelope (it stays usable).
        """
        self.tasks += 1
        try:
            self._conn.send_bytes(payload)
            answer = self._conn.recv_bytes()
        except (EOFError, OSError):
            raise ChildLost(self.exit_status()) from None
        if answer[:1] == BROKEN:
            raise ChildError(
                f"the pool process could not run the envelope:\n{answer[1:].decode(errors='replace')}"
            )
        return answer

    def exit_status(self) -> str:
        """How the child ended, in words (it is waited for a moment if it has not yet)."""
        self.process.join(EXIT_STATUS_WAIT)
        code = self.process.exitcode
        if code is None:
            return "its pipe closed while it is still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def stop(self) -> None:
        """Ask an idle child to exit (it finishes nothing: it holds nothing), and close the pipe."""
        try:
            self._conn.send_bytes(b"")
        except OSError:
            pass  # already gone
        self.close()

    def kill(self) -> None:
        """End the child now, whatever it runs (from any thread).

        The pipe stays open: a pool thread may be reading it, and sees it end as the child
        dies. Whoever holds the child closes it (:meth:`close`).
        """
        if self.process.exitcode is None:
            self.process.kill()

    def close(self) -> None:
        """Close the worker's end of the pipe (by the thread that holds the child)."""
        self._conn.close()


def serve(
    conn: Connection, parent: Handover, worker_pid: int, setup: Callable[[], object] | None = None
) -> None:
    """The child's loop: envelope bytes in, outcome bytes out, until told to stop or orphaned.

    ``setup`` runs first (the worker's logging settings, say: a child starts without them).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if setup is not None:
        setup()
    kept = adopt(parent)  # noqa: F841 - the worker's clients and sealers, registered while this runs
    threading.Thread(target=_exit_when_orphaned, args=(worker_pid,), daemon=True).start()
    while True:
        try:
            payload = conn.recv_bytes()
        except EOFError:  # the worker closed the pipe (it stopped, or died)
            return
        if not payload:
            return
        try:
            answer = run_payload(payload)
        except Exception:  # not the task's failure (run_payload reports those): the envelope's
            answer = BROKEN + traceback.format_exc().encode()
        conn.send_bytes(answer)


def _exit_when_orphaned(worker_pid: int) -> None:
    """Leave soon after the worker is gone: it handed the task back, or its entry will be redelivered."""
    while True:
        time.sleep(ORPHAN_CHECK)
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, owned by someone else: cannot be ours, but not gone either
            pass
