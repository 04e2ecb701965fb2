"""The product brief's Docker chapter, snippet by snippet, with image names that exist here.

``python:3.11-slim`` / ``python:3.11`` become the bare ``graflow-test-python:3.11`` and
``python:3.12`` becomes ``graflow-test-python:3.13`` (another minor version); host
paths become temporary directories. The TensorFlow and Python 2.7 snippets are left
out: no such images can be built here, and ``print "..."`` is not Python 3 syntax.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest

from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.workflow import workflow


def execute(engine: WorkflowEngine, wf, **channel: object) -> ExecutionContext:  # type: ignore[no-untyped-def]
    context = ExecutionContext.create(wf.graph)
    for key, value in channel.items():
        context.channel.set(key, value)
    engine.execute(context)
    return context


def test_basic_usage(image) -> None:
    from graflow.core.engine import WorkflowEngine
    from graflow.core.handlers.docker import DockerTaskHandler

    # Dockerハンドラーを登録
    engine = WorkflowEngine()
    engine.register_handler("docker", DockerTaskHandler(image=image))

    with workflow("basic") as wf:
        # タスクで使用
        @task(handler="docker")
        def isolated_task():
            """完全に隔離されたDockerコンテナで実行"""
            import sys

            return sys.version

    assert execute(engine, wf).get_result("isolated_task").startswith("3.11.2 ")


def test_environment_variables(image) -> None:
    from graflow.core.handlers.docker import DockerTaskHandler

    engine = WorkflowEngine()
    engine.register_handler(
        "docker", DockerTaskHandler(image=image, environment={"API_KEY": "secret", "DEBUG": "1"})
    )
    with workflow("env") as wf:

        @task(handler="docker")
        def configured():
            import os

            return os.environ["API_KEY"], os.environ["DEBUG"]

    assert execute(engine, wf).get_result("configured") == ("secret", "1")


def test_volume_mounts(image, tmp_path: Path) -> None:
    from graflow.core.handlers.docker import DockerTaskHandler

    host_data, host_output = tmp_path / "data", tmp_path / "output"
    host_data.mkdir()
    host_output.mkdir()
    (host_data / "rows.csv").write_text("a,b\n1,2\n")
    handler = DockerTaskHandler(
        image=image,
        volumes={
            str(host_data): {"bind": "/container/data", "mode": "ro"},
            str(host_output): {"bind": "/output", "mode": "rw"},
        },
    )
    engine = WorkflowEngine()
    engine.register_handler("docker", handler)
    with workflow("volumes") as wf:

        @task(handler="docker")
        def copy_rows():
            rows = open("/container/data/rows.csv").read().splitlines()
            open("/output/count.txt", "w").write(str(len(rows) - 1))
            return len(rows)

    assert execute(engine, wf).get_result("copy_rows") == 2
    assert (host_output / "count.txt").read_text() == "1"


def test_gpu_support(image, docker_client) -> None:
    from docker.types import DeviceRequest

    from graflow.core.handlers.docker import DockerTaskHandler
    from graflow_docker import ContainerFailedError

    handler = DockerTaskHandler(image=image, device_requests=[DeviceRequest(count=1, capabilities=[["gpu"]])])
    engine = WorkflowEngine()
    engine.register_handler("docker", handler)
    with workflow("gpu") as wf:

        @task(handler="docker")
        def train():
            return "trained"

    if "nvidia" in docker_client.info().get("Runtimes", {}):
        assert execute(engine, wf).get_result("train") == "trained"
    else:
        with pytest.raises(ContainerFailedError, match="device_requests need a GPU"):
            execute(engine, wf)


def test_resource_limits_through_the_docker_api(image, docker_client) -> None:
    """The brief shows the raw Docker SDK call; it runs as written (and leaves its container, as written)."""
    client = docker_client
    before = {c.id for c in client.containers.list(all=True)}
    try:
        # CPUとメモリの制限
        container = client.containers.run(
            image=image,
            mem_limit="512m",  # 512MB RAM
            cpu_period=100000,
            cpu_quota=50000,  # 50% CPU
        )
        assert container == b""  # the image's default command, python3 with no input, printed nothing
        created = [c for c in client.containers.list(all=True) if c.id not in before]
        assert [c.attrs["HostConfig"]["Memory"] for c in created] == [512 * 2**20]
        assert created[0].attrs["HostConfig"]["CpuQuota"] == 50000
    finally:
        for leftover in client.containers.list(all=True):
            if leftover.id not in before:
                leftover.remove(force=True)


def test_resource_limits_on_the_handler(image) -> None:
    from graflow.core.handlers.docker import DockerTaskHandler

    engine = WorkflowEngine()
    engine.register_handler(
        "docker", DockerTaskHandler(image=image, mem_limit="512m", cpu_period=100000, cpu_quota=50000)
    )
    with workflow("limits") as wf:

        @task(handler="docker")
        def limited():
            return open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read().strip()

    assert execute(engine, wf).get_result("limited") == "50000"


@pytest.mark.parametrize("network_mode", ["bridge", "host", "none"])
def test_network_settings(image, network_mode: str) -> None:
    from graflow.core.handlers.docker import DockerTaskHandler

    engine = WorkflowEngine()
    engine.register_handler("docker", DockerTaskHandler(image=image, network_mode=network_mode))
    with workflow("network") as wf:

        @task(handler="docker")
        def interfaces():
            import os

            return sorted(os.listdir("/sys/class/net"))

    found = execute(engine, wf).get_result("interfaces")
    if network_mode == "none":
        assert found == ["lo"]
    else:
        assert "lo" in found and len(found) > 1


def test_multi_version_testing(image, other_image) -> None:
    """One handler per image. Code defined in this file travels as bytecode, so the
    3.13 image refuses it with a clear error (a by-reference function runs there:
    see test_options.test_several_images_in_one_workflow)."""
    from graflow.core.handlers.docker import DockerTaskHandler
    from graflow_docker import PythonVersionMismatchError

    # 複数のPythonバージョンに対してテスト
    engine = WorkflowEngine()
    engine.register_handler("py311", DockerTaskHandler(image=image))
    engine.register_handler("py312", DockerTaskHandler(image=other_image))

    with workflow("py311") as wf311:

        @task(handler="py311")
        def test_on_py311(): ...

    with workflow("py312") as wf312:

        @task(handler="py312")
        def test_on_py312(): ...

    assert execute(engine, wf311).get_result("test_on_py311") is None
    with pytest.raises(
        PythonVersionMismatchError, match="runs Python 3.13 but this process runs Python 3.11"
    ):
        execute(engine, wf312)


def test_security_sandbox_for_untrusted_code(image) -> None:
    from graflow.core.handlers.docker import DockerTaskHandler

    engine = WorkflowEngine()
    engine.register_handler("docker", DockerTaskHandler(image=image, network_mode="none"))
    with workflow("sandbox") as wf:

        @task(handler="docker")
        def execute_user_code(user_code: str):
            """ユーザー送信コードを安全に実行"""
            # 隔離実行 - ホストに害を与えない
            exec(user_code)
            return "Executed safely"

    proof = Path(tempfile.gettempdir()) / f"graflow-sandbox-{uuid.uuid4().hex}"
    code = f"open({str(proof)!r}, 'w').write('written by user code')"
    assert execute(engine, wf, user_code=code).get_result("execute_user_code") == "Executed safely"
    assert not proof.exists()  # written in the container's filesystem, not the host's


def test_ci_cd_testing_in_a_clean_environment(image) -> None:
    """The bare image has no pytest: the task fails with the container's own error."""
    from graflow.core.handlers.docker import DockerTaskHandler

    engine = WorkflowEngine()
    engine.register_handler("docker", DockerTaskHandler(image=image))
    with workflow("ci") as wf:
        # クリーンな環境でテスト
        @task(handler="docker")
        def run_integration_tests():
            """隔離されたコンテナでテスト実行"""
            import subprocess

            return subprocess.run(["pytest", "tests/"], capture_output=True)

    with pytest.raises(FileNotFoundError, match="pytest"):
        execute(engine, wf)
