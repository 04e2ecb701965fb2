"""``FILE[:WORKFLOW]``: load a Python file and pick one of the workflows it defines.

A workflow is a module-level :class:`~graflow.core.workflow.WorkflowContext`, which is
what ``with workflow("etl") as wf:`` leaves bound at module level. The file is run as
a module named ``__graflow_main__`` (so its ``if __name__ == "__main__":`` block does not
run), with its own directory first on ``sys.path`` so it can import its neighbours.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final

from graflow.cli import WorkflowLoadError
from graflow.core.workflow import WorkflowContext
from graflow.exceptions import ConfigError

__all__ = ["MODULE_NAME", "WorkflowLoadError", "WorkflowTarget", "find_workflows", "loaded_workflow"]

#: The module name a workflow file runs under.
MODULE_NAME: Final = "__graflow_main__"


@dataclass(frozen=True)
class WorkflowTarget:
    """A parsed ``FILE[:WORKFLOW]`` argument."""

    path: Path
    #: The workflow's name or the variable holding it; ``None``: the only one in the file.
    workflow: str | None

    @classmethod
    def parse(cls, text: str) -> WorkflowTarget:
        """Split ``FILE[:WORKFLOW]``; a path that exists as written is never split."""
        if not Path(text).exists():
            path, sep, name = text.rpartition(":")
            # "C:\\flows\\etl.py" has a colon too, but what follows it is a path, not a name.
            if sep and path and name and not any(c in name for c in "/\\"):
                return cls(Path(path), name)
        return cls(Path(text), None)

    def check(self) -> None:
        """Fail with a usage error unless the file exists and is a file."""
        if not self.path.exists():
            raise ConfigError(
                f"no such file: {str(self.path)!r}; pass the path of a Python file that defines "
                "a workflow (e.g. graflow run flows/etl.py or flows/etl.py:etl)"
            )
        if not self.path.is_file():
            raise ConfigError(
                f"{str(self.path)!r} is not a file; pass the path of the Python file that defines the workflow"
            )


def _load_module(path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(MODULE_NAME, str(path))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, str(path), loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        loader.exec_module(module)
    except Exception as exc:
        raise WorkflowLoadError(
            f"{path} raised {type(exc).__name__} while loading: {exc}; fix the file and run again"
        ) from exc
    return module


def find_workflows(module: ModuleType) -> dict[str, WorkflowContext]:
    """Module-level workflows by variable name (a workflow bound to two names is listed once)."""
    found: dict[str, WorkflowContext] = {}
    for variable, value in vars(module).items():
        if isinstance(value, WorkflowContext) and all(value is not wf for wf in found.values()):
            found[variable] = value
    return found


def _describe(workflows: dict[str, WorkflowContext]) -> str:
    return ", ".join(
        repr(wf.name) if wf.name == variable else f"{wf.name!r} (variable {variable})"
        for variable, wf in workflows.items()
    )


def _select(target: WorkflowTarget, workflows: dict[str, WorkflowContext]) -> WorkflowContext:
    path = target.path
    if not workflows:
        raise ConfigError(
            f"{path} defines no workflow at module level; define one with "
            '`with workflow("name") as wf:` outside any function'
        )
    if target.workflow is None:
        if len(workflows) == 1:
            return next(iter(workflows.values()))
        raise ConfigError(
            f"{path} defines several workflows: {_describe(workflows)}; choose one with {path}:NAME"
        )
    by_name = [wf for wf in workflows.values() if wf.name == target.workflow]
    if len(by_name) == 1:
        return by_name[0]
    if target.workflow in workflows:
        return workflows[target.workflow]
    if by_name:
        raise ConfigError(
            f"{path} defines several workflows named {target.workflow!r}; choose one by its variable "
            f"name: {', '.join(v for v, wf in workflows.items() if wf.name == target.workflow)}"
        )
    raise ConfigError(f"no workflow {target.workflow!r} in {path}; it defines: {_describe(workflows)}")


@contextmanager
def loaded_workflow(target: WorkflowTarget) -> Iterator[WorkflowContext]:
    """Load ``target`` and yield the chosen workflow; undo the ``sys.path``/``sys.modules`` changes after.

    The file is not importable elsewhere, so its tasks travel by value (see
    :mod:`graflow.remote.codec`): a MULTIPROCESSING group or a worker fleet runs them
    without a copy of the file.
    """
    target.check()
    path = target.path.resolve()
    folder = str(path.parent)
    added_path = folder not in sys.path
    if added_path:
        sys.path.insert(0, folder)
    previous = sys.modules.get(MODULE_NAME)
    try:
        module = _load_module(path)
        yield _select(target, find_workflows(module))
    finally:
        if previous is None:
            sys.modules.pop(MODULE_NAME, None)
        else:
            sys.modules[MODULE_NAME] = previous
        if added_path and folder in sys.path:
            sys.path.remove(folder)
