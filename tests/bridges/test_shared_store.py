"""What the two shared-store bridges (a JSONL file, a SQLite table) promise alike: delivery between
bridges, loop-safe wiring in both directions, reading from the newest entry on, durable readers that resume and get again what a crash left
unfinished, many writer processes, and two processes on different backends."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from peer import OTHER_BACKEND, Collector, Ping, Pong, run_writers, spawn, until

from bubus_anyio import EventBus
from bubus_anyio.bridges import EventBridge, JSONLEventBridge, SQLiteEventBridge

pytestmark = pytest.mark.anyio

FAST = 0.01
Make = Callable[..., EventBridge]


@pytest.fixture(params=["jsonl", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path) -> str:
    return str(tmp_path / ("events.jsonl" if kind == "jsonl" else "events.db"))


@pytest.fixture
def make(kind: str, store: str) -> Make:
    """``make(durable=False, target=store)``: a bridge of this kind; durable as that kind spells it."""

    def build(*, durable: bool = False, target: str = store) -> EventBridge:
        if kind == "jsonl":
            offsets = f"{target}.offset" if durable else None
            return JSONLEventBridge(target, poll_interval=FAST, offset_path=offsets)
        path, _, table = target.partition("#")
        return SQLiteEventBridge(
            path, table or "bubus_events", poll_interval=FAST, consumer="w" if durable else None
        )

    return build


async def test_event_crosses_between_two_bridges(make: Make) -> None:
    got = Collector()
    async with make() as out, make() as bridge:
        bridge.on(Ping, got)
        await out.emit(Ping(n=3))
        [event] = await got.wait_for(1)
    assert isinstance(event, Ping)
    assert event.n == 3


async def test_both_directions_on_both_sides_send_each_event_once_each_way(
    kind: str, store: str, make: Make
) -> None:
    on_a, on_b = Collector(), Collector()
    async with EventBus("A") as bus_a, EventBus("B") as bus_b, make() as ba, make() as bb:
        for bus, bridge in ((bus_a, ba), (bus_b, bb)):
            bus.on("*", bridge.emit)
            bridge.on("*", bus.emit)
        bus_a.on(Ping, on_a)
        bus_b.on(Ping, on_b)
        bus_a.emit(Ping(n=1))
        await on_b.wait_for(1)
        await until(lambda: ba.statistics().received == bb.statistics().received == 2)  # both read both
        await bus_a.wait_until_idle()
        await bus_b.wait_until_idle()
    assert await anyio.to_thread.run_sync(entries, kind, store) == 2  # the original, B's echo; it stops at A
    assert (len(on_a.events), len(on_b.events)) == (1, 1)


def entries(kind: str, store: str) -> int:
    if kind == "jsonl":
        return len(Path(store).read_bytes().splitlines())
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT COUNT(*) FROM bubus_events").fetchone()[0])


async def test_a_reader_starts_at_the_newest_entry(make: Make) -> None:
    got = Collector()
    async with make() as out:
        await out.emit(Ping(n=0))  # written before the reader starts: not delivered to it
        async with make() as bridge:
            bridge.on(Ping, got)
            await out.emit(Ping(n=1))
            await got.wait_for(1)
    assert got.ns == [1]


async def test_durable_reader_resumes_after_restart(make: Make) -> None:
    got = Collector()
    async with make() as out:
        async with make(durable=True) as bridge:
            assert bridge.transport.durable
            bridge.on(Ping, got)
            await out.emit(Ping(n=1))
            await got.wait_for(1)
        await out.emit(Ping(n=2))  # while the reader is down
        await out.emit(Ping(n=3))
        again = Collector()
        async with make(durable=True) as bridge:
            bridge.on(Ping, again)
            await again.wait_for(2)
    assert again.ns == [2, 3]


async def test_durable_reader_gets_again_what_a_crash_left_unfinished(make: Make) -> None:
    started = anyio.Event()
    first = Collector()

    async def stuck(event: Ping) -> None:
        if event.n == 2:
            started.set()
            await anyio.sleep_forever()

    with anyio.CancelScope() as crash:
        async with make(durable=True) as bridge:
            bridge.on(Ping, first)
            bridge.on(Ping, stuck)
            async with make() as out:
                for n in (1, 2, 3):
                    await out.emit(Ping(n=n))
            await started.wait()
            crash.cancel()  # event 2 never finishes, event 3 never starts
    assert first.ns == [1, 2]
    again = Collector()
    async with make(durable=True) as bridge:
        bridge.on(Ping, again)
        await again.wait_for(2)
    assert again.ns == [2, 3]  # at-least-once: 2 comes again, 1 (finished) does not


async def test_many_writer_processes(kind: str, store: str, make: Make, anyio_backend: str) -> None:
    got = Collector()
    async with make() as bridge:
        bridge.on(Ping, got)
        await run_writers(anyio_backend, kind, store, 3, 100)
        await got.wait_for(300, timeout=60)
    assert bridge.statistics().decode_errors == 0
    assert sorted(got.ns) == sorted(w * 1000 + n for w in range(3) for n in range(100))
    for w in range(3):  # each writer's events stay in its order
        mine = [n for n in got.ns if n // 1000 == w]
        assert mine == sorted(mine)


async def test_two_processes_on_different_backends_round_trip(
    kind: str, store: str, make: Make, anyio_backend: str
) -> None:
    requests, replies = (store, f"{store}.replies") if kind == "jsonl" else (store, f"{store}#replies")
    got = Collector()
    async with make(target=replies) as inbound:
        inbound.on(Pong, got)
        async with (
            spawn(OTHER_BACKEND[anyio_backend], kind, requests, "echo", 5, replies) as peer,
            make() as out,
        ):
            for n in range(5):
                await out.emit(Ping(n=n))
            await got.wait_for(5, timeout=30)
            assert await peer.wait() == 0
    assert got.ns == [0, 1, 2, 3, 4]
