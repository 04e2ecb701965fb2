"""Explicit checkpoints (SPEC section 16), in the forms code written for the existing releases uses.

Each form appears as such: ``from graflow.core.checkpoint import CheckpointManager``,
``task_ctx.checkpoint(path=os.path.join(tmp, name), metadata={...})`` in a chain, at every
transition of a ``next_iteration`` state machine and periodically in a training loop,
``wf.execute("start", ret_context=True)`` and ``wf.execute(task.task_id, max_steps=50,
ret_context=True)``, ``context.last_checkpoint_path``, ``resume_from_checkpoint(path)`` with
``metadata.session_id`` / ``steps`` / ``user_metadata[...]``, ``list(context.completed_tasks)``,
``context.get_result(...)``, ``context.channel.get(...)``, ``WorkflowEngine().execute(restored)``
and ``list(wf.graph.nodes.keys())``.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from graflow import TaskExecutionContext, task, workflow
from graflow.core.checkpoint import CheckpointManager
from graflow.core.engine import WorkflowEngine
from graflow.core.workflow import WorkflowContext
from graflow.exceptions import CheckpointError


def _did(folder: str, name: object) -> None:
    """Note that a task ran. A file, not a list: a restored run executes copies of the task
    functions (they travel by value, as to another process), which see no list of the test's."""
    with open(os.path.join(folder, "ran.txt"), "a") as file:
        file.write(f"{name}\n")


def _ran(folder: str | Path) -> list[str]:
    """What ran since the last call."""
    path = Path(folder) / "ran.txt"
    names = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return names


# --- a checkpoint in a chain ---------------------------------------------------------------------


def test_a_checkpoint_asked_for_in_a_chain_restores_the_run_as_it_was_after_that_task(tmp_path: Path) -> None:
    tmp = str(tmp_path)
    with workflow("invoice") as wf:

        @task(inject_context=True)
        def load_orders(ctx: TaskExecutionContext) -> int:
            _did(tmp, "load_orders")
            ctx.get_channel().set("orders", [120, 80])
            return 2

        @task(inject_context=True)
        def price(ctx: TaskExecutionContext) -> int:
            _did(tmp, "price")
            total = sum(ctx.get_channel().get("orders"))
            ctx.get_channel().set("total", total)
            ctx.checkpoint(path=os.path.join(tmp, "priced"), metadata={"stage": "priced", "total": total})
            return total

        @task(inject_context=True)
        def send(ctx: TaskExecutionContext) -> str:
            _did(tmp, "send")
            return f"sent invoice of {ctx.get_channel().get('total')}"

        load_orders >> price >> send
        result, context = wf.execute("load_orders", ret_context=True)

    assert result == "sent invoice of 200"
    assert list(wf.graph.nodes.keys()) == ["load_orders", "price", "send"]
    path = context.last_checkpoint_path
    assert path == os.path.join(tmp, "priced.pkl")
    for suffix in (".pkl", ".meta.json", ".state.json"):
        assert os.path.exists(os.path.join(tmp, "priced" + suffix))

    restored, metadata = CheckpointManager.resume_from_checkpoint(path)

    assert metadata.session_id == context.session_id
    assert metadata.steps == 2
    assert metadata.user_metadata["stage"] == "priced"
    assert metadata.user_metadata["total"] == 200
    assert list(restored.completed_tasks) == ["load_orders", "price"]
    assert restored.get_result("price") == 200
    assert restored.channel.get("orders") == [120, 80]
    assert _ran(tmp) == ["load_orders", "price", "send"]
    assert WorkflowEngine().execute(restored) == "sent invoice of 200"
    assert _ran(tmp) == ["send"]  # only what was left


def test_the_files_beside_a_checkpoint_describe_it_for_people_and_tools(tmp_path: Path) -> None:
    with workflow("described") as wf:

        @task(inject_context=True)
        def only(ctx: TaskExecutionContext) -> str:
            ctx.get_channel().set("k", "v")
            ctx.checkpoint(path=str(tmp_path / "described"), metadata={"why": "docs"})
            return "done"

        _, context = wf.execute(only.task_id, max_steps=50, ret_context=True)

    meta = json.loads((tmp_path / "described.meta.json").read_text())
    state = json.loads((tmp_path / "described.state.json").read_text())
    assert (meta["session_id"], meta["workflow_name"], meta["steps"]) == (context.session_id, "described", 1)
    assert meta["user_metadata"] == {"why": "docs"}
    assert state["completed_tasks"] == ["only"] and state["channel_keys"] == ["k"]


# --- a checkpoint at every transition of a state machine -------------------------------------------


def _traffic_light(tmp: str) -> WorkflowContext:
    with workflow("traffic_light") as wf:

        @task(inject_context=True, max_cycles=10)
        def light(ctx: TaskExecutionContext) -> str:
            channel = ctx.get_channel()
            state = channel.get("state", "RED")
            _did(tmp, state)
            channel.append("seen", state)
            following = {"RED": "GREEN", "GREEN": "YELLOW", "YELLOW": "OFF"}[state]
            channel.set("state", following)
            ctx.checkpoint(
                path=os.path.join(tmp, f"{state.lower()}_to_{following.lower()}"),
                metadata={"from": state, "to": following},
            )
            if following != "OFF":
                ctx.next_iteration()
            return following

        @task(inject_context=True)
        def report(ctx: TaskExecutionContext) -> list[str]:
            return list(ctx.get_channel().get("seen"))

        light >> report
    return wf


def test_a_state_machine_resumed_from_its_first_checkpoint_continues_from_that_state(tmp_path: Path) -> None:
    wf = _traffic_light(str(tmp_path))
    result, context = wf.execute("light", ret_context=True)
    assert result == ["RED", "GREEN", "YELLOW"]
    assert context.last_checkpoint_path.endswith("yellow_to_off.pkl")

    # The run has finished; go back to the first transition.
    restored, metadata = CheckpointManager.resume_from_checkpoint(str(tmp_path / "red_to_green.pkl"))

    assert metadata.user_metadata == {"from": "RED", "to": "GREEN"}
    assert metadata.steps == 1
    assert restored.channel.get("state") == "GREEN"  # the channel as it was then
    assert restored.channel.get("seen") == ["RED"]
    assert restored.get_result("light") == "GREEN"
    assert _ran(tmp_path) == ["RED", "GREEN", "YELLOW"]
    assert WorkflowEngine().execute(restored) == ["RED", "GREEN", "YELLOW"]
    assert _ran(tmp_path) == ["GREEN", "YELLOW"]
    assert restored.cycle_counts["light"] == 3


def test_resuming_a_checkpoint_twice_starts_from_the_same_state_each_time(tmp_path: Path) -> None:
    _traffic_light(str(tmp_path)).execute("light")
    _ran(tmp_path)
    path = str(tmp_path / "green_to_yellow.pkl")

    for _ in range(2):
        restored, _ = CheckpointManager.resume_from_checkpoint(path)
        assert WorkflowEngine().execute(restored) == ["RED", "GREEN", "YELLOW"]
        assert _ran(tmp_path) == ["YELLOW"]


# --- periodic checkpoints in a training loop --------------------------------------------------------


def test_a_training_loop_checkpoints_periodically_and_any_checkpoint_finishes_the_same_training(
    tmp_path: Path,
) -> None:
    tmp = str(tmp_path)
    with workflow("fit") as wf:

        @task(inject_context=True)
        def init(ctx: TaskExecutionContext) -> float:
            ctx.get_channel().set("weight", 0.0)
            return 0.0

        @task(inject_context=True, max_cycles=20)
        def epoch(ctx: TaskExecutionContext) -> float:
            channel = ctx.get_channel()
            weight = channel.get("weight") + 0.5 * (3.0 - channel.get("weight"))  # halves the error
            channel.set("weight", weight)
            _did(tmp, ctx.cycle_count)
            if ctx.cycle_count % 3 == 0:
                ctx.checkpoint(
                    path=os.path.join(tmp, f"epoch_{ctx.cycle_count}"),
                    metadata={"epoch": ctx.cycle_count, "loss": abs(3.0 - weight)},
                )
            if ctx.cycle_count < 9:
                ctx.next_iteration()
            return weight

        init >> epoch
        final, context = wf.execute(init.task_id, max_steps=50, ret_context=True)

    assert sorted(p.name for p in tmp_path.glob("*.pkl")) == ["epoch_3.pkl", "epoch_6.pkl", "epoch_9.pkl"]
    assert context.last_checkpoint_path == str(tmp_path / "epoch_9.pkl")
    for name, epoch_number in (("epoch_3.pkl", 3), ("epoch_6.pkl", 6)):
        restored, metadata = CheckpointManager.resume_from_checkpoint(str(tmp_path / name))
        assert metadata.user_metadata["epoch"] == epoch_number
        assert metadata.steps == 1 + epoch_number  # init, then one step per epoch
        _ran(tmp)
        assert WorkflowEngine().execute(restored) == final
        assert _ran(tmp) == [str(n) for n in range(epoch_number + 1, 10)]


# --- the manager, called directly ----------------------------------------------------------------------


def test_create_checkpoint_defaults_to_the_state_directory_and_resume_takes_the_path_without_suffix(
    tmp_path: Path,
) -> None:
    with workflow("manual") as wf:

        @task
        def first() -> int:
            return 1

        @task
        def second() -> int:
            return 2

        first >> second
        _, context = wf.execute(ret_context=True, config={"state_dir": str(tmp_path)})

    path = CheckpointManager.create_checkpoint(context, metadata={"note": "after the run"})

    assert path == str(tmp_path / "checkpoints" / f"{context.session_id}-2.pkl")
    assert context.last_checkpoint_path == path
    restored, metadata = CheckpointManager.resume_from_checkpoint(path.removesuffix(".pkl"))
    assert (metadata.user_metadata, list(restored.completed_tasks)) == (
        {"note": "after the run"},
        ["first", "second"],
    )


def test_a_checkpoint_is_restored_in_another_process_without_the_workflow_source(tmp_path: Path) -> None:
    source = tmp_path / "scratch_flow.py"
    source.write_text(
        textwrap.dedent(
            f"""
            from graflow import task, workflow

            with workflow("scratch") as wf:

                @task(inject_context=True)
                def halve(ctx):
                    ctx.get_channel().set("n", 21)
                    ctx.checkpoint(path={str(tmp_path / "halved")!r})
                    return 21

                @task(inject_context=True)
                def double(ctx):
                    return ctx.get_channel().get("n") * 2

                halve >> double
                wf.execute()
            """
        )
    )
    made = subprocess.run([sys.executable, str(source)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    source.unlink()

    resumed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from graflow.core.checkpoint import CheckpointManager\n"
            "from graflow.core.engine import WorkflowEngine\n"
            "context, metadata = CheckpointManager.resume_from_checkpoint(sys.argv[1])\n"
            "print(WorkflowEngine().execute(context), metadata.workflow_name)\n",
            str(tmp_path / "halved.pkl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["42", "scratch"]


# --- files that are not checkpoints -----------------------------------------------------------------------


def test_a_garbage_file_is_a_checkpoint_error_saying_it_cannot_be_loaded(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"\x80\x05 this is not a pickle at all")

    with pytest.raises(CheckpointError, match=r"garbage.pkl cannot be loaded as a Graflow checkpoint"):
        CheckpointManager.resume_from_checkpoint(path)
    assert path.read_bytes() == b"\x80\x05 this is not a pickle at all"


def test_a_pickle_that_is_not_a_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))

    with pytest.raises(
        CheckpointError, match=r"model.pkl is not a Graflow checkpoint \(no checkpoint header\)"
    ):
        CheckpointManager.resume_from_checkpoint(path)


def test_a_checkpoint_of_another_layout_is_refused_naming_both_layouts(tmp_path: Path) -> None:
    path = tmp_path / "future.pkl"
    path.write_bytes(pickle.dumps({"format": "graflow-checkpoint", "version": 99}))

    with pytest.raises(CheckpointError, match=r"a checkpoint of layout 99; this Graflow reads layout 1"):
        CheckpointManager.resume_from_checkpoint(path)


def test_a_missing_checkpoint_is_a_checkpoint_error_saying_to_check_the_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"cannot read the checkpoint .*nowhere.*check the path"):
        CheckpointManager.resume_from_checkpoint(tmp_path / "nowhere.pkl")
