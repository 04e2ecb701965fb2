"""Fixtures for graflow-ui: real durable runs (made by `graflow run`), the app over their store.

* ``make_runs(*flows)``: runs the workflow files of ``tests/ui/flows`` as durable runs in a
  fresh state directory (``graflow run --state-dir``, a real process each) and returns it;
* ``client_for(state_dir, **settings)``: a TestClient of the dashboard over that directory,
  addressed as 127.0.0.1 (the dashboard answers to loopback names only);
* ``live_server(state_dir, **settings)``: the dashboard served by uvicorn on a free port, for
  Server-Sent Events and the browser;
* ``browser`` / ``page``: Debian's Chromium driven by Playwright (from PyPI), and a fresh page
  in it whose script errors fail the test. Without either the test skips, saying how to get
  them; with ``CI=true`` it fails instead (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from graflow.state.local import LocalStore
from graflow_ui.app import create_app
from graflow_ui.settings import UISettings
from tests.support.ports import free_port
from tests.support.services import missing
from tests.support.waiting import wait_until

FLOWS = Path(__file__).parent / "flows"
#: The states of flows/review.py's nodes, in graph order, once it suspended waiting for its approval.
SUSPENDED_REVIEW = {
    "extract": "done",
    "transform": "done",
    "totals": "done",
    "customers": "done",
    "approve": "waiting",
    "publish": "pending",
}
ROOT = Path(__file__).resolve().parents[2]


def graflow(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m graflow ARGS`` in a process of its own, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "graflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=check,
    )


def run_flow(state_dir: Path, flow: str) -> subprocess.CompletedProcess[str]:
    """``graflow run flows/FLOW.py --state-dir STATE_DIR``."""
    return graflow("run", str(FLOWS / f"{flow}.py"), "--state-dir", str(state_dir))


def run_ids(state_dir: Path) -> dict[str, str]:
    """Workflow name -> run id of the newest run of each workflow in ``state_dir``."""
    store = LocalStore(state_dir)
    try:
        found: dict[str, str] = {}
        for info in store.runs():
            found.setdefault(info.workflow, info.run_id)
        return found
    finally:
        store.close()


@pytest.fixture
def make_runs(tmp_path: Path) -> Callable[..., Path]:
    def make(*flows: str, state_dir: Path | None = None) -> Path:
        state = state_dir or tmp_path / "state"
        for flow in flows:
            run_flow(state, flow)
        return state

    return make


def settings_for(state_dir: Path, tmp_path: Path, **options: Any) -> UISettings:
    return UISettings(store_config={"state_dir": str(state_dir)}, log_dir=tmp_path / "ui-logs", **options)


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(state_dir: Path, **options: Any) -> TestClient:
        client = TestClient(
            create_app(settings_for(state_dir, tmp_path, **options)),
            base_url="http://127.0.0.1:8265",
            raise_server_exceptions=False,
        )
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


class LiveServer:
    """The dashboard served by uvicorn in a thread of the test process."""

    def __init__(self, settings: UISettings) -> None:
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="graflow-ui-test-server", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "the dashboard to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def start(state_dir: Path, **options: Any) -> LiveServer:
        options.setdefault("port", free_port(range(8300, 8400)))
        options.setdefault("poll_interval", 0.2)
        server = LiveServer(settings_for(state_dir, tmp_path, **options)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


#: Flags for a headless Chromium on a machine with no outside network (and as root, no sandbox).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = os.environ.get("GRAFLOW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        missing("no Chromium to drive: `apt-get install -y chromium` (or `bash .ci/chromium.sh`)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright is not installed: `pip install playwright` (it drives the system's Chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.set_default_timeout(30_000)
    yield opened
    context.close()
    assert errors == [], f"the page's scripts failed: {errors}"
