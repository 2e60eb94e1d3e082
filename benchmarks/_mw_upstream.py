"""Middleware scenarios for ``_upstream.py`` (bubus 1.5.x, asyncio): the workload of ``_mw_ours`` (events
emitted and awaited one at a time, history 100) with nothing installed and with upstream's write-ahead log.

1.5.x has no middleware layer; its WAL is the ``EventBus(wal_path=...)`` option (one ``anyio.open_file``
append per completed event, no fsync), so ``middleware-wal`` compares against that. 1.5.x has no SQLite
mirror, logger or tracing middleware: those rows say n/a.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _harness import Clock
from bubus import BaseEvent, EventBus  # type: ignore[import-not-found]


class MwSimple(BaseEvent[int]):  # type: ignore[misc]
    value: int = 0


async def _burst(n: int, clock: Clock, wal: bool) -> dict[str, Any]:
    count = 0

    def handle(event: Any) -> int:
        nonlocal count
        count += 1
        return int(event.value)

    with tempfile.TemporaryDirectory(prefix="bench-mw-up-") as tmp:
        path = Path(tmp) / "events.jsonl"
        bus = EventBus("MwBurst", max_history_size=100, wal_path=path if wal else None)
        bus.on(MwSimple, handle)
        clock.start()
        for i in range(n):
            await bus.dispatch(MwSimple(value=i))
        await bus.wait_until_idle()
        clock.stop()
        lines = len(path.read_text().splitlines()) if wal and path.exists() else None
        await bus.stop(timeout=0, clear=True)
    extra: dict[str, Any] = {"processed": count, "expected": n}
    if lines is not None:
        extra["lines"] = lines
    return extra


async def none(n: int, clock: Clock) -> dict[str, Any]:
    return await _burst(n, clock, wal=False)


async def wal(n: int, clock: Clock) -> dict[str, Any]:
    return await _burst(n, clock, wal=True)


MW_SCENARIOS = {"middleware-none": (none, "event"), "middleware-wal": (wal, "event")}
