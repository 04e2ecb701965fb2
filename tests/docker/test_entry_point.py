"""``pip install graflow-docker`` is all it takes: the ``docker`` handler and the kernel's alias."""

from __future__ import annotations

import os

import pytest

from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow.plugins.manager import get_plugin_manager


@pytest.mark.no_engine_needed
def test_kernel_alias_resolves_to_the_plugin_class() -> None:
    from graflow.core.handlers.docker import DockerTaskHandler as Alias
    from graflow_docker import DockerTaskHandler

    assert Alias is DockerTaskHandler


@pytest.mark.no_engine_needed
def test_plugin_contributes_the_docker_handler() -> None:
    manager = get_plugin_manager()
    assert "docker" in manager.names("graflow_task_handlers")
    docker_plugin = next(p for p in manager.plugins() if p.name == "docker")
    assert docker_plugin.distribution == "graflow-docker"
    assert docker_plugin.provides == {"handler": ["docker"]}


def test_task_with_handler_docker_runs_in_a_container_without_registration(image) -> None:
    with workflow("entry_point") as wf:

        @task(handler="docker")
        def inside() -> tuple[str, bool]:
            import os
            import sys

            return f"{sys.version_info[0]}.{sys.version_info[1]}", os.path.exists("/.dockerenv")

        result = wf.execute()
    assert result == ("3.11", True)


def test_entry_point_handler_takes_its_image_from_the_environment(image) -> None:
    handler = get_plugin_manager().task_handler("docker")
    assert os.environ["GRAFLOW_DOCKER_IMAGE"] == image
    assert handler.image == image


@pytest.mark.no_engine_needed
def test_entry_point_handler_defaults_to_python_slim(monkeypatch) -> None:
    from graflow_docker.plugin import docker_handler

    monkeypatch.delenv("GRAFLOW_DOCKER_IMAGE")
    assert docker_handler().image == "python:3.11-slim"
