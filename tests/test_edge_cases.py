"""Edge cases found in review: stray cancellations, non-Exception errors, spawned tasks, lent slots, waits
that must notice progress, and bad waits on buses that are not running."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from bubus_anyio import (
    BaseEvent,
    BusNotRunningError,
    DeadlockError,
    EventBus,
    EventHandlerAbortedError,
    EventHandlerError,
)

pytestmark = pytest.mark.anyio


class EdgeEvent(BaseEvent[Any]):
    i: int = 0


class EdgeChild(BaseEvent[str]):
    pass


class EdgeGrandchild(BaseEvent[str]):
    pass


class TestStrayErrors:
    async def test_a_stray_cancelled_error_is_the_handlers_error_not_a_bus_cancellation(
        self, anyio_backend: str
    ) -> None:
        """asyncio lets a CancelledError escape from awaiting a task someone else cancelled; it must not
        tear the bus down. (trio's Cancelled only ever comes from a scope, so there is nothing to test.)"""
        if anyio_backend != "asyncio":
            pytest.skip("only asyncio has CancelledErrors that do not come from a cancel scope")
        reached: list[str] = []
        async with EventBus("EdgeStray") as bus:

            async def handler(event: EdgeEvent) -> None:
                task = asyncio.ensure_future(asyncio.sleep(10))
                await asyncio.sleep(0)
                task.cancel()
                await task

            entry = bus.on(EdgeEvent, handler)
            event = await bus.emit(EdgeEvent())
            await anyio.sleep(0.01)
            reached.append("body finished")
        assert reached == ["body finished"]
        error = event.event_results[entry.id].error
        assert isinstance(error, EventHandlerError)
        assert isinstance(error.__cause__, asyncio.CancelledError)

    async def test_a_base_exception_from_a_handler_is_recorded_and_propagates(self) -> None:
        class EdgeBoom(BaseException):
            pass

        holder: dict[str, Any] = {}
        with pytest.raises(BaseException) as info:
            async with EventBus("EdgeBoom") as bus:

                async def boom(event: EdgeEvent) -> None:
                    await anyio.lowlevel.checkpoint()
                    raise EdgeBoom("stop everything")

                holder["boom"] = bus.on(EdgeEvent, boom)
                holder["other"] = bus.on(EdgeEvent, lambda event: 1)
                holder["event"] = bus.emit(EdgeEvent())
                await anyio.sleep_forever()
        assert info.group_contains(EdgeBoom) if isinstance(info.value, BaseExceptionGroup) else True
        rows = holder["event"].event_results
        assert isinstance(rows[holder["boom"].id].error, EdgeBoom)
        assert "EdgeBoom was raised by handler" in str(rows[holder["other"].id].error)


class TestAbortMessages:
    async def test_a_timeout_around_an_await_is_named_as_such_not_as_a_bus_cancellation(self) -> None:
        with anyio.fail_after(5):
            async with EventBus("EdgeScope") as bus:

                async def parent(event: EdgeEvent) -> str:
                    with anyio.move_on_after(0.05):
                        await bus.emit(EdgeChild())
                    return "parent ok"

                async def child(event: EdgeChild) -> str:
                    await anyio.sleep(10)
                    return "late"

                bus.on(EdgeEvent, parent)
                child_entry = bus.on(EdgeChild, child)
                result = await bus.emit(EdgeEvent()).event_result()
                assert result == "parent ok"
                assert bus.is_running
                found = await bus.find(EdgeChild)
        assert found is not None
        error = found.event_results[child_entry.id].error
        assert isinstance(error, EventHandlerAbortedError)
        assert "cancel scope inside its awaiting handler" in str(error)
        assert "bus" not in str(error).split("because", 1)[1].split("(")[0]


class TestSpawnedTasks:
    async def test_a_task_spawned_by_a_finished_handler_does_not_keep_its_serial_slot(self) -> None:
        log: list[str] = []
        with anyio.fail_after(5):
            async with anyio.create_task_group() as outer:
                async with EventBus("EdgeSpawn") as bus:
                    second_started = anyio.Event()

                    async def later() -> None:
                        await second_started.wait()
                        await bus.emit(EdgeChild())  # must wait its turn behind the running event

                    def first(event: EdgeEvent) -> None:
                        if event.i == 0:
                            outer.start_soon(later)
                            return
                        second_started.set()

                    async def second_half(event: EdgeEvent) -> None:
                        if event.i == 1:
                            log.append("second start")
                            await anyio.sleep(0.05)
                            log.append("second end")

                    bus.on(EdgeEvent, first)
                    bus.on(EdgeEvent, second_half)
                    bus.on(EdgeChild, lambda event: log.append("child ran"))
                    bus.emit(EdgeEvent(i=0))
                    bus.emit(EdgeEvent(i=1))
        assert log == ["second start", "second end", "child ran"]


class TestLentSlots:
    async def test_a_child_running_on_another_bus_may_queue_jump_onto_the_blocked_parents_bus(self) -> None:
        """The parent waits for a child that bus B's own runloop is processing; the child's handler awaits
        a grandchild on the parent's serial bus A. The blocked parent lends A's slot: no deadlock."""
        with anyio.fail_after(5):
            async with EventBus("EdgeLendA") as a, EventBus("EdgeLendB") as b:

                async def parent(event: EdgeEvent) -> str:
                    child = b.emit(EdgeChild())
                    while b in child._queued_on:  # let B's runloop claim the child first
                        await anyio.lowlevel.checkpoint()
                    return "p" + await child.event_result()

                async def child(event: EdgeChild) -> str:
                    return "c" + await a.emit(EdgeGrandchild()).event_result()

                a.on(EdgeEvent, parent)
                b.on(EdgeChild, child)
                a.on(EdgeGrandchild, lambda event: "g")
                assert await a.emit(EdgeEvent()).event_result() == "pcg"

    async def test_await_child_returns_when_the_child_completes_elsewhere(self) -> None:
        """Waiting for a busy global slot ends as soon as the child is released by its bus stopping."""
        times: dict[str, float] = {}
        with anyio.fail_after(5):
            async with (
                EventBus("EdgeSlowBus", event_concurrency="global-serial") as slow_bus,
                EventBus("EdgeParentBus") as parent_bus,
            ):
                child_bus = EventBus("EdgeChildBus", event_concurrency="global-serial")
                async with anyio.create_task_group() as tg:
                    await tg.start(child_bus.run)
                    release = anyio.Event()

                    async def hold_global_slot(event: EdgeEvent) -> None:
                        await release.wait()

                    async def parent(event: EdgeChild) -> None:
                        await child_bus.emit(EdgeGrandchild())
                        times["returned"] = anyio.current_time()

                    slow_bus.on(EdgeEvent, hold_global_slot)
                    child_bus.on(EdgeGrandchild, lambda event: "g")
                    parent_bus.on(EdgeChild, parent)
                    slow_bus.emit(EdgeEvent())
                    await anyio.wait_all_tasks_blocked()
                    waiting = parent_bus.emit(EdgeChild())
                    await anyio.wait_all_tasks_blocked()
                    await child_bus.stop()  # the grandchild is released with cancelled rows
                    times["stopped"] = anyio.current_time()
                    await waiting
                    assert "returned" in times  # while the global slot is still busy
                    assert not release.is_set()
                    release.set()


class TestWaitsThatCouldNeverEnd:
    async def test_send_from_a_handler_holding_the_global_slot_raises(self) -> None:
        with anyio.fail_after(5):
            async with EventBus("EdgeSendGlobal", event_concurrency="global-serial", max_pending=1) as bus:
                errors: list[BaseException] = []

                async def handler(event: EdgeEvent) -> None:
                    if event.i == 0:
                        bus.emit(EdgeEvent(i=1))
                        try:
                            await bus.send(EdgeEvent(i=2))
                        except DeadlockError as exc:
                            errors.append(exc)

                bus.on(EdgeEvent, handler)
                await bus.emit(EdgeEvent(i=0))
        assert len(errors) == 1

    async def test_waiting_on_a_bus_that_never_started_raises(self) -> None:
        bus = EventBus("EdgeNeverStarted", max_pending=1)
        bus.emit(EdgeEvent())
        with pytest.raises(BusNotRunningError):
            await bus.wait_until_idle(timeout=1)
        with pytest.raises(BusNotRunningError):
            await bus.send(EdgeEvent())
        async with bus:
            pass  # drains it

    async def test_a_reset_copy_runs_again_on_the_same_bus(self) -> None:
        async with EventBus("EdgeReset") as bus:
            bus.on(EdgeEvent, lambda event: event.i * 10)
            first = await bus.emit(EdgeEvent(i=4))
            again = bus.emit(first.event_reset())
            assert await again.event_result() == 40
            assert again.event_path == [bus.label]
            assert again.event_id != first.event_id
