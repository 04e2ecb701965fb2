"""Retries: ``@task(max_retries=N)`` / ``@task(retry_policy=RetryPolicy(...))`` (SPEC section 9).

Tests that exercise the engine's waiting replace ``time`` in ``graflow.core.engine`` with a
recorder, so the backoff the engine asks for is checked without waiting for it.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from graflow import RetryPolicy as TopLevelRetryPolicy
from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.handlers.group_policy import ErrorHandlingPolicy
from graflow.core.retry import RetryPolicy
from graflow.core.workflow import workflow
from graflow.exceptions import CycleLimitExceededError

NO_WAIT = RetryPolicy(max_retries=2, initial_interval=0, jitter=False)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the engine asks for between attempts (nothing actually sleeps)."""
    recorded: list[float] = []
    fake_time = SimpleNamespace(perf_counter=time.perf_counter, time=time.time, sleep=recorded.append)
    monkeypatch.setattr("graflow.core.attempt.time", fake_time)
    return recorded


# --- building a policy --------------------------------------------------------------------------


def test_max_retries_alone_builds_a_default_retry_policy() -> None:
    @task(max_retries=2)
    def flaky() -> None: ...

    assert flaky.retry_policy == RetryPolicy(max_retries=2)
    assert flaky.max_retries == 2
    assert TopLevelRetryPolicy is RetryPolicy


def test_an_explicit_retry_policy_is_kept_as_given() -> None:
    @task(retry_policy=NO_WAIT)
    def flaky() -> None: ...

    assert flaky.retry_policy is NO_WAIT
    assert flaky.max_retries == 2


def test_tasks_do_not_retry_by_default() -> None:
    @task
    def plain() -> None: ...

    assert plain.retry_policy is None
    assert plain.max_retries == 0


def test_max_retries_that_disagrees_with_the_policy_is_refused() -> None:
    with pytest.raises(ValueError, match=r"max_retries=5 disagrees with retry_policy\.max_retries=2"):

        @task(max_retries=5, retry_policy=NO_WAIT)
        def confused() -> None: ...


# --- running ------------------------------------------------------------------------------------------


def test_a_task_that_fails_twice_succeeds_on_its_third_attempt() -> None:
    attempts: list[int] = []

    with workflow("third_time_lucky") as wf:

        @task(retry_policy=NO_WAIT)
        def flaky() -> str:
            attempts.append(len(attempts) + 1)
            if len(attempts) < 3:
                raise ConnectionError(f"attempt {len(attempts)}")
            return "connected"

        @task
        def after() -> str:
            return "after"

        flaky >> after
        result, ctx = wf.execute(ret_context=True)

    assert attempts == [1, 2, 3]
    assert ctx.get_result("flaky") == "connected"
    assert result == "after"


def test_after_the_last_attempt_the_original_exception_propagates_with_a_note() -> None:
    raised: list[BaseException] = []

    with workflow("gives_up") as wf:

        @task(retry_policy=NO_WAIT)
        def broken() -> None:
            error = ConnectionError(f"attempt {len(raised) + 1} refused")
            raised.append(error)
            raise error

        with pytest.raises(ConnectionError) as info:
            wf.execute()

    assert len(raised) == 3  # the first attempt and two retries
    assert info.value is raised[-1]
    assert str(info.value) == "attempt 3 refused"
    assert info.value.graflow_task_id == "broken"  # type: ignore[attr-defined]
    assert "graflow task 'broken' failed after 3 attempts" in info.value.__notes__


def test_without_retries_a_failing_task_runs_once_and_its_error_propagates() -> None:
    calls: list[int] = []

    with workflow("no_retries") as wf:

        @task
        def broken() -> None:
            calls.append(1)
            raise KeyError("missing column")

        with pytest.raises(KeyError) as info:
            wf.execute()

    assert calls == [1]
    assert info.value.graflow_task_id == "broken"  # type: ignore[attr-defined]
    assert not any("failed after" in note for note in info.value.__notes__)


def test_a_policy_with_zero_retries_runs_the_task_once() -> None:
    calls: list[int] = []

    with workflow("zero_retries") as wf:

        @task(retry_policy=RetryPolicy(max_retries=0))
        def broken() -> None:
            calls.append(1)
            raise RuntimeError("nope")

        with pytest.raises(RuntimeError, match="nope"):
            wf.execute()

    assert calls == [1]


def test_the_engine_waits_the_backoff_delay_between_attempts(sleeps: list[float]) -> None:
    attempts: list[int] = []
    policy = RetryPolicy(max_retries=3, initial_interval=0.5, backoff_factor=2.0, jitter=False)

    with workflow("backoff") as wf:

        @task(retry_policy=policy)
        def flaky() -> str:
            attempts.append(1)
            if len(attempts) < 4:
                raise TimeoutError("slow upstream")
            return "ok"

        assert wf.execute() == "ok"

    assert sleeps == [0.5, 1.0, 2.0]


def test_max_retries_alone_retries_with_the_default_jittered_backoff(sleeps: list[float]) -> None:
    attempts: list[int] = []

    with workflow("default_backoff") as wf:

        @task(max_retries=2)
        def flaky() -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("reset by peer")
            return "ok"

        assert wf.execute() == "ok"

    assert len(attempts) == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0  # 1s, jittered down to at most half
    assert 1.0 <= sleeps[1] <= 2.0


def test_graflow_errors_raised_by_a_task_are_not_retried() -> None:
    # Running out of iterations is a decision, not a transient failure: retrying cannot help.
    cycles: list[int] = []

    with workflow("no_retry_for_cycle_limit") as wf:

        @task(inject_context=True, max_cycles=1, retry_policy=NO_WAIT)
        def greedy(context: TaskExecutionContext) -> None:
            cycles.append(context.retry_count)
            context.next_iteration()

        with pytest.raises(CycleLimitExceededError):
            wf.execute()

    assert cycles == [0]


def test_a_group_member_is_retried_before_the_group_judges_it() -> None:
    attempts: list[int] = []

    with workflow("retry_in_group") as wf:

        @task(retry_policy=NO_WAIT)
        def flaky_member() -> str:
            attempts.append(1)
            if len(attempts) < 2:
                raise ConnectionError("blip")
            return "recovered"

        @task
        def steady_member() -> str:
            return "steady"

        @task(inject_context=True)
        def combine(context: TaskExecutionContext) -> list[str]:
            return [context.get_result("flaky_member"), context.get_result("steady_member")]

        (flaky_member | steady_member).with_policy(ErrorHandlingPolicy.STRICT) >> combine
        result = wf.execute()

    assert attempts == [1, 1]
    assert result == ["recovered", "steady"]


# --- RetryPolicy.delay --------------------------------------------------------------------------------


def test_delay_grows_exponentially_from_the_initial_interval() -> None:
    policy = RetryPolicy(initial_interval=1.0, backoff_factor=2.0, max_interval=30.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_delay_is_capped_at_max_interval() -> None:
    policy = RetryPolicy(initial_interval=1.0, backoff_factor=2.0, max_interval=30.0, jitter=False)
    assert policy.delay(6) == 30.0  # 32 capped
    assert policy.delay(20) == 30.0


def test_a_backoff_factor_of_one_waits_the_same_each_time() -> None:
    policy = RetryPolicy(initial_interval=0.25, backoff_factor=1.0, jitter=False)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.25, 0.25, 0.25]


def test_jitter_draws_between_half_the_delay_and_the_delay() -> None:
    policy = RetryPolicy(initial_interval=1.0, backoff_factor=2.0, max_interval=30.0, jitter=True)
    for retry, full in [(1, 1.0), (3, 4.0), (10, 30.0)]:
        draws = [policy.delay(retry) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in draws)
        assert len(set(draws)) > 1


def test_zero_interval_means_no_wait_even_with_jitter() -> None:
    assert RetryPolicy(initial_interval=0, jitter=True).delay(3) == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_retries": -1}, "max_retries must be an int >= 0"),
        ({"max_retries": 2.5}, "max_retries must be an int >= 0"),
        ({"initial_interval": -1.0}, "retry intervals must be >= 0"),
        ({"max_interval": -0.1}, "retry intervals must be >= 0"),
        ({"backoff_factor": 0.5}, "backoff_factor must be >= 1"),
    ],
)
def test_invalid_retry_policy_arguments_raise_value_error(kwargs: dict[str, float], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


class _HoldsALock(Exception):
    """An exception that cannot cross a process boundary: it arrives as ``RemoteTaskError``."""

    def __init__(self) -> None:
        super().__init__("holds a lock")
        import threading

        self.lock = threading.Lock()


def test_an_exception_that_could_not_travel_back_is_retried_like_the_tasks_own(tmp_path) -> None:
    from graflow.remote.envelope import RemoteTaskError

    attempts = tmp_path / "attempts.txt"

    with workflow("remote_retry") as wf:

        @task(retry_policy=NO_WAIT)
        def flaky() -> None:
            with open(attempts, "a") as file:
                file.write("x")
            raise _HoldsALock()

        @task
        def other() -> int:
            return 1

        (flaky | other).with_execution(backend="multiprocessing", policy=ErrorHandlingPolicy.BEST_EFFORT)

    wf.execute()

    assert attempts.read_text() == "xxx"  # the first attempt and both retries, in pool processes
    assert issubclass(RemoteTaskError, Exception) and RemoteTaskError.retriable
