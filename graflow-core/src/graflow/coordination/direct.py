"""``CoordinationBackend.DIRECT``: members one after another, in the engine's thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from graflow.coordination.coordinator import Coordinator, MemberRunner, timed_out
from graflow.core.handler import TaskResult
from graflow.plugins import hookimpl

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.dsl import ParallelGroup

__all__ = ["DirectCoordinator"]


class DirectCoordinator(Coordinator):
    """Sequential and deterministic: the backend for debugging a group.

    A running member cannot be interrupted here; with a group timeout, members that
    would start after it expired fail as timed out instead of starting, and a member
    that runs past it fails as timed out once it returns (the run had to wait for it).
    """

    def run_members(
        self, group: ParallelGroup, run_member: MemberRunner, context: ExecutionContext
    ) -> list[TaskResult]:
        if group.timeout is None:
            return [run_member(member, None) for member in group.members]
        deadline = time.monotonic() + group.timeout
        return [
            run_member(m, None) if time.monotonic() < deadline else timed_out(m, group.timeout)
            for m in group.members
        ]


def _direct_coordinator() -> Coordinator:
    return DirectCoordinator()


@hookimpl
def graflow_coordinators() -> Mapping[str, Callable[[], Coordinator]]:
    return {"direct": _direct_coordinator}
