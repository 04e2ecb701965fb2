"""What ``graflow`` gives back to a test: ``(exit status, stdout, stderr)``, and the tables it prints.

Output that is not a terminal is plain ASCII, so tables are read by their ``|`` cells.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``cli(*argv) -> (exit status, stdout, stderr)`` (the ``cli`` fixture).
Run = Callable[..., tuple[int, str, str]]


def table_rows(stdout: str, columns: int) -> dict[str, list[str]]:
    """First cell -> the other cells, for every body row of a table of ``columns`` columns.

    A group's ``(group)`` suffix and a nested row's indentation are dropped from the first cell.
    """
    rows: dict[str, list[str]] = {}
    header_seen = False
    for line in stdout.splitlines():
        if not line.startswith("|"):
            header_seen = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != columns or set(line) <= set("|-+ "):
            continue
        if not header_seen:  # the first row of each table is its header
            header_seen = True
            continue
        rows[cells[0].removesuffix(" (group)")] = cells[1:]
    return rows


def summary_rows(stdout: str) -> dict[str, list[str]]:
    """Task id -> ``[status, runs, duration, handler, worker]`` from the summary of a run."""
    return table_rows(stdout, 6)
