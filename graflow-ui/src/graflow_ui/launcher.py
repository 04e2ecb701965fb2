"""Resume and rerun from the dashboard: each is a ``graflow resume``/``rerun`` process of its own.

Why a process and not a thread of the server: a run executes the workflow's own code
(unpickled from the store), which may block, crash, leak or take hours; in its own process
it cannot take the dashboard down, it outlives a restart of the dashboard, and it is
exactly what a person would have typed (the same lease, the same refusals, the same exit
statuses). Its output goes to a log file, which the run page shows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from graflow.cli.stores import store_arguments
from graflow_ui.models import Launch

__all__ = ["Launcher"]

#: Seconds a rerun is given to print its new run id, so the page can go straight to it.
RUN_ID_WAIT: Final = 10.0
#: The bytes of a log shown on the run page (its end).
LOG_TAIL_BYTES: Final = 4000
_RUN_LINE: Final = re.compile(r"^run (\S+)", re.MULTILINE)


@dataclass
class _Launched:
    launch_id: str
    run_id: str
    command: list[str]
    process: subprocess.Popen[bytes]
    started_at: float
    log_path: Path
    #: For a resume, the run itself; for a rerun, the new run once it printed its id.
    new_run_id: str | None

    def view(self) -> Launch:
        exit_code = self.process.poll()
        tail = _tail(self.log_path)
        if self.new_run_id is None:
            found = _RUN_LINE.search(tail)
            self.new_run_id = found.group(1) if found else None
        return Launch(
            launch_id=self.launch_id,
            run_id=self.run_id,
            command=self.command,
            pid=self.process.pid,
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            exit_code=exit_code,
            log_path=str(self.log_path),
            new_run_id=self.new_run_id,
            log_tail=tail,
        )


class Launcher:
    """Starts ``python -m graflow resume|rerun`` for runs of one store and remembers them."""

    def __init__(self, store_config: Mapping[str, Any], log_dir: Path) -> None:
        self._store_args = store_arguments(store_config)
        self._log_dir = log_dir
        self._launched: list[_Launched] = []
        self._lock = threading.Lock()

    def resume(self, run_id: str) -> Launch:
        """Carry ``run_id`` on, in a process of its own."""
        return self._start(run_id, ["resume", run_id], new_run_id=run_id).view()

    def rerun(self, run_id: str, from_task: str) -> Launch:
        """Run ``from_task`` and what follows it again as a new run; waits briefly for the new id."""
        launched = self._start(run_id, ["rerun", run_id, "--from", from_task], new_run_id=None)
        deadline = time.monotonic() + RUN_ID_WAIT
        view = launched.view()
        while view.new_run_id is None and view.exit_code is None and time.monotonic() < deadline:
            time.sleep(0.05)
            view = launched.view()
        return view

    def launches(self, run_id: str) -> list[Launch]:
        """What was started for ``run_id`` (or started it, for a rerun's new run), newest first."""
        with self._lock:
            mine = [item for item in self._launched if run_id in (item.run_id, item.new_run_id)]
        return [item.view() for item in reversed(mine)]

    def _start(self, run_id: str, arguments: list[str], new_run_id: str | None) -> _Launched:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        launch_id = uuid.uuid4().hex[:12]
        log_path = self._log_dir / f"{run_id[:12]}-{arguments[0]}-{launch_id}.log"
        command = [sys.executable, "-m", "graflow", *arguments, *self._store_args]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C on the dashboard does not stop the run
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        launched = _Launched(launch_id, run_id, command, process, time.time(), log_path, new_run_id)
        with self._lock:
            self._launched.append(launched)
        return launched


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(size - LOG_TAIL_BYTES, 0))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""
