"""``graflow run --queue redis`` reads the settings a worker reads, the same way."""

from __future__ import annotations

import pytest

from graflow.cli.run import backend_options


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
