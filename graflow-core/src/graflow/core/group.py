"""Parallel groups: independent nodes that run together and fail by a chosen policy."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from graflow.core.task import Executable
from graflow.exceptions import ConfigError

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
        :class:`~graflow.core.handlers.group_policy.ErrorHandlingPolicy` or policy object
        (``None``: the default, STRICT);
        ``max_workers``: bound on members running at once; ``timeout``: seconds after
        which a member still running counts as failed (the policy judges it).
        A value that cannot work (an unknown backend, a policy that does not fit the
        group's members) raises :class:`~graflow.exceptions.ConfigError` here, before any run.
        """
        from graflow.core.handlers.group_policy import resolve_policy

        # Everything is checked before anything is changed: a bad argument leaves the group as it was.
        new_backend = self.backend if backend is _UNSET else _backend_name(backend, self.task_id)
        new_policy: GroupExecutionPolicy | None = self.policy
        if policy is not _UNSET:
            new_policy = None if policy is None else resolve_policy(policy, self)
        new_workers = self.max_workers
        if max_workers is not _UNSET:
            if max_workers is not None and (
                not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1
            ):
                raise ConfigError(
                    f"group {self.task_id!r}: max_workers must be a whole number >= 1 (e.g. max_workers=4) "
                    f"or None for the backend's default, got {max_workers!r}"
                )
            new_workers = None if max_workers is None else int(max_workers)
        new_timeout = self.timeout
        if timeout is not _UNSET:
            if timeout is not None and (
                not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
            ):
                raise ConfigError(
                    f"group {self.task_id!r}: timeout must be a positive number of seconds "
                    f"(e.g. timeout=30) or None for no limit, got {timeout!r}"
                )
            new_timeout = None if timeout is None else float(timeout)
        self.backend = new_backend
        self.policy = new_policy
        self.max_workers = new_workers
        self.timeout = new_timeout
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


def _backend_name(backend: object, group_id: str) -> str:
    """The backend's name, checked against the coordinators the plugins provide.

    An unknown name fails here, when the group is configured, not when the run reaches
    the group; a backend of a plugin that is not installed names the package to install.
    """
    from graflow.plugins.manager import get_plugin_manager

    value = getattr(backend, "value", backend)
    if not isinstance(value, str):
        raise ConfigError(
            f"group {group_id!r}: backend must be a CoordinationBackend (e.g. "
            f"CoordinationBackend.THREADING) or its name, got {type(backend).__name__} ({backend!r})"
        )
    name = value.lower()
    get_plugin_manager().resolve("graflow_coordinators", name)
    return name
