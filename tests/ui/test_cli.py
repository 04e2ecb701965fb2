"""``graflow ui`` (SPEC 20): defaults, its URL first, refusals in one line with exit status 2."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.ui.conftest import ROOT, graflow


def test_graflow_ui_prints_its_url_and_serves_a_durable_local_run_with_no_other_setup(
    make_runs: Callable[..., Path],
) -> None:
    state = make_runs("broken")
    server = subprocess.Popen(
        [sys.executable, "-m", "graflow", "ui", "--state-dir", str(state), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith(f"graflow ui: the state directory {state} at http://127.0.0.1:")
        url = first.split(" at ")[1].split()[0]
        runs = httpx.get(f"{url}api/runs", timeout=20).json()
        assert runs["runs"][0]["workflow"] == "broken"
        assert httpx.get(f"{url}runs", timeout=20).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 130  # interrupted, as every graflow command


def test_a_host_other_than_loopback_without_a_token_is_refused_in_one_line(tmp_path: Path) -> None:
    done = graflow("ui", "--state-dir", str(tmp_path), "--host", "0.0.0.0")

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert (
        "--host 0.0.0.0 lets other machines in; give a token (--token T or GRAFLOW_UI_TOKEN)" in done.stderr
    )


def test_a_port_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = graflow("ui", "--state-dir", str(tmp_path), "--port", str(port))

    assert done.returncode == 2
    assert (
        done.stderr == f"graflow ui: error: port {port} on 127.0.0.1 is in use; choose another with --port\n"
    )


def test_graflow_help_lists_ui_and_its_help_shows_the_defaults() -> None:
    listed = graflow("--help")
    helped = graflow("ui", "--help")

    assert listed.returncode == 0 and "ui " in listed.stdout
    assert "default 127.0.0.1" in helped.stdout and "default 8265" in helped.stdout
    assert "GRAFLOW_UI_TOKEN" in helped.stdout
