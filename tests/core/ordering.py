"""Helpers for tests about execution order: tasks that record when they run."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from graflow.core.task import TaskWrapper


def _recorder(log: list[str], name: str) -> Callable[[], str]:
    def record() -> str:
        log.append(name)
        return name

    return record


def recording_tasks(log: list[str], *names: str) -> list[TaskWrapper]:
    """One task per name; each appends its id to ``log`` when it runs and returns it."""
    return [TaskWrapper(name, _recorder(log, name)) for name in names]


def assert_ran_before(log: list[str], earlier: Iterable[str], later: Iterable[str]) -> None:
    for first in earlier:
        for second in later:
            assert log.index(first) < log.index(second), f"{first} should run before {second}: {log}"


def assert_each_ran_once(log: list[str], names: Iterable[str]) -> None:
    names = list(names)
    assert sorted(log) == sorted(names), log
