"""State machines are ordinary workflows: ``next_iteration()`` plus state in the channel.

python -m graflow run examples/state_machines.py:orders
python -m graflow run examples/state_machines.py:training
"""

from graflow import TaskExecutionContext, TaskWrapper, task, workflow

with workflow("orders") as orders:

    @task(inject_context=True)
    def order_processor(ctx: TaskExecutionContext) -> str:
        channel = ctx.get_channel()
        state = channel.get("order_state", "NEW")
        order = channel.get("order_data", {"id": 7, "items": ["book"], "paid": False})
        channel.append("history", state)
        if state == "NEW":
            channel.set("order_state", "VALIDATED")
            ctx.next_iteration()
        elif state == "VALIDATED":
            channel.set("order_state", "RESERVED")
            ctx.next_iteration()
        elif state == "RESERVED":
            channel.set("order_data", dict(order, paid=True))
            channel.set("order_state", "PAID")
            ctx.next_iteration()
        elif state == "PAID":
            channel.set("order_state", "SHIPPED")
            ctx.next_task(TaskWrapper("notify", lambda: f"order {order['id']} shipped"))
        else:
            raise ValueError(f"unknown order state {state!r}")
        return state


with workflow("training") as training:

    @task(inject_context=True, max_cycles=100)
    def training_fsm(ctx: TaskExecutionContext) -> str:
        channel = ctx.get_channel()
        phase = channel.get("phase", "INIT")
        if phase == "INIT":
            channel.set("model", {"epochs": 0, "accuracy": 0.3})
            channel.set("phase", "TRAINING")
        elif phase == "TRAINING":
            model = channel.get("model")
            model = {"epochs": model["epochs"] + 1, "accuracy": min(0.99, model["accuracy"] + 0.15)}
            channel.set("model", model)
            if model["accuracy"] >= 0.9:
                channel.set("phase", "VALIDATING")
        elif phase == "VALIDATING":
            validation_accuracy = channel.get("model")["accuracy"] - 0.02
            channel.set("phase", "SAVING" if validation_accuracy >= 0.85 else "TRAINING")
        elif phase == "SAVING":
            return f"COMPLETE after {channel.get('model')['epochs']} epochs"
        ctx.next_iteration()
        return phase


if __name__ == "__main__":
    print(orders.execute(max_steps=50))
    print(training.execute(max_steps=100))
