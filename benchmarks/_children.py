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
    samples: list[dict[str, Any]] = []
    failure: dict[str, Any] | None = None
    for _ in range(repeats):
        sample = run_child(argv, timeout)
        if not sample.get("ok"):
            failure = sample
            if not sample.get("error"):
                failure["error"] = f"its self-check failed: {sample.get('extra')}"
            break
        samples.append(sample)
    if not samples:
        assert failure is not None
        status = "did not finish" if failure.get("dnf") else _failure_status(failure)
        return Figure(n=n, status=status, note=str(failure.get("error", "")))
    return _median_figure(samples, n)


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
