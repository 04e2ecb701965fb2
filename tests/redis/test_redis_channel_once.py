"""Channel writes count once per submission (issue 16, item 5): a task that runs again writes nothing twice.

A worker opens a task's channel for the task's submission (its uid). These tests play two
attempts of one submission by opening the channel twice for the same uid, as a worker that
took over a dead worker's task does, and check the run's channel afterwards.
"""

from __future__ import annotations

from typing import Any

from graflow_redis.channel import RedisChannel


def attempt(config: dict[str, Any], submission: str | None) -> RedisChannel:
    return RedisChannel.from_config("run-1", {**config, "submission": submission})


def test_a_second_attempt_of_a_submission_repeats_none_of_the_first_attempts_writes(
    config: dict[str, Any],
) -> None:
    first = attempt(config, "uid-1")
    assert first.atomic_add("total", 5) == 5
    assert first.append("items", "a") == 1
    first.set("status", "half")
    # ...and its worker dies here. The submission runs again from the start:
    again = attempt(config, "uid-1")
    assert again.atomic_add("total", 5) == 5  # what the first attempt's add returned
    assert again.append("items", "a") == 1
    again.set("status", "half")
    assert again.atomic_add("total", 1) == 6  # beyond where the first attempt got: applied
    assert again.append("items", "b") == 2
    again.set("status", "done")

    assert again.get("total") == 6
    assert again.get("items") == ["a", "b"]
    assert again.get("status") == "done"


def test_other_submissions_and_writes_outside_a_task_are_not_deduplicated(config: dict[str, Any]) -> None:
    one, other, driver = attempt(config, "uid-1"), attempt(config, "uid-2"), attempt(config, None)
    one.atomic_add("total", 1)
    other.atomic_add("total", 1)
    driver.atomic_add("total", 1)
    driver.atomic_add("total", 1)
    assert driver.get("total") == 4


def test_a_deleted_key_stays_deleted_when_the_attempt_runs_again(config: dict[str, Any]) -> None:
    setup = attempt(config, None)
    setup.set("draft", "x")
    first = attempt(config, "uid-1")
    assert first.delete("draft") is True
    setup.set("draft", "written by another task since")
    again = attempt(config, "uid-1")
    assert again.delete("draft") is True  # the first attempt's answer; the new value is kept
    assert again.get("draft") == "written by another task since"
