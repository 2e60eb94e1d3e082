"""A griffe extension (mkdocs.yml: mkdocstrings ``extensions``) that renders the Sphinx roles of our
docstrings (``:class:`EventBus```, ``:meth:`~EventBus.emit```, ...) as markdown.

The docstrings follow anyio's Sphinx style. mkdocstrings' ``sphinx`` parser reads their field lists
(``:param x:``) but leaves inline roles as text, so this turns each role into inline code wrapped in an
*optional* cross-reference: it links to the API reference when the target is documented there and stays
plain code otherwise (a role may name a private helper or a standard-library object). Names are resolved
the way Sphinx would: a dotted path as given, a public ``bubus_anyio`` name at its documented path, any
other name relative to the class the docstring belongs to. The docstrings themselves are unchanged.
"""

from __future__ import annotations

import html
import re
import sys
import types
from typing import Any

import griffe

import bubus_anyio

_ROLE = re.compile(r":(?:py:)?(?P<role>class|meth|func|attr|exc|data|mod|obj):`(?P<target>[^`]+)`")


def _documented_paths() -> dict[str, str]:
    """Each public top-level name, by the path the reference documents it at (re-exports of a public
    submodule, such as ``retry``'s errors, are documented in that submodule)."""
    paths: dict[str, str] = {}
    for name in dir(bubus_anyio):
        value = getattr(bubus_anyio, name)
        if name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            paths[name] = value.__name__
            continue
        module = getattr(value, "__module__", "") or ""
        public_module = module.startswith("bubus_anyio.") and not module.split(".")[1].startswith("_")
        paths[name] = f"{module}.{name}" if public_module else f"bubus_anyio.{name}"
    paths.setdefault("retry", "bubus_anyio.retry.retry")
    return paths


_PATHS = _documented_paths()
_SUBMODULES = {name for name in sys.modules if name.startswith("bubus_anyio.")}


def _identifier(target: str, obj: griffe.Object) -> str:
    head, _, rest = target.partition(".")
    if head == "bubus_anyio":
        if rest and rest.split(".")[0] in _PATHS and f"bubus_anyio.{rest}" not in _SUBMODULES:
            first, _, tail = rest.partition(".")
            return _PATHS[first] + (f".{tail}" if tail else "")
        return target
    if head in _PATHS:
        return _PATHS[head] + (f".{rest}" if rest else "")
    scope = obj if obj.is_class else obj.parent
    return f"{scope.path}.{target}" if scope is not None else target


def _render(match: re.Match[str], obj: griffe.Object) -> str:
    target = match["target"].strip()
    if "<" in target and target.endswith(">"):  # :class:`text <path>`
        shown, target = (part.strip() for part in target[:-1].split("<", 1))
    elif target.startswith("~"):
        target = target[1:]
        shown = target.rsplit(".", 1)[-1]
    else:
        shown = target
    target = target.lstrip(".")
    if match["role"] in ("meth", "func") and not shown.endswith(")"):
        shown += "()"
    identifier = html.escape(_identifier(target, obj), quote=True)
    return f'<autoref identifier="{identifier}" optional><code>{html.escape(shown)}</code></autoref>'


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(lambda match: _render(match, obj), obj.docstring.value)
