"""The ``memory`` queue backend: the run's tasks execute in the engine's process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graflow.plugins import hookimpl
from graflow.queue.base import InProcess, Placement

__all__ = ["InProcess"]


def _in_process(config: Mapping[str, Any]) -> Placement:
    return InProcess()


@hookimpl
def graflow_queue_backends() -> Mapping[str, Callable[[Mapping[str, Any]], Placement]]:
    return {"memory": _in_process}
