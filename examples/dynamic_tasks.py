"""Graphs that change while they run: ``next_task`` adds work, ``next_iteration`` loops.

python -m graflow run examples/dynamic_tasks.py:adaptive
python -m graflow run examples/dynamic_tasks.py:tuning
"""

from graflow import TaskExecutionContext, TaskWrapper, task, workflow

with workflow("adaptive") as adaptive:

    @task(inject_context=True)
    def measure_quality(ctx: TaskExecutionContext) -> float:
        quality = ctx.get_channel().get("quality", 0.42)
        # Decide at run time which task comes next; it did not exist in the graph before.
        if quality < 0.5:
            ctx.next_task(TaskWrapper("cleanup", lambda: "cleaned low-quality rows"))
        elif quality > 0.9:
            ctx.next_task(TaskWrapper("enhance", lambda: "enhanced high-quality rows"))
        else:
            ctx.next_task(TaskWrapper("process", lambda: "standard processing"))
        return quality


with workflow("tuning") as tuning:

    @task(inject_context=True, max_cycles=50)
    def optimize(ctx: TaskExecutionContext, params: dict | None = None) -> dict:
        """A convergence loop: each iteration gets the previous one's params."""
        params = params or {"learning_rate": 0.1, "accuracy": 0.5}
        accuracy = min(1.0, params["accuracy"] + params["learning_rate"] * 0.6)
        if accuracy >= 0.95:
            final = dict(params, accuracy=accuracy, iterations=ctx.cycle_count)
            ctx.next_task(TaskWrapper("save_model", lambda: f"saved model at {final['accuracy']:.3f}"))
            return final
        ctx.next_iteration({"learning_rate": params["learning_rate"] * 0.95, "accuracy": accuracy})
        return params


if __name__ == "__main__":
    print(adaptive.execute())
    result, ctx = tuning.execute(ret_context=True)
    print(result, ctx.get_result("optimize"))
