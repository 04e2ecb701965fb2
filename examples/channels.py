"""Channels: state shared by the tasks of a run; typed channels validate what is sent.

python -m graflow run examples/channels.py
"""

from typing import TypedDict

from graflow import TaskExecutionContext, task, workflow


class UserProfile(TypedDict):
    user_id: str
    name: str
    score: float


with workflow("channels") as channels:

    @task(inject_context=True)
    def setup(ctx: TaskExecutionContext) -> None:
        channel = ctx.get_channel()
        channel.set("config", {"batch_size": 100})
        ctx.get_typed_channel(UserProfile).send("profile", {"user_id": "u1", "name": "Ada", "score": 0.5})

    @task(inject_context=True)
    def worker_a(ctx: TaskExecutionContext) -> int:
        channel = ctx.get_channel()
        channel.append("events", "a done")
        return int(channel.atomic_add("processed", 60))

    @task(inject_context=True)
    def worker_b(ctx: TaskExecutionContext) -> int:
        channel = ctx.get_channel()
        channel.append("events", "b done")
        return int(channel.atomic_add("processed", 40))

    @task(inject_context=True)
    def summarize(ctx: TaskExecutionContext, config: dict) -> dict:
        channel = ctx.get_channel()
        profile = ctx.get_typed_channel(UserProfile).receive("profile")
        try:  # a malformed message is refused where it is written, and nothing is stored
            ctx.get_typed_channel(UserProfile).send("profile", {"user_id": "u1", "name": "Ada"})
        except TypeError as exc:
            channel.set("rejected", str(exc))
        return {
            "batch_size": config["batch_size"],
            "processed": channel.get("processed"),
            "events": sorted(channel.get("events")),
            "profile": profile,
            "rejected": channel.get("rejected"),
        }

    setup >> (worker_a | worker_b) >> summarize


if __name__ == "__main__":
    print(channels.execute())
