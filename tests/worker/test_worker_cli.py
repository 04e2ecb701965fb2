"""The graflow-worker command line: options, their environment variables, status output."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys

import pytest

from graflow_worker.cli import build_parser, build_status_parser, main
from graflow_worker.options import CONNECTION_OPTIONS, WORKER_OPTIONS, redis_url
from graflow_worker.status import fleet_report, render_report


def test_defaults_match_the_spec() -> None:
    args = build_parser(environ={}).parse_args([])
    assert args.max_concurrent_tasks == 4
    assert args.graceful_shutdown_timeout == 30.0
    assert args.visibility_timeout == 30.0
    assert args.key_prefix == "graflow"
    assert args.worker_id is None
    assert args.metrics_port is None
    assert args.log_format == "json"
    assert args.queues == ["default"]
    assert redis_url(args) == "redis://localhost:6379/0"


def test_the_seed_command_line_parses() -> None:
    args = build_parser(environ={}).parse_args(["--worker-id", "worker-1", "--max-concurrent-tasks", "4"])
    assert (args.worker_id, args.max_concurrent_tasks) == ("worker-1", 4)


ENV_SAMPLES = {
    "REDIS_URL": ("redis://r:1/2", "redis://r:1/2"),
    "REDIS_HOST": ("redis-service", "redis-service"),
    "REDIS_PORT": ("6380", 6380),
    "REDIS_DB": ("3", 3),
    "GRAFLOW_KEY_PREFIX": ("team-a", "team-a"),
    "GRAFLOW_WORKER_ID": ("worker-7", "worker-7"),
    "MAX_CONCURRENT_TASKS": ("16", 16),
    "GRAFLOW_POOL": ("Processes", "processes"),
    "GRAFLOW_MAX_TASKS_PER_CHILD": ("100", 100),
    "GRAFLOW_GRACEFUL_SHUTDOWN_TIMEOUT": ("45", 45.0),
    "GRAFLOW_VISIBILITY_TIMEOUT": ("2.5", 2.5),
    "GRAFLOW_HEARTBEAT_INTERVAL": ("0.5", 0.5),
    "GRAFLOW_METRICS_PORT": ("9100", 9100),
    "GRAFLOW_HEALTH_FILE": ("/tmp/health", "/tmp/health"),
    "GRAFLOW_SECRET_KEY": ("new,old", "new,old"),
    "GRAFLOW_ALLOW_UNSIGNED": ("true", True),
    "GRAFLOW_SCHEDULER": ("1", True),
    "GRAFLOW_QUEUES": ("gpu, default", ["gpu", "default"]),
    "GRAFLOW_MAX_DELIVERIES": ("3", 3),
    "GRAFLOW_LOG_LEVEL": ("debug", "DEBUG"),
    "GRAFLOW_LOG_FORMAT": ("console", "console"),
}


def test_every_option_has_a_sample_here() -> None:
    assert sorted(ENV_SAMPLES) == sorted(o.env for o in (*CONNECTION_OPTIONS, *WORKER_OPTIONS))


@pytest.mark.parametrize("option", [*CONNECTION_OPTIONS, *WORKER_OPTIONS], ids=lambda o: o.env)
def test_every_option_reads_its_environment_variable(option) -> None:
    raw, expected = ENV_SAMPLES[option.env]
    args = build_parser(environ={option.env: raw}).parse_args([])
    assert getattr(args, option.dest) == expected


def test_a_flag_wins_over_its_environment_variable() -> None:
    env = {"MAX_CONCURRENT_TASKS": "8", "REDIS_HOST": "redis-service", "REDIS_PORT": "6380"}
    args = build_parser(environ=env).parse_args(["--max-concurrent-tasks", "2"])
    assert args.max_concurrent_tasks == 2
    assert redis_url(args) == "redis://redis-service:6380/0"


def test_redis_url_wins_over_host_and_port() -> None:
    args = build_parser(environ={"REDIS_HOST": "ignored"}).parse_args(["--redis-url", "redis://cache:6390/2"])
    assert redis_url(args) == "redis://cache:6390/2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--max-concurrent-tasks", "0"],
            "argument --max-concurrent-tasks/--concurrency: the value must be a whole number >= 1",
        ),
        (["--graceful-shutdown-timeout", "-2"], "must be a finite number of seconds >= 0, got '-2'"),
        (["--visibility-timeout", "0"], "must be a finite number of seconds > 0, got '0'"),
        (["--visibility-timeout", "nan"], "must be a finite number of seconds > 0, got 'nan'"),
        (["--heartbeat-interval", "inf"], "must be a finite number of seconds > 0, got 'inf'"),
        (["--metrics-port", "70000"], "a port must be a whole number between 0 and 65535, got 70000"),
        (["--redis-db", "-1"], "the value must be a whole number >= 0, got -1"),
        (["--log-format", "xml"], "invalid choice: 'xml'"),
        (["--queues", "gpu,,io"], "argument --queues: --queues: a queue name is 1-64 letters"),
        (["--pool", "fibers"], "argument --pool: must be 'threads' or 'processes', got 'fibers'"),
        (
            ["--concurrency", "0"],
            "argument --max-concurrent-tasks/--concurrency: the value must be a whole number >= 1",
        ),
        (["--max-tasks-per-child", "ten"], "must be a whole number >= 1, got 'ten'"),
        (
            ["--max-tasks-per-child", "0"],
            "argument --max-tasks-per-child: the value must be a whole number >= 1, got 0",
        ),
        (["--visibility-timeout", "inf"], "must be a finite number of seconds > 0, got 'inf'"),
        (["--graceful-shutdown-timeout", "nan"], "must be a finite number of seconds >= 0, got 'nan'"),
    ],
)
def test_bad_values_are_refused_naming_the_option(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(environ={}).parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_value_in_an_environment_variable_is_refused_as_its_flag_would_be(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(environ={"GRAFLOW_VISIBILITY_TIMEOUT": "inf"}).parse_args([])
    assert exit_info.value.code == 2
    assert "argument --visibility-timeout: the value must be a finite number of seconds > 0, got 'inf'" in (
        capsys.readouterr().err
    )


def test_the_pool_is_threads_unless_processes_are_asked_for() -> None:
    assert build_parser(environ={}).parse_args([]).pool == "threads"
    args = build_parser(environ={}).parse_args(["--pool", "processes", "--concurrency", "2"])
    assert (args.pool, args.max_concurrent_tasks, args.max_tasks_per_child) == ("processes", 2, None)


def test_a_bad_pool_in_the_environment_is_refused_like_a_bad_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(environ={"GRAFLOW_POOL": "gevent"}).parse_args([])
    assert exit_info.value.code == 2
    assert (
        "argument --pool: must be 'threads' or 'processes', got 'gevent' (from $GRAFLOW_POOL; fix or unset it)"
        in capsys.readouterr().err
    )


def test_max_tasks_per_child_without_processes_exits_2_saying_what_to_add(capsys) -> None:
    code = main(["--redis-url", "redis://127.0.0.1:1/0", "--max-tasks-per-child", "5"])
    assert code == 2
    assert (
        "max_tasks_per_child replaces child processes, so it needs pool='processes'"
        in capsys.readouterr().err
    )


def test_an_empty_environment_variable_means_the_default() -> None:
    args = build_parser(environ={"MAX_CONCURRENT_TASKS": ""}).parse_args([])
    assert args.max_concurrent_tasks == 4


def test_status_has_the_connection_options() -> None:
    args = build_status_parser(environ={"REDIS_URL": "redis://r:1/0"}).parse_args(
        ["--key-prefix", "p", "--json"]
    )
    assert (args.key_prefix, args.json, redis_url(args)) == ("p", True, "redis://r:1/0")


def test_help_lists_every_environment_variable(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser(environ={}).parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for option in (*CONNECTION_OPTIONS, *WORKER_OPTIONS):
        assert f"env {option.env}" in out
    assert "graflow-worker status [options]" in out


def test_allow_unsigned_is_a_switch_off_by_default() -> None:
    assert build_parser(environ={}).parse_args([]).allow_unsigned is False
    assert build_parser(environ={}).parse_args(["--allow-unsigned"]).allow_unsigned is True
    assert build_parser(environ={"GRAFLOW_ALLOW_UNSIGNED": "0"}).parse_args([]).allow_unsigned is False


def test_a_worker_refuses_to_start_on_a_redis_off_loopback_without_a_key() -> None:
    pytest.importorskip("graflow_redis.queue")
    env = {"PATH": "/usr/bin:/bin"}  # no GRAFLOW_SECRET_KEY, no GRAFLOW_ALLOW_UNSIGNED
    done = subprocess.run(
        [sys.executable, "-m", "graflow_worker", "--redis-url", "redis://192.0.2.10:6379/0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "graflow-worker: error: Redis at redis://192.0.2.10:6379/0 is not on loopback" in done.stderr
    assert "GRAFLOW_SECRET_KEY=<key>" in done.stderr and "--allow-unsigned" in done.stderr


def _worker(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "graflow_worker", *argv], capture_output=True, text=True, env=env, timeout=60
    )


def _not_logs(stderr: str) -> list[str]:
    """The lines of ``stderr`` that are not the worker's JSON log events."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def test_a_metrics_port_in_use_is_one_line_and_exit_status_2() -> None:
    pytest.importorskip("graflow_redis.queue")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # any port the system gives: ours until the test ends
        taken.listen()
        port = taken.getsockname()[1]
        done = _worker("--metrics-port", str(port), "--redis-url", "redis://127.0.0.1:6379/0")
    assert done.returncode == 2
    assert _not_logs(done.stderr) == [
        f"graflow-worker: error: --metrics-port {port}: cannot listen there (Address already in use); "
        "choose a free port, or stop what listens on it"
    ]


@pytest.mark.parametrize("argv", [[], ["status"]], ids=["worker", "status"])
def test_a_malformed_redis_url_is_one_line_and_exit_status_2(argv: list[str]) -> None:
    pytest.importorskip("graflow_redis.queue")
    done = _worker(*argv, "--redis-url", "http://user:secret@cache:6379")
    assert done.returncode == 2
    [line] = _not_logs(done.stderr)
    assert "'http://***@cache:6379' is not a Redis URL" in line
    assert "give one like redis://host:6379/0" in line
    assert "secret" not in line


def test_status_reports_an_unreachable_redis_and_exits_1(capsys, unused_port) -> None:
    pytest.importorskip("graflow_redis.queue")
    code = main(["status", "--redis-url", f"redis://127.0.0.1:{unused_port}/0"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot reach Redis at redis://127.0.0.1:{unused_port}/0" in err
    assert "check --redis-url or REDIS_HOST/REDIS_PORT" in err


def fleet(queue) -> dict:
    queue.heartbeat(
        "worker-1",
        {
            "worker_id": "worker-1",
            "host": "node-a",
            "pid": 41,
            "queues": ["gpu", "default"],
            "state": "running",
            "started": 1000.0,
            "max_concurrent_tasks": 4,
            "running": [
                {"task_id": "transform", "session_id": "abcdef123456", "attempt": 2, "since": 1090.0}
            ],
            "tasks_processed": 12,
            "tasks_succeeded": 11,
            "tasks_failed": 1,
            "tasks_duplicate": 2,
            "total_execution_time": 3.5,
        },
    )
    queue.dead.append(
        {"id": "5-0", "task": "bad", "reason": "signature mismatch", "at": 1095.0, "payload": b"xx"}
    )
    return fleet_report(queue)


def test_status_report_lists_workers_what_they_run_and_the_queue(queue, make_task) -> None:
    queue.put(make_task("waiting", lambda: 1))
    report = fleet(queue)
    assert report["queue_depth"] == 1
    assert report["dead_letter_count"] == 1
    assert report["tasks_in_flight"] == 1
    text = render_report(report, now=1100.0)
    lines = text.splitlines()
    assert lines[0] == ("fleet 'stub': 1 live worker(s), 1 task(s) running, queue depth 1, dead letters 1")
    header, row = lines[2].split(), lines[3].split()
    assert header[:5] == ["WORKER", "HOST", "PID", "QUEUES", "STATE"]
    assert header[6:10] == ["PROCESSED", "OK", "FAILED", "DUPLICATE"]
    assert row == [
        "worker-1",
        "node-a",
        "41",
        "gpu,default",
        "running",
        "1/4",
        "12",
        "11",
        "1",
        "2",
        "3.50s",
        "100s",
    ]
    assert "  worker-1: running 'transform' (run abcdef12, attempt 2, for 10s)" in lines
    assert "  5-0 task 'bad' (5s ago): signature mismatch" in lines


def test_status_report_with_no_worker_says_how_to_start_one(queue) -> None:
    text = render_report(fleet_report(queue), now=0.0)
    assert "0 live worker(s)" in text
    assert "no live worker: start one with `graflow-worker --key-prefix stub --redis-url ...`" in text


def test_status_json_is_plain_data(queue, monkeypatch, capsys) -> None:
    fleet(queue)
    monkeypatch.setattr("graflow_worker.cli.build_queue", lambda args, **overrides: queue)
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dead_letters"][0]["payload"] == "<2 bytes>"
    assert [w["worker_id"] for w in report["workers"]] == ["worker-1"]
    assert report["workers"][0]["tasks_processed"] == 12


def test_plugin_adds_worker_and_fleet_to_the_graflow_command() -> None:
    from graflow_worker import cli, plugin

    parser = argparse.ArgumentParser(prog="graflow")
    plugin.graflow_cli_commands(parser.add_subparsers(dest="command"))
    run_args = parser.parse_args(["worker", "--worker-id", "w9", "--max-concurrent-tasks", "3"])
    assert run_args.func is cli.run
    assert (run_args.worker_id, run_args.max_concurrent_tasks) == ("w9", 3)
    fleet_args = parser.parse_args(["fleet", "--json"])
    assert fleet_args.func is cli.status
    assert fleet_args.json is True


def test_plugin_is_registered_under_the_graflow_entry_point_group() -> None:
    from importlib import metadata

    names = {ep.name: ep.value for ep in metadata.entry_points(group="graflow")}
    assert names.get("worker") == "graflow_worker.plugin"


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "graflow.worker.main", "--help"],
        [sys.executable, "-m", "graflow_worker", "--help"],
    ],
    ids=["kernel-alias", "package"],
)
def test_module_entry_points_reach_the_worker_cli(command) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: graflow-worker")
    assert "--max-concurrent-tasks N" in done.stdout
