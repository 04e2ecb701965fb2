"""``DockerTaskHandler``: run a task in a container, get back everything it did.

The task travels as the same :class:`~graflow.remote.envelope.TaskEnvelope` a
MULTIPROCESSING member or a Redis worker gets, so a container task behaves like an
in-process one: its return value, channel writes, ``next_task`` / ``next_iteration``
requests and exceptions (with the container's traceback) come back and are applied
here by :func:`~graflow.remote.envelope.apply_outcome`. They come back as a pickle
from a container trusted like the task's code, as checked JSON with ``sandbox=True``
(:mod:`graflow_docker.sandbox`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import docker
import docker.errors
import requests.exceptions

from graflow.core.handler import TaskHandler
from graflow.core.task import current_task_context
from graflow.exceptions import ConfigError
from graflow.log import get_logger
from graflow.plugins import TRACEPARENT
from graflow.remote.build import build_envelope
from graflow.remote.codec import ByValue, carries_bytecode, dumps_envelope, loads
from graflow.remote.envelope import TaskOutcome, apply_outcome
from graflow_docker.container import (
    ContainerSpec,
    describe_failure,
    owner_label,
    run_container,
)
from graflow_docker.exceptions import (
    ContainerFailedError,
    DockerEngineUnavailableError,
    ImageNotFoundError,
    ImageUnusableError,
    PythonVersionMismatchError,
)
from graflow_docker.options import ContainerOptions, Volumes
from graflow_docker.runtime import IO_DIR, ONE_SHOT_SCRIPT, VERSION_SCRIPT, WARM_SCRIPT, runtime_mounts
from graflow_docker.sandbox import DEFAULT_MAX_OUTCOME_BYTES, load_outcome, read_outcome_file
from graflow_docker.stream import LOGGER, OutputLog
from graflow_docker.warm import WarmContainer, WarmPool

if TYPE_CHECKING:
    from graflow.core.context import ExecutionContext
    from graflow.core.graph import TaskGraph
    from graflow.core.task import Executable, TaskWrapper

__all__ = ["DEFAULT_IMAGE", "DockerTaskHandler"]

#: The image used when none is given (SPEC section 7).
DEFAULT_IMAGE: Final = "python:3.11-slim"
#: The oldest Python graflow's runtime runs on.
_MIN_PYTHON: Final = (3, 10)


class DockerTaskHandler(TaskHandler):
    """Runs each task in a fresh container of ``image``; any image with ``python3`` works::

        engine.register_handler("docker", DockerTaskHandler(image="python:3.11-slim"))
        engine.register_handler("sandbox", DockerTaskHandler(
            image="python:3.11-slim", network_mode="none", mem_limit="256m", timeout=60))

    Options are those of ``docker run`` (see the package README). Beyond SPEC section 7:
    ``reuse=True`` keeps warm containers that run tasks one after another (much less
    overhead, but tasks of this handler then share a process); ``sandbox=True`` never
    unpickles what a container sends back (results, channel values and ``next_iteration``
    data must be JSON data, at most ``max_outcome_bytes``; SPEC section 22); ``python``
    names the interpreter in the image; ``pull=False`` never pulls a missing image;
    ``client`` is a ready ``docker.DockerClient`` (default: ``docker.from_env()``).

    Nothing is contacted until the first task: then the engine, the image and its
    Python version are checked once, and every problem is an error from
    :mod:`graflow_docker.exceptions` that says what to do.
    """

    relocatable = False

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        environment: Mapping[str, Any] | None = None,
        volumes: Volumes | None = None,
        device_requests: Sequence[Any] | None = None,
        network_mode: str | None = None,
        mem_limit: str | int | None = None,
        cpu_quota: int | None = None,
        cpu_period: int | None = None,
        auto_remove: bool = True,
        timeout: float | None = None,
        *,
        reuse: bool = False,
        sandbox: bool = False,
        max_outcome_bytes: int = DEFAULT_MAX_OUTCOME_BYTES,
        python: str = "python3",
        pull: bool = True,
        client: docker.DockerClient | None = None,
    ) -> None:
        if not isinstance(image, str) or not image:
            raise ConfigError(f"image must be an image name like 'python:3.11-slim', got {image!r}")
        if (
            isinstance(max_outcome_bytes, bool)
            or not isinstance(max_outcome_bytes, int)
            or max_outcome_bytes <= 0
        ):
            raise ConfigError(f"max_outcome_bytes must be a positive int, got {max_outcome_bytes!r}")
        self.image = image
        self.options = ContainerOptions.build(
            environment=environment,
            volumes=volumes,
            device_requests=device_requests,
            network_mode=network_mode,
            mem_limit=mem_limit,
            cpu_quota=cpu_quota,
            cpu_period=cpu_period,
            timeout=timeout,
        )
        #: Remove each container when its task ends (False keeps it, stopped, for ``docker logs``).
        self.auto_remove = auto_remove
        self.reuse = reuse
        #: Take nothing the container sends back as code: outcomes are checked JSON, not pickles.
        self.sandbox = sandbox
        #: The largest outcome a sandboxed container may send back.
        self.max_outcome_bytes = max_outcome_bytes
        self.python = python
        self.pull = pull
        self._client = client
        self._lock = threading.Lock()
        self._image_python: tuple[int, int, int] | None = None
        self._mounts = runtime_mounts()
        #: A container has its image's packages and graflow's mounted runtime, nothing else
        #: of this process: every other loaded module (editable installs too) travels by value.
        self._by_value = ByValue(
            "a container",
            installed_are_local=False,
            library_paths=[str(m.source) for m in self._mounts],
            advice="or run this task with another handler",
        )
        self._pool = WarmPool()
        self._finalizer = weakref.finalize(self, self._pool.close)

    # --- the TaskHandler contract -----------------------------------------------------

    def execute_task(self, task: Executable, context: ExecutionContext) -> Any:
        wrapper: TaskWrapper = task  # type: ignore[assignment]
        tctx = current_task_context()
        if tctx is not None and tctx.task is not task:
            tctx = None
        self.options.check_volumes()
        envelope = build_envelope(wrapper, context, tctx, share_channel=False)
        payload = dumps_envelope(envelope, self._by_value)
        api = self._prepare()
        self._check_python(wrapper, payload)
        what = f"task {task.task_id!r} (image {self.image!r})"
        run = self._run_warm if self.reuse else self._run_once
        try:
            outcome = run(api, task.task_id, payload, envelope.carrier.get(TRACEPARENT), what, context.graph)
        except requests.exceptions.ConnectionError as exc:
            raise DockerEngineUnavailableError(
                f"lost the connection to the Docker engine while running {what} ({exc}); "
                "check that the engine is still running (`docker info`)"
            ) from exc
        return apply_outcome(outcome, context, tctx)

    def get_name(self) -> str:
        return f"DockerTaskHandler({self.image})"

    def close(self) -> None:
        """Remove this handler's warm containers (also done at exit, or when it is garbage)."""
        self._finalizer()

    def __enter__(self) -> DockerTaskHandler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DockerTaskHandler(image={self.image!r}, reuse={self.reuse}, sandbox={self.sandbox})"

    # --- one container per task -------------------------------------------------------

    def _run_once(
        self, api: Any, task_id: str, payload: bytes, traceparent: str | None, what: str, graph: TaskGraph
    ) -> TaskOutcome:
        io_dir = Path(tempfile.mkdtemp(prefix="graflow-docker-"))
        try:
            (io_dir / "envelope").write_bytes(payload)
            command = [
                self.python,
                "-u",
                "-c",
                ONE_SHOT_SCRIPT,
                f"{IO_DIR}/envelope",
                f"{IO_DIR}/outcome",
                task_id,
                self._form,
            ]
            spec = self._spec(command, io_dir, traceparent, task_id)
            output = OutputLog(task_id, image=self.image)
            exit = run_container(
                api, spec, output, timeout=self.options.timeout, keep=not self.auto_remove, what=what
            )
            outcome_file = io_dir / "outcome"
            if self.sandbox:
                answer = read_outcome_file(outcome_file, self.max_outcome_bytes, what)
            else:
                answer = outcome_file.read_bytes() if outcome_file.exists() else None
            if answer is None:
                raise describe_failure(what, exit, output.tail(), self.options.mem_limit)
            if not self.auto_remove:
                get_logger(LOGGER).info("container_kept", task_id=task_id, container=exit.container_id[:12])
            return self._load(answer, task_id, graph, what)
        finally:
            shutil.rmtree(io_dir, ignore_errors=True)

    # --- warm containers (reuse=True) -------------------------------------------------

    def _run_warm(
        self, api: Any, task_id: str, payload: bytes, traceparent: str | None, what: str, graph: TaskGraph
    ) -> TaskOutcome:
        def make_spec(io_dir: Path) -> ContainerSpec:
            return self._spec([self.python, "-u", "-c", WARM_SCRIPT, IO_DIR, self._form], io_dir, None, None)

        container = self._pool.acquire(lambda: WarmContainer.start(api, make_spec, self.image))
        try:
            answer = container.run(
                task_id,
                payload,
                traceparent,
                timeout=self.options.timeout,
                what=what,
                mem_limit=self.options.mem_limit,
                limit=self.max_outcome_bytes if self.sandbox else None,
            )
            outcome = self._load(answer, task_id, graph, what)
        except BaseException:  # a container whose answer is unusable is not trusted with another task
            self._pool.discard(container)
            raise
        self._pool.release(container)
        return outcome

    # --- shared -----------------------------------------------------------------------

    def _spec(
        self, command: list[str], io_dir: Path, traceparent: str | None, task_id: str | None
    ) -> ContainerSpec:
        environment = {"PYTHONDONTWRITEBYTECODE": "1", **self.options.environment}
        if traceparent:
            environment["TRACEPARENT"] = traceparent
        labels = {"graflow.docker.owner": owner_label()}
        if task_id is not None:
            labels["graflow.task_id"] = task_id
        return ContainerSpec(
            image=self.image,
            command=command,
            environment=environment,
            binds=[*(m.bind() for m in self._mounts), f"{io_dir}:{IO_DIR}:rw", *self.options.binds],
            host_config=self.options.host_config(),
            labels=labels,
        )

    @property
    def _form(self) -> str:
        """How the container sends its outcome back (the scripts' ``form``)."""
        return "json" if self.sandbox else "pickle"

    def _load(self, answer: bytes, task_id: str, graph: TaskGraph, what: str) -> TaskOutcome:
        if self.sandbox:
            return load_outcome(answer, task_id, graph, what)
        try:
            outcome = loads(answer)  # trusted: the container is as trusted as the task's code
        except Exception as exc:
            raise ContainerFailedError(
                f"{what} finished, but its outcome cannot be loaded here ({type(exc).__name__}: {exc}); "
                "return plain data (dicts, lists, numbers, strings) from tasks run in containers"
            ) from exc
        if not isinstance(outcome, TaskOutcome):
            raise ContainerFailedError(
                f"{what} finished, but what it sent back is of type {type(outcome).__name__}, not a task's outcome"
            )
        return outcome

    def _prepare(self) -> Any:
        """Connect, find the image, learn its Python version: once per handler."""
        with self._lock:
            client = self._client
            if client is None:
                client = self._client = _connect()
            api = client.api
            if self._image_python is None:
                self._ensure_image(api)
                self._image_python = self._probe_python(api)
            return api

    def _ensure_image(self, api: Any) -> None:
        try:
            api.inspect_image(self.image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as exc:
            raise ImageNotFoundError(f"cannot inspect image {self.image!r}: {exc}") from exc
        advice = (
            f"Pull or build it first (`docker pull {self.image}`), or choose an image that exists "
            "(DockerTaskHandler(image=...), or GRAFLOW_DOCKER_IMAGE for the 'docker' handler)."
        )
        if not self.pull:
            raise ImageNotFoundError(
                f"image {self.image!r} is not present on the Docker engine (pull=False). {advice}"
            )
        get_logger(LOGGER).info("pulling_image", image=self.image)
        reason = "the pull finished but the image is still missing"
        try:
            repository, tag = docker.utils.parse_repository_tag(self.image)
            api.pull(repository, tag=tag or "latest")
        except docker.errors.DockerException as exc:
            reason = str(getattr(exc, "explanation", None) or exc)
        try:
            api.inspect_image(self.image)
        except docker.errors.ImageNotFound:
            raise ImageNotFoundError(
                f"image {self.image!r} is not present on the Docker engine and could not be pulled "
                f"({reason}). {advice}"
            ) from None

    def _probe_python(self, api: Any) -> tuple[int, int, int]:
        what = f"the Python version check of image {self.image!r}"
        spec = ContainerSpec(
            image=self.image,
            command=[self.python, "-c", VERSION_SCRIPT],
            environment={},
            binds=[],
            host_config={"network_mode": "none"},
            labels={"graflow.docker.owner": owner_label()},
        )
        output = OutputLog(None).capture()
        try:
            exit = run_container(api, spec, output, timeout=120, keep=False, what=what)
        except ContainerFailedError as exc:
            raise ImageUnusableError(f"image {self.image!r} cannot run graflow tasks: {exc}") from exc
        lines = output.captured or []
        try:
            major, minor, micro = (int(part) for part in lines[-1].split("."))
        except (IndexError, ValueError):
            raise ImageUnusableError(
                f"image {self.image!r}: `{self.python}` did not report a Python version (exit status "
                f"{exit.exit_code}): {output.tail() or output.tail('stdout')}. Use an image with Python 3 "
                "or pass python='/path/to/python3'."
            ) from None
        if (major, minor) < _MIN_PYTHON:
            raise ImageUnusableError(
                f"image {self.image!r} has Python {major}.{minor}.{micro}; graflow's runtime needs Python "
                f">= {_MIN_PYTHON[0]}.{_MIN_PYTHON[1]} in the container. Use a newer image, e.g. "
                f"python:{sys.version_info.major}.{sys.version_info.minor}-slim."
            )
        get_logger(LOGGER).debug("image_python", image=self.image, version=f"{major}.{minor}.{micro}")
        return major, minor, micro

    def _check_python(self, task: TaskWrapper, payload: bytes) -> None:
        """Refuse, before any container starts, bytecode that the image's Python cannot load."""
        assert self._image_python is not None
        image = self._image_python[:2]
        here = sys.version_info[:2]
        if image == here or not carries_bytecode(payload):
            return
        func = getattr(task, "func", None)
        origin = getattr(func, "__module__", None) or "a script"
        raise PythonVersionMismatchError(
            f"task {task.task_id!r}: image {self.image!r} runs Python {image[0]}.{image[1]} but this process "
            f"runs Python {here[0]}.{here[1]}, and the task travels as bytecode (code from {origin!r}: a "
            "script, test module, lambda or closure), which only the same minor version can load. Use an "
            f"image with Python {here[0]}.{here[1]} (e.g. python:{here[0]}.{here[1]}-slim), or make the "
            "task a function importable inside the image (from the standard library, a package installed "
            "in the image, or a module on a mounted volume)."
        )


def _connect() -> docker.DockerClient:
    where = os.environ.get("DOCKER_HOST") or "the local socket (unix:///var/run/docker.sock)"
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise DockerEngineUnavailableError(
            f"no Docker engine answers at {where} ({exc}). Start the engine (Docker Desktop, "
            "`systemctl start docker`, or `dockerd &`) or point DOCKER_HOST at a running one; the engine "
            "must run on this machine, since the handler mounts graflow's code from here."
        ) from exc
    return client
