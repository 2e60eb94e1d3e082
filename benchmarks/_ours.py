"""Scenario child for bubus-anyio: ``python benchmarks/_ours.py SCENARIO BACKEND N``.

Runs one scenario once on one anyio backend and prints one result line (see ``_harness``). The
workloads mirror ``_upstream.py`` one for one; ``run.py`` starts a fresh process per run.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Clock, Sample, fill_sample, run_guarded
from _mw_ours import MW_SCENARIOS

from bubus_anyio import BaseEvent, EventBus, EventHandlerAbortedError, EventHandlerTimeoutError

HISTORY = 100
HANDLER_TIMEOUT = 0.0001
SLOW_SLEEP = 0.001
WORST_HISTORY = 128
IMMEDIATE_TIMEOUT = 1e-7  # upstream's "near-zero" event_timeout: 0.0001 ms


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
    """A typical payload for the JSON round trip."""

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


# ------------------------------------------------------------------------------------------ upstream five
async def burst(n: int, clock: Clock) -> dict[str, Any]:
    """1 bus x n events x 1 sync handler: emit all, then wait until idle."""
    counter = Counter()
    async with EventBus("Burst", max_history_size=HISTORY) as bus:
        bus.on(Simple, counter.handle)
        clock.start()
        for i in range(n):
            bus.emit(Simple(value=i))
        await bus.wait_until_idle()
        clock.stop()
    return {"processed": counter.count, "expected": n}


async def many_buses(n: int, clock: Clock) -> dict[str, Any]:
    """n/100 buses, one after another, each created, fed 100 events, drained and closed."""
    counter = Counter()
    clock.start()
    for index in range(n // 100):
        async with EventBus(f"Ephemeral{index}", max_history_size=HISTORY) as bus:
            bus.on(Simple, counter.handle)
            for i in range(100):
                bus.emit(Simple(value=i))
            await bus.wait_until_idle()
    clock.stop()
    return {"processed": counter.count, "expected": n // 100 * 100}


def _fixed_handler(counter: Counter, index: int) -> Callable[[Simple], int]:
    def handler(event: Simple) -> int:
        counter.count += 1
        return event.value

    handler.__name__ = handler.__qualname__ = f"fixed_handler_{index}"
    return handler


async def parallel_handlers(n: int, clock: Clock) -> dict[str, Any]:
    """1 bus x 1 event x n handlers, event_handler_concurrency='parallel'."""
    counter = Counter()
    async with EventBus("Parallel", max_history_size=HISTORY, event_handler_concurrency="parallel") as bus:
        for index in range(n):
            bus.on(Simple, _fixed_handler(counter, index))
        clock.start()
        await bus.emit(Simple(value=1))
        await bus.wait_until_idle()
        clock.stop()
    return {"processed": counter.count, "expected": n}


async def one_off_handlers(n: int, clock: Clock) -> dict[str, Any]:
    """n events, each with its own handler: on, emit, await, off."""
    counter = Counter()
    async with EventBus("OneOff", max_history_size=HISTORY) as bus:
        clock.start()
        for i in range(n):
            entry = bus.on(Simple, counter.handle)
            await bus.emit(Simple(value=i))
            bus.off(Simple, entry)
        clock.stop()
        left = len(bus.handlers)
    return {"processed": counter.count, "expected": n, "handlers_left": left}


async def worst_case(n: int, clock: Clock) -> dict[str, Any]:
    """Upstream's worst case, workload for workload: n iterations over buses A, B and C.

    Each iteration registers a one-off async handler on A, emits one parent on A and on B, and
    awaits it. A's handler emits a child on A, forwards the same child to C and awaits it (a
    queue-jump on two buses); C's async handler emits a grandchild and awaits it. Every 5th child
    carries a near-zero ``event_timeout``, so its handler times out at its first checkpoint. Every
    10th iteration calls ``find(Parent, future=0.001)`` (answered from history). Units are events:
    3 per iteration, as upstream counts them.
    """
    seen = {"parents_a": 0, "parents_b": 0, "children": 0, "grandchildren": 0, "timeouts": 0}
    timed_out = (EventHandlerAbortedError, EventHandlerTimeoutError)  # the event's deadline, or the handler's

    def parent_on_b(event: WorstParent) -> None:
        seen["parents_b"] += 1

    async def child_on_c(event: WorstChild) -> None:
        seen["children"] += 1
        grandchild = event.event_bus.emit(WorstGrandchild(iteration=event.iteration, value=event.value + 1))
        if event.event_timeout is not None:
            await anyio.lowlevel.checkpoint()  # upstream: sleep(0)
        await grandchild

    def grandchild_on_c(event: WorstGrandchild) -> None:
        seen["grandchildren"] += 1

    async with (
        EventBus("WorstA", max_history_size=WORST_HISTORY) as bus_a,
        EventBus("WorstB", max_history_size=WORST_HISTORY) as bus_b,
        EventBus("WorstC", max_history_size=WORST_HISTORY) as bus_c,
    ):
        bus_b.on(WorstParent, parent_on_b)
        bus_c.on(WorstChild, child_on_c)
        bus_c.on(WorstGrandchild, grandchild_on_c)
        clock.start()
        for iteration in range(n):
            timeout = IMMEDIATE_TIMEOUT if iteration % 5 == 0 else None

            async def one_off(event: WorstParent, timeout: float | None = timeout) -> None:
                seen["parents_a"] += 1
                child = event.event_bus.emit(
                    WorstChild(iteration=event.iteration, value=event.value, event_timeout=timeout)
                )
                bus_c.emit(child)
                await child
                # counted here rather than kept for later: a list of every child would keep n event trees
                # alive and make the garbage collector's passes grow with n
                seen["timeouts"] += any(
                    isinstance(row.error, timed_out) for row in child.event_results.values()
                )

            entry = bus_a.on(WorstParent, one_off)
            parent = WorstParent(iteration=iteration, value=iteration % 37 + 1)
            bus_a.emit(parent)
            bus_b.emit(parent)
            await parent
            bus_a.off(WorstParent, entry)
            if iteration % 10 == 0:
                await bus_a.find(WorstParent, future=0.001)
        for bus in (bus_a, bus_b, bus_c):
            await bus.wait_until_idle()
        clock.stop()
        left = len(bus_a.handlers)
    return {
        **seen,
        "handlers_left": left,
        "expected": n,
        "expected_timeouts": len(range(0, n, 5)),
    }


async def forwarding_slow_handlers(n: int, clock: Clock) -> dict[str, Any]:
    """A -> B -> C forwarding ('*' -> other.emit), a handler per bus, burst of n events; every 5th
    event's handler on C sleeps 1 ms past a 0.1 ms handler timeout, so real timers fire."""
    seen = {"A": 0, "B": 0, "C": 0, "timeouts": 0}

    def count(name: str) -> Callable[[Hop], None]:
        def handler(event: Hop) -> None:
            seen[name] += 1

        handler.__name__ = f"count_{name}"
        return handler

    async def slow_on_c(event: Hop) -> None:
        seen["C"] += 1
        if event.slow:
            await anyio.sleep(SLOW_SLEEP)

    async with (
        EventBus("ChainA", max_history_size=HISTORY) as bus_a,
        EventBus("ChainB", max_history_size=HISTORY) as bus_b,
        EventBus("ChainC", max_history_size=HISTORY) as bus_c,
    ):
        bus_a.on(Hop, count("A"))
        bus_b.on(Hop, count("B"))
        bus_c.on(Hop, slow_on_c)
        bus_a.on("*", bus_b.emit)
        bus_b.on("*", bus_c.emit)
        clock.start()
        events = [bus_a.emit(_hop(i)) for i in range(n)]
        for bus in (bus_a, bus_b, bus_c):
            await bus.wait_until_idle()
        clock.stop()
    seen["timeouts"] = sum(
        1 for e in events for r in e.event_results.values() if isinstance(r.error, TimeoutError)
    )
    return {**seen, "expected_timeouts": len(range(0, n, 5))}


def _hop(i: int) -> Hop:
    slow = i % 5 == 0
    return Hop(value=i, slow=slow, event_handler_timeout=HANDLER_TIMEOUT if slow else None)


# ------------------------------------------------------------------------------------------ extras
async def latency(n: int, clock: Clock) -> dict[str, Any]:
    """emit + await, one event at a time."""
    counter = Counter()
    async with EventBus("Latency", max_history_size=HISTORY) as bus:
        bus.on(Simple, counter.handle)
        clock.start()
        for i in range(n):
            await bus.emit(Simple(value=i))
        clock.stop()
    return {"processed": counter.count, "expected": n}


async def queue_jump(n: int, clock: Clock) -> dict[str, Any]:
    """n parents in a burst; each parent's handler emits a child and awaits it (queue-jump)."""
    seen = {"children": 0}

    async def on_parent(event: Parent) -> int:
        child = await bus.emit(Child(value=event.value))
        return event.value + len(child.event_results)

    def on_child(event: Child) -> int:
        seen["children"] += 1
        return event.value

    async with EventBus("Jump", max_history_size=HISTORY) as bus:
        bus.on(Parent, on_parent)
        bus.on(Child, on_child)
        clock.start()
        for i in range(n):
            bus.emit(Parent(value=i))
        await bus.wait_until_idle()
        clock.stop()
    return {"processed": seen["children"], "expected": n}


FIND_CALLS = 200


async def find_history(n: int, clock: Clock) -> dict[str, Any]:
    """find() over a history of n events (max_history_size=None): FIND_CALLS calls that scan it all
    (no match) and FIND_CALLS that match the newest event. Units are find() calls."""
    async with EventBus("Finder", max_history_size=None) as bus:
        bus.on(Simple, lambda event: None)
        for i in range(n):
            bus.emit(Simple(value=i))
        await bus.wait_until_idle()
        clock.start()
        hits = 0
        for _ in range(FIND_CALLS):
            hits += await bus.find(Simple, value=-1) is None
            hits += await bus.find(Simple, value=n - 1) is not None
        clock.stop()
    return {"processed": hits, "expected": 2 * FIND_CALLS, "history": n}


async def json_roundtrip(n: int, clock: Clock) -> dict[str, Any]:
    """event.to_json() then BaseEvent.from_json() of a typical event, n times."""
    event = _typical()
    clock.start()
    same = 0
    for _ in range(n):
        back = BaseEvent.from_json(event.to_json())
        same += back.event_id == event.event_id
    clock.stop()
    return {"processed": same, "expected": n, "bytes": len(event.to_json())}


def _typical() -> Typical:
    return Typical(
        user_id="u_1234567890",
        email="someone@example.com",
        count=42,
        score=0.875,
        tags=["alpha", "beta", "gamma"],
        attributes={"a": 1, "b": 2, "c": 3},
        note=None,
    )


SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "50k-events": (burst, "event"),
    "500-buses-x-100-events": (many_buses, "event"),
    "1-event-x-50k-parallel-handlers": (parallel_handlers, "handler"),
    "50k-one-off-handlers": (one_off_handlers, "event"),
    "worst-case-forwarding-timeouts": (worst_case, "event"),
    "forwarding-slow-handlers": (forwarding_slow_handlers, "event"),
    "emit-await-latency": (latency, "event"),
    "queue-jump": (queue_jump, "parent"),
    "find-100k-history": (find_history, "find"),
    "json-roundtrip": (json_roundtrip, "event"),
    **MW_SCENARIOS,
}


def units_of(name: str, n: int) -> int:
    if name == "find-100k-history":
        return 2 * FIND_CALLS
    return 3 * n if name == "worst-case-forwarding-timeouts" else n


def ok_of(extra: dict[str, Any]) -> bool:
    if "parents_a" in extra:
        counts = ("parents_a", "parents_b", "children")
        complete = all(extra[key] == extra["expected"] for key in counts) and not extra["handlers_left"]
        return complete and extra["timeouts"] == extra["expected_timeouts"]
    if "expected_timeouts" in extra:
        return extra["timeouts"] == extra["expected_timeouts"]
    return extra.get("processed") == extra.get("expected") and not extra.get("handlers_left")


def main() -> None:
    name, backend, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    logging.getLogger("bubus_anyio").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    scenario, unit = SCENARIOS[name]

    def make() -> Sample:
        clock = Clock()
        extra = anyio.run(scenario, n, clock, backend=backend)
        sample = Sample(name, "bubus-anyio", backend, units_of(name, n), unit, extra=extra, ok=ok_of(extra))
        return fill_sample(sample, clock)

    def failed(error: str) -> Sample:
        return Sample(name, "bubus-anyio", backend, units_of(name, n), unit, ok=False, error=error)

    run_guarded(make, failed)


if __name__ == "__main__":
    main()
