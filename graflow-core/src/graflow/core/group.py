"""Parallel groups: independent nodes that run together and fail by a chosen policy."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from graflow.core.task import Executable

if TYPE_CHECKING:
    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.handlers.group_policy import GroupExecutionPolicy

__all__ = ["ParallelGroup"]

_group_numbers = itertools.count(1)
_UNSET: Final = object()


class ParallelGroup(Executable):
    """``a | b | c``: members that do not depend on each other, run as one graph node.

    The group's successors run once every member has an outcome and the group's policy
    accepts them. How members run (in order, threads, processes, a worker fleet) is the
    group's coordination backend, chosen with :meth:`with_execution`.
    """

    def __init__(self, members: Iterable[Executable], group_id: str | None = None) -> None:
        self.members: list[Executable] = list(members)
        self.task_id = group_id or f"group_{next(_group_numbers)}"
        #: Whether the id was chosen by the user (a named group is never merged by ``|``).
        self.named = group_id is not None
        #: Name of the coordination backend (see :class:`CoordinationBackend`).
        self.backend: str = "threading"
        self.policy: GroupExecutionPolicy | None = None
        self.max_workers: int | None = None
        self.timeout: float | None = None
        self.configured = False

    def set_group_name(self, name: str) -> ParallelGroup:
        """Name the group node (its ``task_id``); returns the group for chaining."""
        from graflow.core.workflow import current_workflow_context

        if not isinstance(name, str) or not name:
            raise TypeError(f"a group name must be a non-empty string, got {name!r}")
        current_workflow_context().graph.rename_node(self, name)
        self.named = True
        return self

    def with_execution(
        self,
        backend: CoordinationBackend | str | Any = _UNSET,
        policy: GroupExecutionPolicy | str | Any = _UNSET,
        max_workers: int | None | Any = _UNSET,
        timeout: float | None | Any = _UNSET,
    ) -> ParallelGroup:
        """Choose how members run and how failures count; omitted arguments keep their value.

        ``backend``: a :class:`CoordinationBackend` (or its name); ``policy``: an
        :class:`~graflow.core.handlers.group_policy.ErrorHandlingPolicy` or policy object;
        ``max_workers``: bound on members running at once; ``timeout``: seconds after
        which a member still running counts as failed (the policy judges it).
        """
        from graflow.core.handlers.group_policy import resolve_policy

        if backend is not _UNSET:
            self.backend = _backend_name(backend)
        if policy is not _UNSET:
            self.policy = resolve_policy(policy, self)
        if max_workers is not _UNSET:
            if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
                raise ValueError(f"group {self.task_id!r}: max_workers must be a positive int or None")
            self.max_workers = max_workers
        if timeout is not _UNSET:
            if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
                raise ValueError(
                    f"group {self.task_id!r}: timeout must be a positive number of seconds or None"
                )
            self.timeout = timeout
        self.configured = True
        return self

    def with_policy(self, policy: GroupExecutionPolicy | str) -> ParallelGroup:
        """The brief's form of ``with_execution(policy=...)``."""
        return self.with_execution(policy=policy)

    def iter_tasks(self) -> list[Executable]:
        found: list[Executable] = [self]
        for member in self.members:
            found.extend(member.iter_tasks())
        return found

    @property
    def member_ids(self) -> list[str]:
        """The members' task ids, in order."""
        return [m.task_id for m in self.members]


def _backend_name(backend: object) -> str:
    value = getattr(backend, "value", backend)
    if not isinstance(value, str):
        raise TypeError(f"backend must be a CoordinationBackend or its name, got {type(backend).__name__}")
    return value.lower()
