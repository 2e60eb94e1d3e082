"""Parallel events and parallel handlers begin in FIFO order on both backends (trio runs a batch of new
tasks in random order, so before each new task took the oldest waiting job, B's handler began before A's
about half the time).

Each scenario runs many times in one test: a single run would pass by luck half the time on trio.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from bubus_anyio import BaseEvent, EventBus

pytestmark = pytest.mark.anyio

REPETITIONS = 50


class SoA(BaseEvent[None]):
    pass


class SoB(BaseEvent[None]):
    pass


class SoC(BaseEvent[None]):
    pass


class SoChild(BaseEvent[None]):
    tag: str = ""


def _recorder(order: list[str], tag: str, *, suspend: bool = True) -> Any:
    if suspend:

        async def handle(event: BaseEvent[Any]) -> None:
            order.append(tag)
            await anyio.lowlevel.checkpoint()

    else:

        def handle(event: BaseEvent[Any]) -> None:  # type: ignore[misc]
            order.append(tag)

    handle.__name__ = f"record_{tag}"
    return handle


async def test_parallel_events_start_in_emit_order() -> None:
    for _ in range(REPETITIONS):
        order: list[str] = []
        async with EventBus("SoEvents", event_concurrency="parallel") as bus:
            bus.on(SoA, _recorder(order, "A"))
            bus.on(SoB, _recorder(order, "B"))
            bus.on(SoC, _recorder(order, "C"))
            bus.emit(SoA())
            bus.emit(SoB())
            bus.emit(SoC())
            await bus.wait_until_idle()
        assert order == ["A", "B", "C"]


async def test_parallel_events_with_sync_handlers_start_in_emit_order() -> None:
    for _ in range(REPETITIONS):
        order: list[str] = []
        async with EventBus("SoEventsSync", event_concurrency="parallel") as bus:
            bus.on(SoA, _recorder(order, "A", suspend=False))
            bus.on(SoB, _recorder(order, "B", suspend=False))
            bus.emit(SoA())
            bus.emit(SoB())
            await bus.wait_until_idle()
        assert order == ["A", "B"]


async def test_parallel_handlers_start_in_registration_order() -> None:
    tags = [f"h{i}" for i in range(6)]
    for _ in range(REPETITIONS):
        order: list[str] = []
        async with EventBus("SoHandlers", event_handler_concurrency="parallel") as bus:
            for tag in tags:
                bus.on(SoA, _recorder(order, tag))
            await bus.emit(SoA())
        assert order == tags


async def test_parallel_handlers_mixing_sync_and_async_start_in_registration_order() -> None:
    """A sync handler registered after an async one no longer jumps ahead of it."""
    kinds = {"s0": False, "a1": True, "s2": False, "a3": True, "s4": False}
    for _ in range(REPETITIONS):
        order: list[str] = []
        async with EventBus("SoMixed", event_handler_concurrency="parallel") as bus:
            for tag, suspend in kinds.items():
                bus.on(SoA, _recorder(order, tag, suspend=suspend))
            event = await bus.emit(SoA())
        assert order == list(kinds)
        assert [r.status for r in event.event_results.values()] == ["completed"] * len(kinds)


async def test_parallel_handlers_still_overlap() -> None:
    """FIFO start does not serialise them: every handler is running before any of them finishes."""
    gate = anyio.Event()
    running: list[str] = []

    def blocker(tag: str) -> Any:
        async def handle(event: SoA) -> None:
            running.append(tag)
            await gate.wait()

        handle.__name__ = f"block_{tag}"
        return handle

    async with EventBus("SoOverlap", event_handler_concurrency="parallel") as bus:
        for tag in ("x", "y", "z"):
            bus.on(SoA, blocker(tag))
        event = bus.emit(SoA())
        await anyio.wait_all_tasks_blocked()
        assert running == ["x", "y", "z"]
        gate.set()
        await event


async def test_parallel_events_with_parallel_handlers_keep_each_events_handler_order() -> None:
    """Events A then B, three parallel handlers each: each event's handlers begin in registration order.
    (Across the two events, trio may interleave them: see docs/differences.md.)"""
    for _ in range(REPETITIONS):
        order: list[str] = []
        async with EventBus(
            "SoBoth", event_concurrency="parallel", event_handler_concurrency="parallel"
        ) as bus:
            for event_type, name in ((SoA, "A"), (SoB, "B")):
                for i in range(3):
                    bus.on(event_type, _recorder(order, f"{name}{i}"))
            bus.emit(SoA())
            bus.emit(SoB())
            await bus.wait_until_idle()
        assert [tag for tag in order if tag.startswith("A")] == ["A0", "A1", "A2"]
        assert [tag for tag in order if tag.startswith("B")] == ["B0", "B1", "B2"]


async def _parents_awaiting_children() -> list[str]:
    order: list[str] = []
    async with EventBus("SoCompleted", event_concurrency="parallel") as bus:

        def parent_handler(tag: str) -> Any:
            async def handle(event: BaseEvent[Any]) -> None:
                order.append(f"start {tag}")
                child = bus.emit(SoChild(tag=tag))
                await child.event_completed()
                order.append(f"end {tag}")

            handle.__name__ = f"parent_{tag}"
            return handle

        async def on_child(event: SoChild) -> None:
            order.append(f"child {event.tag}")

        bus.on(SoA, parent_handler("A"))
        bus.on(SoB, parent_handler("B"))
        bus.on(SoChild, on_child)
        bus.emit(SoA())
        bus.emit(SoB())
        await bus.wait_until_idle()
    return order


async def test_event_completed_inside_parallel_handlers_follows_emit_order() -> None:
    """Each parent's handler emits a child and waits for it with ``event_completed()`` (queue order): the
    children are processed in the order their parents started, every time."""
    for _ in range(REPETITIONS):
        order = await _parents_awaiting_children()
        assert order[:2] == ["start A", "start B"]
        assert [entry for entry in order if entry.startswith("child")] == ["child A", "child B"]
        assert order.index("child A") < order.index("end A")
        assert order.index("child B") < order.index("end B")


async def _cancel_while_starting() -> tuple[bool, list[BaseEvent[Any]]]:
    forever = anyio.Event()

    async def wait_forever(event: BaseEvent[Any]) -> None:
        await forever.wait()

    async def wait_forever_too(event: BaseEvent[Any]) -> None:
        await forever.wait()

    events: list[BaseEvent[Any]] = []
    with anyio.CancelScope() as scope:
        async with EventBus(
            "SoCancelled", event_concurrency="parallel", event_handler_concurrency="parallel"
        ) as bus:
            bus.on(SoA, wait_forever)
            bus.on(SoA, wait_forever_too)
            events = [bus.emit(SoA()) for _ in range(8)]
            await anyio.lowlevel.checkpoint()
            scope.cancel()
            await anyio.sleep_forever()
    return scope.cancelled_caught, events


async def test_cancelling_the_bus_while_parallel_tasks_start_loses_nothing() -> None:
    """The bus is cancelled in the round where its parallel tasks begin: every one of them still takes its
    job (synchronously, in its first step), records the cancellation, and the bus closes."""
    for _ in range(10):
        cancelled, events = await _cancel_while_starting()
        assert cancelled
        for event in events:
            assert event.event_status == "completed"
            assert event.event_results, "every event got its rows"
            assert all(r.status == "error" for r in event.event_results.values())
