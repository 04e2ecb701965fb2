"""Errors a user can cause: their classes, when they are raised, what they say (SPEC sections 1 and 12)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable

import pytest

import graflow.exceptions as exceptions
from graflow.core.context import ExecutionContext
from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import (
    ConfigError,
    DuplicateTaskError,
    GraflowError,
    GraphCompilationError,
    PluginNotInstalledError,
)


def _recorder(log: list[str], name: str) -> Callable[[], str]:
    def record() -> str:
        log.append(name)
        return name

    return record


def recording_tasks(log: list[str], *names: str) -> list[TaskWrapper]:
    """One task per name; each appends its id to ``log`` when it runs and returns it."""
    return [TaskWrapper(name, _recorder(log, name)) for name in names]


# --- the hierarchy ------------------------------------------------------------------------

SPEC_ERRORS = [
    "GraflowRuntimeError",
    "GraphCompilationError",
    "DuplicateTaskError",
    "ConfigError",
    "CycleLimitExceededError",
    "MaxStepsExceededError",
    "ParallelGroupError",
    "GraflowWorkflowCanceledError",
    "PluginNotInstalledError",
    "MissingTaskArgumentError",
]


@pytest.mark.parametrize("name", SPEC_ERRORS)
def test_every_graflow_error_derives_from_graflow_error(name: str) -> None:
    cls = getattr(exceptions, name)
    assert issubclass(cls, GraflowError)
    assert name in exceptions.__all__


def test_plugin_not_installed_is_also_an_import_error() -> None:
    error = PluginNotInstalledError("the handler 'docker'", "graflow-docker")
    assert isinstance(error, ImportError)
    assert error.package == "graflow-docker"
    assert str(error).endswith("pip install graflow-docker")


# --- graph errors: before any task runs ------------------------------------------------------


def test_a_cycle_with_no_way_in_fails_before_any_task_runs_and_names_the_cycle() -> None:
    log: list[str] = []
    with workflow("cyclic") as wf:
        start, a, b, c = recording_tasks(log, "start", "a", "b", "c")
        start >> a
        b >> c >> b  # nothing leads into b or c, and neither is a start node
        with pytest.raises(GraflowError) as excinfo:
            wf.execute()
    message = str(excinfo.value)
    assert "b >> c >> b" in message
    assert "no way in" in message
    assert "next_iteration()" in message  # another way to write the loop
    assert log == []  # not even the root that is off the cycle


def test_a_cycle_fails_at_create_in_the_low_level_api_too() -> None:
    log: list[str] = []
    with workflow("cyclic_low_level") as wf:
        a, b = recording_tasks(log, "a", "b")
        a >> b >> a
    with pytest.raises(GraphCompilationError, match="cycle"):
        ExecutionContext.create(wf.graph)
    assert log == []


def test_an_unknown_start_node_fails_before_any_task_runs_listing_known_nodes() -> None:
    log: list[str] = []
    with workflow("start_typo") as wf:
        extract, load = recording_tasks(log, "extract", "load")
        extract >> load
        with pytest.raises(
            GraphCompilationError, match=r"unknown start node 'extact'; known nodes: extract, load"
        ):
            wf.execute("extact")
    assert log == []


def test_starting_at_a_group_member_points_to_the_group() -> None:
    with workflow("start_member") as wf:
        a, b = recording_tasks([], "a", "b")
        group = (a | b).set_group_name("pair")
        with pytest.raises(
            GraphCompilationError, match=r"'a' is a member of group 'pair'; start at the group"
        ):
            wf.execute("a")
        assert group.task_id in wf.graph.nodes


def test_an_empty_workflow_says_how_to_add_tasks() -> None:
    with workflow("empty") as wf:
        pass
    with pytest.raises(GraphCompilationError, match=r"no tasks.*with workflow"):
        wf.execute()


def test_a_duplicate_task_id_in_one_workflow_is_rejected() -> None:
    with workflow("dups") as wf:

        @task
        def extract() -> int:
            return 1

        with pytest.raises(DuplicateTaskError) as excinfo:

            @task("extract")
            def extract_again() -> int:
                return 2

    assert excinfo.value.task_id == "extract"
    assert "give each task its own id" in str(excinfo.value)
    assert wf.graph.get_node("extract") is extract


def test_a_duplicate_built_with_task_wrapper_is_rejected_too() -> None:
    with workflow("dups_wrapper"):
        TaskWrapper("cleanup", lambda: 1)
        with pytest.raises(DuplicateTaskError, match="'cleanup'"):
            TaskWrapper("cleanup", lambda: 2)


def test_renaming_a_group_to_a_taken_id_is_a_duplicate() -> None:
    with workflow("dup_group_name"):
        a, b, report = recording_tasks([], "a", "b", "report")
        with pytest.raises(DuplicateTaskError, match="'report'"):
            (a | b).set_group_name("report")


# --- handlers and backends -------------------------------------------------------------------

PLUGIN_MODULES = ("graflow_docker", "graflow_redis", "graflow_worker", "graflow_otel")


@pytest.fixture
def without_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if only graflow-core were installed, whatever this environment holds."""
    from graflow.plugins import manager

    monkeypatch.setattr(manager, "_manager", manager.GraflowPluginManager(load_entry_points=False))
    for module in PLUGIN_MODULES:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail


@pytest.mark.usefixtures("without_plugins")
def test_an_unknown_handler_fails_before_any_task_runs_listing_known_handlers() -> None:
    log: list[str] = []
    with workflow("bad_handler") as wf:
        (first,) = recording_tasks(log, "first")

        @task(handler="nope")
        def later() -> None:
            log.append("later")

        first >> later
        with pytest.raises(ConfigError) as excinfo:
            wf.execute()
    message = str(excinfo.value)
    assert "task 'later'" in message
    assert "unknown handler 'nope'; known: direct." in message
    assert "graflow plugins" in message
    assert log == []


@pytest.mark.usefixtures("without_plugins")
def test_the_docker_handler_without_its_plugin_names_the_pip_package() -> None:
    log: list[str] = []
    with workflow("docker_missing") as wf:
        (first,) = recording_tasks(log, "first")

        @task(handler="docker")
        def sandboxed() -> None:
            log.append("sandboxed")

        first >> sandboxed
        with pytest.raises(PluginNotInstalledError) as excinfo:
            wf.execute()
    assert isinstance(excinfo.value, ImportError)
    assert "pip install graflow-docker" in str(excinfo.value)
    assert "task 'sandboxed'" in str(excinfo.value)
    assert log == []


@pytest.mark.usefixtures("without_plugins")
@pytest.mark.parametrize("option", ["queue_backend", "channel_backend"])
def test_the_redis_backend_without_its_plugin_names_the_pip_package(option: str) -> None:
    log: list[str] = []
    with workflow("redis_missing") as wf:
        recording_tasks(log, "a")
        with pytest.raises(PluginNotInstalledError, match="pip install graflow-redis"):
            wf.execute(**{option: "redis"})
    assert log == []


@pytest.mark.usefixtures("without_plugins")
def test_an_unknown_queue_backend_lists_the_known_ones() -> None:
    with workflow("bad_queue") as wf:
        recording_tasks([], "a")
        with pytest.raises(ConfigError, match=r"unknown queue backend 'kafka'; known: memory\."):
            wf.execute(queue_backend="kafka")


# --- lazy aliases of plugin code ----------------------------------------------------------


@pytest.mark.usefixtures("without_plugins")
@pytest.mark.parametrize(
    ("module", "name", "package"),
    [
        ("graflow.core.handlers.docker", "DockerTaskHandler", "graflow-docker"),
        ("graflow.worker.worker", "TaskWorker", "graflow-worker"),
        ("graflow.queue.distributed", "DistributedTaskQueue", "graflow-redis"),
    ],
)
def test_seed_import_paths_name_the_plugin_to_install(module: str, name: str, package: str) -> None:
    alias = importlib.import_module(module)  # importing the alias module itself is free
    with pytest.raises(ImportError, match=f"pip install {package}") as excinfo:
        exec(f"from {module} import {name}", {})
    assert isinstance(excinfo.value, PluginNotInstalledError)
    assert name in str(excinfo.value)
    with pytest.raises(AttributeError):
        alias.NoSuchThing  # noqa: B018


def test_python_m_graflow_worker_main_names_the_plugin_to_install() -> None:
    # `python -m graflow.worker.main` with graflow-worker made unimportable.
    done = _fresh_python(
        "import runpy, sys\n"
        "sys.modules['graflow_worker'] = None\n"
        "runpy.run_module('graflow.worker.main', run_name='__main__')"
    )
    assert done.returncode == 2
    assert "pip install graflow-worker" in done.stderr


# --- imports ----------------------------------------------------------------------------------


def test_top_level_re_exports() -> None:
    from graflow import (
        ErrorHandlingPolicy,
        RetryPolicy,
        TaskExecutionContext,
        chain,
        parallel,
        task,
        workflow,
    )
    from graflow.core import context, decorators, dsl, retry
    from graflow.core import workflow as workflow_module
    from graflow.core.handlers import group_policy

    assert task is decorators.task
    assert workflow is workflow_module.workflow
    assert chain is dsl.chain and parallel is dsl.parallel
    assert TaskExecutionContext is context.TaskExecutionContext
    assert RetryPolicy is retry.RetryPolicy
    assert ErrorHandlingPolicy is group_policy.ErrorHandlingPolicy


def test_an_unknown_top_level_name_is_an_attribute_error() -> None:
    import graflow

    with pytest.raises(AttributeError, match="no attribute 'Taks'"):
        graflow.Taks  # noqa: B018


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_graflow_loads_no_heavy_dependencies() -> None:
    done = _fresh_python(
        "import sys, graflow\n"
        "from graflow import task, workflow, chain, parallel\n"
        "print(sorted(m for m in ('structlog', 'rich', 'cloudpickle', 'redis', 'docker') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module",
    [
        "graflow.core.task",
        "graflow.core.group",
        "graflow.core.dsl",
        "graflow.core.graph",
        "graflow.core.engine",
        "graflow.core.workflow",
        "graflow.core.context",
        "graflow.core.render",
        "graflow.core.handlers.group_policy",
        "graflow.plugins.hookspecs",
    ],
)
def test_every_kernel_module_can_be_imported_first(module: str) -> None:
    done = _fresh_python(f"import {module}")
    assert done.returncode == 0, done.stderr


def test_from_graflow_import_chain_works_in_a_fresh_interpreter() -> None:
    done = _fresh_python("from graflow import chain, parallel; print(chain.__name__, parallel.__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["chain", "parallel"]
