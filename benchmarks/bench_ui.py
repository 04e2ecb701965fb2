"""The dashboard (graflow-ui) with many runs, and with a big run: how fast the pages answer and draw.

Measured over a real ``graflow ui`` server (uvicorn on loopback) and a local store:

* ``api_runs_*`` -- ``GET /api/runs`` (a page of 50) with 10,000 runs in the store: the newest
  page, a page filtered by status, and the last page (offset 9,950). The store's runs are one
  real durable run cloned 10,000 times at the SQL level (plan, steps and results included),
  so the store holds what 10,000 runs would. Goal: under 200 ms.
* ``runs_page_browser`` -- the runs page in Chromium (Playwright), from navigation until the
  table of the newest 50 runs is drawn. Goal: under 200 ms.
* ``run_page_1000_browser`` -- the page of one run of 1,000 tasks (ten stages, each a parallel
  group of 100), from navigation until the graph's 1,000 tasks and the timeline are drawn;
  ``api_run_1000`` and ``api_graph_1000`` are its two API calls on their own. Goal: under 1 s.

Each figure is the median of ``--repeats`` samples after one warm-up.

Usage::

    python benchmarks/bench_ui.py            # a table
    python benchmarks/bench_ui.py --json     # raw samples and medians
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

logging.disable(logging.CRITICAL)

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from graflow import parallel, task, workflow  # noqa: E402
from graflow.state.local import LocalStore  # noqa: E402
from graflow_ui.app import create_app  # noqa: E402
from graflow_ui.settings import UISettings  # noqa: E402

RUNS = 10_000
TASKS = 1_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def _durable_run(state: Path, name: str, stages: int, width: int) -> str:
    """Run a workflow of ``stages`` parallel groups of ``width`` tasks, durably; its run id."""
    with workflow(name) as wf:
        groups = []
        for stage in range(stages):
            members = []
            for member in range(width):

                @task(f"s{stage}_t{member}")
                def step() -> dict[str, int]:
                    return {"rows": 100}

                members.append(step)
            groups.append(parallel(*members).set_group_name(f"stage_{stage}"))
        for before, after in zip(groups, groups[1:], strict=False):
            before >> after
    wf.execute(durable=True, config={"state_dir": str(state)})
    store = LocalStore(state)
    try:
        return store.runs(workflow=name)[0].run_id
    finally:
        store.close()


def _clone_runs(state: Path, run_id: str, count: int) -> None:
    """``count`` copies of ``run_id`` (rows of runs, plans, completions, results), a second apart, half failed."""
    db = sqlite3.connect(state / "runs.db")
    with db:
        started = time.time() - count
        for number in range(count):
            new = uuid.uuid4().hex
            status = "failed" if number % 2 else "succeeded"
            db.execute(
                "INSERT INTO runs SELECT ?, workflow, ?, ?, ? + 1, tasks_done, tasks_total, error, NULL, NULL, "
                "queue_backend, channel_backend FROM runs WHERE run_id = ?",
                (new, status, started + number, started + number, run_id),
            )
            for table in ("plans", "completions", "results"):
                columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")][1:]
                listed = ", ".join(columns)
                db.execute(
                    f"INSERT INTO {table} SELECT ?, {listed} FROM {table} WHERE run_id = ?", (new, run_id)
                )
    db.close()


class _Server:
    def __init__(self, state: Path) -> None:
        self.port = _free_port()
        settings = UISettings(store_config={"state_dir": str(state)}, port=self.port, log_dir=state / "logs")
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(settings), port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _samples(repeats: int, measure: Callable[[], float]) -> list[float]:
    measure()  # warm-up
    return [measure() for _ in range(repeats)]


def _get(client: httpx.Client, path: str) -> Callable[[], float]:
    def measure() -> float:
        start = time.perf_counter()
        answer = client.get(path)
        elapsed = time.perf_counter() - start
        answer.raise_for_status()
        return elapsed

    return measure


def _browser_samples(repeats: int, url: str, ready: str) -> list[float]:
    """Seconds from navigation until ``ready`` (a JavaScript expression) holds, in Chromium."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def measure() -> float:
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_function(ready, polling="raf", timeout=30_000)
            return time.perf_counter() - start

        try:
            return _samples(repeats, measure)
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="graflow-bench-ui-"))
    many, big = root / "many", root / "big"
    try:
        seed = _durable_run(many, "nightly", stages=2, width=3)
        _clone_runs(many, seed, RUNS - 1)
        big_run = _durable_run(big, "big", stages=TASKS // 100, width=100)
        samples: dict[str, list[float]] = {}
        with _Server(many) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            total = client.get("/api/runs?limit=1").json()["total"]
            assert total == RUNS, f"the store holds {total} runs, not {RUNS}"
            samples["api_runs_newest"] = _samples(args.repeats, _get(client, "/api/runs?limit=50"))
            samples["api_runs_failed"] = _samples(
                args.repeats, _get(client, "/api/runs?status=failed&limit=50")
            )
            samples["api_runs_last_page"] = _samples(
                args.repeats, _get(client, "/api/runs?limit=50&offset=9950")
            )
            samples["runs_page_browser"] = _browser_samples(
                args.repeats,
                f"{server.url}/runs",
                "document.querySelectorAll('tr[data-run-id]').length === 50",
            )
        with _Server(big) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            samples["api_run_1000"] = _samples(args.repeats, _get(client, f"/api/runs/{big_run}"))
            samples["api_graph_1000"] = _samples(args.repeats, _get(client, f"/api/runs/{big_run}/graph"))
            samples["run_page_1000_browser"] = _browser_samples(
                args.repeats,
                f"{server.url}/runs/{big_run}",
                f"document.querySelectorAll('#graph .node').length === {TASKS}"  # the 10 groups are boxes
                " && document.querySelector('#timeline svg') !== null",
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    if args.json:
        print(json.dumps({"samples": samples, "medians": medians}, indent=2))
        return
    goals = {"api_runs": 0.2, "runs_page": 0.2, "run_page": 1.0}
    for name, value in medians.items():
        goal = next((f"< {g * 1000:.0f} ms" for prefix, g in goals.items() if name.startswith(prefix)), "")
        print(f"{name:<24} {value * 1000:8.1f} ms   {goal}")


if __name__ == "__main__":
    main()
