"""Structured logs: JSON lines or console lines, from structlog and stdlib loggers alike."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from graflow_worker.logging import configure_logging


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_format_writes_one_object_per_line(capsys) -> None:
    configure_logging("INFO", "json", worker_id="w1")
    structlog.get_logger("graflow_worker").info("task_finished", task_id="t1", status="succeeded")
    logging.getLogger("redis").warning("reconnecting")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "task_finished"
    assert lines[0]["task_id"] == "t1"
    assert lines[0]["level"] == "info"
    assert lines[0]["worker_id"] == "w1"
    assert "timestamp" in lines[0]
    assert lines[1]["event"] == "reconnecting"
    assert lines[1]["logger"] == "redis"
    assert lines[1]["level"] == "warning"


def test_level_filters_lower_events(capsys) -> None:
    configure_logging("WARNING", "json")
    log = structlog.get_logger("graflow_worker")
    log.info("hidden")
    log.warning("shown")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["shown"]


def test_console_format_is_for_people(capsys) -> None:
    configure_logging("DEBUG", "console")
    structlog.get_logger("graflow_worker").info("worker_started", max_concurrent_tasks=4)
    err = capsys.readouterr().err
    assert "worker_started" in err
    assert "max_concurrent_tasks=4" in err
    assert not err.lstrip().startswith("{")


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'; use DEBUG, INFO, WARNING or ERROR"):
        configure_logging("LOUD", "json")
