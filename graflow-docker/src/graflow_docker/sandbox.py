"""What ``sandbox=True`` reads from a container, and how it refuses what it cannot trust.

Without a sandbox, a container's outcome is a pickle, trusted like the task's own code.
With one, nothing the container wrote is unpickled here: its outcome is JSON
(:mod:`graflow.remote.plain`), read with care (never through a link, never past
``max_outcome_bytes``) and checked field by field before any of it is applied. A
refusal is a :class:`~graflow_docker.exceptions.SandboxOutcomeError`, and the run
sees nothing of that outcome: no result, channel write or request.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from graflow.remote.plain import InvalidOutcomeError, loads_plain_outcome
from graflow_docker.exceptions import SandboxOutcomeError

if TYPE_CHECKING:
    from graflow.core.graph import TaskGraph
    from graflow.remote.envelope import TaskOutcome

__all__ = ["DEFAULT_MAX_OUTCOME_BYTES", "check_size", "load_outcome", "read_outcome_file", "refused"]

#: The largest outcome a sandboxed container may send back (``max_outcome_bytes``).
DEFAULT_MAX_OUTCOME_BYTES: Final = 64 * 2**20


def refused(what: str, reason: str) -> SandboxOutcomeError:
    """The one wording for an outcome that sandbox mode does not accept."""
    return SandboxOutcomeError(
        f"{what}: sandbox mode refused what its container sent back: {reason}. Nothing of it was "
        "applied (no result, channel write or request).",
        reason=reason,
    )


def check_size(size: int, limit: int, what: str) -> None:
    """Refuse an outcome of ``size`` bytes past ``limit``, before reading it."""
    if size > limit:
        raise refused(
            what,
            f"its outcome is {size} bytes, more than max_outcome_bytes={limit}; return less data (write "
            "large data to a mounted volume) or raise max_outcome_bytes",
        )


def read_outcome_file(path: Path, limit: int, what: str) -> bytes | None:
    """The bytes of the outcome file a stopped container left; ``None`` if it left none.

    The container may have put anything under that name: only a regular file is read,
    never a symbolic link (which would read this machine's files) nor a FIFO or device
    (which could block, or act when opened), and never more than ``limit`` bytes.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise refused(what, f"its outcome file is {_file_kind(info.st_mode)}, not a regular file")
    check_size(info.st_size, limit, what)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # swapped since the lstat
            raise refused(what, "its outcome file changed into something else while it was read")
        data = file.read(limit + 1)
    check_size(len(data), limit, what)
    return data


def load_outcome(answer: bytes, task_id: str, graph: TaskGraph, what: str) -> TaskOutcome:
    """The plain outcome in ``answer``; ``next_task`` ids are looked up in ``graph``."""
    try:
        return loads_plain_outcome(answer, task_id=task_id, find_task=graph.find)
    except InvalidOutcomeError as exc:
        raise refused(what, str(exc)) from None


def _file_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else f"of unknown type (mode {mode:o})"
