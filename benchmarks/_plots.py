"""The figures of the documentation's performance page, computed from ``benchmarks/results/*.json``.

The site build (``docs/_gen/hooks.py``) calls :func:`page_sections` and :func:`cost_plot_svg`, so the page
never carries pasted numbers: a new ``make bench`` run shows up at the next ``make docs``. The tables are
the ones ``run.py`` prints (``_report``), read back from the JSON. Standalone, for a look without MkDocs::

    .venv/bin/python benchmarks/_plots.py OUT_DIR   # writes OUT_DIR/performance.md and cost-per-event.svg
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # _report imports its siblings as top-level modules, as run.py does
    sys.path.insert(0, str(HERE))

from _children import Figure  # noqa: E402
from _report import (  # noqa: E402
    RECORDED_NOTES,
    RECORDED_PY_232,
    RECORDED_TS_232,
    curve_table,
    main_table,
    memory_table,
    resource_table,
)

RESULTS = HERE / "results"
#: Timestamped result files (``latest.json`` is a copy of the newest one, whatever its mode).
_RUN_FILE = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<mode>full|smoke)\.json$")
#: SPEC §3: at least this many times faster than bubus 2.3.2 Python, on asyncio.
TARGET_VS_PY = 10.0
#: SPEC §3: trio at most this many times slower than asyncio.
TARGET_TRIO = 1.3
#: Axis labels of the upstream scenarios in the plot.
_LABELS = {
    "50k-events": "1 bus x\n50k events",
    "500-buses-x-100-events": "500 buses x\n100 events",
    "1-event-x-50k-parallel-handlers": "1 event x 50k\nparallel handlers",
    "50k-one-off-handlers": "50k one-off\nhandlers",
    "worst-case-forwarding-timeouts": "worst case: forwarding,\nqueue-jumps, timeouts",
    "emit-await-latency": "emit + await,\none at a time",
}


class ResultsError(RuntimeError):
    """The results directory holds no run the page can be built from (the message says what is missing)."""


def _figures(value: Any) -> Any:
    """The JSON of a run with every serialised ``Figure`` turned back into one."""
    if isinstance(value, dict):
        if "ms_per_unit" in value and "runs" in value:
            return Figure(**value)
        return {key: _figures(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_figures(item) for item in value]
    return value


def load_run(path: Path) -> dict[str, Any]:
    """One results file, with ``Figure`` objects where ``run.py`` wrote them, and its file name."""
    run = _figures(json.loads(path.read_text(encoding="utf-8")))
    run["file"] = path.name
    return run


def full_runs(results: Path = RESULTS) -> list[dict[str, Any]]:
    """Every timestamped full-mode run, oldest first."""
    paths = sorted(
        p for p in results.glob("*.json") if (m := _RUN_FILE.match(p.name)) and m["mode"] == "full"
    )
    return [load_run(path) for path in paths]


def is_complete(run: dict[str, Any]) -> bool:
    """Whether a run measured every upstream scenario and the scaling curves (a partial run, made with
    ``--only``, does not)."""
    scenarios = {row["scenario"] for row in run["scenarios"]}
    return set(RECORDED_PY_232) <= scenarios and bool(run.get("scaling")) and bool(run.get("memory"))


def chosen_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest complete full run: the one the page's tables show."""
    complete = [run for run in runs if is_complete(run)]
    if not complete:
        raise ResultsError(
            f"no complete full-mode run in {RESULTS} (one with every upstream scenario, the scaling curves "
            f"and the memory run): run `make bench`; files seen: {[run['file'] for run in runs]}"
        )
    return complete[-1]


def _row(run: dict[str, Any], scenario: str) -> dict[str, Any] | None:
    return next((row for row in run["scenarios"] if row["scenario"] == scenario), None)


def _ms(figure: Figure | None) -> float | None:
    return None if figure is None else figure.ms_per_unit


def _stamp(run: dict[str, Any]) -> str:
    m = _RUN_FILE.match(run["file"])
    if m is None:
        return run["file"]
    s = m["stamp"]
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]} {s[9:11]}:{s[11:13]} UTC"


def machine(run: dict[str, Any]) -> str:
    m = run["machine"]
    upstream = m.get("upstream") or {}
    live = ", ".join(f"{name} {version}" for name, version in upstream.items()) or "not run"
    return "\n".join(
        [
            f"- Run `benchmarks/results/{run['file']}` ({_stamp(run)}, {run['elapsed_s']:.0f} s in all)",
            f"- {m['cpu']}, {m['cores']} cores, {m['platform']}",
            f"- CPython {m['python']}, anyio {m['anyio']}, trio {m['trio']}, attrs {m['attrs']}, "
            f"bubus-anyio {m['bubus_anyio']}",
            f"- Upstream live, in its own venv: {live}",
            "- Recorded, not run here: bubus 2.3.2 Python and its TypeScript build on Node, measured with "
            "upstream's own harness on a machine like this one",
        ]
    )


def targets(run: dict[str, Any]) -> str:
    """SPEC §3's throughput targets, scenario by scenario, with the measured margin."""
    lines = [
        f"| scenario | ours asyncio ms | 2.3.2 py / ours (target >= {TARGET_VS_PY:g}x) "
        f"| faster than 2.3.2 on Node | trio / asyncio (target <= {TARGET_TRIO:g}x) |",
        "|---|---|---|---|---|",
    ]
    for scenario, recorded in RECORDED_PY_232.items():
        row = _row(run, scenario)
        ours = _ms(row["asyncio"]) if row else None
        trio = _ms(row["trio"]) if row else None
        if ours is None:
            lines.append(f"| {scenario} | no figure | - | - | - |")
            continue
        ratio = recorded / ours
        node = RECORDED_TS_232.get(scenario)
        node_cell = (
            "no recorded figure" if node is None else f"{'yes' if ours < node else 'NO'} ({node:.3f} ms)"
        )
        trio_cell = (
            "-" if trio is None else f"{trio / ours:.2f}x {'met' if trio / ours <= TARGET_TRIO else 'MISSED'}"
        )
        lines.append(
            f"| {scenario} | {ours:.4f} | {ratio:.1f}x {'met' if ratio >= TARGET_VS_PY else 'MISSED'} "
            f"| {node_cell} | {trio_cell} |"
        )
    return "\n".join(lines)


def scaling(run: dict[str, Any]) -> str:
    return "\n\n".join(curve_table(name, points) for name, points in run["scaling"].items())


def history_of_runs(runs: list[dict[str, Any]]) -> str:
    """The headline scenarios in every full run kept, to show how much the same code moves between runs."""
    shown = ("50k-events", "worst-case-forwarding-timeouts", "emit-await-latency")
    header = " | ".join(f"{s} asyncio / trio ms" for s in shown)
    lines = [f"| run | {header} |", "|---" * (len(shown) + 1) + "|"]
    for run in runs:
        cells: list[str] = []
        for scenario in shown:
            row = _row(run, scenario)
            a, t = (_ms(row["asyncio"]), _ms(row["trio"])) if row else (None, None)
            cells.append("-" if a is None else f"{a:.4f} / {t:.4f}" if t is not None else f"{a:.4f} / -")
        lines.append(f"| `{run['file']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: What each middleware row runs (``benchmarks/_mw_ours.py``), for the table's first column.
MIDDLEWARE_ROWS = {
    "middleware-none": "none (baseline)",
    "middleware-noop": "noop (3 sync hooks doing nothing)",
    "middleware-logger": "logger (INFO to /dev/null)",
    "middleware-wal": "wal (`fsync='batch'`)",
    "middleware-wal-writer": "wal inside `async with wal`",
    "middleware-wal-fsync-always": "wal `fsync='always'`",
    "middleware-sqlite": "sqlite (plain)",
    "middleware-sqlite-writer": "sqlite inside `async with mirror`",
    "middleware-otel": "otel (SDK, SimpleSpanProcessor, in-memory exporter)",
    "middleware-auto-return": "auto-return (one extra event per result)",
}


def middlewares(runs: list[dict[str, Any]]) -> str:
    """Cost per event with each middleware installed, from the newest full run that measured them."""
    measured = [run for run in runs if any(row["scenario"] in MIDDLEWARE_ROWS for row in run["scenarios"])]
    if not measured:
        raise ResultsError(f"no full-mode run in {RESULTS} has the middleware rows: run `make bench`")
    run = measured[-1]
    lines = [
        f"Run `benchmarks/results/{run['file']}` ({_stamp(run)}).",
        "",
        "| middleware | asyncio ms/event | trio ms/event | CPU asyncio | CPU trio | upstream 1.5.x live |",
        "|---|---|---|---|---|---|",
    ]

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for scenario, title in MIDDLEWARE_ROWS.items():
        row = _row(run, scenario)
        if row is None:
            continue
        a, t = row["asyncio"], row["trio"]
        u: Figure | None = row.get("upstream")
        upstream = (
            "n/a"
            if u is None or u.ms_per_unit is None
            else f"{u.ms_per_unit:.2f} (CPU {cell(u.cpu_ms_per_unit)})"
        )
        lines.append(
            f"| {title} | {cell(a.ms_per_unit)} | {cell(t.ms_per_unit)} | {cell(a.cpu_ms_per_unit)} "
            f"| {cell(t.cpu_ms_per_unit)} | {upstream} |"
        )
    return "\n".join(lines)


def page_sections(results: Path = RESULTS) -> dict[str, str]:
    """The generated parts of the performance page, by the name of their placeholder."""
    runs = full_runs(results)
    run = chosen_run(runs)
    return {
        "machine": machine(run),
        "main-table": main_table(run["scenarios"]),
        "resource-table": resource_table(run["scenarios"]),
        "targets": targets(run),
        "scaling": scaling(run),
        "memory": memory_table(run["memory"]),
        "runs": history_of_runs(runs),
        "recorded-notes": RECORDED_NOTES,
        "middlewares": middlewares(runs),
    }


def cost_plot_svg(results: Path = RESULTS) -> bytes:
    """A bar chart (log scale) of milliseconds per unit on the upstream scenarios: ours on asyncio and on
    trio, bubus 2.3.2 Python and Node (recorded), bubus 1.5.x live (at the N it finished)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "bubus-anyio"  # the same results give the same file
    run = chosen_run(full_runs(results))
    scenarios = list(RECORDED_PY_232)
    series: list[tuple[str, list[float | None]]] = []
    rows = [_row(run, s) for s in scenarios]
    series.append(("bubus-anyio, asyncio", [_ms(r["asyncio"]) if r else None for r in rows]))
    series.append(("bubus-anyio, trio", [_ms(r["trio"]) if r else None for r in rows]))
    series.append(("bubus 2.3.2 Python (recorded)", [RECORDED_PY_232.get(s) for s in scenarios]))
    series.append(("bubus 2.3.2 TS on Node (recorded)", [RECORDED_TS_232.get(s) for s in scenarios]))

    def live(row: dict[str, Any] | None) -> float | None:
        if row is None:
            return None
        return _ms(row.get("upstream")) or _ms(row.get("upstream_fallback"))

    series.append(("bubus 1.5.x live (small N where it did not finish)", [live(r) for r in rows]))

    fig, axis = plt.subplots(figsize=(10, 5.2))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        axis.bar(xs, ys, width=width, label=label)
    axis.set_yscale("log")
    axis.set_ylabel("ms per event (per handler for parallel handlers), log scale")
    axis.set_xticks(range(len(scenarios)))
    axis.set_xticklabels([_LABELS.get(s, s) for s in scenarios], fontsize=8)
    axis.set_title(f"Cost per event on upstream's scenarios (lower is better), {run['file']}")
    axis.grid(axis="y", which="both", alpha=0.3)
    fig.legend(fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)
    return out.getvalue()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    parts = page_sections()
    (out / "performance.md").write_text("\n\n".join(f"## {k}\n\n{v}" for k, v in parts.items()) + "\n")
    (out / "cost-per-event.svg").write_bytes(cost_plot_svg())
    print(f"wrote {out / 'performance.md'} and {out / 'cost-per-event.svg'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
