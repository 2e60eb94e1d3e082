"""The performance page's figures come from benchmarks/results/*.json (benchmarks/_plots.py), never from
numbers pasted into docs/performance.md."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import _plots  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "performance.md"


def test_the_page_uses_every_generated_section_and_only_those() -> None:
    placeholders = set(re.findall(r"<!--\s*generated:\s*([a-z-]+)\s*-->", PAGE.read_text(encoding="utf-8")))
    assert placeholders == set(_plots.page_sections())


def test_the_page_pastes_no_benchmark_table() -> None:
    """The scenario tables are generated: the page source names no scenario in a table row."""
    rows = [line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith("| 50k-events")]
    assert rows == []


def test_the_newest_complete_full_run_is_shown(tmp_path: Path) -> None:
    for path in RESULTS.glob("*-full.json"):
        shutil.copy(path, tmp_path / path.name)
    newest_complete = _plots.chosen_run(_plots.full_runs(tmp_path))["file"]
    # A newer partial run (`run.py --only ...`, as latest.json holds now) does not replace it.
    shutil.copy(RESULTS / "latest.json", tmp_path / "29991231T235959Z-full.json")
    runs = _plots.full_runs(tmp_path)
    assert runs[-1]["file"] == "29991231T235959Z-full.json"
    assert not _plots.is_complete(runs[-1])
    assert _plots.chosen_run(runs)["file"] == newest_complete
    sections = _plots.page_sections(tmp_path)
    assert f"benchmarks/results/{newest_complete}" in sections["machine"]
    assert "29991231T235959Z-full.json" in sections["runs"]  # every run is listed in the history


def test_no_complete_run_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    shutil.copy(RESULTS / "latest.json", tmp_path / "29991231T235959Z-full.json")
    with pytest.raises(_plots.ResultsError, match="make bench"):
        _plots.page_sections(tmp_path)


def test_the_plot_is_an_svg_of_the_chosen_run() -> None:
    pytest.importorskip("matplotlib", reason="the plot needs the docs extra (pip install -e '.[docs]')")
    svg = _plots.cost_plot_svg().decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert _plots.chosen_run(_plots.full_runs())["file"] in svg
