"""What travels by value (:mod:`graflow.remote.codec`): the user's own modules, as they are loaded now."""

from __future__ import annotations

import importlib.util
import pickle
import sys
import types
from pathlib import Path

from graflow.remote.codec import ByValue, dumps_by_value, dumps_data, loads


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_a_module_unloaded_while_another_loads_is_not_registered_from_a_stale_cache(
    tmp_path: Path,
) -> None:
    (tmp_path / "user_flow.py").write_text("def shout(text):\n    return text.upper()\n")
    by_value = ByValue("a test")
    module = _load(tmp_path / "user_flow.py", "user_flow")
    try:
        for _ in range(2):  # the second dump reads the cached module list
            dumps_by_value(module.shout, by_value, what="shout")
        # The CLI loader gives its module back; something else loads: as many modules as before.
        del sys.modules["user_flow"]
        sys.modules["graflow_test_placeholder"] = types.ModuleType("graflow_test_placeholder")

        payload = dumps_by_value(module.shout, by_value, what="shout")
    finally:
        sys.modules.pop("user_flow", None)
        sys.modules.pop("graflow_test_placeholder", None)

    assert pickle.loads(payload)("by value") == "BY VALUE"  # importable nowhere now: it travelled by value


def test_data_pickles_plainly_and_what_needs_cloudpickle_still_travels() -> None:
    class Local:  # not importable by name: only cloudpickle can write it
        def __init__(self, n: int) -> None:
            self.n = n

    plain = {"rows": [1, 2.5, "three"], "nested": (None, True)}
    assert loads(dumps_data(plain)) == plain
    rebuilt = loads(dumps_data([lambda: 3, Local(4)]))
    assert rebuilt[0]() == 3 and rebuilt[1].n == 4
