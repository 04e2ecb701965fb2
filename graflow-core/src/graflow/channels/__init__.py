"""Channels: state shared by the tasks of a run (memory here; Redis in graflow-redis)."""

from graflow.channels.base import Channel
from graflow.channels.memory import MemoryChannel
from graflow.channels.typed import TypedChannel

__all__ = ["Channel", "MemoryChannel", "TypedChannel"]
