"""Explicit checkpoints: a run's whole state in one file, to restore and carry on later.

The existing Graflow releases' API, kept name for name::

    @task(inject_context=True)
    def train(ctx):
        ...
        ctx.checkpoint(path="ckpt/epoch_3", metadata={"epoch": 3})   # written once train completed

    context, metadata = CheckpointManager.resume_from_checkpoint("ckpt/epoch_3.pkl")
    WorkflowEngine().execute(context)          # runs what was left at that point

A checkpoint is taken between two steps: after the asking task completed and what it
asked for was applied (its successors released, its next iteration queued). It holds the
graph (functions by value, so no source file is needed), the top-level frontier, the
results, cycle counts and, for an in-process channel, the channel's contents; a shared
channel (Redis) is reconnected as it is then. Beside ``NAME.pkl`` it writes
``NAME.meta.json`` and ``NAME.state.json`` for people and tools. A restored run is an
in-process run of the same run id; durable runs can instead be resumed from their store
(``graflow resume``), which needs no checkpoint at all.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from graflow.channels.memory import MemoryChannel
from graflow.core.context import ExecutionContext
from graflow.core.frontier import Frontier
from graflow.exceptions import CheckpointError, GraflowError
from graflow.plugins.manager import get_plugin_manager
from graflow.queue.base import InProcess
from graflow.remote.codec import ByValue, dumps_by_value, loads, storable
from graflow.state.local import state_dir

if TYPE_CHECKING:
    from graflow.core.graph import TaskGraph

__all__ = ["CheckpointManager", "CheckpointMetadata"]

#: Marks a Graflow checkpoint, and its layout.
FORMAT: Final = "graflow-checkpoint"
VERSION: Final = 1
SUFFIX: Final = ".pkl"

_LATER: Final = ByValue("a checkpoint file", advice="or keep such objects out of results and the channel")


@dataclass
class CheckpointMetadata:
    """What a checkpoint says about itself (also written as ``NAME.meta.json``)."""

    checkpoint_id: str
    session_id: str
    workflow_name: str
    created_at: float
    #: How many steps the run had made when the checkpoint was taken.
    steps: int
    #: The ``metadata`` given to ``checkpoint()`` / ``create_checkpoint()``.
    user_metadata: dict[str, Any] = field(default_factory=dict)
    path: str = ""


@dataclass
class _State:
    graph: TaskGraph
    start_nodes: list[str]
    max_steps: int
    config: dict[str, Any]
    backends: tuple[str, str]
    frontier: Frontier
    results: dict[str, Any]
    cycle_counts: dict[str, int]
    steps: int
    #: The channel's contents when the run's channel is in-process; ``None`` for a shared one.
    channel: dict[str, Any] | None


class CheckpointManager:
    """Write a run's state to a file and read it back (static methods, as in the existing releases)."""

    @staticmethod
    def create_checkpoint(
        context: ExecutionContext, path: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> str:
        """Write ``context``'s state now; return the ``.pkl`` path (also ``context.last_checkpoint_path``).

        ``path`` defaults to ``checkpoints/<run id>-<steps>`` in the run's state directory.
        """
        target = _target(context, path)
        channel = context.channel
        meta = CheckpointMetadata(
            checkpoint_id=uuid.uuid4().hex,
            session_id=context.session_id,
            workflow_name=context.workflow_name,
            created_at=time.time(),
            steps=context.steps,
            user_metadata=dict(metadata or {}),
            path=str(target),
        )
        frontier = context.frontier.copy() if context.frontier is not None else Frontier.starting_at(())
        state = _State(
            graph=context.graph,
            start_nodes=list(context.start_nodes),
            max_steps=context.max_steps,
            config=storable(context.config),
            backends=context.backends,
            frontier=frontier,
            results=dict(context.results),
            cycle_counts=dict(context.cycle_counts),
            steps=context.steps,
            channel=channel.snapshot() if channel.remote_spec() is None else None,
        )
        blob = dumps_by_value(
            {"format": FORMAT, "version": VERSION, "metadata": meta, "state": state},
            _LATER,
            what=f"a checkpoint of run {context.session_id!r}",
        )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, blob)
            base = str(target)[: -len(SUFFIX)]
            _write_atomically(
                Path(base + ".meta.json"), json.dumps(asdict(meta), default=str, indent=2).encode()
            )
            summary = {
                "session_id": context.session_id,
                "workflow": context.workflow_name,
                "steps": context.steps,
                "completed_tasks": context.completed_tasks,
                "ready": list(frontier.ready),
                "cycle_counts": state.cycle_counts,
                "channel_keys": sorted(state.channel) if state.channel is not None else None,
            }
            _write_atomically(Path(base + ".state.json"), json.dumps(summary, default=str, indent=2).encode())
        except OSError as exc:
            raise CheckpointError(
                f"the checkpoint of run {context.session_id!r} cannot be written to {target} ({exc}); "
                "choose a writable path"
            ) from exc
        context.last_checkpoint_path = str(target)
        return str(target)

    @staticmethod
    def resume_from_checkpoint(path: str | os.PathLike[str]) -> tuple[ExecutionContext, CheckpointMetadata]:
        """The run as it was at the checkpoint, ready for ``WorkflowEngine().execute(context)``."""
        file = Path(path)
        if not file.exists() and file.with_name(file.name + SUFFIX).exists():
            file = file.with_name(file.name + SUFFIX)
        try:
            payload = file.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"cannot read the checkpoint {file} ({exc}); check the path") from exc
        try:
            saved = loads(payload)
        except Exception as exc:
            raise CheckpointError(
                f"{file} cannot be loaded as a Graflow checkpoint ({type(exc).__name__}: {exc}); it is "
                "damaged, not a checkpoint, or needs packages that are not installed here"
            ) from exc
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise CheckpointError(
                f"{file} is not a Graflow checkpoint (no checkpoint header); check the path"
            )
        if saved.get("version") != VERSION:
            raise CheckpointError(
                f"{file} is a checkpoint of layout {saved.get('version')!r}; this Graflow reads layout "
                f"{VERSION}. Resume it with the Graflow version that wrote it"
            )
        return _restore(saved["state"], saved["metadata"]), saved["metadata"]


def _restore(state: _State, meta: CheckpointMetadata) -> ExecutionContext:
    manager = get_plugin_manager()
    queue_name, channel_name = state.backends
    try:
        queue = manager.resolve("graflow_queue_backends", queue_name)(state.config)
        if state.channel is not None:
            channel = MemoryChannel(meta.session_id)
            for key, value in state.channel.items():
                channel.set(key, value)
        else:
            channel = manager.resolve("graflow_channel_backends", channel_name)(meta.session_id, state.config)
    except GraflowError as exc:
        raise CheckpointError(
            f"the checkpoint {meta.path} needs the {queue_name!r} queue and {channel_name!r} channel "
            f"backends: {exc}"
        ) from exc
    context = ExecutionContext(
        state.graph,
        start_nodes=state.start_nodes,
        max_steps=state.max_steps,
        channel=channel,
        queue=queue if queue is not None else InProcess(),
        config=state.config,
        session_id=meta.session_id,
        workflow_name=meta.workflow_name,
    )
    context.backends = state.backends
    context.frontier = state.frontier
    context.results.update(state.results)
    context.cycle_counts.update(state.cycle_counts)
    context.steps = state.steps
    context.last_checkpoint_path = meta.path
    return context


def _target(context: ExecutionContext, path: str | None) -> Path:
    if path is None:
        path = str(state_dir(context.config) / "checkpoints" / f"{context.session_id}-{context.steps}")
    return Path(path if path.endswith(SUFFIX) else path + SUFFIX)


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)
