"""History policy: bounded, evicting completed events first; drop=False refuses only when full of unfinished."""

from __future__ import annotations

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus, HistoryFullError


class HistTick(BaseEvent[int]):
    n: int = 0


def hist_echo(event: HistTick) -> int:
    return event.n


class TestDefaultPolicy:
    @pytest.mark.anyio
    async def test_default_never_refuses_a_long_stream_and_keeps_at_most_100(self) -> None:
        async with EventBus() as bus:
            bus.on(HistTick, hist_echo)
            for i in range(1000):
                bus.emit(HistTick(n=i))
                assert len(bus.event_history) <= 100
        assert len(bus.event_history) <= 100

    @pytest.mark.anyio
    async def test_completed_events_are_evicted_oldest_first(self) -> None:
        async with EventBus() as bus:
            bus.on(HistTick, hist_echo)
            events = [await bus.emit(HistTick(n=i)) for i in range(250)]
            assert len(bus.event_history) == 100
            assert list(bus.event_history) == [e.event_id for e in events[-100:]]

    @pytest.mark.anyio
    async def test_small_drop_bus_keeps_newest(self) -> None:
        async with EventBus(max_history_size=3) as bus:
            events = [await bus.emit(HistTick(n=i)) for i in range(10)]
            assert bus.event_history.values() == events[-3:]


class TestNoDrop:
    @pytest.mark.anyio
    async def test_refuses_only_when_full_of_unfinished_events(self) -> None:
        bus = EventBus(max_history_size=2, max_history_drop=False)
        bus.on(HistTick, hist_echo)
        first = bus.emit(HistTick(n=1))
        second = bus.emit(HistTick(n=2))
        with pytest.raises(HistoryFullError, match="2/2"):
            bus.emit(HistTick(n=3))
        assert len(bus.event_history) == 2
        async with bus:
            await first
            await second
            third = await bus.emit(HistTick(n=3))  # room now: completed events are evicted
            assert third.event_id in bus.event_history

    @pytest.mark.anyio
    async def test_completed_events_are_evicted_instead_of_refusing(self) -> None:
        async with EventBus(max_history_size=2, max_history_drop=False) as bus:
            bus.on(HistTick, hist_echo)
            events = [await bus.emit(HistTick(n=i)) for i in range(6)]
            assert list(bus.event_history) == [e.event_id for e in events[-2:]]

    @pytest.mark.anyio
    async def test_running_bus_refuses_while_its_history_is_all_in_flight(self) -> None:
        gate = anyio.Event()

        async def hist_gated(event: HistTick) -> int:
            await gate.wait()
            return event.n

        async with EventBus(max_history_size=2, max_history_drop=False) as bus:
            bus.on(HistTick, hist_gated)
            bus.emit(HistTick(n=1))
            bus.emit(HistTick(n=2))
            with pytest.raises(HistoryFullError):
                bus.emit(HistTick(n=3))
            gate.set()

    def test_history_full_error_is_a_bus_error(self) -> None:
        from bubus_anyio import EventBusError

        assert issubclass(HistoryFullError, EventBusError)


class TestSizeZeroAndUnbounded:
    @pytest.mark.anyio
    async def test_size_zero_keeps_only_in_flight_events(self) -> None:
        gate = anyio.Event()

        async def hist_gated(event: HistTick) -> int:
            await gate.wait()
            return event.n

        async with EventBus(max_history_size=0) as bus:
            bus.on(HistTick, hist_gated)
            events = [bus.emit(HistTick(n=i)) for i in range(5)]
            await anyio.wait_all_tasks_blocked()
            assert list(bus.event_history) == [e.event_id for e in events]
            gate.set()
            for event in events:
                await event
            assert len(bus.event_history) == 0
            assert await bus.find(HistTick) is None

    @pytest.mark.anyio
    async def test_size_zero_never_refuses(self) -> None:
        async with EventBus(max_history_size=0, max_history_drop=False) as bus:
            for i in range(300):
                bus.emit(HistTick(n=i))
        assert len(bus.event_history) == 0

    @pytest.mark.anyio
    async def test_none_is_unbounded(self) -> None:
        async with EventBus(max_history_size=None) as bus:
            bus.on(HistTick, hist_echo)
            for i in range(300):
                bus.emit(HistTick(n=i))
        assert len(bus.event_history) == 300


class TestReadOnlyMapping:
    @pytest.mark.anyio
    async def test_history_is_a_read_only_mapping_oldest_first(self) -> None:
        async with EventBus() as bus:
            events = [await bus.emit(HistTick(n=i)) for i in range(3)]
            history = bus.event_history
            ids = [e.event_id for e in events]
            assert len(history) == 3
            assert list(history) == ids
            assert list(history.keys()) == ids
            assert history.values() == events
            assert history.items() == list(zip(ids, events, strict=True))
            assert ids[0] in history
            assert "missing" not in history
            assert history[ids[1]] is events[1]
            assert history.get("missing") is None
            assert dict(history) == dict(zip(ids, events, strict=True))
            with pytest.raises(KeyError):
                history["missing"]
            with pytest.raises(TypeError):
                history["x"] = events[0]  # type: ignore[index]
            with pytest.raises(TypeError):
                del history[ids[0]]  # type: ignore[attr-defined]
            assert len(history) == 3

    @pytest.mark.anyio
    async def test_history_contains_pending_events_at_emit(self) -> None:
        bus = EventBus()
        event = bus.emit(HistTick())
        assert bus.event_history[event.event_id] is event
        assert event.event_status == "pending"
        async with bus:
            pass
