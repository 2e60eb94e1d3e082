"""Helpers for the tests against live brokers (Redis, NATS, PostgreSQL)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
from servers import Server

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.bridges import EventBridge


class LivePing(BaseEvent[None]):
    n: int


def unique(prefix: str) -> str:
    """A channel/subject/table/bridge name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


class Counted:
    """A handler that counts the `n` of every event it handles and lets a test wait for a set of them."""

    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()
        self.events: list[BaseEvent[Any]] = []
        self._changed = anyio.Event()

    def __call__(self, event: BaseEvent[Any]) -> None:
        self.events.append(event)
        self.seen[int(getattr(event, "n", -1))] += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, wanted: set[int] | int, timeout: float = 15.0) -> None:
        want = set(range(wanted)) if isinstance(wanted, int) else wanted
        with anyio.fail_after(timeout):
            while not want <= set(self.seen):
                await self._changed.wait()

    def duplicates(self) -> dict[int, int]:
        return {n: c for n, c in self.seen.items() if c > 1}


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, every: float = 0.05
) -> None:
    """Poll a cross-process condition with a bound (the brokers live in other processes)."""
    with anyio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110 - the condition lives in another process
            await anyio.sleep(every)


# ---------------------------------------------------------------------- scenarios every server bridge passes
# `make(**options)` returns a new bridge on the same channel/subject/table each time it is called.
Make = Callable[..., EventBridge]


async def round_trip(make: Make, prefix: str) -> BaseEvent[Any]:
    """Bus A -> bridge -> server -> bridge -> bus B; returns the event B's handler got."""
    got = Counted()
    async with (
        EventBus(f"{prefix}A") as bus_a,
        EventBus(f"{prefix}B") as bus_b,
        make() as out,
        make() as into,
    ):
        bus_a.on("*", out.emit)
        into.on("*", bus_b.emit)
        bus_b.on(LivePing, got)
        bus_a.emit(LivePing(n=7))
        await got.wait_for({7})
    event = got.events[0]
    assert isinstance(event, LivePing) and event.n == 7
    assert event.event_path[0].startswith(f"{prefix}A#")
    assert any(label.startswith(f"{prefix}B#") for label in event.event_path)
    return event


async def loop_safe(make: Make, prefix: str) -> None:
    """Both buses wired both ways on one channel: each handler runs once, each side sends once."""
    on_a, on_b = Counted(), Counted()
    async with (
        EventBus(f"{prefix}A") as bus_a,
        EventBus(f"{prefix}B") as bus_b,
        make() as bridge_a,
        make() as bridge_b,
    ):
        for bus, bridge, seen in ((bus_a, bridge_a, on_a), (bus_b, bridge_b, on_b)):
            bus.on("*", bridge.emit)
            bridge.on("*", bus.emit)
            bus.on(LivePing, seen)
        bus_a.emit(LivePing(n=1))
        await on_b.wait_for({1})

        async def settled() -> bool:  # each bridge got A's copy and B's forwarded copy
            return bridge_a.statistics().received >= 2 and bridge_b.statistics().received >= 2

        await eventually(settled)
        await bus_a.wait_until_idle()
        await bus_b.wait_until_idle()
        # A sent it once, B forwarded it once, and both copies stopped at the buses already in the path
        assert (bridge_a.statistics().sent, bridge_b.statistics().sent) == (1, 1)
        assert on_a.seen[1] == 1 and on_b.seen[1] == 1


async def reconnects_after_restart(server: Server, make: Make) -> None:
    """Fire-and-forget: after the broker is killed and started again, events flow again by themselves
    (what is sent before the reader is back is lost: keep sending, bounded, until one arrives)."""
    got = Counted()
    async with make() as out, make() as into:
        into.on(LivePing, got)
        await out.emit(LivePing(n=0))
        await got.wait_for({0})
        await anyio.to_thread.run_sync(server.kill)
        await anyio.to_thread.run_sync(server.start)
        n = 0

        async def arrived() -> bool:
            nonlocal n
            n += 1
            await out.emit(LivePing(n=n))
            return len(got.seen) > 1

        await eventually(arrived, timeout=30, every=0.1)


async def redelivered_after_crash(make_consumer: Make, make_producer: Make) -> None:
    """Durable: an event whose handler never finished (the process dies) comes to the next consumer of
    the same name, once."""
    started, got = anyio.Event(), Counted()

    async def never_finishes(event: LivePing) -> None:
        started.set()
        await anyio.sleep_forever()

    with anyio.CancelScope() as crash:
        async with make_consumer() as first, make_producer() as producer:
            first.on(LivePing, never_finishes)
            await producer.emit(LivePing(n=5))
            with anyio.fail_after(10):
                await started.wait()
            crash.cancel()  # the process dies before the handler finished: nothing acknowledged
    async with make_consumer() as second:
        second.on(LivePing, got)
        await got.wait_for({5})
    assert got.seen[5] == 1


async def restart_mid_stream(
    server: Server, make_consumer: Make, make_producer: Make, total: int = 60
) -> None:
    """Durable: kill the broker after half the events, send the rest while it comes back: every event is
    handled, none twice."""
    got = Counted()
    async with make_consumer() as consumer, make_producer() as producer:
        consumer.on(LivePing, got)
        for n in range(total // 2):
            await producer.emit(LivePing(n=n))
        await got.wait_for({0})
        await anyio.to_thread.run_sync(server.kill)  # mid-stream: some read, some acknowledged, some not
        async with anyio.create_task_group() as tg:

            async def rest() -> None:
                for n in range(total // 2, total):  # each send waits (bounded) while the broker is down
                    await producer.emit(LivePing(n=n))

            tg.start_soon(rest)
            await anyio.to_thread.run_sync(server.start)
        await got.wait_for(total, timeout=40)
    assert set(got.seen) == set(range(total))
    assert got.duplicates() == {}


async def pushes_back(
    make_consumer: Make, make_producer: Make, in_flight: Callable[[], Awaitable[int]]
) -> int:
    """Durable: while the consumer's handler is stuck, it takes only a bounded number of messages off the
    broker (``in_flight()`` asks the broker how many it handed out unacknowledged); once the handler goes
    on, every message is handled. Returns the largest ``in_flight()`` seen."""
    total, release, got = 200, anyio.Event(), Counted()

    async def stuck(event: LivePing) -> None:
        await release.wait()
        got(event)

    highest = 0
    async with make_consumer() as consumer, make_producer() as producer:
        consumer.on(LivePing, stuck)
        for n in range(total):
            await producer.emit(LivePing(n=n))

        async def some_taken() -> bool:
            return await in_flight() > 0

        await eventually(some_taken)
        for _ in range(10):  # the broker lives in another process: look a few times
            highest = max(highest, await in_flight())
            await anyio.sleep(0.05)
        release.set()
        await got.wait_for(total, timeout=30)
    return highest
