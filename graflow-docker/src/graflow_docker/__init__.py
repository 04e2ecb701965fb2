"""graflow-docker: run Graflow tasks in Docker containers.

Installed, it contributes the ``docker`` handler (``@task(handler="docker")``, image
from ``GRAFLOW_DOCKER_IMAGE``) and :class:`DockerTaskHandler` for handlers of your own::

    from graflow_docker import DockerTaskHandler
    engine.register_handler("py311", DockerTaskHandler(image="python:3.11-slim"))

``graflow.core.handlers.docker.DockerTaskHandler`` is the same class. The handler (and
the Docker SDK) is imported on first use, so loading the plugin costs a run nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graflow_docker.exceptions import (
    ContainerFailedError,
    ContainerMemoryError,
    ContainerTimeoutError,
    DockerEngineUnavailableError,
    DockerHandlerError,
    ImageNotFoundError,
    ImageUnusableError,
    PythonVersionMismatchError,
    SandboxOutcomeError,
    VolumeNotFoundError,
)

if TYPE_CHECKING:
    from graflow_docker.handler import DEFAULT_IMAGE, DockerTaskHandler

__version__ = "0.3.0"

__all__ = [
    "DEFAULT_IMAGE",
    "ContainerFailedError",
    "ContainerMemoryError",
    "ContainerTimeoutError",
    "DockerEngineUnavailableError",
    "DockerHandlerError",
    "DockerTaskHandler",
    "ImageNotFoundError",
    "ImageUnusableError",
    "PythonVersionMismatchError",
    "SandboxOutcomeError",
    "VolumeNotFoundError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in ("DockerTaskHandler", "DEFAULT_IMAGE"):
        from graflow_docker import handler

        value = getattr(handler, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graflow_docker' has no attribute {name!r}")
