"""Where the time of one event goes: the 50k-events burst under cProfile, on asyncio and on trio.

    .venv/bin/python benchmarks/profile_hot_path.py [--events 50000] [--top 15]

Prints, per backend, the top functions by own time and by cumulative time, in microseconds *per event*
(deterministic profiling roughly doubles the run time, so read the split, not the absolute total), and
writes the full ``pstats`` dumps to ``benchmarks/results/profile-<backend>.pstats``.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import anyio

from bubus_anyio import BaseEvent, EventBus

RESULTS = Path(__file__).resolve().parent / "results"


class Simple(BaseEvent[int]):
    value: int = 0


def handle(event: Simple) -> int:
    return event.value


async def burst(n: int) -> None:
    async with EventBus("Profiled", max_history_size=100) as bus:
        bus.on(Simple, handle)
        for i in range(n):
            bus.emit(Simple(value=i))
        await bus.wait_until_idle()


def profile(backend: str, n: int) -> tuple[pstats.Stats, float, float]:
    """Run the burst once unprofiled (wall time) and once under cProfile."""
    started = time.perf_counter()
    anyio.run(burst, n, backend=backend)
    plain = time.perf_counter() - started
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(anyio.run, burst, n, backend=backend)
    profiled = time.perf_counter() - started
    return pstats.Stats(profiler), plain, profiled


def _where(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    path = Path(filename)
    short = f"{path.parent.name}/{path.name}" if path.suffix == ".py" else filename
    return f"{short}:{line} {name}" if line else name


def top_rows(stats: pstats.Stats, key: int, n_events: int, top: int) -> list[tuple[str, int, float, float]]:
    """``(function, calls per 1000 events, own us/event, cumulative us/event)`` sorted by ``key`` (2 or 3)."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = [
        (_where(func), int(calls * 1000 / n_events), own * 1e6 / n_events, cum * 1e6 / n_events)
        for func, (_, calls, own, cum, _) in raw.items()
    ]
    rows.sort(key=lambda row: row[key], reverse=True)
    return rows[:top]


def table(title: str, rows: list[tuple[str, int, float, float]]) -> str:
    lines = [
        f"\n{title}\n",
        "| function | calls/1k events | own us/event | cumulative us/event |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{name}` | {calls:,} | {own:.2f} | {cum:.2f} |" for name, calls, own, cum in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    logging.getLogger("bubus_anyio").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    RESULTS.mkdir(exist_ok=True)
    for backend in ("asyncio", "trio"):
        stats, plain, profiled = profile(backend, args.events)
        stats.dump_stats(str(RESULTS / f"profile-{backend}.pstats"))
        per_event = plain * 1e6 / args.events
        print(f"\n### {backend}: {args.events:,} events, {per_event:.1f} us/event unprofiled, ", end="")
        print(f"{profiled * 1e6 / args.events:.1f} us/event under cProfile")
        print(table("By own time:", top_rows(stats, 2, args.events, args.top)))
        print(table("By cumulative time:", top_rows(stats, 3, args.events, args.top)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
