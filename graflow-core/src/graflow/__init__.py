"""Graflow: workflows as graphs of Python tasks, in process or on a fleet of workers.

The common names are importable from here::

    from graflow import task, workflow, chain, parallel

Everything is loaded on first use, so ``import graflow`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

_EXPORTS = {
    "task": "graflow.core.decorators",
    "workflow": "graflow.core.workflow",
    "chain": "graflow.core.dsl",
    "parallel": "graflow.core.dsl",
    "TaskExecutionContext": "graflow.core.context",
    "ExecutionContext": "graflow.core.context",
    "WorkflowEngine": "graflow.core.engine",
    "TaskWrapper": "graflow.core.task",
    "RetryPolicy": "graflow.core.retry",
    "ErrorHandlingPolicy": "graflow.core.handlers.group_policy",
    "CoordinationBackend": "graflow.coordination.coordinator",
    "QueueBackend": "graflow.queue",
}

__all__ = [
    "CoordinationBackend",
    "ErrorHandlingPolicy",
    "ExecutionContext",
    "QueueBackend",
    "RetryPolicy",
    "TaskExecutionContext",
    "TaskWrapper",
    "WorkflowEngine",
    "__version__",
    "chain",
    "parallel",
    "task",
    "workflow",
]

if TYPE_CHECKING:
    from graflow.coordination.coordinator import CoordinationBackend
    from graflow.core.context import ExecutionContext, TaskExecutionContext
    from graflow.core.decorators import task
    from graflow.core.dsl import chain, parallel
    from graflow.core.engine import WorkflowEngine
    from graflow.core.handlers.group_policy import ErrorHandlingPolicy
    from graflow.core.retry import RetryPolicy
    from graflow.core.task import TaskWrapper
    from graflow.core.workflow import workflow
    from graflow.queue import QueueBackend


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'graflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
