"""``sandbox=True``: nothing a container sends back is unpickled here, whatever the task does.

The attack is the one of issue 16: a task that, in its container, sends back a pickle
that runs a command on whatever machine loads it (here: creating a marker file in the
test's directory), through every way the host reads from a container: the outcome
file or socket, stdout, stderr and the exit status. With a sandbox the marker never
appears and the task fails with an error that says what was refused; without one, the
container is trusted like the task's own code, and the marker does appear.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.engine import WorkflowEngine
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.remote.envelope import RemoteTaskError
from graflow_docker import ContainerFailedError, DockerTaskHandler, SandboxOutcomeError

MODES = pytest.mark.parametrize("reuse", [False, True], ids=["one_shot", "warm"])


@pytest.fixture
def sandboxed(image: str, reuse: bool) -> Iterator[DockerTaskHandler]:
    with DockerTaskHandler(image=image, reuse=reuse, sandbox=True, network_mode="none") as handler:
        yield handler


def prepare(  # type: ignore[no-untyped-def]
    wf, handler: DockerTaskHandler, start: str | None = None, **channel: object
) -> tuple[WorkflowEngine, ExecutionContext]:
    """An engine with ``handler`` as "docker" and a fresh context whose channel holds ``channel``."""
    engine = WorkflowEngine()
    engine.register_handler("docker", handler)
    context = ExecutionContext.create(wf.graph, start_node=start)
    for key, value in channel.items():
        context.channel.set(key, value)
    return engine, context


def execute(  # type: ignore[no-untyped-def]
    wf, handler: DockerTaskHandler, start: str | None = None, **channel: object
) -> ExecutionContext:
    engine, context = prepare(wf, handler, start, **channel)
    engine.execute(context)
    return context


# --- what runs in the container --------------------------------------------------------


def escape_pickle(marker: str) -> bytes:
    """A pickle that, when loaded, runs ``touch marker`` on the machine that loads it."""
    import os
    import pickle

    class Escape:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    return pickle.dumps(Escape())


def answer_with(data: bytes) -> None:
    """Send ``data`` back as this task's outcome, past graflow's runtime, and end the container."""
    import gc
    import os
    import socket
    import struct

    if os.path.exists("/graflow-io/control"):  # a warm container: the loop's own control socket
        for candidate in gc.get_objects():
            if isinstance(candidate, socket.socket) and candidate.fileno() > 2:
                candidate.sendall(struct.pack("!Q", len(data)) + data)
    else:
        with open("/graflow-io/outcome", "wb") as outcome:
            outcome.write(data)
    os._exit(0)


# --- the escape -------------------------------------------------------------------------


@MODES
def test_a_pickle_sent_back_as_the_outcome_runs_nothing_here(sandboxed, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    with workflow("escape_outcome") as wf:
        TaskWrapper("evil", lambda: answer_with(escape_pickle(str(marker))), handler_type="docker")

    with pytest.raises(SandboxOutcomeError) as info:
        execute(wf, sandboxed)
    assert not marker.exists()
    assert "task 'evil'" in str(info.value)
    assert "sandbox mode refused what its container sent back: it is not JSON" in str(info.value)
    assert "Nothing of it was applied" in str(info.value)
    assert len(sandboxed._pool) == 0  # a warm container that lied is never reused


@MODES
@pytest.mark.parametrize("status", [0, 3])
def test_a_pickle_on_stdout_and_stderr_and_any_exit_status_runs_nothing_here(
    sandboxed, tmp_path: Path, status: int
) -> None:
    marker = tmp_path / "escaped"

    def evil() -> None:
        import os

        data = escape_pickle(str(marker))
        os.write(1, data + b"\n")
        os.write(2, data + b"\n")
        os._exit(status)

    with workflow("escape_streams") as wf:
        TaskWrapper("evil", evil, handler_type="docker")

    with pytest.raises(ContainerFailedError, match=f"exited with status {status} before reporting") as info:
        execute(wf, sandboxed)
    assert not marker.exists()
    assert info.value.exit_code == status


@MODES
def test_a_pickle_printed_by_a_task_that_ends_normally_is_only_output(sandboxed, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"

    def chatty() -> str:
        import os

        data = escape_pickle(str(marker))
        os.write(1, data)
        os.write(2, data)
        return "done"

    with workflow("escape_printed") as wf:
        TaskWrapper("chatty", chatty, handler_type="docker")

    assert execute(wf, sandboxed).get_result("chatty") == "done"
    assert not marker.exists()


@pytest.mark.parametrize("reuse", [False], ids=["one_shot"])
@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_a_link_or_fifo_planted_as_the_outcome_file_is_never_opened(
    sandboxed, tmp_path: Path, plant: str
) -> None:
    # A valid outcome on the host: following the link would bring back the "forged" result.
    forged = tmp_path / "forged.json"
    forged.write_text(
        json.dumps(
            {
                "task_id": "evil",
                "success": True,
                "result": "forged",
                "error": None,
                "channel_ops": [],
                "requests": None,
                "started_at": 0.0,
                "duration": 0.0,
                "worker": "x",
            }
        )
    )

    def evil() -> None:
        import os

        if plant == "symlink":
            os.symlink(str(forged), "/graflow-io/outcome")
        else:
            os.mkfifo("/graflow-io/outcome")  # opening it here would block
        os._exit(0)

    with workflow("escape_link") as wf:
        TaskWrapper("evil", evil, handler_type="docker")

    kind = "a symbolic link" if plant == "symlink" else "a FIFO"
    with pytest.raises(SandboxOutcomeError, match=f"its outcome file is {kind}, not a regular file"):
        execute(wf, sandboxed)


@MODES
def test_a_well_formed_outcome_with_one_bad_part_is_refused_whole(sandboxed) -> None:
    forged = {
        "task_id": "liar",
        "success": True,
        "result": "forged",
        "error": None,
        "channel_ops": [["set", ["written", True, None]], ["__setattr__", ["name", "x"]]],
        "requests": None,
        "started_at": 0.0,
        "duration": 0.0,
        "worker": "x",
    }
    with workflow("liar") as wf:
        TaskWrapper("liar", lambda: answer_with(json.dumps(forged).encode()), handler_type="docker")

    engine, context = prepare(wf, sandboxed)
    with pytest.raises(SandboxOutcomeError) as info:
        engine.execute(context)
    assert "channel_ops[1]: '__setattr__' is not a channel write" in info.value.reason
    assert not context.channel.exists("written")
    assert context.get_result("liar") is None


@MODES
def test_an_outcome_past_max_outcome_bytes_is_refused_before_it_is_read(image, reuse: bool) -> None:
    with workflow("too_big") as wf:
        TaskWrapper("big", lambda: "x" * 20_000, handler_type="docker")

    with DockerTaskHandler(image=image, reuse=reuse, sandbox=True, max_outcome_bytes=10_000) as handler:
        with pytest.raises(SandboxOutcomeError, match="more than max_outcome_bytes=10000") as info:
            execute(wf, handler)
    assert "raise max_outcome_bytes" in str(info.value)


# --- what a sandboxed task can still do -------------------------------------------------


@MODES
def test_results_channel_writes_and_requests_come_back_as_data(sandboxed) -> None:
    with workflow("sandboxed") as wf:

        @task(handler="docker", inject_context=True, max_cycles=5)
        def count(ctx, data: int = 0) -> dict[str, object]:
            channel = ctx.get_channel()
            channel.append("seen", ctx.cycle_count)
            channel.atomic_add("total", 10)
            channel.set("note", {"nested": [1, 2.5, None, True]})
            if data < 2:
                ctx.next_iteration(data + 1)
            else:
                ctx.next_task(report)  # a task of the graph, asked for by id
            return {"data": data}

        @task(inject_context=True)
        def report(ctx) -> list[int]:
            ctx.terminate_workflow("reported")
            return ctx.get_channel().get("seen")

    context = execute(wf, sandboxed, start="count", total=1)  # report runs only when asked for
    assert context.get_result("count") == {"data": 2}
    assert context.get_result("report") == [1, 2, 3]
    assert context.channel.get("total") == 31
    assert context.channel.get("note") == {"nested": [1, 2.5, None, True]}


@MODES
def test_an_exception_comes_back_as_remote_task_error_with_the_container_traceback(sandboxed) -> None:
    with workflow("sandboxed_failure") as wf:

        @task(handler="docker")
        def explode() -> None:
            def inner_helper() -> None:
                raise ValueError("bad input: 42")

            inner_helper()

    with pytest.raises(RemoteTaskError, match="ValueError: bad input: 42") as info:
        execute(wf, sandboxed)
    assert info.value.error_type == "ValueError"
    assert "inner_helper" in info.value.remote_traceback
    assert info.value.graflow_task_id == "explode"


@MODES
def test_a_result_that_is_not_json_data_is_a_clear_error_naming_the_task(sandboxed) -> None:
    with workflow("sandboxed_tuple") as wf:

        @task(handler="docker")
        def pair() -> tuple[int, int]:
            return (1, 2)

    with pytest.raises(RemoteTaskError) as info:
        execute(wf, sandboxed)
    assert info.value.error_type == "TypeError"
    assert "task 'pair' returned or requested something that cannot leave a sandbox" in str(info.value)
    assert "its result is of type tuple" in str(info.value)


@MODES
def test_next_task_of_a_new_task_is_refused_from_a_sandbox(sandboxed) -> None:
    with workflow("sandboxed_dynamic") as wf:

        @task(handler="docker", inject_context=True)
        def plan(ctx) -> str:
            ctx.next_task(TaskWrapper("follow_up", lambda: "new code"))
            return "planned"

    engine, context = prepare(wf, sandboxed)
    with pytest.raises(SandboxOutcomeError) as info:
        engine.execute(context)
    assert "asks for 'follow_up', which is not a task of this workflow" in str(info.value)
    assert "a new task is code and would have to be unpickled here" in str(info.value)
    assert context.get_result("plan") is None


# --- without a sandbox ------------------------------------------------------------------


@MODES
def test_without_sandbox_the_container_is_trusted_like_the_task_code(
    image, reuse: bool, tmp_path: Path
) -> None:
    """The default, shown: what the container sends back is unpickled here, code and all."""
    marker = tmp_path / "escaped"
    with workflow("trusted") as wf:
        TaskWrapper("evil", lambda: answer_with(escape_pickle(str(marker))), handler_type="docker")

    with DockerTaskHandler(image=image, reuse=reuse) as handler:
        with pytest.raises(ContainerFailedError, match="not a task's outcome"):
            execute(wf, handler)
    assert marker.exists()
