"""Benchmarks: bubus-anyio (asyncio and trio) side by side with upstream bubus.

    .venv/bin/python benchmarks/run.py            # full mode, several minutes
    .venv/bin/python benchmarks/run.py --smoke    # every scenario once with small N, well under a minute

Every run of every scenario happens in a fresh subprocess (so peak RSS and warm caches never leak from
one run to the next); figures are the median over runs. Upstream bubus (PyPI 1.5.x) runs in its own venv
``benchmarks/.venv-upstream``, created here when missing, under a time limit per run. Results are printed
as markdown tables and written to ``benchmarks/results/`` (timestamped JSON plus ``latest.json``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report
import _upstream_env
from _children import Figure, measure, measure_interleaved, ours_argv, scaling_argv, upstream_argv

BACKENDS = ("asyncio", "trio")
MEMORY_BURST = 1_000
UPSTREAM_SCENARIOS = frozenset(
    {
        "50k-events",
        "500-buses-x-100-events",
        "1-event-x-50k-parallel-handlers",
        "50k-one-off-handlers",
        "worst-case-forwarding-timeouts",
        "forwarding-slow-handlers",
        "emit-await-latency",
        "queue-jump",
        "json-roundtrip",
        "middleware-none",
        "middleware-wal",
    }
)
#: one row per middleware (``_mw_ours.KINDS``): the same burst with it installed, vs ``middleware-none``
MIDDLEWARE_SCENARIOS = (
    "middleware-none",
    "middleware-noop",
    "middleware-logger",
    "middleware-wal",
    "middleware-wal-writer",
    "middleware-wal-fsync-always",
    "middleware-sqlite",
    "middleware-sqlite-writer",
    "middleware-otel",
    "middleware-auto-return",
)
#: the middleware rows smoke mode keeps (every middleware is exercised by the tests; this keeps CI quick)
SMOKE_MIDDLEWARES = frozenset({"middleware-none", "middleware-wal", "middleware-sqlite-writer"})


@dataclass(frozen=True)
class Mode:
    """Sizes and limits of one mode. ``sizes`` maps scenario -> N; ``repeats`` maps scenario -> runs."""

    smoke: bool
    sizes: dict[str, int]
    repeats: dict[str, int]
    upstream_timeout: float
    ours_timeout: float
    upstream_fallback_n: int
    history_points: tuple[int, ...]
    bus_points: tuple[int, ...]
    handler_points: tuple[int, ...]
    curve_burst: int
    memory_events: int


FULL = Mode(
    smoke=False,
    sizes={
        "50k-events": 50_000,
        "500-buses-x-100-events": 50_000,
        "1-event-x-50k-parallel-handlers": 50_000,
        "50k-one-off-handlers": 50_000,
        "worst-case-forwarding-timeouts": 5_000,  # iterations, 3 events each
        "forwarding-slow-handlers": 5_000,
        "emit-await-latency": 20_000,
        "queue-jump": 20_000,
        "find-100k-history": 100_000,
        "json-roundtrip": 20_000,
    }
    | {name: 2_000 for name in MIDDLEWARE_SCENARIOS}
    | {"middleware-wal-fsync-always": 300, "middleware-sqlite": 1_000},  # an fsync / 2 commits per event
    repeats={"find-100k-history": 3, "forwarding-slow-handlers": 3},
    upstream_timeout=30.0,
    ours_timeout=300.0,
    upstream_fallback_n=300,
    history_points=(100, 1_000, 10_000, 100_000),
    bus_points=(1, 10, 100, 1_000),
    handler_points=(0, 10, 100, 1_000, 10_000),
    curve_burst=10_000,
    memory_events=1_000_000,
)

SMOKE = Mode(
    smoke=True,
    sizes={name: 300 for name in FULL.sizes if name not in MIDDLEWARE_SCENARIOS or name in SMOKE_MIDDLEWARES}
    | {"find-100k-history": 2_000},
    repeats={},
    upstream_timeout=4.0,
    ours_timeout=60.0,
    upstream_fallback_n=0,
    history_points=(100, 1_000),
    bus_points=(1, 100),
    handler_points=(0, 1_000),
    curve_burst=500,
    memory_events=20_000,
)


def repeats_for(mode: Mode, scenario: str) -> int:
    if mode.smoke:
        return 1
    return mode.repeats.get(scenario, 5)


# ------------------------------------------------------------------------------------------ machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def machine_info(upstream: dict[str, str]) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "anyio": _version("anyio"),
        "trio": _version("trio"),
        "attrs": _version("attrs"),
        "bubus_anyio": _version("bubus-anyio"),
        "upstream": upstream,
    }


# ------------------------------------------------------------------------------------------ scenarios
def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _describe(figure: Figure) -> str:
    if figure.ms_per_unit is None:
        return f"{figure.status} ({figure.note[:80]})"
    return f"{figure.ms_per_unit:.4f} ms/{figure.unit} (runs {figure.wall_s} s)"


def run_scenario(name: str, mode: Mode, upstream_python: Path | None) -> dict[str, Any]:
    n = mode.sizes[name]
    repeats = repeats_for(mode, name)
    row: dict[str, Any] = {"scenario": name}
    figures = measure_interleaved(
        {backend: ours_argv(name, backend, n) for backend in BACKENDS}, n, repeats, mode.ours_timeout
    )
    for backend in BACKENDS:
        row[backend] = figures[backend]
        log(f"  {name} ours/{backend}: {_describe(row[backend])}")
    if upstream_python is not None and name in UPSTREAM_SCENARIOS:
        row.update(run_upstream(name, mode, upstream_python, min(repeats, 3)))
    return row


def run_upstream(name: str, mode: Mode, python: Path, repeats: int) -> dict[str, Figure]:
    """Upstream at the same N; when it does not finish, once more at a small N so there is a live figure."""
    n = mode.sizes[name]
    figure = measure(upstream_argv(python, name, n), n, repeats, mode.upstream_timeout)
    log(f"  {name} upstream: {_describe(figure)}")
    out = {"upstream": figure}
    small = mode.upstream_fallback_n
    if figure.ms_per_unit is None and figure.status == "did not finish" and 0 < small < n:
        fallback = measure(upstream_argv(python, name, small), small, 1, mode.upstream_timeout)
        log(f"  {name} upstream at n={small}: {_describe(fallback)}")
        out["upstream_fallback"] = fallback
    return out


# ------------------------------------------------------------------------------------------ scaling
def run_curve(curve: str, points: tuple[int, ...], mode: Mode) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for x in points:
        argvs = {backend: scaling_argv(curve, backend, x, mode.curve_burst) for backend in BACKENDS}
        figures = measure_interleaved(argvs, mode.curve_burst, 1 if mode.smoke else 3, mode.ours_timeout)
        row: dict[str, Any] = {"x": x, **figures}
        log(f"  scaling {curve}={x}: asyncio {_describe(row['asyncio'])}; trio {_describe(row['trio'])}")
        rows.append(row)
    return rows


def run_scaling(mode: Mode) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Figure]]:
    curves = {
        "history size": run_curve("history", mode.history_points, mode),
        "idle buses": run_curve("buses", mode.bus_points, mode),
        "unrelated handlers": run_curve("handlers", mode.handler_points, mode),
    }
    memory: dict[str, Figure] = {}
    for backend in BACKENDS:
        argv = scaling_argv("memory", backend, mode.memory_events, MEMORY_BURST)
        memory[backend] = measure(argv, mode.memory_events, 1, mode.ours_timeout * 4)
        log(f"  memory over {mode.memory_events:,} events on {backend}: {_describe(memory[backend])}")
    return curves, memory


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="small N, every scenario once (CI)")
    parser.add_argument("--only", nargs="*", metavar="SCENARIO", help="run only these scenarios")
    parser.add_argument("--no-upstream", action="store_true", help="skip upstream bubus")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling curves")
    return parser.parse_args(argv)


def setup_upstream(args: argparse.Namespace) -> tuple[Path | None, dict[str, str]]:
    if args.no_upstream:
        return None, {}
    version = _upstream_env.ensure()
    if version is None:
        log("[setup] upstream bubus unavailable: its columns will say n/a")
        return None, {}
    return _upstream_env.PYTHON, _upstream_env.versions()


def print_results(rows: list[dict[str, Any]], machine: dict[str, Any], mode: Mode) -> None:
    print(f"\n## bubus-anyio benchmarks ({'smoke' if mode.smoke else 'full'} mode)\n")
    print(
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, anyio "
        f"{machine['anyio']}, trio {machine['trio']}; upstream {machine['upstream'] or 'n/a'}\n"
    )
    print(_report.main_table(rows))
    print("\nCPU time and peak RSS delta per unit (median of runs):\n")
    print(_report.resource_table(rows))
    print(f"\n{_report.RECORDED_NOTES}")
    missing = _report.notes(rows)
    if missing:
        print("\nNotes:\n" + "\n".join(missing))


def print_scaling(curves: dict[str, list[dict[str, Any]]], memory: dict[str, Figure]) -> None:
    for name, points in curves.items():
        print(f"\nTime per event vs {name}:\n")
        print(_report.curve_table(name, points))
    print("\nMemory with bounded history (max_history_size=100):\n")
    print(_report.memory_table(memory))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = SMOKE if args.smoke else FULL
    started = time.perf_counter()
    upstream_python, upstream_versions = setup_upstream(args)
    machine = machine_info(upstream_versions)
    names = [n for n in mode.sizes if not args.only or n in args.only]
    log(f"[bench] {'smoke' if mode.smoke else 'full'} mode: {len(names)} scenarios")
    rows = [run_scenario(name, mode, upstream_python) for name in names]
    curves: dict[str, list[dict[str, Any]]] = {}
    memory: dict[str, Figure] = {}
    if not args.no_scaling:
        curves, memory = run_scaling(mode)
    elapsed = time.perf_counter() - started
    print_results(rows, machine, mode)
    if curves:
        print_scaling(curves, memory)
    payload = {
        "smoke": mode.smoke,
        "elapsed_s": round(elapsed, 1),
        "machine": machine,
        "recorded": {
            "bubus_2_3_2_python": _report.RECORDED_PY_232,
            "bubus_2_3_2_ts_node": _report.RECORDED_TS_232,
        },
        "scenarios": rows,
        "scaling": curves,
        "memory": memory,
    }
    path = _report.write_json(payload)
    plot = _report.write_plot(curves, memory, mode.smoke) if curves else None
    print(
        f"\nWrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
        + (f" and {plot.name}" if plot else " (no plot: matplotlib is not importable here)")
    )
    print(f"Total time: {elapsed:.1f}s")
    return 0 if all(_healthy(row) for row in rows) else 1


def _healthy(row: dict[str, Any]) -> bool:
    """Our own runs must succeed (or be skipped with a note); upstream may fail or not finish."""
    return all(row[b].ms_per_unit is not None or row[b].status == "skipped" for b in BACKENDS)


if __name__ == "__main__":
    raise SystemExit(main())
