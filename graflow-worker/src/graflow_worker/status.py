"""``graflow-worker status``: the live fleet, what each worker runs, queue depth, dead letters.

Everything is read from Redis (heartbeats, the stream, the dead-letter stream), so any
machine that reaches Redis can run it; no worker is contacted.
"""

from __future__ import annotations

import time
from typing import Any

from graflow_worker.metrics import count_dead_letters

__all__ = ["fleet_report", "render_report"]


def fleet_report(queue: Any, dead_letters: int = 5) -> dict[str, Any]:
    """Plain data describing the fleet behind ``queue`` (what ``status --json`` prints)."""
    workers = sorted(queue.workers(), key=lambda w: str(w.get("worker_id", "")))
    return {
        "key_prefix": getattr(queue, "key_prefix", None),
        "queue_depth": queue.depth(),
        "queues": queue.queue_depths() if hasattr(queue, "queue_depths") else {},
        "dead_letter_count": count_dead_letters(queue),
        "dead_letters": [_readable(d) for d in queue.dead_letters(count=dead_letters)]
        if dead_letters
        else [],
        "workers": workers,
        "tasks_in_flight": sum(len(w.get("running") or ()) for w in workers),
    }


def render_report(report: dict[str, Any], now: float | None = None) -> str:
    """The report as a table for people."""
    now = time.time() if now is None else now
    workers: list[dict[str, Any]] = report["workers"]
    lines = [
        f"fleet {report['key_prefix']!r}: {len(workers)} live worker(s), "
        f"{report['tasks_in_flight']} task(s) running, queue depth {report['queue_depth']}, "
        f"dead letters {report['dead_letter_count']}"
    ]
    if not workers:
        lines.append(
            "no live worker: start one with `graflow-worker --key-prefix "
            f"{report['key_prefix']} --redis-url ...`"
        )
    else:
        header = (
            "WORKER",
            "HOST",
            "PID",
            "QUEUES",
            "STATE",
            "RUNNING",
            "PROCESSED",
            "OK",
            "FAILED",
            "TASK TIME",
            "UP",
        )
        rows: list[tuple[str, ...]] = [header]
        for w in workers:
            running = w.get("running") or []
            rows.append(
                (
                    str(w.get("worker_id", "?")),
                    str(w.get("host", "?")),
                    str(w.get("pid", "?")),
                    ",".join(w.get("queues") or ["default"]),
                    str(w.get("state", "?")),
                    f"{len(running)}/{w.get('max_concurrent_tasks', '?')}",
                    str(w.get("tasks_processed", 0)),
                    str(w.get("tasks_succeeded", 0)),
                    str(w.get("tasks_failed", 0)),
                    f"{float(w.get('total_execution_time') or 0.0):.2f}s",
                    _age(w.get("started"), now),
                )
            )
        lines.append("")
        lines.extend(_table(rows))
        for w in workers:
            for task in w.get("running") or []:
                if isinstance(task, dict):
                    lines.append(
                        f"  {w.get('worker_id')}: running {task.get('task_id')!r} "
                        f"(run {str(task.get('session_id', ''))[:8]}, attempt {task.get('attempt', 1)}, "
                        f"for {_age(task.get('since'), now)})"
                    )
                else:
                    lines.append(f"  {w.get('worker_id')}: running {task!r}")
    queues: dict[str, dict[str, int]] = report.get("queues") or {}
    if queues:
        table: list[tuple[str, ...]] = [("QUEUE", "WAITING", "RUNNING", "SERVED BY")]
        for name, depth in sorted(queues.items()):
            by = sum(1 for w in workers if name in (w.get("queues") or ["default"]))
            served = f"{by} worker(s)" if by else "no live worker"
            table.append((name, str(depth["waiting"]), str(depth["running"]), served))
        lines.append("")
        lines.extend(_table(table))
    dead = report.get("dead_letters") or []
    if dead:
        lines.append("")
        lines.append(f"latest dead letters ({len(dead)} of {report['dead_letter_count']}):")
        for entry in dead:
            lines.append(
                f"  {entry.get('id', '?')} task {entry.get('task') or '?'!r} "
                f"({_age(entry.get('at'), now)} ago): {entry.get('reason', '?')}"
            )
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as lines of left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _readable(letter: dict[str, Any]) -> dict[str, Any]:
    """A dead letter without its payload bytes (kept as their size)."""
    payload = letter.get("payload")
    if isinstance(payload, (bytes, bytearray)):
        letter = {**letter, "payload": f"<{len(payload)} bytes>"}
    return letter


def _age(since: Any, now: float) -> str:
    try:
        seconds = max(now - float(since), 0.0)
    except (TypeError, ValueError):
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
