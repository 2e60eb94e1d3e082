"""Scaling child for bubus-anyio: ``python benchmarks/_scaling.py CURVE BACKEND X M``.

Measures the time per event of a burst of ``M`` events (1 bus, 1 sync handler) while one thing grows:

- ``history``: X events already in the bus's history (``max_history_size=None``);
- ``buses``: X other buses alive and idle;
- ``handlers``: X handlers registered for other event types on the same bus;
- ``memory``: X events in bursts of M with bounded history; current RSS after each tenth (should stay flat).
"""

from __future__ import annotations

import logging
import sys
import warnings
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Clock, Sample, current_rss_kb, fill_sample, run_guarded

from bubus_anyio import BaseEvent, EventBus


class Simple(BaseEvent[int]):
    value: int = 0


def handle(event: Simple) -> int:
    return event.value


async def _burst(bus: EventBus, m: int) -> None:
    for i in range(m):
        bus.emit(Simple(value=i))
    await bus.wait_until_idle()


async def history(x: int, m: int, clock: Clock) -> dict[str, Any]:
    async with EventBus("History", max_history_size=None) as bus:
        bus.on(Simple, handle)
        await _burst(bus, x)
        clock.start()
        await _burst(bus, m)
        clock.stop()
        return {"history_before": x, "history_after": len(bus.event_history)}


async def buses(x: int, m: int, clock: Clock) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        for index in range(x):
            await stack.enter_async_context(EventBus(f"Idle{index}"))
        async with EventBus("Measured") as bus:
            bus.on(Simple, handle)
            clock.start()
            await _burst(bus, m)
            clock.stop()
    return {"idle_buses": x}


async def handlers(x: int, m: int, clock: Clock) -> dict[str, Any]:
    async with EventBus("Handlers", event_handler_detect_file_paths=False) as bus:
        for index in range(x):
            bus.on(f"Other{index}", handle)
        bus.on(Simple, handle)
        clock.start()
        await _burst(bus, m)
        clock.stop()
        return {"unrelated_handlers": x, "registered": len(bus.handlers)}


async def memory(x: int, m: int, clock: Clock) -> dict[str, Any]:
    """x events in bursts of m (so at most m are in flight); RSS in KiB after each tenth of them."""
    rss: list[int] = []
    async with EventBus("Memory", max_history_size=100) as bus:
        bus.on(Simple, handle)
        clock.start()
        for _ in range(10):
            for _ in range(max(x // 10 // m, 1)):
                await _burst(bus, m)
            rss.append(current_rss_kb())
        clock.stop()
        return {"rss_kb_after_each_tenth": rss, "history": len(bus.event_history)}


CURVES = {"history": history, "buses": buses, "handlers": handlers, "memory": memory}


def main() -> None:
    curve, backend, x, m = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    logging.getLogger("bubus_anyio").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    units = x if curve == "memory" else m

    def make() -> Sample:
        clock = Clock()
        extra = anyio.run(CURVES[curve], x, m, clock, backend=backend)
        return fill_sample(Sample(f"scaling-{curve}", "bubus-anyio", backend, units, extra=extra), clock)

    def failed(error: str) -> Sample:
        return Sample(f"scaling-{curve}", "bubus-anyio", backend, units, ok=False, error=error)

    run_guarded(make, failed)


if __name__ == "__main__":
    main()
