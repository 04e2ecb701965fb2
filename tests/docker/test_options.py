"""The options of SPEC section 7 reach the container, seen from inside it."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow_docker import ContainerFailedError, ContainerTimeoutError, DockerTaskHandler


def cgroup_limits() -> dict[str, int | None]:
    """CPU and memory limits of the calling process's cgroup (v1 or v2), ``None`` for unlimited."""
    import os

    def number(text: str) -> int | None:
        text = text.strip()
        return None if text in ("max", "-1") or int(text) >= 1 << 60 else int(text)

    def read(path: str) -> str:
        with open(path) as f:
            return f.read()

    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        quota, period = read("/sys/fs/cgroup/cpu.max").split()
        memory = number(read("/sys/fs/cgroup/memory.max"))
        swap = number(read("/sys/fs/cgroup/memory.swap.max"))
        return {
            "cpu_quota": number(quota),
            "cpu_period": int(period),
            "memory": memory,
            "memory_and_swap": None if memory is None or swap is None else memory + swap,
        }
    return {
        "cpu_quota": number(read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")),
        "cpu_period": int(read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")),
        "memory": number(read("/sys/fs/cgroup/memory/memory.limit_in_bytes")),
        "memory_and_swap": number(read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")),
    }


def test_environment_is_set_in_the_container(image, run) -> None:
    with workflow("env") as wf:

        @task(handler="docker")
        def read_env() -> tuple[str | None, str | None]:
            import os

            return os.environ.get("API_KEY"), os.environ.get("DEBUG")

    handler = DockerTaskHandler(image=image, environment={"API_KEY": "secret", "DEBUG": 1})
    assert run(wf, docker=handler).get_result("read_env") == ("secret", "1")


def test_read_only_and_read_write_volumes(image, run, tmp_path: Path) -> None:
    data = tmp_path / "data"
    output = tmp_path / "output"
    data.mkdir()
    output.mkdir()
    (data / "input.txt").write_text("12 30")

    with workflow("volumes") as wf:

        @task(handler="docker")
        def add() -> str:
            numbers = open("/container/data/input.txt").read().split()
            try:
                open("/container/data/forbidden.txt", "w")
                read_only = "writable"
            except OSError as exc:
                read_only = type(exc).__name__
            with open("/output/sum.txt", "w") as f:
                f.write(str(sum(map(int, numbers))))
            return read_only

    handler = DockerTaskHandler(
        image=image,
        volumes={
            str(data): {"bind": "/container/data", "mode": "ro"},
            str(output): {"bind": "/output", "mode": "rw"},
        },
    )
    assert run(wf, docker=handler).get_result("add") == "OSError"
    assert (output / "sum.txt").read_text() == "42"
    assert not (data / "forbidden.txt").exists()


def test_volumes_in_list_form(image, run, tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("from the host")

    with workflow("volume_list") as wf:
        TaskWrapper("read", lambda: open("/mnt/host/note.txt").read(), handler_type="docker")

    handler = DockerTaskHandler(image=image, volumes=[f"{tmp_path}:/mnt/host:ro"])
    assert run(wf, docker=handler).get_result("read") == "from the host"


def test_cpu_and_memory_limits_apply_to_the_container(image, run) -> None:
    with workflow("limits") as wf:
        TaskWrapper("limits", cgroup_limits, handler_type="docker")

    handler = DockerTaskHandler(image=image, mem_limit="128m", cpu_period=100_000, cpu_quota=50_000)
    limits = run(wf, docker=handler).get_result("limits")
    assert limits == {
        "cpu_quota": 50_000,
        "cpu_period": 100_000,
        "memory": 128 * 2**20,
        # no swap on top of mem_limit, so the limit holds
        "memory_and_swap": 128 * 2**20,
    }


def test_without_limits_the_container_is_unlimited(handler, run) -> None:
    with workflow("no_limits") as wf:
        TaskWrapper("limits", cgroup_limits, handler_type="docker")

    limits = run(wf, docker=handler).get_result("limits")
    assert limits["cpu_quota"] is None
    assert limits["memory"] is None


def test_device_requests_reach_the_engine(image, run, docker_client, containers) -> None:
    from docker.types import DeviceRequest

    with workflow("gpu") as wf:
        TaskWrapper("gpu", platform.machine, handler_type="gpu")

    handler = DockerTaskHandler(image=image, device_requests=[DeviceRequest(count=1, capabilities=[["gpu"]])])
    if "nvidia" in docker_client.info().get("Runtimes", {}):  # a GPU host
        assert run(wf, gpu=handler).get_result("gpu") == platform.machine()
        return
    with pytest.raises(ContainerFailedError) as info:
        run(wf, gpu=handler)
    message = str(info.value)
    assert "could not select device driver" in message
    assert "device_requests need a GPU" in message
    assert "task 'gpu'" in message


def test_auto_remove_false_keeps_the_stopped_container(image, run, docker_client) -> None:
    with workflow("keep") as wf:
        TaskWrapper("kept", platform.python_version, handler_type="docker")

    before = {c.id for c in docker_client.containers.list(all=True)}
    run(wf, docker=DockerTaskHandler(image=image, auto_remove=False))
    kept = [c for c in docker_client.containers.list(all=True) if c.id not in before]
    try:
        assert [c.labels.get("graflow.task_id") for c in kept] == ["kept"]
        assert kept[0].status == "exited"
    finally:
        for container in kept:
            container.remove(force=True)


def test_timeout_stops_the_task_and_removes_its_container(image, run, containers) -> None:
    with workflow("timeout") as wf:

        @task(handler="docker")
        def forever() -> None:
            import time

            time.sleep(3600)

    handler = DockerTaskHandler(image=image, timeout=1.5)
    with pytest.raises(ContainerTimeoutError) as info:
        run(wf, docker=handler)
    assert "task 'forever'" in str(info.value)
    assert "timeout=1.5s" in str(info.value)
    assert "stopped and removed" in str(info.value)
    assert info.value.graflow_task_id == "forever"


def test_several_images_in_one_workflow(image, other_image, run) -> None:
    """The brief's multi-version pattern: one handler per image, chosen per task."""
    with workflow("multi_version") as wf:
        on_311 = TaskWrapper("on_311", platform.python_version, handler_type="py311")
        on_313 = TaskWrapper("on_313", platform.python_version, handler_type="py313")
        on_311 >> on_313

    context = run(
        wf,
        py311=DockerTaskHandler(image=image),
        py313=DockerTaskHandler(image=other_image),
    )
    assert context.get_result("on_311").startswith("3.11.")
    assert context.get_result("on_313").startswith("3.13.")
