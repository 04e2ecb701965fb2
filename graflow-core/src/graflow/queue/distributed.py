"""Alias kept for code written against earlier Graflow: the Redis queue lives in graflow-redis."""

from __future__ import annotations

from typing import Any

from graflow._alias import load_plugin_attribute


def __getattr__(name: str) -> Any:
    if name == "DistributedTaskQueue":
        return load_plugin_attribute("graflow_redis", "DistributedTaskQueue", "graflow-redis")
    raise AttributeError(name)
