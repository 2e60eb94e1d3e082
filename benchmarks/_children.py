"""Starting scenario children and turning their samples into per-unit figures (median of runs)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import RESULT_PREFIX

HERE = Path(__file__).resolve().parent


@dataclass
class Figure:
    """The median over runs of one scenario for one library/backend. ``None`` fields: no successful run."""

    runs: int = 0
    n: int = 0
    unit: str = "event"
    ms_per_unit: float | None = None
    cpu_ms_per_unit: float | None = None
    rss_kb_per_unit: float | None = None
    wall_s: list[float] = field(default_factory=list)
    status: str = "ok"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def run_child(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run one child; return its sample, or a failed sample saying why (time limit, crash)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"did not finish within {timeout:g}s", "dnf": True}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"ok": False, "error": f"exit {done.returncode}: {' | '.join(tail)}"[:300]}


def ours_argv(scenario: str, backend: str, n: int) -> list[str]:
    return [sys.executable, str(HERE / "_ours.py"), scenario, backend, str(n)]


def upstream_argv(python: Path, scenario: str, n: int) -> list[str]:
    return [str(python), str(HERE / "_upstream.py"), scenario, str(n)]


def scaling_argv(curve: str, backend: str, x: int, m: int) -> list[str]:
    return [sys.executable, str(HERE / "_scaling.py"), curve, backend, str(x), str(m)]


def measure(argv: list[str], n: int, repeats: int, timeout: float) -> Figure:
    """Run ``argv`` up to ``repeats`` times (fresh process each) and take medians of the good runs.

    The first failure stops the repeats: a run that did not finish will not finish next time either.
    """
    return measure_interleaved({"only": argv}, n, repeats, timeout)["only"]


def measure_interleaved(
    argvs: dict[str, list[str]], n: int, repeats: int, timeout: float
) -> dict[str, Figure]:
    """Like :func:`measure` for several commands (one per backend), taking turns: run 1 of each, then run 2
    of each... This machine's speed drifts by up to a third over minutes; in turns, the commands share
    the drift, so their ratio (trio against asyncio) is not skewed by which one ran in a slow phase."""
    samples: dict[str, list[dict[str, Any]]] = {key: [] for key in argvs}
    failures: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for key, argv in argvs.items():
            if key in failures:
                continue
            sample = run_child(argv, timeout)
            if not sample.get("ok"):
                if not sample.get("error"):
                    sample["error"] = f"its self-check failed: {sample.get('extra')}"
                failures[key] = sample
                continue
            samples[key].append(sample)
    figures: dict[str, Figure] = {}
    for key in argvs:
        if samples[key]:
            figures[key] = _median_figure(samples[key], n)
        else:
            failure = failures[key]
            status = "did not finish" if failure.get("dnf") else _failure_status(failure)
            figures[key] = Figure(n=n, status=status, note=str(failure.get("error", "")))
    return figures


def _failure_status(failure: dict[str, Any]) -> str:
    error = str(failure.get("error") or "")
    if error.startswith("NotImplementedError: skipped"):
        return "skipped"
    return "failed"


def _median_figure(samples: list[dict[str, Any]], n: int) -> Figure:
    units = max(int(samples[0]["units"]), 1)
    return Figure(
        runs=len(samples),
        n=n,
        unit=str(samples[0]["unit"]),
        ms_per_unit=statistics.median(s["wall_s"] for s in samples) * 1e3 / units,
        cpu_ms_per_unit=statistics.median(s["cpu_s"] for s in samples) * 1e3 / units,
        rss_kb_per_unit=statistics.median(s["rss_delta_kb"] for s in samples) / units,
        wall_s=[round(float(s["wall_s"]), 4) for s in samples],
        extra=dict(samples[-1].get("extra") or {}),
    )
