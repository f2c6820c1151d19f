"""The code's shape, held as the redesign left it: no import circle, components that take
their slice of the config, and a config package of small modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.offline.tools import REPO_ROOT

PACKAGES = ("infra", "policies")
MAX_CONFIG_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            if ".venv" not in path.parts:
                found[_module_name(path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _import_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement but TYPE_CHECKING blocks, function bodies included: a lazy import is
    still a dependency, it only hides the circle from the interpreter."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        yield node
        for block in ("body", "orelse", "finalbody"):
            inner = getattr(node, block, None)
            if isinstance(inner, list):
                yield from _import_statements(inner)
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                yield from _import_statements(handler.body)


def _imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules `module` imports, with each package whose __init__ that runs (a package's own
    submodules do not re-enter it)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _import_statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
    edges = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            inside = module == candidate or module.startswith(candidate + ".")
            if candidate in known and not inside:
                edges.add(candidate)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_program_and_the_pack_import_no_circle() -> None:
    known = _modules()
    graph = {name: _imported(name, path, known) for name, path in known.items()}
    assert graph["infra.pure.config.cross_references"] >= {"infra.pure.naming"}, (
        "the walk sees imports"
    )
    assert _cycles(graph) == []


def test_the_walk_finds_a_circle_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _component_files() -> list[Path]:
    return sorted(
        p
        for p in (REPO_ROOT / "infra" / "engine" / "components").glob("*.py")
        if p.stem != "__init__"
    )


@pytest.mark.parametrize("path", _component_files(), ids=lambda p: p.stem)
def test_no_component_takes_the_whole_config(path: Path) -> None:
    """Each component receives its own slice (a server, a pool, a database), so it can be
    reused and tested alone: the environment-wide models never reach one."""
    whole = {"PerimeterConfig", "PerimeterSecrets"}
    named = {
        node.id
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Name) and node.id in whole
    } | {
        alias.asname or alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name in whole
    }
    assert named == set()


def test_the_config_package_has_no_module_over_the_limit() -> None:
    sizes = {
        p.name: len(p.read_text().splitlines())
        for p in (REPO_ROOT / "infra" / "pure" / "config").glob("*.py")
    }
    assert len(sizes) > 5, "the config is a package of modules"
    assert {n: s for n, s in sizes.items() if s > MAX_CONFIG_MODULE_LINES} == {}
