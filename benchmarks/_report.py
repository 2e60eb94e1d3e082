"""Tables (markdown, printed), the JSON results file and the optional scaling plot."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _children import Figure

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: bubus 2.3.2, Python, recorded with its own harness on a machine like this one (ms per unit).
RECORDED_PY_232: dict[str, float] = {
    "50k-events": 0.325,
    "500-buses-x-100-events": 0.317,
    "1-event-x-50k-parallel-handlers": 0.257,
    "50k-one-off-handlers": 0.429,
    "worst-case-forwarding-timeouts": 0.524,
    "emit-await-latency": 0.33,
}
#: bubus 2.3.2, TypeScript build on Node, same machine class (ms per unit).
RECORDED_TS_232: dict[str, float] = {
    "50k-events": 0.063,
    "500-buses-x-100-events": 0.072,
    "1-event-x-50k-parallel-handlers": 0.052,
    "50k-one-off-handlers": 0.061,
    "worst-case-forwarding-timeouts": 0.271,
}
RECORDED_NOTES = (
    "bubus 2.3.2 Python also recorded: a plain burst of 20k events with one sync handler 0.27-0.29 ms/event; "
    "one event awaited at a time about 0.33 ms/event (shown on emit-await-latency)."
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}" if value < 0.01 else f"{value:.3f}"


def _cell(figure: Figure | None) -> str:
    if figure is None:
        return "n/a"
    if figure.ms_per_unit is None:
        return figure.status
    return _ms(figure.ms_per_unit)


def _upstream_cell(figure: Figure | None, fallback: Figure | None) -> str:
    cell = _cell(figure)
    if figure is not None and figure.ms_per_unit is None and fallback is not None:
        cell = f"{cell} at {figure.n:,}; {_cell(fallback)} at {fallback.n:,}"
    return cell


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "-"
    return f"{numerator / denominator:.1f}x"


def main_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| scenario | unit | n | ours asyncio ms | ours trio ms | trio/asyncio | bubus 1.5.x live ms "
        "| bubus 2.3.2 py ms | bubus 2.3.2 TS/node ms | 2.3.2 py / ours asyncio |"
    )
    lines = [header, "|" + "---|" * 10]
    for row in rows:
        ours_a, ours_t = row["asyncio"], row["trio"]
        recorded = RECORDED_PY_232.get(row["scenario"])
        ts = RECORDED_TS_232.get(row["scenario"])
        lines.append(
            f"| {row['scenario']} | {ours_a.unit} | {ours_a.n:,} | {_cell(ours_a)} | {_cell(ours_t)} "
            f"| {_ratio(ours_t.ms_per_unit, ours_a.ms_per_unit)} "
            f"| {_upstream_cell(row.get('upstream'), row.get('upstream_fallback'))} "
            f"| {_ms(recorded)} | {_ms(ts)} | {_ratio(recorded, ours_a.ms_per_unit)} |"
        )
    return "\n".join(lines)


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def resource_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| scenario | CPU ms/unit asyncio | CPU trio | CPU upstream | peak RSS KiB/unit asyncio "
        "| RSS trio | RSS upstream | runs (a/t/u) |"
    )
    lines = [header, "|" + "---|" * 8]
    for row in rows:
        a, t = row["asyncio"], row["trio"]
        u: Figure | None = row.get("upstream")
        if u is not None and u.ms_per_unit is None:
            u = row.get("upstream_fallback") or u
        lines.append(
            f"| {row['scenario']} | {_ms(a.cpu_ms_per_unit)} | {_ms(t.cpu_ms_per_unit)} "
            f"| {_ms(u.cpu_ms_per_unit if u else None)} | {_kb(a.rss_kb_per_unit)} | {_kb(t.rss_kb_per_unit)} "
            f"| {_kb(u.rss_kb_per_unit if u else None)} | {a.runs}/{t.runs}/{u.runs if u else 0} |"
        )
    return "\n".join(lines)


def notes(rows: list[dict[str, Any]]) -> list[str]:
    """Why a figure is missing, one line per missing figure."""
    out: list[str] = []
    for row in rows:
        for key in ("asyncio", "trio", "upstream", "upstream_fallback"):
            figure: Figure | None = row.get(key)
            if figure is not None and figure.note:
                out.append(f"- {row['scenario']} / {key} (n={figure.n:,}): {figure.status}: {figure.note}")
    return out


def curve_table(name: str, points: list[dict[str, Any]]) -> str:
    lines = [f"| {name} | asyncio ms/event | trio ms/event |", "|---|---|---|"]
    for point in points:
        lines.append(f"| {point['x']:,} | {_cell(point['asyncio'])} | {_cell(point['trio'])} |")
    return "\n".join(lines)


def memory_table(points: dict[str, Figure]) -> str:
    lines = [
        "| backend | events | RSS KiB after each tenth | growth first->last tenth |",
        "|---|---|---|---|",
    ]
    for backend, figure in points.items():
        rss = figure.extra.get("rss_kb_after_each_tenth") or []
        growth = f"{rss[-1] - rss[0]:+,} KiB" if rss else figure.status
        lines.append(f"| {backend} | {figure.n:,} | {', '.join(f'{v:,}' for v in rss)} | {growth} |")
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Figure):
        return asdict(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def write_json(payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    mode = "smoke" if payload.get("smoke") else "full"
    text = json.dumps(_jsonable(payload), indent=2)
    path = RESULTS / f"{stamp}-{mode}.json"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    return path


def write_plot(
    curves: dict[str, list[dict[str, Any]]], memory: dict[str, Figure], smoke: bool
) -> Path | None:
    """A PNG of the scaling curves, when matplotlib is importable in this venv (never installed here)."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves) + 1, figsize=(4.2 * (len(curves) + 1), 3.6))
    for axis, (name, points) in zip(axes, curves.items(), strict=False):
        for backend in ("asyncio", "trio"):
            xs = [p["x"] for p in points if p[backend].ms_per_unit is not None]
            ys = [p[backend].ms_per_unit for p in points if p[backend].ms_per_unit is not None]
            axis.plot([max(x, 1) for x in xs], ys, marker="o", label=backend)
        axis.set_xscale("log")
        axis.set_ylim(bottom=0)
        axis.set_title(f"ms/event vs {name}")
        axis.legend()
    for backend, figure in memory.items():
        rss = figure.extra.get("rss_kb_after_each_tenth") or []
        axes[-1].plot(
            [(i + 1) * figure.n // 10 for i in range(len(rss))], [v / 1024 for v in rss], label=backend
        )
    axes[-1].set_ylim(bottom=0)
    axes[-1].set_title("RSS MiB over events (bounded history, bursts of 1k)")
    axes[-1].legend()
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"scaling-{'smoke' if smoke else 'full'}.png"
    fig.savefig(path, dpi=110)
    return path
