"""The ``graflow`` command line: ``run``, ``graph``, ``plugins``, the durable-run commands
``resume``, ``rerun`` and ``runs``, and what plugins add.

Entry point: :func:`graflow.cli.main.main` (the ``graflow`` console script and
``python -m graflow``). Subcommands come from the ``graflow_cli_commands`` hook; the core
ones are registered by the built-in plugin like any other.
"""

from __future__ import annotations

from typing import Final

from graflow.exceptions import GraflowError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SUSPENDED",
    "EXIT_USAGE",
    "RUNS_SHOWN",
    "WorkflowLoadError",
]

#: The command did what was asked (a run succeeded).
EXIT_OK: Final = 0
#: A run failed (a task raised, the run was canceled, a group failed), the file raised on load,
#: the run's state store cannot be used, or another live driver holds the run.
EXIT_FAILED: Final = 1
#: Bad usage: an unknown option, a missing file, an unknown workflow, a malformed ``--set``,
#: an unknown run id or task id.
EXIT_USAGE: Final = 2
#: The run suspended: it waits for something from outside (a human's answer, SPEC section 17)
#: and ``graflow resume`` carries it on once answered (``graflow feedback respond``).
EXIT_SUSPENDED: Final = 3
#: Stopped with Ctrl-C.
EXIT_INTERRUPTED: Final = 130

#: Runs ``graflow runs`` lists unless ``--limit`` says otherwise (``--json`` lists every run).
RUNS_SHOWN: Final = 20


class WorkflowLoadError(GraflowError):
    """The workflow file raised while it was being imported; ``__cause__`` is its exception."""
