"""What a schedule is (SPEC 19): refused when it could never fire right, and when its ticks fall."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from graflow.exceptions import ConfigError
from graflow.schedule import Schedule

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, zone: ZoneInfo = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "61 * * * *"}, r"'61 \* \* \* \*' is not a cron expression \(Bad minute\); five fields"),
        ({"cron": "* * *"}, "is not a cron expression"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Base"}, "unknown timezone 'Mars/Base'; use an IANA name"),
        ({}, "needs exactly one of --cron EXPR, --every SECONDS or --after OTHER \\(given: none\\)"),
        ({"cron": "* * * * *", "every": 60}, "given: cron, every"),
        ({"every": 0.5}, "--every takes a whole number of seconds >= 1"),
        ({"every": float("nan")}, "--every takes"),
        ({"every": float("inf")}, "--every takes"),
        ({"after": "nightly"}, "cannot run after itself"),
        ({"every": 60, "queue": "gpu"}, "queue must be one of redis, memory"),
    ],
)
def test_a_schedule_that_could_never_fire_right_is_refused_saying_what_to_write(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Schedule("nightly", "flows/etl.py", **fields)  # type: ignore[arg-type]


def test_a_name_is_one_word() -> None:
    with pytest.raises(ConfigError, match="a word without spaces"):
        Schedule("night ly", "flows/etl.py", every=60)


def test_a_cron_tick_falls_in_its_timezone() -> None:
    nightly = Schedule(
        "nightly", "etl.py", cron="0 2 * * *", timezone="Europe/Paris", created_at=at("2026-11-01T00:00")
    )

    assert nightly.latest_tick(at("2026-11-29T10:00")) == at("2026-11-29T02:00")
    assert nightly.next_tick(at("2026-11-29T10:00")) == at("2026-11-30T02:00")
    assert nightly.latest_tick(at("2026-11-29T02:00")) == at("2026-11-29T02:00")  # a tick at "now" is due


def test_ticks_missed_for_days_collapse_into_the_latest_one() -> None:
    every_minute = Schedule(
        "poll", "poll.py", cron="* * * * *", created_at=at("2026-11-01T00:00", ZoneInfo("UTC"))
    )

    tick = every_minute.latest_tick(at("2026-11-29T10:07:30", ZoneInfo("UTC")))

    assert tick == at("2026-11-29T10:07", ZoneInfo("UTC"))


def test_no_tick_falls_before_the_schedule_existed() -> None:
    created = at("2026-11-29T10:03")
    five = Schedule("five", "x.py", cron="*/5 * * * *", timezone="Europe/Paris", created_at=created)

    assert five.latest_tick(at("2026-11-29T10:04")) is None
    assert five.latest_tick(at("2026-11-29T10:05")) == at("2026-11-29T10:05")


def test_every_n_seconds_counts_from_when_it_was_added() -> None:
    poll = Schedule("poll", "poll.py", every=300, created_at=1000.0)

    assert poll.latest_tick(1299.0) is None
    assert poll.latest_tick(1300.0) == 1300.0
    assert poll.latest_tick(2150.0) == 1900.0
    assert poll.next_tick(2150.0) == 2200.0


def test_a_schedule_after_another_has_no_ticks_of_its_own() -> None:
    report = Schedule("report", "report.py", after="nightly")

    assert report.latest_tick(1e12) is None and report.next_tick(1e12) is None
    assert report.trigger == "after nightly"


def test_a_schedule_is_plain_data_and_back() -> None:
    nightly = Schedule(
        "nightly", "etl.py:etl", cron="0 2 * * 1-5", timezone="Asia/Tokyo", channel={"day": "today"}
    )

    assert Schedule.from_json(nightly.to_json()) == nightly
    assert nightly.trigger == "cron 0 2 * * 1-5 (Asia/Tokyo)"
