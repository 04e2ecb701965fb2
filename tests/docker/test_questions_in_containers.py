"""A task in a container cannot ask a person (SPEC 17): no store is reachable there, and it says so.

Containers run without network and get copies of the state they read, so a question
asked there could never be answered; it fails at once, saying where to ask instead,
rather than waiting out its timeout.
"""

from __future__ import annotations

import time

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.workflow import workflow
from graflow_docker import DockerTaskHandler


@pytest.mark.parametrize("sandbox", [False, True])
def test_a_question_asked_in_a_container_fails_at_once_saying_where_to_ask(image, run, sandbox: bool) -> None:  # type: ignore[no-untyped-def]
    with workflow("ask_in_docker") as wf:

        @task(handler="docker", inject_context=True)
        def approve(ctx: TaskExecutionContext) -> bool:
            return bool(ctx.request_approval("Deploy?", timeout=120.0).approved)

        with DockerTaskHandler(image=image, sandbox=sandbox) as handler:
            started = time.perf_counter()
            with pytest.raises(Exception, match="a container reaches no store") as info:
                run(wf, docker=handler)
    assert time.perf_counter() - started < 60  # not the question's 120 s
    assert "ask from a task that runs in the driver" in str(info.value)
