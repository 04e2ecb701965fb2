"""A training loop that checkpoints every few epochs; any checkpoint finishes the same training.

python examples/checkpointed_training.py
python -m graflow run examples/checkpointed_training.py --set checkpoint_dir=/tmp/ckpt

``fit`` is one task run again with ``next_iteration()`` once per epoch; the model lives in
the channel. Every ``EVERY`` epochs it asks for a checkpoint, written once the epoch's step
has completed (``NAME.pkl``, with ``NAME.meta.json`` and ``NAME.state.json`` beside it).
Restoring one gives the run as it was then: completed tasks, results, the channel, the
epoch counter, so ``WorkflowEngine().execute(context)`` trains the remaining epochs only.
"""

from __future__ import annotations

import os
import tempfile

from graflow import TaskExecutionContext, task, workflow
from graflow.core.checkpoint import CheckpointManager
from graflow.core.engine import WorkflowEngine

EPOCHS = 8
EVERY = 3
#: The line the model learns: y = 2x - 1.
SAMPLES = [(x, 2.0 * x - 1.0) for x in (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)]
LEARNING_RATE = 0.05

with workflow("training") as training:

    @task(inject_context=True)
    def prepare(ctx: TaskExecutionContext) -> int:
        ctx.get_channel().set("model", {"w": 0.0, "b": 0.0})
        return len(SAMPLES)

    @task(inject_context=True, max_cycles=EPOCHS)
    def fit(ctx: TaskExecutionContext) -> dict[str, float]:
        channel = ctx.get_channel()
        model = channel.get("model")
        epoch = ctx.cycle_count
        for x, y in SAMPLES:  # one pass of stochastic gradient descent
            error = model["w"] * x + model["b"] - y
            model = {"w": model["w"] - LEARNING_RATE * error * x, "b": model["b"] - LEARNING_RATE * error}
        loss = sum((model["w"] * x + model["b"] - y) ** 2 for x, y in SAMPLES) / len(SAMPLES)
        channel.set("model", model)
        channel.append("losses", round(loss, 6))
        if epoch % EVERY == 0:
            folder = channel.get("checkpoint_dir") or os.path.join(tempfile.gettempdir(), "graflow-training")
            ctx.checkpoint(
                path=os.path.join(folder, f"epoch_{epoch}"), metadata={"epoch": epoch, "loss": loss}
            )
        if epoch < EPOCHS:
            ctx.next_iteration()
        return {"epoch": epoch, "loss": loss}

    @task(inject_context=True)
    def evaluate(ctx: TaskExecutionContext) -> dict[str, float]:
        model = ctx.get_channel().get("model")
        return {
            "w": round(model["w"], 3),
            "b": round(model["b"], 3),
            "epochs": ctx.get_result("fit")["epoch"],
        }

    prepare >> fit >> evaluate


def train_then_restore(checkpoint_dir: str) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """Train once, then finish the training again from every checkpoint it wrote.

    Returns the result of the full run and, per checkpointed epoch, the result of the run
    restored from that epoch's checkpoint: all the same.
    """
    result, context = training.execute(
        "prepare", max_steps=50, ret_context=True, initial_channel={"checkpoint_dir": checkpoint_dir}
    )
    print(
        f"trained {list(training.graph.nodes.keys())}: {result}; last checkpoint {context.last_checkpoint_path}"
    )
    finished = {}
    for epoch in range(EVERY, EPOCHS + 1, EVERY):
        restored, metadata = CheckpointManager.resume_from_checkpoint(
            os.path.join(checkpoint_dir, f"epoch_{epoch}.pkl")
        )
        print(
            f"  epoch {metadata.user_metadata['epoch']} (step {metadata.steps}, loss "
            f"{metadata.user_metadata['loss']:.4f}): completed {list(restored.completed_tasks)}, "
            f"{len(restored.channel.get('losses'))} losses so far"
        )
        finished[epoch] = WorkflowEngine().execute(restored)
    return result, finished


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        full, restored_runs = train_then_restore(folder)
        assert all(result == full for result in restored_runs.values())
        print(f"every checkpoint finished the same training: {full}")
