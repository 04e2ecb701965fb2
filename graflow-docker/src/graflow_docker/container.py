"""One container, from create to remove, whatever happens in between.

The handler never lets Docker remove a container by itself (``--rm``): the exit
status and the out-of-memory flag must be read first, and a fast task would race
the removal. Instead :func:`run_container` removes it in a ``finally`` block, so the
container is gone after success, failure, timeout and Ctrl-C alike.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import docker.errors
import requests.exceptions

from graflow_docker.exceptions import ContainerFailedError, ContainerTimeoutError
from graflow_docker.stream import OutputLog

__all__ = [
    "LABEL",
    "ContainerExit",
    "ContainerSpec",
    "create",
    "describe_failure",
    "exit_of",
    "owner_label",
    "remove_quietly",
    "run_container",
    "running",
    "start",
]

#: Label on every container the handler starts, so leftovers after a crash are easy to find:
#: ``docker ps -a --filter label=graflow.docker``.
LABEL: Final = "graflow.docker"
_JOIN_OUTPUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one container."""

    image: str
    command: Sequence[str]
    environment: dict[str, str]
    binds: Sequence[str]
    host_config: dict[str, Any]
    labels: dict[str, str]


@dataclass(frozen=True)
class ContainerExit:
    """How a container ended."""

    exit_code: int
    oom_killed: bool
    container_id: str


def owner_label() -> str:
    """``host:pid`` of this process, for the container's labels."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create(api: Any, spec: ContainerSpec, what: str) -> str:
    """Create (not start) the container; Docker's refusals become :class:`ContainerFailedError`."""
    try:
        host_config = api.create_host_config(binds=list(spec.binds), **spec.host_config)
        created = api.create_container(
            spec.image,
            command=list(spec.command),
            environment=spec.environment,
            labels={LABEL: "1", **spec.labels},
            host_config=host_config,
            stdin_open=False,
            tty=False,
        )
    except docker.errors.DockerException as exc:
        raise ContainerFailedError(
            f"Docker refused to create the container for {what}: {_explain(exc)}"
        ) from exc
    return str(created["Id"])


def start(api: Any, container_id: str, what: str, image: str) -> None:
    """Start it; a missing interpreter or GPU becomes an error that says what to do."""
    try:
        api.start(container_id)
    except docker.errors.APIError as exc:
        raise ContainerFailedError(
            f"Docker could not start the container for {what}: {_explain(exc, image)}"
        ) from exc


def run_container(
    api: Any,
    spec: ContainerSpec,
    output: OutputLog,
    *,
    timeout: float | None,
    keep: bool,
    what: str,
) -> ContainerExit:
    """Run the container to its end, streaming its output into ``output``; remove it unless ``keep``.

    Raises :class:`ContainerTimeoutError` when ``timeout`` seconds pass first (the
    container is killed), :class:`ContainerFailedError` when Docker refuses it.
    """
    container_id = create(api, spec, what)
    reader: threading.Thread | None = None
    frames: Any = None
    try:
        frames = api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
        reader = threading.Thread(
            target=output.pump, args=(frames,), name=f"graflow-docker-{container_id[:12]}"
        )
        reader.daemon = True
        reader.start()
        start(api, container_id, what, spec.image)
        try:
            status = api.wait(container_id, timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            if timeout is None:
                raise  # not our timeout: the engine went away
            if not running(api, container_id):
                status = api.wait(container_id)
            else:
                _kill(api, container_id)
                raise ContainerTimeoutError(
                    f"{what} did not finish within timeout={timeout:g}s; its container was stopped"
                    f"{'' if keep else ' and removed'}. Raise the handler's timeout if the task needs longer."
                ) from exc
        reader.join(_JOIN_OUTPUT_SECONDS)
        exit_code = int(status.get("StatusCode", -1))
        oom = exit_code != 0 and _oom_killed(api, container_id)
        return ContainerExit(exit_code, oom, container_id)
    finally:
        if frames is not None and reader is not None and reader.is_alive():
            _close(frames)
        if not keep:
            remove_quietly(api, container_id)


def remove_quietly(api: Any, container_id: str) -> None:
    """Kill and remove; a container that is already gone is fine."""
    try:
        api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            from graflow.log import get_logger
            from graflow_docker.stream import LOGGER

            get_logger(LOGGER).warning("container_not_removed", container=container_id[:12], error=str(exc))


def describe_failure(
    what: str, exit: ContainerExit, stderr_tail: str, mem_limit: object
) -> ContainerFailedError:
    """The error for a container that ended without reporting an outcome."""
    from graflow_docker.exceptions import ContainerMemoryError

    tail = f"\n--- last lines of the container's stderr ---\n{stderr_tail}" if stderr_tail else ""
    if exit.oom_killed:
        return ContainerMemoryError(
            f"{what} went past mem_limit={mem_limit!r}: the kernel killed its container (exit status "
            f"{exit.exit_code}). Raise mem_limit or make the task use less memory.{tail}",
            exit_code=exit.exit_code,
            stderr_tail=stderr_tail,
        )
    return ContainerFailedError(
        f"{what}: its container exited with status {exit.exit_code} before reporting the task's outcome "
        f"(the process was killed or could not start graflow's runtime).{tail}",
        exit_code=exit.exit_code,
        stderr_tail=stderr_tail,
    )


def exit_of(api: Any, container_id: str) -> ContainerExit:
    """How a container that has stopped (or is about to) ended."""
    try:
        status = api.wait(container_id, timeout=_JOIN_OUTPUT_SECONDS)
        exit_code = int(status.get("StatusCode", -1))
    except (docker.errors.APIError, requests.exceptions.RequestException):
        exit_code = -1
    return ContainerExit(exit_code, exit_code != 0 and _oom_killed(api, container_id), container_id)


def running(api: Any, container_id: str) -> bool:
    """Whether the container is still running."""
    try:
        return bool(api.inspect_container(container_id)["State"]["Running"])
    except docker.errors.NotFound:
        return False


def _oom_killed(api: Any, container_id: str) -> bool:
    try:
        return bool(api.inspect_container(container_id)["State"].get("OOMKilled"))
    except docker.errors.NotFound:
        return False


def _kill(api: Any, container_id: str) -> None:
    try:
        api.kill(container_id)
        api.wait(container_id, timeout=_JOIN_OUTPUT_SECONDS)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        pass  # it ended on its own in the meantime, or removal will force it


def _close(frames: Any) -> None:
    try:
        frames.close()
    except Exception:
        pass


def _explain(exc: Exception, image: str | None = None) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    text = text.decode() if isinstance(text, bytes) else str(text)
    lowered = text.lower()
    if "executable file not found" in lowered or (
        "no such file or directory" in lowered and "exec" in lowered
    ):
        return (
            f"{text}. The image {image!r} has no such interpreter on its PATH: use an image with Python "
            "(e.g. python:3.11-slim) or pass python='/path/to/python3' to DockerTaskHandler"
        )
    if "device driver" in lowered or ("gpu" in lowered and "capabilit" in lowered):
        return (
            f"{text}. device_requests need a GPU and its container runtime on the Docker host "
            "(e.g. the NVIDIA Container Toolkit); drop device_requests to run on CPU"
        )
    return text
