"""Bus lifecycle: structured running (async with / task_group.start), draining, stopping, names, options."""

from __future__ import annotations

import gc
import re
import warnings
from typing import Any

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    BusNotRunningError,
    EventBus,
    EventHandlerAbortedError,
    EventHandlerCancelledError,
)


class LifeAdd(BaseEvent[int]):
    a: int = 1
    b: int = 2


class LifeBlock(BaseEvent[None]):
    pass


def life_add(event: LifeAdd) -> int:
    return event.a + event.b


class TestRunning:
    @pytest.mark.anyio
    async def test_async_with_runs_the_bus_for_the_block(self) -> None:
        bus = EventBus()
        assert not bus.is_running
        async with bus as entered:
            assert entered is bus
            assert bus.is_running
            bus.on(LifeAdd, life_add)
            assert await bus.emit(LifeAdd()).event_result() == 3
        assert not bus.is_running

    @pytest.mark.anyio
    async def test_task_group_start_run_then_stop(self) -> None:
        bus = EventBus()
        bus.on(LifeAdd, life_add)
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            assert bus.is_running
            assert await bus.emit(LifeAdd(a=5)).event_result() == 7
            await bus.stop()
            assert not bus.is_running
        # bus.run returned by itself: the task group could exit without cancelling it.
        assert not tg.cancel_scope.cancel_called

    @pytest.mark.anyio
    async def test_cancelling_the_owner_task_group_aborts_the_bus(self) -> None:
        started = anyio.Event()

        async def life_forever(event: LifeBlock) -> None:
            started.set()
            await anyio.sleep_forever()

        bus = EventBus()
        bus.on(LifeBlock, life_forever)
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            event = bus.emit(LifeBlock())
            await started.wait()
            tg.cancel_scope.cancel()
        assert not bus.is_running
        (row,) = event.event_results.values()
        assert isinstance(row.error, EventHandlerAbortedError)
        assert event.event_status == "completed"

    @pytest.mark.anyio
    async def test_leaving_the_block_drains_the_queue(self) -> None:
        async def life_slow(event: LifeAdd) -> int:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            return event.a

        async with EventBus() as bus:
            bus.on(LifeAdd, life_slow)
            events = [bus.emit(LifeAdd(a=i)) for i in range(25)]
        assert all(e.event_status == "completed" for e in events)
        assert [next(iter(e.event_results.values())).result for e in events] == list(range(25))

    @pytest.mark.anyio
    async def test_events_emitted_by_handlers_while_draining_also_run(self) -> None:
        async with EventBus() as bus:

            def life_fanout(event: LifeAdd) -> int:
                if event.a > 0:
                    bus.emit(LifeAdd(a=event.a - 1))
                return event.a

            bus.on(LifeAdd, life_fanout)
            bus.emit(LifeAdd(a=5))
        assert len(bus.event_history) == 6
        assert all(e.event_status == "completed" for e in bus.event_history.values())

    @pytest.mark.anyio
    async def test_emit_before_the_bus_runs_queues_and_runs_once_it_starts(self) -> None:
        bus = EventBus()
        bus.on(LifeAdd, life_add)
        event = bus.emit(LifeAdd(a=10))
        assert event.event_status == "pending"
        assert bus.statistics().queued == 1
        async with bus:
            assert await event.event_result() == 12
        assert event.event_status == "completed"

    @pytest.mark.anyio
    async def test_a_bus_cannot_be_entered_twice(self) -> None:
        bus = EventBus()
        async with bus:
            with pytest.raises(RuntimeError):
                async with bus:
                    pass
        with pytest.raises(RuntimeError):
            async with bus:
                pass

    @pytest.mark.anyio
    async def test_stopped_bus_cannot_run_again(self) -> None:
        bus = EventBus()
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            await bus.stop()
        with pytest.raises(RuntimeError):
            async with bus:
                pass


class TestStructuredLifetime:
    @pytest.mark.anyio
    async def test_exception_in_body_cancels_the_bus_and_propagates(self) -> None:
        started = anyio.Event()
        before = len(anyio.get_running_tasks())

        async def life_forever(event: LifeBlock) -> None:
            started.set()
            await anyio.sleep_forever()

        bus = EventBus()
        bus.on(LifeBlock, life_forever)
        queued: LifeBlock | None = None
        with anyio.fail_after(5):
            with pytest.raises(KeyError, match="boom"):  # as is, not wrapped in an ExceptionGroup
                async with bus:
                    running = bus.emit(LifeBlock())
                    queued = bus.emit(LifeBlock())
                    await started.wait()
                    raise KeyError("boom")
        assert not bus.is_running
        assert len(anyio.get_running_tasks()) == before
        (row,) = running.event_results.values()
        assert isinstance(row.error, EventHandlerAbortedError)
        assert running.event_status == "completed"
        assert queued is not None and queued.event_status == "completed"
        assert all(isinstance(r.error, EventHandlerCancelledError) for r in queued.event_results.values())

    @pytest.mark.anyio
    async def test_no_task_outlives_the_block(self) -> None:
        before = len(anyio.get_running_tasks())
        async with EventBus(event_concurrency="parallel", event_handler_concurrency="parallel") as bus:

            async def life_one(event: LifeAdd) -> int:
                await anyio.lowlevel.checkpoint()
                return 1

            async def life_two(event: LifeAdd) -> int:
                await anyio.lowlevel.checkpoint()
                return 2

            bus.on(LifeAdd, life_one)
            bus.on(LifeAdd, life_two)
            for _ in range(10):
                bus.emit(LifeAdd())
            assert len(anyio.get_running_tasks()) > before
        assert len(anyio.get_running_tasks()) == before

    @pytest.mark.anyio
    async def test_tasks_spawned_by_a_bus_end_after_stop(self) -> None:
        before = len(anyio.get_running_tasks())
        started = anyio.Event()

        async def life_forever(event: LifeBlock) -> None:
            started.set()
            await anyio.sleep_forever()

        bus = EventBus(event_concurrency="parallel")
        bus.on(LifeBlock, life_forever)
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            bus.emit(LifeBlock())
            await started.wait()
            with anyio.fail_after(5):
                await bus.stop()
        assert len(anyio.get_running_tasks()) == before


class TestNotRunning:
    @pytest.mark.anyio
    async def test_awaiting_an_event_whose_bus_never_ran_raises(self) -> None:
        bus = EventBus()
        event = bus.emit(LifeAdd())
        with anyio.fail_after(2):
            with pytest.raises(BusNotRunningError):
                await event
            with pytest.raises(BusNotRunningError):
                await event.event_completed()
            with pytest.raises(BusNotRunningError):
                await event.event_result()
        async with bus:  # release it: the queued event now runs
            await event

    @pytest.mark.anyio
    async def test_emit_after_the_block_raises(self) -> None:
        async with EventBus() as bus:
            pass
        with pytest.raises(BusNotRunningError):
            bus.emit(LifeAdd())

    @pytest.mark.anyio
    async def test_emit_after_stop_raises(self) -> None:
        bus = EventBus()
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            await bus.stop()
            with pytest.raises(BusNotRunningError):
                bus.emit(LifeAdd())
            with pytest.raises(BusNotRunningError):
                await bus.send(LifeAdd())

    @pytest.mark.anyio
    async def test_awaiting_an_event_of_an_exited_bus_does_not_hang(self) -> None:
        other = EventBus()
        async with EventBus() as bus:
            bus.on(LifeAdd, life_add)
            done = bus.emit(LifeAdd())
        orphan = other.emit(LifeAdd())
        with anyio.fail_after(2):
            assert await done is done  # completed: returns at once
            with pytest.raises(BusNotRunningError):
                await orphan
        async with other:
            pass

    @pytest.mark.anyio
    async def test_bus_not_running_error_is_a_runtime_error(self) -> None:
        assert issubclass(BusNotRunningError, RuntimeError)


class TestStop:
    @pytest.mark.anyio
    async def test_stop_with_timeout_drains_first(self) -> None:
        async def life_slow(event: LifeAdd) -> int:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            return event.a

        bus = EventBus()
        bus.on(LifeAdd, life_slow)
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            events = [bus.emit(LifeAdd(a=i)) for i in range(10)]
            with anyio.fail_after(5):
                await bus.stop(timeout=5)
        assert all(e.event_status == "completed" for e in events)
        assert all(r.status == "completed" for e in events for r in e.event_results.values())

    @pytest.mark.anyio
    async def test_stop_aborts_running_handlers_and_cancels_queued_events(self) -> None:
        started = anyio.Event()
        woke: list[str] = []

        async def life_forever(event: LifeBlock) -> None:
            started.set()
            await anyio.sleep_forever()

        bus = EventBus()
        bus.on(LifeBlock, life_forever)

        async def await_it(event: LifeBlock, name: str) -> None:
            assert await event is event
            woke.append(name)

        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            running = bus.emit(LifeBlock())
            queued = bus.emit(LifeBlock())
            await started.wait()
            tg.start_soon(await_it, running, "running")
            tg.start_soon(await_it, queued, "queued")
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(5):
                await bus.stop()
        assert sorted(woke) == ["queued", "running"]
        (running_row,) = running.event_results.values()
        assert running_row.status == "error"
        assert isinstance(running_row.error, EventHandlerAbortedError)
        (queued_row,) = queued.event_results.values()
        assert queued_row.status == "error"
        assert isinstance(queued_row.error, EventHandlerCancelledError)
        assert running.event_status == queued.event_status == "completed"

    @pytest.mark.anyio
    async def test_stop_clear_forgets_history_and_handlers(self) -> None:
        bus = EventBus()
        bus.on(LifeAdd, life_add)
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            await bus.emit(LifeAdd())
            await bus.stop(clear=True)
        assert len(bus.event_history) == 0
        assert bus.handlers == {}

    @pytest.mark.anyio
    async def test_stop_on_a_never_started_bus_returns(self) -> None:
        bus = EventBus()
        with anyio.fail_after(2):
            await bus.stop()
        assert not bus.is_running
        async with bus:
            pass


class TestNames:
    @pytest.mark.parametrize("name", ["1abc", "has space", "_private", "dash-name", ""])
    def test_name_must_be_an_identifier(self, name: str) -> None:
        with pytest.raises(ValueError, match=re.escape(repr(name))):
            EventBus(name)

    @pytest.mark.anyio
    async def test_default_name_is_class_name_and_id_suffix(self) -> None:
        async with EventBus() as bus:
            assert bus.name == f"EventBus_{bus.id[-8:]}"

    @pytest.mark.anyio
    async def test_label_is_name_hash_last_four_of_id(self) -> None:
        async with EventBus("LifeLabel") as bus:
            assert bus.label == f"LifeLabel#{bus.id[-4:]}"
            assert re.fullmatch(r"LifeLabel#[0-9a-f]{4}", bus.label)

    @pytest.mark.anyio
    async def test_clash_with_running_bus_warns_and_suffixes(self) -> None:
        async with EventBus("LifeDup") as first:
            with pytest.warns(UserWarning, match="LifeDup"):
                second = EventBus("LifeDup")
            assert first.name == "LifeDup"
            assert second.name != "LifeDup"
            assert second.name.startswith("LifeDup_")
            assert second.name.isidentifier()
            async with second:
                assert second.is_running

    @pytest.mark.anyio
    async def test_an_exited_bus_frees_its_name_at_once(self) -> None:
        async with EventBus("LifeReuse") as first:
            pass
        assert first.name == "LifeReuse"
        async with EventBus("LifeReuse") as second:  # no warning (warnings are errors here)
            assert second.name == "LifeReuse"

    @pytest.mark.anyio
    async def test_a_stopped_bus_frees_its_name_while_its_object_lives(self) -> None:
        bus = EventBus("LifeStopped")
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            await bus.stop()
            async with EventBus("LifeStopped") as again:
                assert again.name == "LifeStopped"
        assert bus is not None

    @pytest.mark.anyio
    async def test_two_buses_with_the_same_name_that_never_overlap_do_not_warn(self) -> None:
        first = EventBus("LifeSeq")
        second = EventBus("LifeSeq")
        async with first:
            pass
        async with second:
            assert second.name == "LifeSeq"


class TestOptions:
    @pytest.mark.anyio
    async def test_defaults(self) -> None:
        async with EventBus() as bus:
            assert bus.event_concurrency == "bus-serial"
            assert bus.event_handler_concurrency == "serial"
            assert bus.event_handler_completion == "all"
            assert bus.event_timeout == 60.0
            assert bus.event_slow_timeout == 300.0
            assert bus.event_handler_slow_timeout == 30.0
            assert bus.event_handler_detect_file_paths is True
            assert bus.max_history_size == 100
            assert bus.max_history_drop is True
            assert bus.max_pending is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"event_concurrency": "sometimes"},
            {"event_handler_concurrency": "bus-serial"},
            {"event_handler_completion": "any"},
            {"event_timeout": -1},
            {"event_timeout": 0},
            {"event_slow_timeout": -0.5},
            {"event_handler_slow_timeout": -3},
            {"event_timeout": "5"},
            {"max_history_size": -1},
            {"max_history_size": 1.5},
            {"max_pending": 0},
            {"max_pending": -2},
        ],
        ids=repr,
    )
    def test_invalid_options_raise_value_error(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            EventBus(**kwargs)

    @pytest.mark.anyio
    async def test_none_disables_timeouts_and_history_bound(self) -> None:
        async with EventBus(
            event_timeout=None,
            event_slow_timeout=None,
            event_handler_slow_timeout=None,
            max_history_size=None,
        ) as bus:
            assert bus.event_timeout is None
            assert bus.max_history_size is None


class TestCollection:
    def test_a_bus_that_never_runs_is_collected_silently(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bus = EventBus()
            del bus
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


class TestBodyErrors:
    @pytest.mark.anyio
    async def test_an_exception_in_the_body_propagates_unwrapped(self) -> None:
        class LifeBodyError(Exception):
            pass

        with pytest.raises(LifeBodyError):
            async with EventBus("LifeUnwrapped"):
                raise LifeBodyError("boom")
