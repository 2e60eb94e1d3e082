"""Names upstream bubus users reach for: ``event.bus``, ``EventBus.all_instances`` /
``iter_all_instances()``, ``bus.events_pending`` / ``events_started`` / ``events_completed``, calling an
``EventHandler``, and a read-only ``bus.handlers_by_key`` (asyncio and trio)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, BusNotRunningError, EventBus, EventBusError, EventHandler

pytestmark = pytest.mark.anyio


class UnPing(BaseEvent[str]):
    n: int = 0


class UnSubBus(EventBus):
    pass


class TestEventBusAlias:
    async def test_bus_is_event_bus_inside_a_handler_and_after_emit(self) -> None:
        seen: list[tuple[EventBus, EventBus]] = []

        def handler(event: UnPing) -> str:
            seen.append((event.bus, event.event_bus))
            return "ok"

        async with EventBus("UnAliasA") as first, EventBus("UnAliasB") as second:
            first.on(UnPing, handler)
            second.on(UnPing, handler)
            first.on("*", second.emit)
            event = await first.emit(UnPing())
        assert seen == [(first, first), (second, second)]
        assert event.bus is event.event_bus is second  # the last bus it was emitted on

    async def test_bus_of_an_event_never_emitted_raises_like_event_bus(self) -> None:
        with pytest.raises(BusNotRunningError, match="never emitted"):
            _ = UnPing().bus


class TestAllInstances:
    async def test_constructed_buses_are_listed_per_class(self) -> None:
        plain = EventBus("UnInstPlain")
        sub = UnSubBus("UnInstSub")
        assert plain in EventBus.all_instances and sub not in EventBus.all_instances
        assert sub in UnSubBus.all_instances and plain not in UnSubBus.all_instances
        assert plain in list(EventBus.all_instances) and sub in list(UnSubBus.all_instances)
        everything = list(EventBus.iter_all_instances())
        assert plain in everything and sub in everything
        assert list(UnSubBus.iter_all_instances()) == [sub]
        assert len(UnSubBus.all_instances) == 1
        assert plain.all_instances == EventBus.all_instances  # readable on an instance too
        async with plain:
            assert plain in EventBus.all_instances  # running or not

    async def test_the_view_is_read_only(self) -> None:
        view: Any = EventBus.all_instances
        with pytest.raises(AttributeError):
            view.add(EventBus("UnInstAdd"))

    async def test_a_collected_bus_leaves(self) -> None:
        bus = EventBus("UnInstGone")
        async with bus:
            await bus.emit(UnPing())
        ref = weakref.ref(bus)
        del bus
        gc.collect()
        assert ref() is None
        assert all(b.name != "UnInstGone" for b in EventBus.all_instances)

    async def test_stop_with_clear_takes_the_bus_out(self) -> None:
        bus = EventBus("UnInstCleared")
        async with bus:
            await bus.stop(clear=True)
        assert bus not in EventBus.all_instances
        kept = EventBus("UnInstKept")
        async with kept:
            await kept.stop()
        assert kept in EventBus.all_instances


class TestStatusViews:
    async def test_history_by_status(self) -> None:
        started, release = anyio.Event(), anyio.Event()

        async def slow(event: UnPing) -> str:
            if event.n == 1:
                started.set()
                await release.wait()
            return "done"

        async with EventBus("UnViews") as bus:
            bus.on(UnPing, slow)
            events = [bus.emit(UnPing(n=n)) for n in (1, 2, 3)]
            await started.wait()
            assert bus.events_started == [events[0]]
            assert bus.events_pending == events[1:]
            assert bus.events_completed == []
            release.set()
            await bus.wait_until_idle()
            assert bus.events_completed == events
            assert bus.events_pending == [] and bus.events_started == []


class TestCallingAHandler:
    async def test_an_entry_calls_its_callable(self) -> None:
        bus = EventBus("UnCall")

        def sync_handler(event: UnPing) -> str:
            return f"sync {event.n}"

        async def async_handler(event: UnPing) -> str:
            await anyio.lowlevel.checkpoint()
            return f"async {event.n}"

        sync_entry = bus.on(UnPing, sync_handler)
        async_entry = bus.on(UnPing, async_handler)
        assert sync_entry(UnPing(n=1)) == "sync 1"
        assert await async_entry(UnPing(n=2)) == "async 2"

    async def test_a_stub_refuses_naming_the_handler(self) -> None:
        stub = EventHandler(id="0acdaf2c-a5b1-5785-8499-7c48b3c2c5d8", handler=None, handler_name="gone")
        with pytest.raises(EventBusError, match="gone#c5d8 has no callable attached"):
            stub(UnPing())


class TestHandlersByKey:
    async def test_is_a_read_only_mapping(self) -> None:
        bus = EventBus("UnByKey")
        entry = bus.on(UnPing, lambda e: "x")
        by_key: Any = bus.handlers_by_key
        assert by_key == {"UnPing": [entry.id]}
        with pytest.raises(TypeError):
            by_key["UnPing"] = []
        with pytest.raises(TypeError):
            del by_key["UnPing"]
        assert bus.handlers_by_key == {"UnPing": [entry.id]}
