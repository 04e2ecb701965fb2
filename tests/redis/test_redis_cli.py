"""``graflow run --queue redis`` reads the settings a worker reads, the same way."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from graflow.cli.main import build_parser, main
from graflow.cli.run import backend_options
from graflow.cli.stores import store_arguments, store_config
from graflow.exceptions import ConfigError
from tests.redis.thread_worker import ThreadWorker


def test_the_redis_queue_reads_redis_url_and_key_prefix_from_the_environment_like_a_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://fleet:6379/2")
    monkeypatch.setenv("GRAFLOW_KEY_PREFIX", "nightly")

    assert backend_options("redis", None)["config"] == {
        "redis_url": "redis://fleet:6379/2",
        "key_prefix": "nightly",
    }
    assert backend_options("redis", "redis://mine:6379/0", "mine")["config"] == {
        "redis_url": "redis://mine:6379/0",
        "key_prefix": "mine",
    }
    assert backend_options("memory", None) == {}  # the memory queue ignores them


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "flow.py", "--queue", "redis", "--allow-unsigned"],
        ["resume", "r1", "--redis-url", "redis://r:1/0", "--allow-unsigned"],
        ["rerun", "r1", "--from", "t", "--redis-url", "redis://r:1/0", "--allow-unsigned"],
        ["runs", "--redis-url", "redis://r:1/0", "--allow-unsigned"],
        ["runs", "--redis-url", "redis://r:1/0", "--allow-unsigned", "show", "r1"],
    ],
)
def test_every_command_that_reads_redis_takes_allow_unsigned(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).allow_unsigned is True


def test_allow_unsigned_reaches_the_run_and_the_store_and_the_resume_hint() -> None:
    assert backend_options("redis", "redis://r:1/0", allow_unsigned=True)["config"]["allow_unsigned"] is True
    assert "allow_unsigned" not in backend_options("redis", "redis://r:1/0")["config"]
    args = argparse.Namespace(state_dir=None, redis_url="redis://r:1/0", key_prefix="p", allow_unsigned=True)
    config = store_config(args)
    assert config == {"redis_url": "redis://r:1/0", "key_prefix": "p", "allow_unsigned": True}
    assert store_arguments(config) == [
        "--redis-url",
        "redis://r:1/0",
        "--key-prefix",
        "p",
        "--allow-unsigned",
    ]


def test_allow_unsigned_without_redis_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="--allow-unsigned needs --queue redis"):
        backend_options("memory", None, allow_unsigned=True)
    args = argparse.Namespace(state_dir=None, redis_url=None, key_prefix=None, allow_unsigned=True)
    with pytest.raises(ConfigError, match="use it with --redis-url URL"):
        store_config(args)


def _flow(tmp_path: Path, body: str) -> Path:
    """A workflow file whose ``with workflow('w')`` block is ``body`` (indented)."""
    flow = tmp_path / "flow.py"
    flow.write_text(
        "from graflow.core.decorators import task\n"
        "from graflow.core.workflow import workflow\n"
        f"with workflow('w') as wf:\n{body}"
    )
    return flow


def test_graflow_run_with_a_malformed_redis_url_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = _flow(tmp_path, "    task('a')(lambda: 1)\n")
    code = main(["run", str(flow), "--queue", "redis", "--redis-url", "nope"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "graflow: error: 'nope' is not a Redis URL (Redis URL must specify one of the following schemes "
        "(redis://, rediss://, unix://)); give one like redis://host:6379/0 (config redis_url, --redis-url "
        "or REDIS_URL)"
    ]


def test_a_task_failing_on_a_worker_shows_the_remote_traceback_then_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
    key_prefix: str,
    thread_worker: ThreadWorker,
) -> None:
    flow = _flow(tmp_path, "    @task\n    def explode():\n        raise ValueError('bad row 7')\n")
    code = main(["run", str(flow), "--queue", "redis", "--redis-url", redis_url, "--key-prefix", key_prefix])
    err = capsys.readouterr().err
    assert code == 1
    assert "remote traceback (" in err  # as the worker formatted it
    assert ", line 6, in explode" in err
    assert err.count("ValueError: bad row 7") == 2  # the traceback's last line, then the error's line
    assert "graflow: error: task 'explode' failed: ValueError: bad row 7" in err.splitlines()
