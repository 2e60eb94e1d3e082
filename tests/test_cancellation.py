"""Cancelling the bus itself (body exception, outer cancel scope, stop()): rows say aborted, the
cancellation propagates, and no task outlives the bus."""

from __future__ import annotations

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

pytestmark = pytest.mark.anyio


class CXWork(BaseEvent[Any]):
    pass


class CXQueued(BaseEvent[Any]):
    pass


class CXChild(BaseEvent[Any]):
    pass


class CXBoom(Exception):
    pass


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


class Blocking:
    """A handler that signals when it started and records whether it ever finished or cleaned up."""

    def __init__(self, name: str = "blocking") -> None:
        self.started = anyio.Event()
        self.finished = False
        self.cleaned_up = False

        async def handler(event: BaseEvent[Any]) -> str:
            self.started.set()
            try:
                await anyio.sleep_forever()
                self.finished = True
                return "never"
            finally:
                self.cleaned_up = True

        handler.__name__ = handler.__qualname__ = name
        self.handler = handler


async def test_exception_in_body_aborts_running_handler() -> None:
    blocking = Blocking()
    tasks_before = len(anyio.get_running_tasks())
    holder: dict[str, Any] = {}
    with anyio.fail_after(5):
        with pytest.raises(BaseException) as info:
            async with EventBus("CXBody") as bus:
                holder["handler"] = bus.on(CXWork, blocking.handler)
                holder["queued_handler"] = bus.on(CXQueued, lambda e: "never")
                holder["event"] = bus.emit(CXWork())
                holder["queued"] = bus.emit(CXQueued())
                await blocking.started.wait()
                raise CXBoom("body failed")
    assert [type(e) for e in _leaves(info.value)] == [CXBoom]
    event = holder["event"]
    row = event.event_results[holder["handler"].id]
    assert row.status == "error"
    assert isinstance(row.error, EventHandlerAbortedError)
    assert blocking.cleaned_up and not blocking.finished
    queued = holder["queued"]
    assert queued.event_status == "completed"
    queued_row = queued.event_results[holder["queued_handler"].id]
    assert isinstance(queued_row.error, EventHandlerCancelledError)
    assert not bus.is_running
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_outer_cancel_scope_aborts_handler_and_propagates() -> None:
    blocking = Blocking()
    tasks_before = len(anyio.get_running_tasks())
    reached_after: list[bool] = []
    holder: dict[str, Any] = {}
    with anyio.fail_after(5):
        with anyio.CancelScope() as outer:
            async with EventBus("CXOuter") as bus:
                holder["handler"] = bus.on(CXWork, blocking.handler)
                holder["event"] = bus.emit(CXWork())
                await blocking.started.wait()
                outer.cancel()
                await anyio.sleep_forever()
            reached_after.append(True)
    assert outer.cancelled_caught
    assert reached_after == []
    row = holder["event"].event_results[holder["handler"].id]
    assert row.status == "error"
    assert isinstance(row.error, EventHandlerAbortedError)
    assert "cancelled" in str(row.error)
    assert blocking.cleaned_up and not blocking.finished
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_outer_cancel_from_inside_handler() -> None:
    """The handler itself cancels the scope around the bus: still recorded as aborted, never a success."""
    cleaned: list[bool] = []
    holder: dict[str, Any] = {}
    with anyio.fail_after(5):
        with anyio.CancelScope() as outer:
            async with EventBus("CXSelfCancel") as bus:

                async def handler(event: CXWork) -> str:
                    outer.cancel()
                    try:
                        await anyio.sleep_forever()
                    finally:
                        cleaned.append(True)
                    return "never"

                holder["handler"] = bus.on(CXWork, handler)
                holder["event"] = bus.emit(CXWork())
                await anyio.sleep_forever()
    assert outer.cancelled_caught
    assert cleaned == [True]
    row = holder["event"].event_results[holder["handler"].id]
    assert isinstance(row.error, EventHandlerAbortedError)


async def test_outer_cancel_aborts_queue_jumped_child_too() -> None:
    child_started = anyio.Event()
    holder: dict[str, Any] = {}
    with anyio.fail_after(5):
        with anyio.CancelScope() as outer:
            async with EventBus("CXNested") as bus:

                async def on_work(event: CXWork) -> None:
                    holder["child"] = child = bus.emit(CXChild())
                    await child

                async def on_child(event: CXChild) -> None:
                    child_started.set()
                    await anyio.sleep_forever()

                holder["parent_handler"] = bus.on(CXWork, on_work)
                holder["child_handler"] = bus.on(CXChild, on_child)
                holder["event"] = bus.emit(CXWork())
                await child_started.wait()
                outer.cancel()
                await anyio.sleep_forever()
    assert outer.cancelled_caught
    parent_row = holder["event"].event_results[holder["parent_handler"].id]
    child_row = holder["child"].event_results[holder["child_handler"].id]
    assert isinstance(parent_row.error, EventHandlerAbortedError)
    assert isinstance(child_row.error, EventHandlerAbortedError)


@pytest.mark.parametrize("handler_concurrency", ["serial", "parallel"])
async def test_stop_mid_handler_aborts(handler_concurrency: str) -> None:
    blocking = Blocking("first_blocking")
    other = Blocking("second_blocking")
    tasks_before = len(anyio.get_running_tasks())
    with anyio.fail_after(5):
        async with EventBus("CXStop", event_handler_concurrency=handler_concurrency) as bus:  # type: ignore[arg-type]
            h1 = bus.on(CXWork, blocking.handler)
            h2 = bus.on(CXWork, other.handler)
            h_queued = bus.on(CXQueued, lambda e: "never")
            event = bus.emit(CXWork())
            queued = bus.emit(CXQueued())
            await blocking.started.wait()
            await anyio.wait_all_tasks_blocked()
            await bus.stop()
            assert not bus.is_running
            assert event.event_status == "completed"
            assert queued.event_status == "completed"
            await event  # completed: returns at once
            with pytest.raises(BusNotRunningError):
                bus.emit(CXWork())
    assert isinstance(event.event_results[h1.id].error, EventHandlerAbortedError)
    row2 = event.event_results[h2.id]
    if handler_concurrency == "parallel":
        assert isinstance(row2.error, EventHandlerAbortedError)
    else:
        assert isinstance(row2.error, EventHandlerCancelledError)
        assert not other.started.is_set()
    assert isinstance(queued.event_results[h_queued.id].error, EventHandlerCancelledError)
    assert blocking.cleaned_up and not blocking.finished
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_stop_from_another_task_with_run() -> None:
    blocking = Blocking()
    tasks_before = len(anyio.get_running_tasks())
    with anyio.fail_after(5):
        bus = EventBus("CXRun")
        handler = bus.on(CXWork, blocking.handler)
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            event = bus.emit(CXWork())

            async def stopper() -> None:
                await blocking.started.wait()
                await bus.stop()

            tg.start_soon(stopper)
        # run() returned after stop(): the task group exits normally
    assert isinstance(event.event_results[handler.id].error, EventHandlerAbortedError)
    assert event.event_status == "completed"
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_cancelling_task_group_running_bus_aborts() -> None:
    blocking = Blocking()
    with anyio.fail_after(5):
        bus = EventBus("CXTaskGroup")
        handler = bus.on(CXWork, blocking.handler)
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            event = bus.emit(CXWork())
            await blocking.started.wait()
            tg.cancel_scope.cancel()
    assert tg.cancel_scope.cancelled_caught
    assert isinstance(event.event_results[handler.id].error, EventHandlerAbortedError)
    assert not bus.is_running


async def test_parallel_events_all_aborted_on_cancel() -> None:
    started = [anyio.Event() for _ in range(3)]
    cleaned: list[int] = []
    holder: dict[str, Any] = {}
    tasks_before = len(anyio.get_running_tasks())
    with anyio.fail_after(5):
        with anyio.CancelScope() as outer:
            async with EventBus("CXParallel", event_concurrency="parallel") as bus:
                counter = iter(range(3))

                async def handler(event: CXWork) -> None:
                    i = next(counter)
                    started[i].set()
                    try:
                        await anyio.sleep_forever()
                    finally:
                        cleaned.append(i)

                holder["handler"] = bus.on(CXWork, handler)
                holder["events"] = [bus.emit(CXWork()) for _ in range(3)]
                for signal in started:
                    await signal.wait()
                outer.cancel()
                await anyio.sleep_forever()
    assert outer.cancelled_caught
    assert sorted(cleaned) == [0, 1, 2]
    for event in holder["events"]:
        assert isinstance(event.event_results[holder["handler"].id].error, EventHandlerAbortedError)
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_outer_cancel_during_exit_drain() -> None:
    """The body finishes normally, then the outer scope is cancelled while the bus waits for its queued work
    at the end of the block: the bus must still close its task group (abort the handler, leave no task)."""
    blocking = Blocking()
    tasks_before = len(anyio.get_running_tasks())
    holder: dict[str, Any] = {}
    with anyio.fail_after(5):
        with anyio.CancelScope() as outer:
            async with EventBus("CXDrain") as bus:
                holder["handler"] = bus.on(CXWork, blocking.handler)
                holder["event"] = bus.emit(CXWork())
                await blocking.started.wait()
                outer.cancel()  # delivered at the next checkpoint: the drain in __aexit__
    assert outer.cancelled_caught
    row = holder["event"].event_results[holder["handler"].id]
    assert isinstance(row.error, EventHandlerAbortedError)
    assert blocking.cleaned_up and not blocking.finished
    assert not bus.is_running
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_stopping_mid_backlog_loses_no_event(anyio_backend: str) -> None:
    """A stop while the runloop drains a backlog (between taking an event off the stream and claiming it)
    still releases every queued event: each one completes, the unprocessed ones with cancelled rows."""

    class CXBacklog(BaseEvent[int]):
        i: int

    with anyio.fail_after(5):
        async with EventBus("CXBacklog") as bus:

            async def handler(event: CXBacklog) -> int:
                if event.i == 3:
                    await bus.stop()
                return event.i

            bus.on(CXBacklog, handler)
            events = [bus.emit(CXBacklog(i=i)) for i in range(40)]
    assert {event.event_status for event in events} == {"completed"}
    assert bus.statistics().queued == 0
