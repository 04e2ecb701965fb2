"""The ``local`` state store: durable runs in one SQLite file under a state directory.

``durable=True`` on the memory queue keeps the run here (``config["state_dir"]``, else
``$GRAFLOW_STATE_DIR``, else ``./.graflow``). Why SQLite: it is in the standard library,
one file holds every run of a directory, WAL mode lets ``graflow runs`` read while a run
writes, and a step is one small transaction. With ``synchronous=NORMAL`` a commit costs
no fsync (the WAL is synced at its checkpoints), so a step survives a crashed or killed
process; ``config["state_sync"] = "full"`` syncs every step, to survive a power cut too.

A run's lease (``holder``, ``lease_until``) is renewed by a background thread while it
runs; a resume is refused while another live process holds it. A holder on this host
whose process is gone has no lease, whatever the clock says.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from graflow import settings
from graflow.channels.memory import MemoryChannel
from graflow.channels.recording import replay
from graflow.exceptions import ConfigError, RunInUseError, RunNotFoundError, StateStoreError
from graflow.log import get_logger
from graflow.plugins import hookimpl
from graflow.remote.codec import ByValue, dumps_by_value, loads, storable
from graflow.state.lease import LEASE_SECONDS, holder_alive, this_holder
from graflow.state.records import Completion, Failure, RunInfo, RunStatus
from graflow.state.store import RunJournal, RunPlan, SavedRun, StateStore

if TYPE_CHECKING:
    from graflow.core.dsl import Executable
    from graflow.core.requests import TaskRequests
    from graflow.hitl.backend import FeedbackBackend
    from graflow.schedule.store import ScheduleStore

__all__ = ["DEFAULT_STATE_DIR", "LocalStore", "state_dir"]

#: Where durable local runs live unless config or the environment says otherwise.
DEFAULT_STATE_DIR: Final = ".graflow"
ENV_VAR: Final = settings.ENV_STATE_DIR
#: The file's layout; a store written with another one is refused, never rewritten.
#: 2: the plan has a table of its own (1 kept it in the runs row, which every step rewrote).
#: (The feedback, failures and schedule tables came later without a new version: older readers ignore them.)
SCHEMA_VERSION: Final = "2"
#: Seconds a finished (or abandoned) run is kept before it is deleted.
DEFAULT_RUN_TTL: Final = 7 * 24 * 3600.0

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL, tasks_done INTEGER NOT NULL DEFAULT 0,
    tasks_total INTEGER NOT NULL DEFAULT 0, error TEXT, holder TEXT, lease_until REAL,
    queue_backend TEXT NOT NULL, channel_backend TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at);
CREATE TABLE IF NOT EXISTS plans (run_id TEXT PRIMARY KEY, plan BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS completions (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, task_id TEXT NOT NULL,
    requests BLOB, channel_ops BLOB, worker TEXT NOT NULL, duration REAL NOT NULL,
    attempts INTEGER NOT NULL, finished_at REAL NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (run_id, task_id));
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, created_at REAL NOT NULL,
    answered INTEGER NOT NULL DEFAULT 0, request TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_pending ON feedback (answered, created_at);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, paused INTEGER NOT NULL DEFAULT 0,
    last_tick REAL NOT NULL DEFAULT 0, last_run TEXT, last_status TEXT, fired INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS schedule_after (
    name TEXT NOT NULL, upstream_run TEXT NOT NULL, PRIMARY KEY (name, upstream_run));
CREATE TABLE IF NOT EXISTS failures (
    run_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL, error_type TEXT NOT NULL, message TEXT NOT NULL, traceback TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL NOT NULL, worker TEXT NOT NULL, final INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS failures_by_run ON failures (run_id, seq);
"""

#: Everything written here may be read by another process, without the workflow's source.
_LATER: Final = ByValue("the state store", advice="or return plain data from the task")


def state_dir(config: Mapping[str, Any]) -> Path:
    """The state directory: ``config["state_dir"]``, else ``$GRAFLOW_STATE_DIR``, else ``./.graflow``."""
    return Path(config.get("state_dir") or os.environ.get(ENV_VAR) or DEFAULT_STATE_DIR)


class LocalStore(StateStore):
    """Runs of one state directory (``runs.db`` in it)."""

    durable = True
    keeps_channel = True

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        run_ttl: float = DEFAULT_RUN_TTL,
        sync: str = "normal",
        reader: bool = False,
    ) -> None:
        """``reader=True`` opens the store for a task placed in another process (a pool process):
        it reads results and asks questions there, and leaves the store's upkeep to the driver."""
        self.directory = Path(directory)
        self.reader = reader
        self.path = self.directory / "runs.db"
        self.run_ttl = settings.seconds("run_ttl", run_ttl)
        if sync not in ("normal", "full"):
            raise ConfigError(f"state_sync must be 'normal' or 'full', got {sync!r}")
        self._lock = threading.RLock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise self._unusable(exc) from exc
        try:
            self._check_schema()  # reads only: a file that is not a store of this version stays as it is
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
            if not reader:
                self._expire_old_runs()
        except (OSError, sqlite3.Error) as exc:
            self._db.close()
            raise self._unusable(exc) from exc
        except StateStoreError:
            self._db.close()
            raise

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LocalStore:
        return cls(
            state_dir(config),
            run_ttl=config.get("run_ttl", DEFAULT_RUN_TTL),
            sync=str(config.get("state_sync", "normal")),
            reader=bool(config.get("state_reader", False)),
        )

    @property
    def where(self) -> str:
        return f"the state directory {self.directory}"

    def remote_spec(self) -> tuple[str, dict[str, Any]]:
        """Pool processes on this machine open the same file (containers are never sent it)."""
        return "local", {"state_dir": str(self.directory.resolve()), "state_reader": True}

    def results_view(self, run_id: str) -> MutableMapping[str, Any] | None:
        """In a pool process, the run's results as the driver recorded them; the driver keeps a dict."""
        return _LocalResults(self, run_id) if self.reader else None

    def feedback(self) -> FeedbackBackend:
        from graflow.state.local_feedback import LocalFeedback  # lazy: only runs that ask need it

        return LocalFeedback(self)

    def schedules(self) -> ScheduleStore:
        from graflow.state.local_schedules import LocalSchedules  # lazy: only schedulers need it

        return LocalSchedules(self)

    # --- the file ---------------------------------------------------------------------------

    def _check_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and row[0] != SCHEMA_VERSION:
                raise StateStoreError(
                    f"{self.path} was written by a Graflow with state schema {row[0]}, this one reads "
                    f"schema {SCHEMA_VERSION}; use the Graflow version that wrote it, or point this run "
                    "at another state directory (nothing was changed)"
                )
        elif tables:
            raise StateStoreError(
                f"{self.path} is an SQLite file, but not a Graflow state store (tables: "
                f"{', '.join(sorted(tables))}); point --state-dir at another directory (nothing was changed)"
            )

    def _unusable(self, exc: OSError | sqlite3.Error) -> StateStoreError:
        """The error for a state directory or file that cannot be opened, saying which it is."""
        if _damaged(exc):
            return StateStoreError(
                f"{self.path} is damaged or is not an SQLite database ({exc}); move it aside or restore "
                "it from a backup, or point --state-dir at another directory (nothing was changed)"
            )
        return StateStoreError(
            f"the state directory {self.directory} cannot be used ({type(exc).__name__}: {exc}); "
            "check that it is writable, or choose another with --state-dir / config['state_dir']"
        )

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads; a damaged file becomes a :class:`StateStoreError`."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StateStoreError(
                    f"{self.path} cannot be read ({type(exc).__name__}: {exc}); if it is damaged, "
                    "restore it from a backup or move it aside (nothing was changed)"
                ) from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue instead of failing late)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite ends the transaction itself on some errors (a full disk): rolling back
                # again would fail and hide the error that matters.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _expire_old_runs(self) -> None:
        """Delete runs finished (or abandoned) more than ``run_ttl`` ago."""
        cutoff = time.time() - self.run_ttl
        with self.transaction() as db:
            old = [
                row[0]
                for row in db.execute(
                    "SELECT run_id FROM runs WHERE (finished_at IS NOT NULL AND finished_at < ?) "
                    "OR (finished_at IS NULL AND lease_until IS NOT NULL AND lease_until < ?)",
                    (cutoff, cutoff),
                )
            ]
            for table in ("completions", "results", "plans", "feedback", "failures", "runs"):
                db.executemany(f"DELETE FROM {table} WHERE run_id = ?", [(r,) for r in old])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing ----------------------------------------------------------------------------

    def start_run(self, plan: RunPlan) -> RunJournal:
        plan.config = storable(plan.config)
        blob = dumps_by_value(plan, _LATER, what=f"the plan of run {plan.run_id!r}")
        now = time.time()
        with self._write(plan.run_id) as db:
            db.execute(
                "INSERT INTO runs (run_id, workflow, status, started_at, tasks_total, holder, lease_until, "
                "queue_backend, channel_backend) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    plan.run_id,
                    plan.workflow,
                    str(RunStatus.RUNNING),
                    now,
                    len(_task_ids(plan.graph.tasks.values())),
                    this_holder(),
                    now + LEASE_SECONDS,
                    plan.queue_backend,
                    plan.channel_backend,
                ),
            )
            # Apart from the runs row, which each step updates: rewriting a row rewrites its blobs.
            db.execute("INSERT INTO plans VALUES (?, ?)", (plan.run_id, blob))
        return _LocalJournal(self, plan.run_id, known=_task_ids(plan.graph.tasks.values()), done=set(), seq=0)

    @contextmanager
    def _write(self, run_id: str) -> Iterator[sqlite3.Connection]:
        """A transaction whose failure (a full disk, a locked file) names the run to resume."""
        try:
            with self.transaction() as db:
                yield db
        except sqlite3.Error as exc:
            raise StateStoreError(
                f"run {run_id!r} stopped: its state could not be written to {self.path} "
                f"({type(exc).__name__}: {exc}); fix that (free space, permissions), then "
                f"`graflow resume {run_id} --state-dir {self.directory}`"
            ) from exc

    def record_step(self, run_id: str, seq: int, step: _StepRow, *, done: int, total: int) -> None:
        """Write one completion, its result and the run's counts, in one transaction."""
        c = step.completion
        with self._write(run_id) as db:
            db.execute(
                "INSERT INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    seq,
                    c.key,
                    c.task_id,
                    step.requests,
                    step.channel_ops,
                    c.worker,
                    c.duration,
                    c.attempts,
                    c.finished_at,
                ),
            )
            if step.result is not None:
                db.execute(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?)", (run_id, c.task_id, step.result)
                )
            db.execute(
                "UPDATE runs SET tasks_done = ?, tasks_total = ? WHERE run_id = ?", (done, total, run_id)
            )

    def record_failure(self, run_id: str, failure: Failure) -> None:
        """Keep one attempt that raised (plain text columns: nothing here is unpickled)."""
        with self._write(run_id) as db:
            db.execute(
                "INSERT INTO failures (run_id, task_id, attempt, error_type, message, traceback, started_at, "
                "finished_at, worker, final) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    failure.task_id,
                    failure.attempt,
                    failure.error_type,
                    failure.message,
                    failure.traceback,
                    failure.started_at,
                    failure.finished_at,
                    failure.worker,
                    int(failure.final),
                ),
            )

    def finish_run(self, run_id: str, status: RunStatus, error: str | None) -> None:
        """Record how the run ended (a suspended run has not ended) and drop its lease."""
        finished = None if status is RunStatus.SUSPENDED else time.time()
        with self._write(run_id) as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ?, holder = NULL, lease_until = NULL "
                "WHERE run_id = ?",
                (str(status), finished, error, run_id),
            )

    def renew_lease(self, run_id: str) -> None:
        with self._write(run_id) as db:
            db.execute(
                "UPDATE runs SET lease_until = ? WHERE run_id = ? AND holder = ?",
                (time.time() + LEASE_SECONDS, run_id, this_holder()),
            )

    # --- reading ----------------------------------------------------------------------------

    def run(self, run_id: str) -> RunInfo:
        with self.reading() as db:
            row = db.execute(f"SELECT {_INFO_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(run_id, self.where)
        return _info(tuple(row))

    def runs(
        self, status: RunStatus | None = None, workflow: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        where, params = _filters(status, workflow)
        query = f"SELECT {_INFO_COLUMNS} FROM runs{where} ORDER BY started_at DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self.reading() as db:
            rows = db.execute(query, params).fetchall()
        return [_info(row) for row in rows]

    def runs_page(
        self,
        status: RunStatus | None = None,
        workflow: str | None = None,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[RunInfo], int]:
        """A page straight from the index on ``started_at``: its cost does not grow with the runs kept."""
        where, params = _filters(status, workflow)
        with self.reading() as db:
            (total,) = db.execute(f"SELECT COUNT(*) FROM runs{where}", params).fetchone()
            rows = db.execute(
                f"SELECT {_INFO_COLUMNS} FROM runs{where} ORDER BY started_at DESC LIMIT ? OFFSET ?",
                [*params, int(limit), int(offset)],
            ).fetchall()
        return [_info(row) for row in rows], int(total)

    def failures(self, run_id: str) -> list[Failure]:
        with self.reading() as db:
            rows = db.execute(
                "SELECT task_id, attempt, error_type, message, traceback, started_at, finished_at, worker, "
                "final FROM failures WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [
            Failure(task_id, attempt, error_type, message, text, started, finished, worker, bool(final))
            for task_id, attempt, error_type, message, text, started, finished, worker, final in rows
        ]

    def completions(self, run_id: str) -> list[Completion]:
        self.run(run_id)
        with self.reading() as db:
            rows = db.execute(
                "SELECT key, task_id, requests, channel_ops, worker, duration, attempts, finished_at "
                "FROM completions WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [
            Completion(
                key,
                task_id,
                _load(requests, run_id, "a step's requests") if requests is not None else None,
                _load(ops, run_id, "a step's channel writes") if ops is not None else [],
                worker,
                duration,
                attempts,
                finished_at,
            )
            for key, task_id, requests, ops, worker, duration, attempts, finished_at in rows
        ]

    def load(self, run_id: str) -> SavedRun:
        info = self.run(run_id)
        with self.reading() as db:
            (blob,) = db.execute("SELECT plan FROM plans WHERE run_id = ?", (run_id,)).fetchone()
        plan: RunPlan = _load(blob, run_id, "the run's plan")
        completions = self.completions(run_id)
        with self.reading() as db:
            stored = db.execute("SELECT task_id, value FROM results WHERE run_id = ?", (run_id,)).fetchall()
        results = {task_id: _load(value, run_id, f"the result of {task_id!r}") for task_id, value in stored}
        channel = MemoryChannel(run_id)
        for key, value in plan.initial_channel.items():
            channel.set(key, value)
        for completion in completions:
            replay(channel, completion.channel_ops)
        return SavedRun(plan, info, completions, results, channel.snapshot())

    def resume_run(self, run_id: str) -> tuple[SavedRun, RunJournal]:
        saved = self.load(run_id)
        now = time.time()
        me = this_holder()
        with self._write(run_id) as db:
            holder, until = db.execute(
                "SELECT holder, lease_until FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if holder and holder != me and until and until > now and holder_alive(holder):
                raise RunInUseError(run_id, holder, until - now)
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM completions WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            db.execute(
                "UPDATE runs SET status = ?, finished_at = NULL, error = NULL, holder = ?, lease_until = ? "
                "WHERE run_id = ?",
                (str(RunStatus.RUNNING), me, now + LEASE_SECONDS, run_id),
            )
        known = _task_ids(saved.plan.graph.tasks.values())
        for completion in saved.completions:
            if completion.requests is not None:
                known.update(_added_tasks(completion.requests))
        done = {c.task_id for c in saved.completions}
        return saved, _LocalJournal(self, run_id, known=known, done=done, seq=int(seq))


_INFO_COLUMNS: Final = (
    "run_id, workflow, status, started_at, finished_at, tasks_done, tasks_total, error, holder, "
    "lease_until, queue_backend, channel_backend"
)


def _filters(status: RunStatus | None, workflow: str | None) -> tuple[str, list[str]]:
    """The ``WHERE`` clause (with its leading space, or empty) and parameters of a runs query."""
    clauses, params = [], []
    if status is not None:
        clauses.append("status = ?")
        params.append(str(status))
    if workflow is not None:
        clauses.append("workflow = ?")
        params.append(workflow)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _info(row: tuple[Any, ...]) -> RunInfo:
    run_id, workflow, status, started, finished, done, total, error, holder, until, queue, channel = row
    live_holder = holder if holder and until and until > time.time() else None
    return RunInfo(
        run_id,
        workflow,
        RunStatus(status),
        started,
        finished,
        done,
        total,
        error,
        live_holder,
        queue,
        channel,
    )


def _task_ids(nodes: Iterable[Executable]) -> set[str]:
    """Ids of the tasks among ``nodes`` (groups and chains are not tasks)."""
    return {task.task_id for task in nodes if task.kind == "task"}


def _added_tasks(requests: TaskRequests) -> set[str]:
    return _task_ids(t for executable, _ in requests.next_tasks for t in executable.iter_tasks())


@dataclass(frozen=True)
class _StepRow:
    """A completion with its blobs, pickled before the write transaction starts."""

    completion: Completion
    requests: bytes | None
    channel_ops: bytes | None
    result: bytes | None


class _LocalResults(MutableMapping[str, Any]):
    """A run's results read from the file when a task asks for one (in a pool process).

    What the task itself stores (``set_result``) stays here: it travels back in its
    outcome, and the driver records it.
    """

    def __init__(self, store: LocalStore, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._own: dict[str, Any] = {}

    def __getitem__(self, task_id: str) -> Any:
        if task_id in self._own:
            return self._own[task_id]
        with self._store.reading() as db:
            row = db.execute(
                "SELECT value FROM results WHERE run_id = ? AND task_id = ?", (self._run_id, task_id)
            ).fetchone()
        if row is None:
            raise KeyError(task_id)
        return _load(row[0], self._run_id, f"the result of {task_id!r}")

    def __setitem__(self, task_id: str, value: Any) -> None:
        self._own[task_id] = value

    def __delitem__(self, task_id: str) -> None:
        del self._own[task_id]

    def _ids(self) -> set[str]:
        with self._store.reading() as db:
            rows = db.execute("SELECT task_id FROM results WHERE run_id = ?", (self._run_id,)).fetchall()
        return {row[0] for row in rows} | set(self._own)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids())

    def __len__(self) -> int:
        return len(self._ids())


def _load(blob: bytes, run_id: str, what: str) -> Any:
    try:
        return loads(blob)
    except Exception as exc:
        raise StateStoreError(
            f"{what} of run {run_id!r} cannot be read back ({type(exc).__name__}: {exc}); code from "
            "installed packages is imported by name, so install the packages the run used"
        ) from exc


def _damaged(exc: BaseException) -> bool:
    """Whether SQLite says the file is not a database, or a damaged one."""
    name = getattr(exc, "sqlite_errorname", None)  # Python >= 3.11
    if name is not None:
        return name in ("SQLITE_NOTADB", "SQLITE_CORRUPT")
    return isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in str(exc) or "malformed" in str(exc)
    )


class _LocalJournal(RunJournal):
    """One run's writes; renews the run's lease in the background until :meth:`close`."""

    def __init__(self, store: LocalStore, run_id: str, *, known: set[str], done: set[str], seq: int) -> None:
        self.run_id = run_id
        self._store = store
        #: Task ids of the run (groups are not tasks), and those of them with a recorded step.
        self._known = known
        self._done = done & known
        self._seq = seq
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"graflow-lease-{run_id[:8]}", daemon=True)
        self._renewer.start()

    def record(self, completion: Completion, result: Any, *, has_result: bool = True) -> None:
        tid = completion.task_id
        requests = completion.requests
        step = _StepRow(
            completion,
            requests=dumps_by_value(requests, _LATER, what=f"what task {tid!r} asked for")
            if requests
            else None,
            channel_ops=dumps_by_value(completion.channel_ops, _LATER, what=f"the channel writes of {tid!r}")
            if completion.channel_ops
            else None,
            result=dumps_by_value(result, _LATER, what=f"the result of task {tid!r}") if has_result else None,
        )
        with self._lock:
            self._seq += 1
            if tid in self._known:  # a task: known from the plan or from the step that added it
                self._done.add(tid)
            if requests is not None:
                self._known.update(_added_tasks(requests))
            self._store.record_step(
                self.run_id, self._seq, step, done=len(self._done), total=len(self._known)
            )

    def record_failure(self, failure: Failure) -> None:
        try:
            self._store.record_failure(self.run_id, failure)
        except StateStoreError as exc:  # the task's own error is what the run reports
            get_logger("graflow.state").warning("failure_not_recorded", run_id=self.run_id, error=str(exc))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        self.close()
        self._store.finish_run(self.run_id, status, error)

    def close(self) -> None:
        self._stop.set()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            try:
                self._store.renew_lease(self.run_id)
            except StateStoreError:
                continue  # the next step's write reports what is wrong


def _local_store(config: Mapping[str, Any]) -> StateStore:
    return LocalStore.from_config(config)


@hookimpl
def graflow_state_stores() -> Mapping[str, Callable[[Mapping[str, Any]], StateStore]]:
    return {"local": _local_store}
