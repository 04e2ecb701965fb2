"""Keeping schedules (SPEC 19), as one suite every schedule store passes.

:class:`ScheduleStoreContract` holds the tests; a store runs them by subclassing it with a
``schedules`` fixture (see ``tests/core/schedule/test_local_schedules.py``; Redis's is in
``tests/redis``). The claim tests race real threads: exactly one claim of a tick may win.
"""

from __future__ import annotations

import threading

import pytest

from graflow.schedule import Schedule, ScheduleExistsError, ScheduleStore, UnknownScheduleError


def nightly(**fields: object) -> Schedule:
    return Schedule("nightly", "/srv/flows/etl.py:etl", **({"cron": "0 2 * * *"} | fields))  # type: ignore[arg-type]


class ScheduleStoreContract:
    """The tests; subclasses provide ``schedules``."""

    def test_a_schedule_is_kept_and_read_back_as_it_was(self, schedules: ScheduleStore) -> None:
        schedule = nightly(timezone="Europe/Paris", channel={"limit": 10})
        schedules.add(schedule)

        assert schedules.get("nightly") == schedule
        [(listed, state)] = schedules.all()
        assert listed == schedule and state.last_tick == 0 and state.fired == 0

    def test_a_name_that_is_taken_is_refused_unless_replaced(self, schedules: ScheduleStore) -> None:
        schedules.add(nightly())
        with pytest.raises(ScheduleExistsError, match="a schedule named 'nightly' exists"):
            schedules.add(nightly(cron="0 3 * * *"))

        schedules.add(nightly(cron="0 3 * * *"), replace=True)
        assert schedules.get("nightly").cron == "0 3 * * *"

    def test_unknown_names_are_refused_saying_how_to_list_them(self, schedules: ScheduleStore) -> None:
        for act in (
            lambda: schedules.get("nope"),
            lambda: schedules.remove("nope"),
            lambda: schedules.set_paused("nope", True),
            lambda: schedules.state("nope"),
        ):
            with pytest.raises(UnknownScheduleError, match="graflow schedule list"):
                act()

    def test_pause_and_resume_and_remove(self, schedules: ScheduleStore) -> None:
        schedules.add(nightly())
        schedules.set_paused("nightly", True)
        assert schedules.get("nightly").paused
        schedules.set_paused("nightly", False)
        assert not schedules.get("nightly").paused

        schedules.remove("nightly")
        assert schedules.all() == []

    def test_of_many_threads_claiming_one_tick_exactly_one_wins(self, schedules: ScheduleStore) -> None:
        schedules.add(nightly())
        wins: list[bool] = []
        start = threading.Barrier(8)

        def claim() -> None:
            start.wait()
            wins.append(schedules.claim("nightly", 1_800_000_000.0))

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(wins) == [False] * 7 + [True]
        assert schedules.state("nightly").last_tick == 1_800_000_000.0
        assert not schedules.claim("nightly", 1_799_999_000.0)  # an older tick never fires after a newer one
        assert schedules.claim("nightly", 1_800_000_060.0)

    def test_a_firing_after_an_upstream_run_is_claimed_once(self, schedules: ScheduleStore) -> None:
        schedules.add(nightly())
        schedules.add(Schedule("report", "/srv/report.py", after="nightly"))

        assert schedules.claim_after("report", "run-1")
        assert not schedules.claim_after("report", "run-1")
        assert schedules.claim_after("report", "run-2")
        assert [s.name for s in schedules.dependents("nightly")] == ["report"]

    def test_firings_are_recorded(self, schedules: ScheduleStore) -> None:
        schedules.add(nightly())
        schedules.record("nightly", "run-1", "running")
        schedules.record("nightly", "run-1", "succeeded")
        schedules.record("nightly", "run-2", "running")

        state = schedules.state("nightly")
        assert (state.last_run, state.last_status, state.fired) == ("run-2", "running", 2)
