"""bus.statistics(): a frozen snapshot of queue, in-flight, history, finders and handlers."""

from __future__ import annotations

import functools

import anyio
import attrs
import pytest

from bubus_anyio import BaseEvent, BusStatistics, EventBus


class StatJob(BaseEvent[int]):
    pass


class TestStatistics:
    @pytest.mark.anyio
    async def test_idle_running_bus(self) -> None:
        async with EventBus("StatIdle") as bus:
            stats = bus.statistics()
            assert isinstance(stats, BusStatistics)
            assert stats.label == bus.label
            assert stats.is_running is True
            assert (stats.queued, stats.in_flight, stats.history_size) == (0, 0, 0)
            assert (stats.waiting_finders, stats.handlers) == (0, 0)
        assert bus.statistics().is_running is False

    @pytest.mark.anyio
    async def test_counts_while_work_is_queued_and_running(self) -> None:
        gate = anyio.Event()

        async def stat_gated(event: StatJob) -> int:
            await gate.wait()
            return 1

        async with EventBus() as bus:
            bus.on(StatJob, stat_gated)
            bus.on("*", lambda e: None)
            for _ in range(3):
                bus.emit(StatJob())
            await anyio.wait_all_tasks_blocked()
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(bus.find, StatJob, past=False, future=True))
                await anyio.wait_all_tasks_blocked()
                stats = bus.statistics()
                assert stats.queued == 2
                assert stats.in_flight == 1
                assert stats.history_size == 3
                assert stats.handlers == 2
                assert stats.waiting_finders == 1
                assert stats.limiter_borrowed_tokens == 1
                bus.emit(StatJob())  # resolves the finder
                gate.set()
        stats = bus.statistics()
        assert (stats.queued, stats.in_flight, stats.waiting_finders) == (0, 0, 0)
        assert stats.history_size == 4

    @pytest.mark.anyio
    async def test_not_running_bus_reports_its_queue(self) -> None:
        bus = EventBus()
        bus.emit(StatJob())
        stats = bus.statistics()
        assert stats.is_running is False
        assert stats.queued == 1
        assert stats.limiter_borrowed_tokens == 0
        async with bus:
            pass

    @pytest.mark.anyio
    async def test_snapshot_is_frozen(self) -> None:
        async with EventBus() as bus:
            stats = bus.statistics()
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                stats.queued = 5  # type: ignore[misc]
