"""The entry point: contributes the ``docker`` handler.

``@task(handler="docker")`` runs in a :class:`~graflow_docker.DockerTaskHandler` whose
image is ``GRAFLOW_DOCKER_IMAGE`` when set, else :data:`~graflow_docker.DEFAULT_IMAGE`
(``python:3.11-slim``). The handler is built on first use (importing the Docker SDK
costs nothing until a task asks for it), once per process. For other options register
your own: ``engine.register_handler("docker", DockerTaskHandler(...))`` takes precedence.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from graflow.plugins import hookimpl

if TYPE_CHECKING:
    from graflow.core.handler import TaskHandler

#: Environment variable naming the image of the ``docker`` handler.
IMAGE_VARIABLE: Final = "GRAFLOW_DOCKER_IMAGE"


def docker_handler() -> TaskHandler:
    """The ``docker`` handler: image from ``GRAFLOW_DOCKER_IMAGE``, other options at their defaults."""
    from graflow_docker.handler import DEFAULT_IMAGE, DockerTaskHandler

    return DockerTaskHandler(image=os.environ.get(IMAGE_VARIABLE) or DEFAULT_IMAGE)


@hookimpl
def graflow_task_handlers() -> Mapping[str, Callable[[], TaskHandler]]:
    return {"docker": docker_handler}
