"""Tracebacks that show the user's code, not Graflow's machinery.

The command line prints them, and a durable run keeps them with each failed attempt
(:class:`~graflow.state.records.Failure`), so the dashboard shows the same.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Final

import pluggy

import graflow

__all__ = ["user_traceback"]

#: Frames from these folders are engine plumbing between the user's code and whoever shows it.
_INTERNAL: Final = (str(Path(graflow.__file__).parent), str(Path(pluggy.__file__).parent), "<frozen ")


def _strip(te: traceback.TracebackException, seen: set[int]) -> int:
    """Drop internal frames from ``te`` and its chain; return how many user frames are left."""
    if id(te) in seen:
        return 0
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list(
        [frame for frame in te.stack if not frame.filename.startswith(_INTERNAL)]
    )
    kept = len(te.stack)
    for chained in (te.__cause__, te.__context__, *(getattr(te, "exceptions", None) or ())):
        if chained is not None:
            kept += _strip(chained, seen)
    return kept


def user_traceback(exc: BaseException) -> str:
    """``exc`` formatted like Python does, minus the frames inside Graflow and pluggy.

    A task's exception then reads as a traceback through the task's own code, with the
    note that names the task; chained causes (a group's failing member) are kept. An
    error with no frame in user code (a limit Graflow enforced) gives ``""``: its
    one-line message says it all.
    """
    te = traceback.TracebackException.from_exception(exc)
    if not _strip(te, set()):
        return ""
    return "".join(te.format())
