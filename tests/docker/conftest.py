"""Docker tests run against a real engine and the bare images built by ``.ci/docker-engine.sh``.

Without an engine (or its images) they skip with the reason, except under ``CI=true``,
where they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.services import missing

#: A Python with nothing installed beyond the interpreter (Debian bookworm: 3.11, as the host).
IMAGE = os.environ.get("GRAFLOW_DOCKER_TEST_IMAGE", "graflow-test-python:3.11")
#: The same, with another Python minor version (Debian trixie: 3.13).
OTHER_IMAGE = os.environ.get("GRAFLOW_DOCKER_OTHER_IMAGE", "graflow-test-python:3.13")
ENGINE_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "docker-engine.sh"

# The entry-point `docker` handler is built once per process, from this variable.
os.environ["GRAFLOW_DOCKER_IMAGE"] = IMAGE


def _unavailable(reason: str) -> NoReturn:
    missing(f"{reason}; run {ENGINE_SCRIPT} (as root) to start an engine and build the test images")


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    """A client of the real engine; skips (fails under CI=true) when there is none."""
    try:
        import docker
    except ImportError as exc:
        _unavailable(f"the docker SDK is not installed ({exc})")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine reachable ({type(exc).__name__}: {exc})")
    yield client
    client.close()


def _require_image(client, name: str) -> str:  # type: ignore[no-untyped-def]
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        _unavailable(f"the test image {name!r} is missing")
    return name


@pytest.fixture(scope="session")
def image(docker_client) -> str:  # type: ignore[no-untyped-def]
    """The bare Python image with the host's minor version."""
    return _require_image(docker_client, IMAGE)


@pytest.fixture(scope="session")
def other_image(docker_client) -> str:  # type: ignore[no-untyped-def]
    """The bare Python image with a different minor version."""
    return _require_image(docker_client, OTHER_IMAGE)


@pytest.fixture(autouse=True)
def _engine(request: pytest.FixtureRequest) -> None:
    """Every test here needs the engine and the main image, even the ones that do not ask."""
    if "no_engine_needed" not in request.keywords:
        request.getfixturevalue("image")


@pytest.fixture
def containers(docker_client) -> Iterator[set[str]]:  # type: ignore[no-untyped-def]
    """Ids of every container that exists before the test; asserts the test left none behind."""
    before = {c.id for c in docker_client.containers.list(all=True)}
    yield before
    after = {c.id for c in docker_client.containers.list(all=True)}
    assert after - before == set(), "the test left containers behind"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_engine_needed: runs without a Docker engine")


@pytest.fixture(scope="session")
def handler(image: str):  # type: ignore[no-untyped-def]
    """One default handler for the whole session: its image check and Python probe run once."""
    from graflow_docker import DockerTaskHandler

    with DockerTaskHandler(image=image) as shared:
        yield shared


@pytest.fixture
def run():  # type: ignore[no-untyped-def]
    """``run(wf, name=handler, ...)``: execute a workflow with handlers registered; returns its context."""
    from graflow.core.context import ExecutionContext
    from graflow.core.engine import WorkflowEngine

    def execute(wf, start=None, initial_channel=None, **handlers):  # type: ignore[no-untyped-def]
        engine = WorkflowEngine()
        for name, registered in handlers.items():
            engine.register_handler(name, registered)
        context = ExecutionContext.create(wf.graph, start_node=start)
        for key, value in (initial_channel or {}).items():
            context.channel.set(key, value)
        engine.execute(context)
        return context

    return execute
