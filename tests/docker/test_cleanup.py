"""No container outlives its task: after success, failure, timeout and Ctrl-C the list is as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow_docker import ContainerTimeoutError, DockerTaskHandler


def container_ids(client) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.id for c in client.containers.list(all=True)}


@pytest.mark.parametrize("reuse", [False, True], ids=["one_shot", "warm"])
def test_no_container_left_after_success(image, run, docker_client, reuse: bool) -> None:
    before = container_ids(docker_client)
    with workflow("ok") as wf:

        @task(handler="docker")
        def fine() -> str:
            return "ok"

    with DockerTaskHandler(image=image, reuse=reuse) as handler:
        assert run(wf, docker=handler).get_result("fine") == "ok"
    assert container_ids(docker_client) == before


@pytest.mark.parametrize("reuse", [False, True], ids=["one_shot", "warm"])
def test_no_container_left_after_failure(image, run, docker_client, reuse: bool) -> None:
    before = container_ids(docker_client)
    with workflow("fail") as wf:

        @task(handler="docker")
        def broken() -> None:
            raise KeyError("missing")

    with DockerTaskHandler(image=image, reuse=reuse) as handler, pytest.raises(KeyError):
        run(wf, docker=handler)
    assert container_ids(docker_client) == before


@pytest.mark.parametrize("reuse", [False, True], ids=["one_shot", "warm"])
def test_no_container_left_after_timeout(image, run, docker_client, reuse: bool) -> None:
    before = container_ids(docker_client)
    with workflow("slow") as wf:

        @task(handler="docker")
        def slow() -> None:
            import time

            time.sleep(3600)

    handler = DockerTaskHandler(image=image, timeout=1, reuse=reuse)
    with pytest.raises(ContainerTimeoutError):
        run(wf, docker=handler)
    # Not even a warm container survives a timeout: it is not closed here on purpose.
    assert container_ids(docker_client) == before


INTERRUPTED_RUN = textwrap.dedent(
    """
    import sys
    from graflow.core.context import ExecutionContext
    from graflow.core.decorators import task
    from graflow.core.engine import WorkflowEngine
    from graflow.core.workflow import workflow
    from graflow_docker import DockerTaskHandler

    volumes = {sys.argv[3]: {"bind": "/started", "mode": "rw"}}
    handler = DockerTaskHandler(image=sys.argv[1], reuse=sys.argv[2] == "warm", volumes=volumes)
    with workflow("interrupted") as wf:
        @task(handler="docker")
        def warm_up():
            return 1

        @task(handler="docker")
        def sleeper():
            import time
            open("/started/sleeper", "w").close()
            time.sleep(3600)

        warm_up >> sleeper

    engine = WorkflowEngine()
    engine.register_handler("docker", handler)
    engine.execute(ExecutionContext.create(wf.graph))
    """
)


@pytest.mark.parametrize("mode", ["one_shot", "warm"])
def test_no_container_left_after_ctrl_c(image, docker_client, tmp_path: Path, mode: str) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED_RUN)
    started = tmp_path / "started"
    started.mkdir()
    before = container_ids(docker_client)
    process = subprocess.Popen(
        [sys.executable, str(script), image, mode, str(started)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        # Wait until the sleeper runs (in a warm container, after warm_up).
        while not (started / "sleeper").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the sleeper never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "KeyboardInterrupt" in stderr
    assert process.returncode != 0
    assert container_ids(docker_client) == before
