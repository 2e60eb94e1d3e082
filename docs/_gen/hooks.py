"""MkDocs hooks of the documentation site (mkdocs.yml: ``hooks:``).

- The performance page's tables and plot are computed from ``benchmarks/results/*.json`` at every build
  (``benchmarks/_plots.py``): the page holds ``<!-- generated: NAME -->`` placeholders, never numbers. An
  unknown placeholder, or a results directory with no complete run, fails the build.
- Mermaid: when ``make docs`` has fetched mermaid.js (``build/docs-vendor/``, from the npm registry) the
  site ships it, so the diagrams render without a CDN; without it Material loads mermaid from its CDN.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _plots  # noqa: E402

#: Where `make docs` puts mermaid.min.js (see the Makefile's MERMAID variable).
VENDOR = ROOT / "build" / "docs-vendor"
MERMAID_URI = "assets/javascripts/mermaid.min.js"
PLOT_URI = "assets/generated/cost-per-event.svg"
PERFORMANCE_PAGE = "performance.md"
_PLACEHOLDER = re.compile(r"<!--\s*generated:\s*(?P<name>[a-z-]+)\s*-->")

_sections: dict[str, str] = {}


def _mermaid() -> Path | None:
    found = sorted(VENDOR.glob("mermaid-*.min.js"))
    return found[-1] if found else None


def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    if _mermaid() is not None and MERMAID_URI not in [str(s) for s in config.extra_javascript]:
        config.extra_javascript.append(MERMAID_URI)  # before Material's loader looks for `mermaid`
    return config


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    try:
        _sections.clear()
        _sections.update(_plots.page_sections())
        svg = _plots.cost_plot_svg()
    except _plots.ResultsError as error:
        raise PluginError(str(error)) from error
    files.append(File.generated(config, PLOT_URI, content=svg))
    mermaid = _mermaid()
    if mermaid is not None:
        files.append(File.generated(config, MERMAID_URI, abs_src_path=str(mermaid)))
    return files


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    if page.file.src_uri != PERFORMANCE_PAGE:
        if _PLACEHOLDER.search(markdown):
            raise PluginError(f"{page.file.src_uri}: generated placeholders work on {PERFORMANCE_PAGE} only")
        return markdown

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in _sections:
            raise PluginError(f"{PERFORMANCE_PAGE}: unknown placeholder {name!r}; known: {sorted(_sections)}")
        return _sections[name]

    filled = _PLACEHOLDER.sub(fill, markdown)
    if filled == markdown:
        raise PluginError(f"{PERFORMANCE_PAGE} has no generated placeholder: its tables would be stale")
    return filled
