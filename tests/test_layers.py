"""The package reads top-down: layers whose imports point one way, no import cycles, small modules.

The layers, lowest first (``docs/architecture.md`` draws them):

1. ``_validation``: strict checks against Python types and JSON Schemas
2. ``_events``: events, rows, handler entries, ids, time, modes, errors
3. ``_wire`` (the JSON format) and ``_engine`` (processing): siblings that never import each other
4. ``_bus``: the user-facing ``EventBus``, its history, find and snapshots
5. ``retry``, ``events_suck``: public modules over the core
6. ``middlewares``, ``bridges``: integrations, which see only the public surface (``bubus_anyio`` itself)

A module may import its own package and any layer below its own. Imports under ``if TYPE_CHECKING:`` are
not run, so they may point anywhere (they exist for the type checker only); every other import counts,
including ones inside functions, so a cycle cannot hide behind a late import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bubus_anyio"
LONG_MODULE_LINES = 500
#: A module longer than LONG_MODULE_LINES says why at its top, in a docstring line starting like this.
LONG_REASON = "Longer than 500 lines because"

RANKS = {
    "_validation": 1,
    "_events": 2,
    "_wire": 3,
    "_engine": 3,
    "_bus": 4,
    "retry": 5,
    "events_suck": 5,
    "middlewares": 6,
    "bridges": 6,
}
#: Layers that may reach the core only through the public surface.
PUBLIC_ONLY = {"middlewares", "bridges"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking_block(node: ast.stmt) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:`` exactly (not ``if not TYPE_CHECKING:``)."""
    return isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement that can run (function and class bodies included), skipping TYPE_CHECKING blocks."""
    for node in body:
        if _is_type_checking_block(node):
            assert isinstance(node, ast.If)
            yield from _statements(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _statements([child for child in inner if isinstance(child, ast.stmt)])
        for handler in getattr(node, "handlers", ()):
            if isinstance(handler, ast.ExceptHandler):
                yield from _statements(handler.body)
        if isinstance(node, ast.Match):
            for case in node.cases:
                yield from _statements(case.body)


#: Modules allowed to import by a computed name: lazy loaders of optional dependencies, which may only
#: name modules of their own package (checked by their own tests).
DYNAMIC_IMPORTS_ALLOWED: dict[str, str] = {
    "bubus_anyio.bridges": "imports its own bridge modules on first use, so optional clients load late",
    "bubus_anyio.bridges._http": "imports hypercorn's asyncio or trio server, whichever backend runs",
}
_DYNAMIC = {"import_module", "__import__"}


def dynamic_imports(path: Path) -> tuple[set[str], int]:
    """Modules named by literal ``importlib.import_module("...")``/``__import__("...")`` calls, and how
    many such calls name their module by a computed value (those cannot be checked)."""
    literal: set[str] = set()
    computed = 0
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in _DYNAMIC or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            literal.add(first.value)
        else:
            computed += 1
    return literal, computed


def runtime_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The bubus_anyio modules that importing (and running) ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "bubus_anyio")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "bubus_anyio":
                continue
            found.add(base)
            for alias in node.names:  # ``from . import _x`` imports the module _x
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
    literal, _ = dynamic_imports(path)
    found.update(target for target in literal if target.split(".")[0] == "bubus_anyio")
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: runtime_imports(name, path, known) & known for name, path in found.items()}


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_layer_table_names_every_subpackage_and_public_module() -> None:
    tops = {layer_of(name) for name in modules()} - {None}
    assert tops <= set(RANKS), f"add new top-level modules or packages to RANKS: {sorted(tops - set(RANKS))}"


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_imports_point_down_the_layers() -> None:
    upward: list[str] = []
    for name, targets in graph().items():
        layer = layer_of(name)
        if layer is None:  # bubus_anyio/__init__.py: the front door re-exports from every layer
            continue
        for target in sorted(targets):
            target_layer = layer_of(target)
            if target_layer == layer:
                continue
            if layer in PUBLIC_ONLY:
                if target_layer is not None and target_layer.startswith("_"):
                    upward.append(f"{name} -> {target} (integrations use the public surface only)")
                continue
            if target_layer is None or RANKS[target_layer] >= RANKS[layer]:
                upward.append(f"{name} -> {target}")
    assert upward == [], "imports that do not point down:\n" + "\n".join(upward)


def test_no_module_imports_by_a_computed_name() -> None:
    """``importlib.import_module(name)`` with a computed name could hide any import from the checks above."""
    hidden = sorted(
        name
        for name, path in modules().items()
        if dynamic_imports(path)[1] and name not in DYNAMIC_IMPORTS_ALLOWED
    )
    assert hidden == [], f"import by a literal name, or list the module in DYNAMIC_IMPORTS_ALLOWED: {hidden}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_a_long_module_says_why_at_its_top(name: str) -> None:
    path = modules()[name]
    lines = len(path.read_text().splitlines())
    if lines <= LONG_MODULE_LINES:
        return
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert LONG_REASON in docstring, f"{name} has {lines} lines: split it, or say why in its docstring"


class TestTheCheckerItself:
    """The checks above must be able to fail: run them on small made-up modules."""

    def test_a_late_import_counts(self, tmp_path: Path) -> None:
        source = tmp_path / "mod.py"
        source.write_text("def f():\n    from .._bus._event_bus import EventBus\n")
        found = runtime_imports("bubus_anyio._events.mod", source, {"bubus_anyio._bus._event_bus"})
        assert found == {"bubus_anyio._bus._event_bus"}

    def test_a_type_checking_import_does_not_count(self, tmp_path: Path) -> None:
        source = tmp_path / "mod.py"
        source.write_text(
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .._bus._event_bus import EventBus\n"
        )
        assert runtime_imports("bubus_anyio._events.mod", source, set()) == set()

    def test_an_import_under_not_type_checking_counts(self, tmp_path: Path) -> None:
        source = tmp_path / "mod.py"
        source.write_text(
            "from typing import TYPE_CHECKING\nif not TYPE_CHECKING:\n    from .._bus._event_bus import EventBus\n"
        )
        found = runtime_imports("bubus_anyio._events.mod", source, {"bubus_anyio._bus._event_bus"})
        assert found == {"bubus_anyio._bus._event_bus"}

    def test_an_import_inside_a_match_case_counts(self, tmp_path: Path) -> None:
        source = tmp_path / "mod.py"
        source.write_text("match 1:\n    case 1:\n        from .._bus import _event_bus\n")
        found = runtime_imports("bubus_anyio._events.mod", source, {"bubus_anyio._bus._event_bus"})
        assert found == {"bubus_anyio._bus", "bubus_anyio._bus._event_bus"}

    def test_a_literal_import_module_call_counts(self, tmp_path: Path) -> None:
        source = tmp_path / "mod.py"
        source.write_text("import importlib\nimportlib.import_module('bubus_anyio._bus._event_bus')\n")
        found = runtime_imports("bubus_anyio._events.mod", source, {"bubus_anyio._bus._event_bus"})
        assert found == {"bubus_anyio._bus._event_bus"}

    def test_a_computed_import_module_call_is_seen(self, tmp_path: Path) -> None:
        source = tmp_path / "mod.py"
        source.write_text("import importlib\nname = 'x'\n__import__(name)\n")
        assert dynamic_imports(source) == (set(), 1)

    def test_a_package_import_of_a_module_counts_the_module(self, tmp_path: Path) -> None:
        source = tmp_path / "mod.py"
        source.write_text("try:\n    pass\nexcept ImportError:\n    from .._engine import _awaiting\n")
        found = runtime_imports("bubus_anyio._events.mod", source, {"bubus_anyio._engine._awaiting"})
        assert found == {"bubus_anyio._engine", "bubus_anyio._engine._awaiting"}
