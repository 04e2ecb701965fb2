"""How a run's vanished state is noticed and told: the plan key is the run's marker.

A run's plan (``{prefix}:run:{id}:plan``) is written before its first task and lives as
long as the run, so its absence means Redis lost the run: a restart without persistence,
an eviction or a flush. Every place that would otherwise carry on from partial state
checks it atomically with what it writes (the SUBMIT and FINISH scripts), or right
after a reconnect (the driver), and fails with :func:`state_lost`.
"""

from __future__ import annotations

from graflow.exceptions import RunStateLostError

__all__ = ["state_lost"]


def state_lost(
    run_id: str, where: str, *, task_id: str | None = None, missing: str = ""
) -> RunStateLostError:
    """The error that ends run ``run_id``: its state is gone from the Redis at ``where``.

    ``missing`` says what the caller looked for (default: the run's plan, steps and results).
    """
    what = missing or "its plan, completed steps, results and channel"
    task = f"; task {task_id!r} cannot go on" if task_id else ""
    return RunStateLostError(
        f"run {run_id!r}: its state is gone from Redis at {where} ({what} are missing: a restart "
        f"without persistence, an eviction or a flush){task}. Nothing was finished on partial state. "
        "Run Redis with persistence (appendonly yes) and maxmemory-policy noeviction, then start the "
        "workflow again."
    )
