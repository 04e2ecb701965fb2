"""The ``graflow`` command line: ``run``, ``graph``, ``plugins``, and what plugins add.

Entry point: :func:`graflow.cli.main.main` (the ``graflow`` console script and
``python -m graflow``). Subcommands come from the ``graflow_cli_commands`` hook; the core
ones are registered by the built-in plugin like any other.
"""

from __future__ import annotations

from typing import Final

from graflow.exceptions import GraflowError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "WorkflowLoadError"]

#: The command did what was asked (a run succeeded).
EXIT_OK: Final = 0
#: A run failed (a task raised, the run was canceled, a group failed), or the file raised on load.
EXIT_FAILED: Final = 1
#: Bad usage: an unknown option, a missing file, an unknown workflow, a malformed ``--set``.
EXIT_USAGE: Final = 2
#: Stopped with Ctrl-C.
EXIT_INTERRUPTED: Final = 130


class WorkflowLoadError(GraflowError):
    """The workflow file raised while it was being imported; ``__cause__`` is its exception."""
