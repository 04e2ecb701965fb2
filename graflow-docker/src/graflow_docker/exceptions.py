"""What can go wrong around a containerized task, each with what to do about it.

All derive from :class:`graflow.exceptions.GraflowError` (through
:class:`DockerHandlerError`), so ``except GraflowError`` catches them. A task's own
exception is never wrapped: it comes back from the container as itself. A task that
cannot be pickled raises :class:`graflow.exceptions.TaskSerializationError`.
"""

from __future__ import annotations

from graflow.exceptions import ConfigError, GraflowError, GraflowRuntimeError

__all__ = [
    "ContainerFailedError",
    "ContainerMemoryError",
    "ContainerTimeoutError",
    "DockerEngineUnavailableError",
    "DockerHandlerError",
    "ImageNotFoundError",
    "ImageUnusableError",
    "PythonVersionMismatchError",
    "SandboxOutcomeError",
    "VolumeNotFoundError",
]


class DockerHandlerError(GraflowError):
    """Base class of the Docker handler's own errors."""


class DockerEngineUnavailableError(DockerHandlerError, ConnectionError):
    """No Docker engine answers where the handler looked (``DOCKER_HOST`` or the local socket)."""


class ImageUnusableError(DockerHandlerError, ConfigError):
    """The image exists but cannot run a graflow task (no Python, or one too old)."""


class ImageNotFoundError(ImageUnusableError):
    """The image is not present locally and could not be pulled."""


class PythonVersionMismatchError(ImageUnusableError):
    """The image's Python minor version differs from this process's, and the task travels as bytecode."""


class VolumeNotFoundError(DockerHandlerError, ConfigError):
    """A ``volumes`` entry names a host path that does not exist (or is not absolute)."""


class ContainerFailedError(DockerHandlerError, GraflowRuntimeError):
    """The container could not start, or ended without reporting the task's outcome."""

    def __init__(self, message: str, *, exit_code: int | None = None, stderr_tail: str = "") -> None:
        #: The container's exit status, when it ran at all.
        self.exit_code = exit_code
        #: The last lines the container wrote to stderr.
        self.stderr_tail = stderr_tail
        super().__init__(message)


class SandboxOutcomeError(ContainerFailedError):
    """With ``sandbox=True``, the container sent back something that is not a valid outcome.

    Nothing of it was applied: no result, channel write or request.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        #: What was wrong with it, e.g. ``"it is not JSON (...)"``.
        self.reason = reason
        super().__init__(message)


class ContainerMemoryError(ContainerFailedError, MemoryError):
    """The kernel killed the container for going past ``mem_limit``."""


class ContainerTimeoutError(DockerHandlerError, TimeoutError):
    """The task did not finish within the handler's ``timeout``; its container was stopped."""
