"""``reuse=True``: warm containers that run one task after another, and what they share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.plugins import hookimpl
from graflow.plugins.manager import get_plugin_manager
from graflow_docker import ContainerFailedError, ContainerMemoryError, DockerTaskHandler

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def warm(image) -> Iterator[DockerTaskHandler]:  # type: ignore[no-untyped-def]
    with DockerTaskHandler(image=image, reuse=True) as handler:
        yield handler


def hostname_workflow(name: str):  # type: ignore[no-untyped-def]
    with workflow(name) as wf:

        @task(handler="docker")
        def where() -> str:
            import socket

            return socket.gethostname()

    return wf


def test_tasks_share_one_warm_container(warm, run) -> None:
    wf = hostname_workflow("warm_reuse")
    first = run(wf, docker=warm).get_result("where")
    second = run(wf, docker=warm).get_result("where")
    assert first == second


def test_warm_tasks_bring_back_results_channel_writes_and_iterations(warm, run) -> None:
    with workflow("warm_outcome") as wf:

        @task(handler="docker", inject_context=True, max_cycles=5)
        def count(ctx, data: int = 0) -> int:
            ctx.get_channel().append("seen", ctx.cycle_count)
            if data < 2:
                ctx.next_iteration(data + 1)
            return data

        @task
        def report(seen: list[int]) -> list[int]:
            return seen

        count >> report

    context = run(wf, docker=warm)
    assert context.get_result("count") == 2
    assert context.get_result("report") == [1, 2, 3]


def test_each_output_line_is_attributed_to_the_task_that_printed_it(warm, run) -> None:
    with workflow("warm_output") as wf:

        @task(handler="docker")
        def first() -> None:
            import sys

            print("one")
            print("one, to stderr", file=sys.stderr)
            sys.stdout.write("one, unterminated")

        @task(handler="docker")
        def second() -> None:
            print("two")

        first >> second

    with capture_logs() as logs:
        run(wf, docker=warm)
    lines = sorted((e["task_id"], e["stream"], e["line"]) for e in logs if e["event"] == "task_output")
    assert lines == [
        ("first", "stderr", "one, to stderr"),
        ("first", "stdout", "one"),
        ("first", "stdout", "one, unterminated"),
        ("second", "stdout", "two"),
    ]


def test_a_failing_task_keeps_the_warm_container(warm, run) -> None:
    wf = hostname_workflow("warm_before")
    before = run(wf, docker=warm).get_result("where")
    with workflow("warm_failure") as failing:

        @task(handler="docker")
        def broken() -> None:
            raise RuntimeError("task bug")

    with pytest.raises(RuntimeError, match="task bug"):
        run(failing, docker=warm)
    assert run(wf, docker=warm).get_result("where") == before


def test_a_task_that_kills_its_process_gets_a_fresh_container_next_time(warm, run) -> None:
    wf = hostname_workflow("warm_again")
    before = run(wf, docker=warm).get_result("where")
    with workflow("warm_exit") as dying:

        @task(handler="docker")
        def hard_exit() -> None:
            import os

            os._exit(3)

    with pytest.raises(ContainerFailedError) as info:
        run(dying, docker=warm)
    assert info.value.exit_code == 3
    assert "exited with status 3 before reporting the task's outcome" in str(info.value)
    assert run(wf, docker=warm).get_result("where") != before


def test_warm_container_past_mem_limit_is_a_task_failure(image, run) -> None:
    with workflow("warm_hungry") as wf:

        @task(handler="docker")
        def hungry() -> int:
            return len(b"x" * (400 * 2**20))

    with DockerTaskHandler(image=image, reuse=True, mem_limit="64m") as handler:
        with pytest.raises(ContainerMemoryError, match="mem_limit='64m'"):
            run(wf, docker=handler)


def test_tasks_in_a_warm_container_share_its_process(warm, run) -> None:
    """The price of reuse, shown: state one task leaves is seen by the next."""
    with workflow("warm_state") as wf:

        @task(handler="docker")
        def leave() -> None:
            import os

            os.environ["LEFT_BY_A_PREVIOUS_TASK"] = "yes"

        @task(handler="docker")
        def look() -> str | None:
            import os

            return os.environ.get("LEFT_BY_A_PREVIOUS_TASK")

        leave >> look

    assert run(wf, docker=warm).get_result("look") == "yes"


def test_close_removes_idle_warm_containers(image, run, docker_client) -> None:
    before = {c.id for c in docker_client.containers.list(all=True)}
    handler = DockerTaskHandler(image=image, reuse=True)
    run(hostname_workflow("warm_close"), docker=handler)
    assert len({c.id for c in docker_client.containers.list(all=True)} - before) == 1
    handler.close()
    assert {c.id for c in docker_client.containers.list(all=True)} == before


class InjectTraceparent:
    @hookimpl
    def graflow_inject_carrier(self, carrier: dict[str, str]) -> None:
        carrier["traceparent"] = TRACEPARENT


@pytest.mark.parametrize("reuse", [False, True], ids=["one_shot", "warm"])
def test_traceparent_from_the_carrier_is_in_the_task_environment(image, run, reuse: bool) -> None:
    manager = get_plugin_manager()
    name = manager.register(InjectTraceparent(), name="test-traceparent")
    try:
        with workflow("trace") as wf:

            @task(handler="docker")
            def traced() -> str | None:
                import os

                return os.environ.get("TRACEPARENT")

        with DockerTaskHandler(image=image, reuse=reuse) as handler:
            assert run(wf, docker=handler).get_result("traced") == TRACEPARENT
    finally:
        manager.unregister(name)


def test_warm_containers_work_without_network(image, run) -> None:
    """The socket lives in a mounted directory, so network_mode="none" does not cut it."""
    with DockerTaskHandler(image=image, reuse=True, network_mode="none") as handler:
        wf = hostname_workflow("warm_offline")
        assert run(wf, docker=handler).get_result("where") == run(wf, docker=handler).get_result("where")


def test_parallel_tasks_get_a_warm_container_each(image, run, tmp_path) -> None:
    from graflow.coordination.coordinator import CoordinationBackend

    def meet(name: str) -> str:
        """Arrive, then wait (bounded) for the other member: both must run at the same time."""
        import os
        import socket
        import time

        open(f"/rendezvous/{name}", "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir("/rendezvous")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return socket.gethostname()

    with workflow("warm_parallel") as wf:
        left = TaskWrapper("left", lambda: meet("left"), handler_type="docker")
        right = TaskWrapper("right", lambda: meet("right"), handler_type="docker")
        (left | right).with_execution(backend=CoordinationBackend.THREADING)

    volumes = {str(tmp_path): {"bind": "/rendezvous", "mode": "rw"}}
    with DockerTaskHandler(image=image, reuse=True, volumes=volumes) as handler:
        context = run(wf, docker=handler)
        assert len(handler._pool) == 2
    assert context.get_result("left") != context.get_result("right")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["left", "right"]
