"""The kernel's modules depend on each other one way, and hide no import inside a function without saying why.

The import graph is read from the source (``ast``), not from what happens to be loaded,
so a cycle broken at run time by an import inside a function still counts as a cycle.
Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "graflow-core" / "src" / "graflow"
#: A function-local import must say why it is not at the top of its module.
LAZY_MARK = "# lazy:"


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool
    text: str


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(root: Path) -> Iterator[Import]:
    """Every import of a module of ``root``'s package by another, with where it sits."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    for source, path in modules.items():
        lines = path.read_text().splitlines()
        for node, in_function in _import_nodes(ast.parse(path.read_text()), False):
            for name in _imported_names(node, source, path.name == "__init__.py", modules):
                text = lines[node.lineno - 1]
                if name.split(".")[0] != root.name:
                    if in_function:  # a third-party or stdlib import inside a function: also needs a reason
                        yield Import(source, name, node.lineno, in_function, text)
                    continue
                target = name
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != source:
                    yield Import(source, target, node.lineno, in_function, text)


def _import_nodes(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue
        local = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, local
        yield from _import_nodes(child, local)


def _imported_names(
    node: ast.Import | ast.ImportFrom, source: str, is_package: bool, modules: dict[str, Path]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = source.split(".") if is_package else source.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    # ``from pkg import mod`` depends on ``pkg.mod``; ``from mod import name`` on ``mod``.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_kernel_has_no_import_cycle_even_through_imports_inside_functions() -> None:
    edges: dict[str, set[str]] = {}
    for imp in _imports(KERNEL):
        if imp.target.startswith("graflow"):
            edges.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(edges) == []


def test_every_import_inside_a_kernel_function_says_why_it_is_lazy() -> None:
    unexplained = [
        f"{imp.source}:{imp.line}: {imp.text.strip()}"
        for imp in _imports(KERNEL)
        if imp.in_function and LAZY_MARK not in imp.text
    ]
    assert unexplained == [], f"move these to the top of their module, or add '{LAZY_MARK} <why>'"


def test_the_cycle_check_finds_a_cycle_hidden_inside_a_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def later():\n    from pkg.a import thing  # lazy: hides the cycle\n")
    edges: dict[str, set[str]] = {}
    for imp in _imports(package):
        edges.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(edges) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("module", ["graflow.core.task", "graflow.core.graph", "graflow.core.dsl"])
def test_the_definition_layer_does_not_import_the_engine(module: str) -> None:
    reached: set[str] = set()
    edges: dict[str, set[str]] = {}
    for imp in _imports(KERNEL):
        edges.setdefault(imp.source, set()).add(imp.target)
    todo = [module]
    while todo:
        current = todo.pop()
        for target in edges.get(current, ()):
            if target not in reached:
                reached.add(target)
                todo.append(target)
    assert not {"graflow.core.engine", "graflow.core.run", "graflow.core.workflow"} & reached
