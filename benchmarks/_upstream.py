"""Scenario child for upstream bubus (PyPI 1.5.x): ``.venv-upstream/bin/python benchmarks/_upstream.py SCENARIO N``.

Same workloads as ``_ours.py``, written against upstream's API: ``dispatch`` instead of ``emit``, no
``off`` (handlers are removed from ``bus.handlers[...]`` as upstream's own harness does), no per-handler
timeout (``event_timeout`` on the event applies to each of its handlers), no ``find`` over history.

Upstream 1.5.x refuses more than 100 pending events when ``max_history_size`` is set (its queue holds 50),
so every scenario that emits a burst uses ``max_history_size=None``, the only setting that accepts the
burst; its history then grows and each runloop step scans it, which is why big bursts do not finish.
One-at-a-time scenarios keep the bounded history.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Clock, Sample, fill_sample, report
from _mw_upstream import MW_SCENARIOS
from bubus import BaseEvent, EventBus  # type: ignore[import-not-found]

HISTORY = 100
BURST_HISTORY = None
HANDLER_TIMEOUT = 0.0001
SLOW_SLEEP = 0.001
WORST_HISTORY = BURST_HISTORY  # 1.5.x: a bounded history refuses new events once 100 are kept (QueueFull)
IMMEDIATE_TIMEOUT = 1e-7


class Simple(BaseEvent[int]):
    value: int = 0


class Hop(BaseEvent[int]):
    value: int = 0
    slow: bool = False


class WorstParent(BaseEvent[int]):
    iteration: int = 0
    value: int = 0


class WorstChild(BaseEvent[int]):
    iteration: int = 0
    value: int = 0


class WorstGrandchild(BaseEvent[int]):
    iteration: int = 0
    value: int = 0


class Parent(BaseEvent[int]):
    value: int = 0


class Child(BaseEvent[int]):
    value: int = 0


class Typical(BaseEvent[int]):
    user_id: str = ""
    email: str = ""
    count: int = 0
    score: float = 0.0
    tags: list[str]
    attributes: dict[str, int]
    note: str | None = None


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def handle(self, event: Simple) -> int:
        self.count += 1
        return event.value


Scenario = Callable[[int, Clock], Awaitable[dict[str, Any]]]


async def close(*buses: Any) -> None:
    for bus in buses:
        await bus.stop(timeout=0, clear=True)


async def burst(n: int, clock: Clock) -> dict[str, Any]:
    counter = Counter()
    bus = EventBus("Burst", max_history_size=BURST_HISTORY)
    bus.on(Simple, counter.handle)
    clock.start()
    for i in range(n):
        bus.dispatch(Simple(value=i))
    await bus.wait_until_idle()
    clock.stop()
    await close(bus)
    return {"processed": counter.count, "expected": n}


async def many_buses(n: int, clock: Clock) -> dict[str, Any]:
    counter = Counter()
    clock.start()
    for index in range(n // 100):
        bus = EventBus(f"Ephemeral{index}", max_history_size=BURST_HISTORY)
        bus.on(Simple, counter.handle)
        for i in range(100):
            bus.dispatch(Simple(value=i))
        await bus.wait_until_idle()
        await close(bus)
    clock.stop()
    return {"processed": counter.count, "expected": n // 100 * 100}


def _fixed_handler(counter: Counter, index: int) -> Callable[[Simple], int]:
    def handler(event: Simple) -> int:
        counter.count += 1
        return event.value

    handler.__name__ = handler.__qualname__ = f"fixed_handler_{index}"
    return handler


async def parallel_handlers(n: int, clock: Clock) -> dict[str, Any]:
    counter = Counter()
    bus = EventBus("Parallel", max_history_size=HISTORY, parallel_handlers=True)
    for index in range(n):
        bus.on(Simple, _fixed_handler(counter, index))
    clock.start()
    await bus.dispatch(Simple(value=1))
    await bus.wait_until_idle()
    clock.stop()
    await close(bus)
    return {"processed": counter.count, "expected": n}


async def one_off_handlers(n: int, clock: Clock) -> dict[str, Any]:
    counter = Counter()
    bus = EventBus("OneOff", max_history_size=HISTORY)
    clock.start()
    for i in range(n):
        handler = counter.handle
        bus.on(Simple, handler)
        await bus.dispatch(Simple(value=i))
        bus.handlers["Simple"].remove(handler)
    clock.stop()
    left = len(bus.handlers.get("Simple", []))
    await close(bus)
    return {"processed": counter.count, "expected": n, "handlers_left": left}


async def worst_case(n: int, clock: Clock) -> dict[str, Any]:
    """Upstream's own worst case (see ``_ours.worst_case``), minus the every-10th ``find``: 1.5.x has no
    history search (its ``expect`` only waits for future events)."""
    seen = {"parents_a": 0, "parents_b": 0, "children": 0, "grandchildren": 0, "timeouts": 0}

    def parent_on_b(event: WorstParent) -> None:
        seen["parents_b"] += 1

    async def child_on_c(event: WorstChild) -> None:
        seen["children"] += 1
        grandchild = event.event_bus.dispatch(
            WorstGrandchild(iteration=event.iteration, value=event.value + 1)
        )
        if event.event_timeout is not None:
            await asyncio.sleep(0)
        await grandchild

    def grandchild_on_c(event: WorstGrandchild) -> None:
        seen["grandchildren"] += 1

    bus_a = EventBus("WorstA", max_history_size=WORST_HISTORY)
    bus_b = EventBus("WorstB", max_history_size=WORST_HISTORY)
    bus_c = EventBus("WorstC", max_history_size=WORST_HISTORY)
    bus_b.on(WorstParent, parent_on_b)
    bus_c.on(WorstChild, child_on_c)
    bus_c.on(WorstGrandchild, grandchild_on_c)
    latest: list[Any] = [None]
    clock.start()
    for iteration in range(n):
        timeout = IMMEDIATE_TIMEOUT if iteration % 5 == 0 else None

        async def one_off(event: WorstParent, timeout: float | None = timeout) -> None:
            seen["parents_a"] += 1
            child = event.event_bus.dispatch(
                WorstChild(iteration=event.iteration, value=event.value, event_timeout=timeout)
            )
            bus_c.dispatch(child)
            latest[0] = child
            try:
                await child
            except Exception:
                pass

        bus_a.on(WorstParent, one_off)
        parent = WorstParent(iteration=iteration, value=iteration % 37 + 1)
        bus_a.dispatch(parent)
        bus_b.dispatch(parent)
        await parent
        bus_a.handlers["WorstParent"].remove(one_off)
        # counted out here: reading the child's results inside the handler makes 1.5.x hang
        seen["timeouts"] += any(
            isinstance(row.error, TimeoutError) for row in latest[0].event_results.values()
        )
    for bus in (bus_a, bus_b, bus_c):
        await bus.wait_until_idle()
    clock.stop()
    left = len(bus_a.handlers.get("WorstParent", []))
    await close(bus_a, bus_b, bus_c)
    return {**seen, "handlers_left": left, "expected": n, "expected_timeouts": len(range(0, n, 5))}


async def forwarding_slow_handlers(n: int, clock: Clock) -> dict[str, Any]:
    seen = {"A": 0, "B": 0, "C": 0, "timeouts": 0}

    def count_a(event: Hop) -> None:
        seen["A"] += 1

    def count_b(event: Hop) -> None:
        seen["B"] += 1

    async def slow_on_c(event: Hop) -> None:
        seen["C"] += 1
        if event.slow:
            await asyncio.sleep(SLOW_SLEEP)

    bus_a = EventBus("ChainA", max_history_size=BURST_HISTORY)
    bus_b = EventBus("ChainB", max_history_size=BURST_HISTORY)
    bus_c = EventBus("ChainC", max_history_size=BURST_HISTORY)
    bus_a.on(Hop, count_a)
    bus_b.on(Hop, count_b)
    bus_c.on(Hop, slow_on_c)
    bus_a.on("*", bus_b.dispatch)
    bus_b.on("*", bus_c.dispatch)
    clock.start()
    events = [bus_a.dispatch(_hop(i)) for i in range(n)]
    for bus in (bus_a, bus_b, bus_c):
        await bus.wait_until_idle()
    clock.stop()
    seen["timeouts"] = sum(
        1 for e in events for r in e.event_results.values() if isinstance(r.error, TimeoutError)
    )
    await close(bus_a, bus_b, bus_c)
    return {**seen, "expected_timeouts": len(range(0, n, 5))}


def _hop(i: int) -> Hop:
    slow = i % 5 == 0
    return Hop(value=i, slow=slow, event_timeout=HANDLER_TIMEOUT if slow else None)


async def latency(n: int, clock: Clock) -> dict[str, Any]:
    counter = Counter()
    bus = EventBus("Latency", max_history_size=HISTORY)
    bus.on(Simple, counter.handle)
    clock.start()
    for i in range(n):
        await bus.dispatch(Simple(value=i))
    clock.stop()
    await close(bus)
    return {"processed": counter.count, "expected": n}


async def queue_jump(n: int, clock: Clock) -> dict[str, Any]:
    seen = {"children": 0}
    bus = EventBus("Jump", max_history_size=BURST_HISTORY)

    async def on_parent(event: Parent) -> int:
        child = await bus.dispatch(Child(value=event.value))
        return event.value + len(child.event_results)

    def on_child(event: Child) -> int:
        seen["children"] += 1
        return event.value

    bus.on(Parent, on_parent)
    bus.on(Child, on_child)
    clock.start()
    for i in range(n):
        bus.dispatch(Parent(value=i))
    await bus.wait_until_idle()
    clock.stop()
    await close(bus)
    return {"processed": seen["children"], "expected": n}


async def json_roundtrip(n: int, clock: Clock) -> dict[str, Any]:
    event = Typical(
        user_id="u_1234567890",
        email="someone@example.com",
        count=42,
        score=0.875,
        tags=["alpha", "beta", "gamma"],
        attributes={"a": 1, "b": 2, "c": 3},
        note=None,
    )
    clock.start()
    same = 0
    for _ in range(n):
        back = Typical.model_validate_json(event.model_dump_json())
        same += back.event_id == event.event_id
    clock.stop()
    return {"processed": same, "expected": n, "bytes": len(event.model_dump_json())}


SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "50k-events": (burst, "event"),
    "500-buses-x-100-events": (many_buses, "event"),
    "1-event-x-50k-parallel-handlers": (parallel_handlers, "handler"),
    "50k-one-off-handlers": (one_off_handlers, "event"),
    "worst-case-forwarding-timeouts": (worst_case, "event"),
    "forwarding-slow-handlers": (forwarding_slow_handlers, "event"),
    "emit-await-latency": (latency, "event"),
    "queue-jump": (queue_jump, "parent"),
    "json-roundtrip": (json_roundtrip, "event"),
    **MW_SCENARIOS,
}


def units_of(name: str, n: int) -> int:
    return 3 * n if name == "worst-case-forwarding-timeouts" else n


def ok_of(extra: dict[str, Any]) -> bool:
    if "parents_a" in extra:
        counts = ("parents_a", "parents_b", "children")
        # Timeouts are reported, not checked: 1.5.x applies a near-zero event_timeout per handler through
        # asyncio.wait_for, and most such handlers finish before it fires.
        return all(extra[key] == extra["expected"] for key in counts) and not extra["handlers_left"]
    if "expected_timeouts" in extra:
        return extra["timeouts"] == extra["expected_timeouts"]
    return extra.get("processed") == extra.get("expected") and not extra.get("handlers_left")


async def amain(name: str, n: int) -> None:
    """Report from inside the loop: upstream's runloop task can keep ``asyncio.run`` from returning."""
    scenario, unit = SCENARIOS[name]
    clock = Clock()
    try:
        extra = await scenario(n, clock)
    except Exception as exc:
        report(
            Sample(
                name,
                "bubus",
                "asyncio",
                units_of(name, n),
                unit,
                ok=False,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
        )
        return
    report(
        fill_sample(
            Sample(name, "bubus", "asyncio", units_of(name, n), unit, extra=extra, ok=ok_of(extra)), clock
        )
    )


def main() -> None:
    name, n = sys.argv[1], int(sys.argv[2])
    logging.getLogger("bubus").setLevel(logging.CRITICAL)
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    asyncio.run(amain(name, n))


if __name__ == "__main__":
    main()
