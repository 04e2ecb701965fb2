"""Every mistake a user can make is a clear error at the task at the latest, never a hang."""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import pytest

from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import ConfigError, GraflowError, TaskSerializationError
from graflow_docker import (
    DockerEngineUnavailableError,
    DockerTaskHandler,
    ImageNotFoundError,
    ImageUnusableError,
    PythonVersionMismatchError,
    VolumeNotFoundError,
)


@pytest.mark.no_engine_needed
def test_unreachable_engine_is_a_clear_error(run, monkeypatch, tmp_path: Path) -> None:
    nowhere = f"unix://{tmp_path}/no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", nowhere)
    with workflow("no_engine") as wf:
        TaskWrapper("t", platform.python_version, handler_type="docker")

    with pytest.raises(DockerEngineUnavailableError) as info:
        run(wf, docker=DockerTaskHandler(image="graflow-test-python:3.11"))
    message = str(info.value)
    assert nowhere in message
    assert "Start the engine" in message
    assert isinstance(info.value, GraflowError)
    assert info.value.graflow_task_id == "t"


def test_missing_image_is_a_clear_error(run, containers) -> None:
    with workflow("no_image") as wf:
        TaskWrapper("t", platform.python_version, handler_type="docker")

    with pytest.raises(ImageNotFoundError) as info:
        run(wf, docker=DockerTaskHandler(image="graflow-no-such-image:1.0"))
    message = str(info.value)
    assert (
        "'graflow-no-such-image:1.0' is not present on the Docker engine and could not be pulled" in message
    )
    assert "docker pull graflow-no-such-image:1.0" in message


def test_missing_image_with_pull_disabled_does_not_try_the_registry(run) -> None:
    with workflow("no_pull") as wf:
        TaskWrapper("t", platform.python_version, handler_type="docker")

    with pytest.raises(ImageNotFoundError, match=r"not present on the Docker engine \(pull=False\)"):
        run(wf, docker=DockerTaskHandler(image="graflow-no-such-image:1.0", pull=False))


def test_image_without_the_interpreter_is_a_clear_error(image, run, containers) -> None:
    with workflow("no_python") as wf:
        TaskWrapper("t", platform.python_version, handler_type="docker")

    with pytest.raises(ImageUnusableError) as info:
        run(wf, docker=DockerTaskHandler(image=image, python="python9"))
    message = str(info.value)
    assert "cannot run graflow tasks" in message
    assert "python9" in message
    assert "pass python='/path/to/python3'" in message


def test_unpicklable_task_fails_before_any_container_starts(handler, run, docker_client, containers) -> None:
    lock = threading.Lock()

    with workflow("unpicklable") as wf:

        @task(handler="docker")
        def guarded() -> bool:
            with lock:
                return True

    with pytest.raises(TaskSerializationError) as info:
        run(wf, docker=handler)
    message = str(info.value)
    assert "task 'guarded' cannot be sent to a container" in message
    assert "lock" in message
    assert "create them inside the task" in message


def test_missing_volume_path_fails_before_the_container_starts(
    image, run, tmp_path: Path, containers
) -> None:
    missing = tmp_path / "does-not-exist"
    with workflow("no_volume") as wf:
        TaskWrapper("t", platform.python_version, handler_type="docker")

    handler = DockerTaskHandler(image=image, volumes={str(missing): {"bind": "/data", "mode": "ro"}})
    with pytest.raises(VolumeNotFoundError) as info:
        run(wf, docker=handler)
    assert f"the host path {str(missing)!r} does not exist" in str(info.value)
    assert not missing.exists()  # Docker did not create it behind our back


@pytest.mark.no_engine_needed
def test_relative_volume_path_is_refused_when_the_handler_is_built() -> None:
    with pytest.raises(VolumeNotFoundError, match="must be absolute"):
        DockerTaskHandler(volumes={"data/in": {"bind": "/data", "mode": "ro"}})


@pytest.mark.no_engine_needed
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"cpu_quota": -1}, "cpu_quota must be a positive int"),
        ({"environment": ["A=1"]}, "environment must be a mapping"),
        ({"volumes": "/a:/b"}, "volumes must be a dict or a list"),
        ({"volumes": {"/a": {"mode": "ro"}}}, "must be {'bind'"),
        ({"image": ""}, "image must be an image name"),
    ],
)
def test_malformed_options_are_refused_when_the_handler_is_built(options: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace("{", r"\{")):
        DockerTaskHandler(**options)


def test_other_python_version_refuses_code_shipped_as_bytecode(other_image, run, containers) -> None:
    with workflow("mismatch") as wf:

        @task(handler="py313")
        def defined_here() -> int:
            return 1

    with pytest.raises(PythonVersionMismatchError) as info:
        run(wf, py313=DockerTaskHandler(image=other_image))
    message = str(info.value)
    assert "runs Python 3.13 but this process runs Python 3.11" in message
    assert "task 'defined_here'" in message
    assert "Use an image with Python 3.11" in message


def test_other_python_version_runs_functions_importable_by_reference(other_image, run) -> None:
    with workflow("by_reference") as wf:
        TaskWrapper("version", platform.python_version, handler_type="py313")

    assert run(wf, py313=DockerTaskHandler(image=other_image)).get_result("version").startswith("3.13.")


def test_the_python_version_is_checked_once_per_handler(image, run, monkeypatch) -> None:
    handler = DockerTaskHandler(image=image)
    probes = []
    original = handler._probe_python
    monkeypatch.setattr(handler, "_probe_python", lambda api: probes.append(1) or original(api))
    with workflow("probe_once") as wf:
        first = TaskWrapper("first", platform.python_version, handler_type="docker")
        second = TaskWrapper("second", platform.python_version, handler_type="docker")
        first >> second

    run(wf, docker=handler)
    run(wf, docker=handler)
    assert probes == [1]
