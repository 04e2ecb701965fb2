"""Alias: ``TaskWorker`` lives in graflow-worker."""

from __future__ import annotations

from typing import Any

from graflow._alias import load_plugin_attribute


def __getattr__(name: str) -> Any:
    if name == "TaskWorker":
        return load_plugin_attribute("graflow_worker", "TaskWorker", "graflow-worker")
    raise AttributeError(name)
