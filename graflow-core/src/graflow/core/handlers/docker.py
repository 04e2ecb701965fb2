"""Alias: ``DockerTaskHandler`` lives in graflow-docker."""

from __future__ import annotations

from typing import Any

from graflow._alias import load_plugin_attribute


def __getattr__(name: str) -> Any:
    if name == "DockerTaskHandler":
        return load_plugin_attribute("graflow_docker", "DockerTaskHandler", "graflow-docker")
    raise AttributeError(name)
