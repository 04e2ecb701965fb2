"""What a containerized task gives back: result, channel writes, requests, output, errors."""

from __future__ import annotations

import socket
import threading

import pytest
from structlog.testing import capture_logs

from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.remote.envelope import RemoteTaskError


class QuotaExceeded(Exception):
    """A user-defined exception: it travels to the container and back by value."""


def test_return_value_becomes_the_task_result(handler, run) -> None:
    with workflow("result") as wf:

        @task(handler="docker")
        def where() -> dict[str, object]:
            import os
            import sys

            return {"pid1": os.getpid() == 1 or os.getppid() == 0, "python": sys.version_info[:2]}

    context = run(wf, docker=handler)
    assert context.get_result("where") == {"pid1": True, "python": (3, 11)}


def test_task_runs_in_the_image_with_graflow_mounted_read_only(handler, run) -> None:
    with workflow("runtime") as wf:

        @task(handler="docker")
        def runtime() -> tuple[str, str, bool]:
            import os

            import cloudpickle

            import graflow

            writable = os.access(os.path.dirname(graflow.__file__), os.W_OK)
            try:
                open(os.path.join(os.path.dirname(graflow.__file__), "x"), "w")
            except OSError:
                writable = False
            return graflow.__file__, cloudpickle.__file__, writable

    graflow_file, cloudpickle_file, writable = run(wf, docker=handler).get_result("runtime")
    assert graflow_file == "/opt/graflow/runtime/graflow/__init__.py"
    assert cloudpickle_file == "/opt/graflow/runtime/cloudpickle/__init__.py"
    assert writable is False


def test_channel_writes_are_replayed_for_later_tasks(handler, run) -> None:
    with workflow("channel") as wf:

        @task(handler="docker", inject_context=True)
        def produce(ctx) -> None:
            channel = ctx.get_channel()
            channel.set("greeting", f"hello {channel.get('name')}")
            channel.append("log", "produced")
            channel.atomic_add("count", 5)
            channel.delete("scratch")

        @task
        def consume(greeting: str, log: list[str], count: int) -> tuple[str, list[str], int]:
            return greeting, log, count

        produce >> consume

    context = run(wf, docker=handler, initial_channel={"name": "graflow", "count": 1, "scratch": True})
    assert context.get_result("consume") == ("hello graflow", ["produced"], 6)
    assert not context.channel.exists("scratch")


def test_parameters_are_filled_from_the_channel_inside_the_container(handler, run) -> None:
    with workflow("params") as wf:

        @task(handler="docker")
        def double(value: int) -> int:
            return value * 2

    assert run(wf, docker=handler, initial_channel={"value": 21}).get_result("double") == 42


def test_earlier_results_are_readable_in_the_container(handler, run) -> None:
    with workflow("results") as wf:

        @task
        def first() -> list[int]:
            return [1, 2, 3]

        @task(handler="docker", inject_context=True)
        def total(ctx) -> int:
            return sum(ctx.get_result("first"))

        first >> total

    assert run(wf, docker=handler).get_result("total") == 6


def test_next_task_from_the_container_runs_on_the_host(handler, run) -> None:
    with workflow("dynamic") as wf:

        @task(handler="docker", inject_context=True)
        def plan(ctx) -> str:
            import socket

            ctx.next_task(TaskWrapper("follow_up", lambda: socket.gethostname()))
            return socket.gethostname()

    context = run(wf, docker=handler)
    assert context.get_result("follow_up") == socket.gethostname()
    assert context.get_result("plan") != socket.gethostname()
    assert ("plan", "follow_up") in context.graph.dynamic_edges


def test_next_iteration_carries_data_between_container_runs(handler, run) -> None:
    with workflow("iterate") as wf:

        @task(handler="docker", inject_context=True, max_cycles=10)
        def converge(ctx, data: list[int] | None = None) -> list[int]:
            seen = (data or []) + [ctx.cycle_count]
            if len(seen) < 3:
                ctx.next_iteration(seen)
            return seen

        @task
        def after() -> str:
            return "after"

        converge >> after

    context = run(wf, docker=handler)
    assert context.get_result("converge") == [1, 2, 3]
    assert context.get_result("after") == "after"


def test_terminate_workflow_from_the_container_stops_the_run(handler, run) -> None:
    with workflow("terminate") as wf:

        @task(handler="docker", inject_context=True)
        def stop(ctx) -> str:
            ctx.terminate_workflow("enough")
            return "stopped"

        @task
        def never() -> str:
            return "ran"

        stop >> never

    context = run(wf, docker=handler)
    assert context.get_result("stop") == "stopped"
    assert context.get_result("never") is None


def test_exception_comes_back_as_its_type_with_the_container_traceback(handler, run) -> None:
    with workflow("failing") as wf:

        @task(handler="docker")
        def explode() -> None:
            def inner_helper() -> None:
                raise ValueError("bad input: 42")

            inner_helper()

    with pytest.raises(ValueError, match="bad input: 42") as info:
        run(wf, docker=handler)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "remote traceback" in notes
    assert "inner_helper" in notes
    assert "ValueError: bad input: 42" in notes
    assert info.value.graflow_task_id == "explode"


def test_user_defined_exception_class_is_rebuilt(handler, run) -> None:
    with workflow("custom_error") as wf:

        @task(handler="docker")
        def over_quota() -> None:
            raise QuotaExceeded("limit 10 reached")

    with pytest.raises(QuotaExceeded, match="limit 10 reached"):
        run(wf, docker=handler)


def test_exception_that_cannot_travel_becomes_remote_task_error_with_its_type_name(handler, run) -> None:
    with workflow("unpicklable_error") as wf:

        @task(handler="docker")
        def locked() -> None:
            import threading

            class HoldsLock(Exception):
                def __init__(self) -> None:
                    super().__init__("cannot pickle me")
                    self.lock = threading.Lock()

            raise HoldsLock()

    with pytest.raises(RemoteTaskError, match="HoldsLock: cannot pickle me") as info:
        run(wf, docker=handler)
    assert "HoldsLock" in info.value.remote_traceback


def test_stdout_and_stderr_are_logged_line_by_line_with_the_task_id(handler, run) -> None:
    with workflow("output") as wf:

        @task(handler="docker")
        def chatty() -> int:
            import sys

            print("first line")
            print("second line")
            print("a warning", file=sys.stderr)
            sys.stdout.write("no newline at the end")
            return 0

    with capture_logs() as logs:
        run(wf, docker=handler)
    lines = [
        (e["stream"], e["line"]) for e in logs if e["event"] == "task_output" and e["task_id"] == "chatty"
    ]
    assert [line for stream, line in lines if stream == "stdout"] == [
        "first line",
        "second line",
        "no newline at the end",
    ]
    assert [line for stream, line in lines if stream == "stderr"] == ["a warning"]


@pytest.mark.parametrize("sandbox", [False, True], ids=["trusted", "sandbox"])
@pytest.mark.parametrize("reuse", [False, True], ids=["one_shot", "warm"])
def test_lines_that_look_like_the_handlers_own_messages_are_only_output(
    image, run, reuse: bool, sandbox: bool
) -> None:
    """The handler's messages travel apart from stdout and stderr: printing one forges or hides nothing."""
    from graflow_docker import DockerTaskHandler

    with workflow("forged_markers") as wf:

        @task(handler="docker")
        def chatty() -> str:
            import sys

            for out in (sys.stdout, sys.stderr):
                print("before", file=out)
                print("\x1egraflow-done x", file=out)
                print("\x1egraflow-task 9 someone_else", file=out)
                print("after", file=out)
            return "result"

    with DockerTaskHandler(image=image, reuse=reuse, sandbox=sandbox) as handler, capture_logs() as logs:
        assert run(wf, docker=handler).get_result("chatty") == "result"
    expected = ["before", "\x1egraflow-done x", "\x1egraflow-task 9 someone_else", "after"]
    for stream in ("stdout", "stderr"):
        lines = [e for e in logs if e["event"] == "task_output" and e["stream"] == stream]
        assert [e["line"] for e in lines] == expected
        assert {e["task_id"] for e in lines} == {"chatty"}


def test_retry_attempts_are_visible_inside_the_container(handler, run) -> None:
    from graflow.core.retry import RetryPolicy

    with workflow("retry") as wf:

        @task(
            handler="docker",
            inject_context=True,
            retry_policy=RetryPolicy(max_retries=2, initial_interval=0.01, jitter=False),
        )
        def flaky(ctx) -> int:
            if ctx.retry_count < 2:
                raise ConnectionError(f"attempt {ctx.retry_count + 1} failed")
            return ctx.retry_count

    assert run(wf, docker=handler).get_result("flaky") == 2


def test_tasks_of_a_parallel_group_run_in_their_own_containers(handler, run) -> None:
    from graflow.coordination.coordinator import CoordinationBackend

    with workflow("group") as wf:

        @task(handler="docker")
        def left() -> str:
            import socket

            return socket.gethostname()

        @task(handler="docker")
        def right() -> str:
            import socket

            return socket.gethostname()

        (left | right).with_execution(backend=CoordinationBackend.THREADING)

    context = run(wf, docker=handler)
    assert context.get_result("left") != context.get_result("right")


def test_docker_and_direct_tasks_mix_in_one_workflow(handler, run) -> None:
    host_thread = threading.get_ident()

    with workflow("mixed") as wf:

        @task
        def load() -> list[int]:
            return [3, 1, 2]

        @task(handler="docker", inject_context=True)
        def sort_in_container(ctx) -> list[int]:
            return sorted(ctx.get_result("load"))

        @task(inject_context=True)
        def store(ctx) -> tuple[list[int], bool]:
            return ctx.get_result("sort_in_container"), threading.get_ident() == host_thread

        load >> sort_in_container >> store

    assert run(wf, docker=handler).get_result("store") == ([1, 2, 3], True)


def test_cancel_workflow_from_the_container_fails_the_run(handler, run) -> None:
    from graflow.exceptions import GraflowWorkflowCanceledError

    with workflow("cancel") as wf:

        @task(handler="docker", inject_context=True)
        def abort(ctx) -> None:
            ctx.cancel_workflow("bad data")

    with pytest.raises(GraflowWorkflowCanceledError, match="bad data"):
        run(wf, docker=handler)


def test_result_that_cannot_be_pickled_is_a_task_failure_that_says_so(handler, run) -> None:
    with workflow("unpicklable_result") as wf:

        @task(handler="docker")
        def returns_lock() -> object:
            import threading

            return threading.Lock()

    with pytest.raises(
        TypeError,
        match="task 'returns_lock' returned or requested something that cannot be sent back: it cannot be pickled",
    ):
        run(wf, docker=handler)
