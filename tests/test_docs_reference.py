"""The site's API reference (docs/reference/*.md) documents every public name, by its public path only.

mkdocstrings renders one ``::: path`` directive per object. A public name is one that ``bubus_anyio``
re-exports, or one in the ``__all__`` of a public submodule (``bubus_anyio.retry``,
``bubus_anyio.events_suck``, and ``middlewares``/``bridges`` once they exist). Paths through private modules
(``bubus_anyio._bus.EventBus``) are refused: they break when modules move, public paths do not.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from pathlib import Path

import bubus_anyio

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
PUBLIC_SUBMODULES = ("retry", "events_suck", "middlewares", "bridges")
_DIRECTIVE = re.compile(r"^:::\s+(?P<path>\S+)\s*$", re.M)


def _documented() -> set[str]:
    return {
        m["path"] for page in REFERENCE.glob("*.md") for m in _DIRECTIVE.finditer(page.read_text("utf-8"))
    }


def _submodule(name: str) -> types.ModuleType | None:
    try:
        importlib.import_module(f"bubus_anyio.{name}")
    except ModuleNotFoundError:
        return None
    # `bubus_anyio.retry` the attribute is the decorator; the module is in sys.modules.
    return sys.modules[f"bubus_anyio.{name}"]


def _public_names() -> dict[str, set[str]]:
    """Each public object, by its accepted documented paths (a re-export may be documented at either)."""
    names: dict[str, set[str]] = {}
    for name in dir(bubus_anyio):
        value = getattr(bubus_anyio, name)
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        module = getattr(value, "__module__", "")
        paths = {f"bubus_anyio.{name}"}
        if module.startswith("bubus_anyio.") and not module.split(".")[1].startswith("_"):
            paths.add(f"{module}.{name}")
        names[f"bubus_anyio.{name}"] = paths
    for sub in PUBLIC_SUBMODULES:
        module = _submodule(sub)
        if module is None:
            continue
        for name in getattr(module, "__all__", ()):
            path = f"bubus_anyio.{sub}.{name}"
            top = f"bubus_anyio.{name}"
            if top in names and path in names[top]:
                continue
            names[path] = {path}
    return names


def test_every_public_name_is_in_the_reference() -> None:
    documented = _documented()
    missing = sorted(name for name, paths in _public_names().items() if not paths & documented)
    assert missing == [], f"add a `::: <public path>` line to a page of docs/reference/ for: {missing}"


def test_the_reference_uses_public_paths_only() -> None:
    private = sorted(path for path in _documented() if any(part.startswith("_") for part in path.split(".")))
    assert private == []


def test_every_documented_path_is_public() -> None:
    accepted = set().union(*_public_names().values())
    unknown = sorted(_documented() - accepted)
    assert unknown == [], f"documented but not public (renamed or removed?): {unknown}"
