"""The liveness file: touched on each heartbeat, checked by `graflow-worker status --self`."""

from __future__ import annotations

import os
import time

from graflow_worker import TaskWorker
from graflow_worker.cli import main
from graflow_worker.health import HealthFile, check_health_file


def test_the_health_file_is_touched_on_heartbeats_and_removed_on_stop(queue, tmp_path) -> None:
    path = tmp_path / "run" / "health"
    worker = TaskWorker(queue, worker_id="w1", heartbeat_interval=0.05, observers=[HealthFile(path)])
    worker.start()
    try:
        queue.wait_for(path.exists)
        assert path.read_text().startswith("w1 ")
        assert check_health_file(path, max_age=30)[0] is True
    finally:
        worker.stop(timeout=5)
    assert not path.exists()


def test_no_health_file_means_unhealthy_and_says_why(tmp_path) -> None:
    healthy, why = check_health_file(tmp_path / "missing", max_age=30)
    assert healthy is False
    assert "no health file at" in why
    assert "has not reached Redis yet" in why


def test_a_stale_health_file_is_unhealthy(tmp_path) -> None:
    path = tmp_path / "health"
    path.write_text("w1")
    old = time.time() - 120
    os.utime(path, (old, old))
    healthy, why = check_health_file(path, max_age=30)
    assert healthy is False
    assert "(limit 30s)" in why
    assert "cannot reach Redis or is stuck" in why


def test_status_self_exits_0_when_fresh_and_1_when_stale(tmp_path, capsys) -> None:
    path = tmp_path / "health"
    path.write_text("w1")
    assert main(["status", "--self", "--health-file", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ok: last heartbeat")
    old = time.time() - 100
    os.utime(path, (old, old))
    assert main(["status", "--self", "--health-file", str(path), "--max-age", "60"]) == 1
    assert capsys.readouterr().err.startswith("unhealthy: last heartbeat")


def test_status_self_without_a_health_file_is_a_usage_error(capsys, monkeypatch) -> None:
    monkeypatch.delenv("GRAFLOW_HEALTH_FILE", raising=False)
    assert main(["status", "--self"]) == 2
    assert "pass --health-file PATH or set GRAFLOW_HEALTH_FILE" in capsys.readouterr().err


def test_status_self_reads_the_health_file_from_the_environment(tmp_path, monkeypatch) -> None:
    path = tmp_path / "health"
    path.write_text("w1")
    monkeypatch.setenv("GRAFLOW_HEALTH_FILE", str(path))
    assert main(["status", "--self"]) == 0
