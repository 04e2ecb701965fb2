"""The plugin system (SPEC section 15, ARCHITECTURE "The kernel knows nothing of its plugins").

The third-party plugin used here is a real installed distribution,
``tests/fixtures/graflow-example-plugin`` (tox installs it; by hand:
``pip install -e tests/fixtures/graflow-example-plugin``). Tests that need a pristine
manager build their own :class:`GraflowPluginManager` and install it as the process-wide
one for the duration of the test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from types import SimpleNamespace
from typing import Any

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.retry import RetryPolicy
from graflow.core.workflow import workflow
from graflow.exceptions import ConfigError, PluginNotInstalledError
from graflow.plugins import GraflowPluginManager, PluginInfo, get_plugin_manager, hookimpl
from graflow.plugins import manager as manager_module

NO_WAIT = RetryPolicy(max_retries=2, initial_interval=0, jitter=False)
LIFECYCLE_HOOKS = ("graflow_run_workflow", "graflow_run_task", "graflow_run_group")


def example_plugin_installed() -> bool:
    return any(ep.name == "example" for ep in entry_points(group="graflow"))


requires_example_plugin = pytest.mark.skipif(
    not example_plugin_installed(),
    reason="install the fixture plugin: pip install -e tests/fixtures/graflow-example-plugin",
)


def use_manager(monkeypatch: pytest.MonkeyPatch, manager: GraflowPluginManager) -> GraflowPluginManager:
    """Make ``manager`` the process-wide plugin manager until the test ends."""
    monkeypatch.setattr(manager_module, "_manager", manager)
    assert get_plugin_manager() is manager
    return manager


def fake_entry_points(*eps: Any) -> SimpleNamespace:
    """A stand-in for ``importlib.metadata`` whose ``graflow`` group holds only ``eps``."""

    def select(*, group: str) -> list[Any]:
        return list(eps) if group == "graflow" else []

    return SimpleNamespace(entry_points=select)


def run_small_workflow() -> dict[str, Any]:
    """A run touching the paths hooks wrap: a plain task, a retried task and a group."""
    attempts: list[int] = []

    with workflow("small") as wf:

        @task
        def start() -> int:
            return 1

        @task(inject_context=True, retry_policy=NO_WAIT)
        def flaky(context: TaskExecutionContext) -> int:
            attempts.append(context.retry_count)
            if context.retry_count == 0:
                raise ConnectionError("first attempt fails")
            return 2

        @task
        def other() -> int:
            return 3

        @task(inject_context=True)
        def total(context: TaskExecutionContext) -> int:
            return sum(context.get_result(t) for t in ("start", "flaky", "other"))

        start >> (flaky | other) >> total
        result = wf.execute()
    return {"result": result, "attempts": attempts}


# --- the built-ins are a plugin like any other -------------------------------------------------------


def test_builtin_plugin_contributes_the_kernel_defaults() -> None:
    builtin = next(info for info in get_plugin_manager().plugins() if info.name == "builtin")

    assert builtin.error is None
    assert builtin.provides["handler"] == ["direct"]
    assert builtin.provides["queue backend"] == ["memory"]
    assert builtin.provides["channel backend"] == ["memory"]
    assert {"direct", "threading"} <= set(builtin.provides["coordination backend"])


def test_a_manager_without_entry_points_knows_only_the_builtins() -> None:
    manager = GraflowPluginManager(load_entry_points=False)

    assert [info.name for info in manager.plugins()] == ["builtin"]
    assert manager.names("graflow_task_handlers") == ["direct"]
    assert manager.names("graflow_queue_backends") == ["memory"]
    assert manager.names("graflow_channel_backends") == ["memory"]
    assert manager.names("graflow_coordinators") == ["direct", "multiprocessing", "threading"]


# --- a third-party plugin: one entry point, one hook -------------------------------------------------


@requires_example_plugin
def test_an_installed_plugin_handler_works_with_no_registration_code() -> None:
    with workflow("example_plugin") as wf:

        @task(handler="example")
        def compute() -> int:
            return 6 * 7

        @task(inject_context=True)
        def read_back(context: TaskExecutionContext) -> Any:
            return context.get_result("compute")

        compute >> read_back
        result = wf.execute()

    assert result == {"handled_by": "example", "result": 42}


@requires_example_plugin
def test_an_installed_plugin_is_listed_with_its_distribution_and_contributions() -> None:
    infos = {info.name: info for info in get_plugin_manager().plugins()}

    assert infos["example"] == PluginInfo(
        name="example",
        distribution="graflow-example-plugin",
        error=None,
        provides={"handler": ["example"]},
        hooks=[],
    )


@requires_example_plugin
def test_graflow_plugins_command_lists_an_installed_plugin() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "graflow", "plugins"], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "graflow-example-plugin" in line)
    assert "example" in row
    assert "handler: example" in row


def test_a_plugin_registered_at_run_time_contributes_a_handler_until_unregistered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from graflow.core.handlers.direct import DirectTaskHandler

    built: list[str] = []

    class Shouting(DirectTaskHandler):
        def execute_task(self, task: Any, context: Any) -> Any:
            return str(super().execute_task(task, context)).upper()

    def factory() -> Shouting:
        built.append("shout")
        return Shouting()

    class ShoutPlugin:
        @hookimpl
        def graflow_task_handlers(self) -> dict[str, Any]:
            return {"shout": factory}

    manager = use_manager(monkeypatch, GraflowPluginManager(load_entry_points=False))
    manager.register(ShoutPlugin(), name="shout-plugin")

    with workflow("runtime_handler_plugin") as wf:

        @task(handler="shout")
        def greet() -> str:
            return "hello"

        assert wf.execute() == "HELLO"
        assert wf.execute() == "HELLO"
        assert built == ["shout"]  # the factory runs once, on first use

        manager.unregister("shout-plugin")
        with pytest.raises(ConfigError, match="unknown handler 'shout'; known: direct"):
            wf.execute()


# --- lifecycle wrappers ------------------------------------------------------------------------------------


class AttemptRecorder:
    """Wraps every task attempt, as a tracing or timing plugin would."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int, str]] = []

    @hookimpl(wrapper=True)
    def graflow_run_task(self, task: Any, context: Any, attempt: int, run: Any) -> Any:
        try:
            result = yield
        except Exception as exc:
            self.attempts.append((task.task_id, attempt, f"raised {type(exc).__name__}"))
            raise
        self.attempts.append((task.task_id, attempt, f"returned {result!r}"))
        return result


def test_a_run_task_wrapper_sees_every_attempt_of_every_task() -> None:
    recorder = AttemptRecorder()
    manager = get_plugin_manager()
    manager.register(recorder, name="attempt-recorder")
    try:
        outcome = run_small_workflow()
    finally:
        manager.unregister("attempt-recorder")

    assert outcome == {"result": 6, "attempts": [0, 1]}
    assert ("flaky", 1, "raised ConnectionError") in recorder.attempts
    assert ("flaky", 2, "returned 2") in recorder.attempts
    assert sorted(recorder.attempts) == [
        ("flaky", 1, "raised ConnectionError"),
        ("flaky", 2, "returned 2"),
        ("other", 1, "returned 3"),
        ("start", 1, "returned 1"),
        ("total", 1, "returned 6"),
    ]
    assert recorder.attempts[-1] == ("total", 1, "returned 6")


def test_wraps_is_false_until_a_plugin_wraps_the_hook() -> None:
    manager = GraflowPluginManager(load_entry_points=False)
    assert [manager.wraps(name) for name in LIFECYCLE_HOOKS] == [False, False, False]

    manager.register(AttemptRecorder(), name="attempt-recorder")

    assert manager.wraps("graflow_run_task") is True
    assert manager.wraps("graflow_run_workflow") is False


class HookUseRecorder(GraflowPluginManager):
    """A manager that records which hooks the kernel calls through :attr:`hook`."""

    def __init__(self) -> None:
        super().__init__(load_entry_points=False)
        self.called: list[str] = []

    @property
    def hook(self) -> Any:
        relay = super().hook
        called = self.called

        class Relay:
            def __getattr__(self, name: str) -> Any:
                called.append(name)
                return getattr(relay, name)

        return Relay()


def test_lifecycle_hooks_are_skipped_when_no_plugin_wraps_them(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = use_manager(monkeypatch, HookUseRecorder())

    outcome = run_small_workflow()

    assert outcome == {"result": 6, "attempts": [0, 1]}
    assert [name for name in manager.called if name in LIFECYCLE_HOOKS] == []

    recorder = AttemptRecorder()
    manager.register(recorder, name="attempt-recorder")
    run_small_workflow()

    assert "graflow_run_task" in manager.called
    assert "graflow_run_workflow" not in manager.called
    assert len(recorder.attempts) == 5


# --- a broken plugin -----------------------------------------------------------------------------------------


@pytest.fixture
def broken_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraflowPluginManager]:
    """The process-wide manager, with one installed plugin whose module does not exist."""
    broken = EntryPoint(name="gpu", value="graflow_gpu_plugin_that_is_not_there", group="graflow")
    monkeypatch.setattr(manager_module, "metadata", fake_entry_points(broken))
    yield use_manager(monkeypatch, GraflowPluginManager())


def test_a_plugin_that_fails_to_import_is_listed_with_its_error(broken_manager: GraflowPluginManager) -> None:
    infos = {info.name: info for info in broken_manager.plugins()}

    assert set(infos) == {"builtin", "gpu"}
    error = infos["gpu"].error
    assert error is not None
    assert error.startswith("ModuleNotFoundError")
    assert "graflow_gpu_plugin_that_is_not_there" in error
    assert infos["gpu"].provides == {}


def test_a_plugin_that_fails_to_import_does_not_break_runs(broken_manager: GraflowPluginManager) -> None:
    assert run_small_workflow() == {"result": 6, "attempts": [0, 1]}


def test_a_name_nobody_provides_mentions_the_plugin_that_failed_to_load(
    broken_manager: GraflowPluginManager,
) -> None:
    with workflow("needs_gpu") as wf:

        @task(handler="gpu")
        def train() -> None: ...

        with pytest.raises(ConfigError) as info:
            wf.execute()

    message = str(info.value)
    assert "unknown handler 'gpu'" in message
    assert "Plugin 'gpu' failed to load" in message
    assert "ModuleNotFoundError" in message


def test_a_broken_first_party_plugin_is_named_with_its_pip_package_and_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def load() -> None:
        raise ImportError("cannot import name 'Redis' from 'redis'")

    broken_redis = SimpleNamespace(name="redis", dist=SimpleNamespace(name="graflow-redis"), load=load)
    monkeypatch.setattr(manager_module, "metadata", fake_entry_points(broken_redis))
    use_manager(monkeypatch, GraflowPluginManager())

    with workflow("needs_redis") as wf:

        @task
        def only() -> int:
            return 1

        assert wf.execute() == 1  # the memory backends do not need the broken plugin
        with pytest.raises(PluginNotInstalledError) as info:
            wf.execute(queue_backend="redis")

    message = str(info.value)
    assert isinstance(info.value, ImportError)
    assert "pip install graflow-redis" in message
    assert "cannot import name 'Redis'" in message
