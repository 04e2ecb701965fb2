"""How the command line shows things: progress lines, the run summary, run history, the plugin list.

Everything goes through a :class:`rich.console.Console`. On a terminal it has colour;
anywhere else (CI logs, pipes, tests) it prints plain lines and ASCII tables, wide
enough that task ids are never cut.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from graflow.cli.progress import TaskEvent, TaskRecord
    from graflow.cli.runs import TaskHistory
    from graflow.hitl.types import FeedbackRequest
    from graflow.plugins import PluginInfo
    from graflow.state.records import RunInfo

__all__ = [
    "ProgressPrinter",
    "cut",
    "format_duration",
    "history_table",
    "make_console",
    "plugins_table",
    "runs_table",
    "summary_table",
]

#: Width used when the output is not a terminal: a pipe or a log has no width to fit.
_PLAIN_WIDTH: Final = 200
#: The final result is shown up to this many characters.
RESULT_REPR_LIMIT: Final = 300

_STATUS_STYLE: Final = {
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "reused": "blue",
    "running": "cyan",
    "started": "cyan",
    "suspended": "yellow",
    "waiting": "yellow",
    "asked": "magenta",
    "canceled": "yellow",
    "done": "green",
}


def make_console(file: IO[str]) -> Console:
    """A console on ``file``: coloured on a terminal, plain and wide elsewhere."""
    options: dict[str, Any] = {"highlight": False, "markup": False, "emoji": False, "soft_wrap": True}
    console = Console(file=file, **options)
    if not console.is_terminal:
        console = Console(file=file, width=_PLAIN_WIDTH, no_color=True, **options)
    return console


def _box(console: Console) -> box.Box:
    return box.ROUNDED if console.is_terminal else box.ASCII


def format_duration(seconds: float) -> str:
    """``"<1 ms"``, ``"4 ms"``, ``"1.25 s"``, ``"2m 05s"``: readable at a glance."""
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def short_repr(value: Any, limit: int = RESULT_REPR_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the summary
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return cut(text, limit)


def cut(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters (the cut marked with ``...``)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ProgressPrinter:
    """A :class:`~graflow.cli.progress.RunProgress` listener: one line per task start and end.

    ``answer_hint(request)`` says how to answer a question a task asks (a command), if
    anything outside this process can.
    """

    def __init__(
        self, console: Console, answer_hint: Callable[[FeedbackRequest], str | None] | None = None
    ) -> None:
        self._console = console
        self._lock = threading.Lock()
        self._answer_hint = answer_hint

    def __call__(self, event: TaskEvent, record: TaskRecord) -> None:
        if event == "asked":
            self._asked(record)
            return
        line = Text("  ")
        line.append(f"{event:<9}", style=_STATUS_STYLE[event])
        line.append(" ")
        if record.kind == "group":
            line.append(f"group {record.task_id}", style="bold")
            line.append(f" ({record.handler})", style="dim")
        else:
            line.append(record.task_id, style="bold")
        notes = []
        if record.cycle > 1:
            notes.append(f"iteration {record.cycle}")
        if record.max_attempts > 1:
            notes.append(f"attempt {record.attempt}/{record.max_attempts}")
        if event != "started":
            notes.append(format_duration(record.duration))
        if notes:
            line.append(f" [{', '.join(notes)}]", style="dim")
        if event == "failed" and record.error:
            line.append(f": {record.error}", style="red")
        if event == "waiting":
            line.append(": no answer in time, the run suspends", style="yellow")
        with self._lock:
            self._console.print(line)

    def _asked(self, record: TaskRecord) -> None:
        request = record.question
        assert request is not None
        line = Text("  ")
        line.append(f"{'asked':<9}", style=_STATUS_STYLE["asked"])
        line.append(" ")
        line.append(record.task_id, style="bold")
        line.append(
            f" ({request.feedback_type}, waits up to {format_duration(request.timeout)}): {request.prompt}"
        )
        if request.options:
            line.append(f" [{' / '.join(request.options)}]", style="dim")
        hint = self._answer_hint(request) if self._answer_hint is not None else None
        with self._lock:
            self._console.print(line)
            if hint is not None:
                self._console.print(Text(f"            answer: {hint}", style="dim"))


def summary_table(records: Sequence[TaskRecord]) -> Table:
    """The per-task table printed when a run ends."""
    table = Table(box=box.ASCII, show_edge=True, pad_edge=True)
    table.add_column("task", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("handler", no_wrap=True)
    table.add_column("worker", no_wrap=True)
    for record in records:
        label = "  " * record.depth + (
            f"{record.task_id} (group)" if record.kind == "group" else record.task_id
        )
        ran = record.runs > 0
        runs = str(record.runs) if ran else "-"
        if ran and record.reused:
            runs += f" (+{record.reused} reused)"
        table.add_row(
            Text(label),
            Text(record.status, style=_STATUS_STYLE.get(record.status, "")),
            runs,
            format_duration(record.duration) if ran else "-",
            Text(record.handler),
            Text(record.worker if ran else "-"),
        )
    return table


def runs_table(infos: Sequence[RunInfo]) -> Table:
    """``graflow runs``: one row per run, newest first, times in UTC as in ``--json``."""
    table = Table(box=box.ASCII)
    for column in ("run", "workflow", "status", "started", "finished"):
        table.add_column(column, no_wrap=True)
    table.add_column("tasks", justify="right", no_wrap=True)
    table.add_column("error")
    for info in infos:
        shown = info.to_json()
        table.add_row(
            Text(info.run_id),
            Text(info.workflow),
            Text(str(info.status), style=_STATUS_STYLE.get(str(info.status), "")),
            shown["started_at"] or "-",
            shown["finished_at"] or "-",
            f"{info.tasks_done}/{info.tasks_total}",
            Text(cut(info.error.splitlines()[0], 80) if info.error else "", style="red"),
        )
    return table


def history_table(rows: Sequence[TaskHistory]) -> Table:
    """``graflow runs show``: one row per task of a run, from what its store recorded."""
    table = Table(box=box.ASCII)
    table.add_column("task", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("occurrences", justify="right", no_wrap=True)
    table.add_column("worker", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("finished at", no_wrap=True)
    for row in rows:
        label = "  " * row.depth + (f"{row.task_id} (group)" if row.kind == "group" else row.task_id)
        if row.added:
            label += " (added at run time)"
        done = row.occurrences > 0
        table.add_row(
            Text(label),
            Text(row.status, style=_STATUS_STYLE.get(row.status, "")),
            str(row.occurrences) if done else "-",
            Text(row.worker if done else "-"),
            format_duration(row.duration) if done else "-",
            row.finished_at or "-",
        )
    return table


def plugins_table(infos: Sequence[PluginInfo]) -> Table:
    """One row per plugin: where it comes from and what it contributes (or why it failed)."""
    table = Table(box=box.ASCII, show_lines=True)
    table.add_column("plugin", no_wrap=True)
    table.add_column("distribution", no_wrap=True)
    table.add_column("contributes")
    for info in infos:
        if info.error is not None:
            package = info.distribution or info.name
            detail = Text(f"failed to load: {info.error}\n", style="red")
            detail.append(f"reinstall or fix it: pip install --force-reinstall {package}")
        else:
            lines = [f"{kind}: {', '.join(names)}" for kind, names in info.provides.items()]
            lines.extend(f"hook: {name}" for name in info.hooks)
            detail = Text("\n".join(lines) or "(nothing)")
        origin = (
            "graflow-core (built in)"
            if info.name == "builtin"
            else (info.distribution or "(registered at run time)")
        )
        table.add_row(Text(info.name), Text(origin), detail)
    return table


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` with the box style that suits the console."""
    table.box = _box(console)
    console.print(table)
