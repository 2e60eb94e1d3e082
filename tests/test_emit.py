"""emit(): returns the same event, FIFO order, errors land on rows, backpressure with max_pending."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    BusNotRunningError,
    EventBus,
    QueueFullError,
)


class EmitNum(BaseEvent[int]):
    n: int = 0


class EmitOther(BaseEvent[str]):
    pass


class EmitBoom(Exception):
    pass


def emit_double(event: EmitNum) -> int:
    return event.n * 2


class TestEmit:
    @pytest.mark.anyio
    async def test_emit_returns_the_same_event_pending(self) -> None:
        async with EventBus() as bus:
            event = EmitNum(n=1)
            returned = bus.emit(event)
            assert returned is event
            assert event.event_status == "pending"
            assert event.event_path == [bus.label]

    @pytest.mark.anyio
    async def test_dispatch_is_an_alias_of_emit(self) -> None:
        async with EventBus() as bus:
            bus.on(EmitNum, emit_double)
            event = bus.dispatch(EmitNum(n=4))
            assert await event.event_result() == 8

    @pytest.mark.anyio
    async def test_await_event_returns_the_event_completed(self) -> None:
        async with EventBus() as bus:
            bus.on(EmitNum, emit_double)
            event = bus.emit(EmitNum(n=2))
            assert await event is event
            assert event.event_status == "completed"
            assert event.event_started_at is not None
            assert event.event_completed_at is not None
            assert event.event_started_at <= event.event_completed_at

    @pytest.mark.anyio
    async def test_events_are_processed_in_fifo_order(self) -> None:
        seen: list[int] = []

        async def emit_record(event: EmitNum) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append(event.n)

        def emit_record_other(event: EmitOther) -> None:
            seen.append(-1)

        async with EventBus() as bus:
            bus.on(EmitNum, emit_record)
            bus.on(EmitOther, emit_record_other)
            expected: list[int] = []
            for i in range(200):
                if i % 50 == 0:
                    bus.emit(EmitOther())
                    expected.append(-1)
                bus.emit(EmitNum(n=i))
                expected.append(i)
        assert seen == expected

    @pytest.mark.anyio
    async def test_fifo_order_holds_across_emit_timing(self) -> None:
        seen: list[int] = []
        async with EventBus() as bus:
            bus.on(EmitNum, lambda e: seen.append(e.n))
            for i in range(20):
                bus.emit(EmitNum(n=i))
                if i % 3 == 0:
                    await anyio.lowlevel.checkpoint()
        assert seen == list(range(20))

    @pytest.mark.anyio
    async def test_event_without_handlers_completes(self) -> None:
        async with EventBus() as bus:
            event = await bus.emit(EmitNum())
            assert event.event_status == "completed"
            assert event.event_results == {}

    @pytest.mark.anyio
    async def test_emit_rejects_non_events(self) -> None:
        async with EventBus() as bus:
            with pytest.raises(TypeError):
                bus.emit("EmitNum")  # type: ignore[type-var]

    @pytest.mark.anyio
    async def test_re_emitting_on_the_same_bus_does_not_duplicate(self) -> None:
        calls: list[int] = []
        async with EventBus() as bus:
            bus.on(EmitNum, lambda e: calls.append(e.n))
            event = bus.emit(EmitNum(n=1))
            assert bus.emit(event) is event
            await event
            assert event.event_path == [bus.label]
        assert calls == [1]

    @pytest.mark.anyio
    async def test_adhoc_base_event_matches_string_handlers(self) -> None:
        async with EventBus() as bus:
            bus.on("EmitAdHoc", lambda e: "ad hoc")
            event = await bus.emit(BaseEvent(event_type="EmitAdHoc"))
            assert await event.event_result() == "ad hoc"


class TestSameIdTwice:
    """Two event objects can share an ``event_id`` (the same wire message decoded twice, a copy): each is
    queued and processed on its own."""

    @pytest.mark.anyio
    async def test_the_same_message_decoded_twice_is_processed_twice(self) -> None:
        wire = EmitNum(n=1).to_json()
        seen: list[int] = []
        with anyio.fail_after(3):
            async with EventBus("SameIdTwice") as bus:

                async def on_num(event: EmitNum) -> int:
                    seen.append(event.n)
                    return event.n

                bus.on(EmitNum, on_num)
                first = bus.emit(EmitNum.from_json(wire))
                second = bus.emit(EmitNum.from_json(wire))  # a redelivery, decoded again
                assert first is not second and first.event_id == second.event_id
                assert bus.statistics().queued == 2
                await first
                await second
        assert seen == [1, 1]


class TestHandlerErrors:
    @pytest.mark.anyio
    async def test_handler_exception_lands_on_its_row_and_others_still_run(self) -> None:
        def emit_fail(event: EmitNum) -> int:
            raise EmitBoom("kaput")

        async with EventBus() as bus:
            bus.on(EmitNum, emit_fail)
            bus.on(EmitNum, emit_double)
            event = await bus.emit(EmitNum(n=3))  # never raises handler errors
            failed, ok = event.event_results.values()
            assert failed.status == "error"
            assert isinstance(failed.error, EmitBoom)
            assert failed.result is None
            assert ok.status == "completed"
            assert ok.result == 6
            assert event.event_status == "completed"

    @pytest.mark.anyio
    async def test_bus_keeps_working_after_handler_errors(self) -> None:
        async def emit_fail_async(event: EmitNum) -> int:
            await anyio.lowlevel.checkpoint()
            raise EmitBoom(str(event.n))

        async with EventBus() as bus:
            entry = bus.on(EmitNum, emit_fail_async)
            for i in range(5):
                await bus.emit(EmitNum(n=i))
            bus.off(EmitNum, entry)
            bus.on(EmitNum, emit_double)
            assert await bus.emit(EmitNum(n=21)).event_result() == 42
            assert bus.is_running

    @pytest.mark.anyio
    async def test_returning_an_exception_records_it_as_an_error(self) -> None:
        async with EventBus() as bus:
            bus.on(EmitNum, lambda e: EmitBoom("returned"))
            event = await bus.emit(EmitNum())
            (row,) = event.event_results.values()
            assert row.status == "error"
            assert isinstance(row.error, EmitBoom)


class TestBackpressure:
    @pytest.mark.anyio
    async def test_emit_raises_queue_full_when_max_pending_are_waiting(self) -> None:
        bus = EventBus(max_pending=2)
        bus.emit(EmitNum(n=1))
        bus.emit(EmitNum(n=2))
        with pytest.raises(QueueFullError, match="max_pending=2"):
            bus.emit(EmitNum(n=3))
        assert bus.statistics().queued == 2
        async with bus:
            pass

    @pytest.mark.anyio
    async def test_send_waits_for_room(self) -> None:
        gate = anyio.Event()
        seen: list[int] = []

        async def emit_gated(event: EmitNum) -> None:
            await gate.wait()
            seen.append(event.n)

        async with EventBus(max_pending=2) as bus:
            bus.on(EmitNum, emit_gated)
            bus.emit(EmitNum(n=0))
            await anyio.wait_all_tasks_blocked()  # n=0 is running, not queued
            bus.emit(EmitNum(n=1))
            bus.emit(EmitNum(n=2))
            with pytest.raises(QueueFullError):
                bus.emit(EmitNum(n=99))
            late = EmitNum(n=3)
            sent: list[Any] = []

            async def send_late() -> None:
                sent.append(await bus.send(late))

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_late)
                await anyio.wait_all_tasks_blocked()
                assert sent == []
                assert late.event_path == []
                gate.set()
            assert sent == [late]
            await late
        assert seen == [0, 1, 2, 3]

    @pytest.mark.anyio
    async def test_send_without_bound_is_emit(self) -> None:
        async with EventBus() as bus:
            bus.on(EmitNum, emit_double)
            event = await bus.send(EmitNum(n=5))
            assert await event.event_result() == 10

    @pytest.mark.anyio
    async def test_send_waiting_for_room_wakes_when_the_bus_stops(self) -> None:
        gate = anyio.Event()

        async def emit_blocked(event: EmitNum) -> None:
            await gate.wait()

        bus = EventBus(max_pending=1)
        bus.on(EmitNum, emit_blocked)
        outcome: list[Any] = []

        async def send_one() -> None:
            try:
                await bus.send(EmitNum(n=2))
            except BusNotRunningError as exc:
                outcome.append(exc)
            else:
                outcome.append("sent")

        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            bus.emit(EmitNum(n=0))
            await anyio.wait_all_tasks_blocked()
            bus.emit(EmitNum(n=1))
            tg.start_soon(send_one)
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(5):
                await bus.stop()
        assert len(outcome) == 1
        assert isinstance(outcome[0], BusNotRunningError)
