"""Context propagation: emit-time ContextVars reach handlers, stay isolated, never leak back; handler frame
helpers (get_current_event/handler/bus, in_handler)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandler,
    get_current_bus,
    get_current_event,
    get_current_handler,
    in_handler,
)

request_id: ContextVar[str] = ContextVar("ctx_request_id", default="unset")


class CtxRequest(BaseEvent[str]):
    pass


class CtxChild(BaseEvent[str]):
    pass


def ctx_read_sync(event: BaseEvent[Any]) -> str:
    return request_id.get()


async def ctx_read_async(event: BaseEvent[Any]) -> str:
    await anyio.lowlevel.checkpoint()
    return request_id.get()


class TestPropagation:
    @pytest.mark.anyio
    async def test_value_set_before_emit_is_seen_by_sync_and_async_handlers_processed_later(self) -> None:
        bus = EventBus()
        bus.on(CtxRequest, ctx_read_sync)
        bus.on(CtxRequest, ctx_read_async)
        token = request_id.set("req-1")
        try:
            event = bus.emit(CtxRequest())  # the bus is not running: processed later
        finally:
            request_id.reset(token)
        assert request_id.get() == "unset"
        async with bus:
            await event
        assert await event.event_results_list() == ["req-1", "req-1"]

    @pytest.mark.anyio
    async def test_two_emits_with_different_values_stay_isolated(self) -> None:
        gate = anyio.Event()

        async def ctx_gated(event: CtxRequest) -> str:
            await gate.wait()
            return request_id.get()

        async with EventBus(event_concurrency="parallel") as bus:
            bus.on(CtxRequest, ctx_gated)
            request_id.set("a")
            first = bus.emit(CtxRequest())
            request_id.set("b")
            second = bus.emit(CtxRequest())
            await anyio.wait_all_tasks_blocked()
            request_id.set("c")
            gate.set()
            assert await first.event_result() == "a"
            assert await second.event_result() == "b"

    @pytest.mark.anyio
    async def test_handler_set_does_not_leak_back_to_the_emitter_or_other_events(self) -> None:
        def ctx_writer(event: CtxRequest) -> str:
            before = request_id.get()
            request_id.set("from-handler")
            return before

        async def ctx_async_writer(event: CtxRequest) -> str:
            request_id.set("from-async-handler")
            await anyio.lowlevel.checkpoint()
            return request_id.get()

        async with EventBus() as bus:
            bus.on(CtxRequest, ctx_writer)
            bus.on(CtxRequest, ctx_async_writer)
            request_id.set("outer")
            first = await bus.emit(CtxRequest())
            assert request_id.get() == "outer"
            second = await bus.emit(CtxRequest())
            assert request_id.get() == "outer"
        assert await first.event_results_list() == ["outer", "from-async-handler"]
        assert await second.event_results_list() == ["outer", "from-async-handler"]

    @pytest.mark.anyio
    async def test_children_inherit_the_context(self) -> None:
        async with EventBus() as bus:

            async def ctx_parent(event: CtxRequest) -> str:
                inherited = bus.emit(CtxChild())
                request_id.set("set-in-parent")
                overridden = bus.emit(CtxChild())
                return f"{await inherited.event_result()}|{await overridden.event_result()}"

            bus.on(CtxRequest, ctx_parent)
            bus.on(CtxChild, ctx_read_async)
            request_id.set("root")
            event = bus.emit(CtxRequest())
            assert await event.event_result() == "root|set-in-parent"

    @pytest.mark.anyio
    async def test_context_flows_to_another_bus(self) -> None:
        async with EventBus() as first, EventBus() as second:

            def ctx_forward(event: CtxRequest) -> None:
                second.emit(CtxChild())

            first.on(CtxRequest, ctx_forward)
            second.on(CtxChild, ctx_read_sync)
            request_id.set("crossing")
            await first.emit(CtxRequest())
            child = await second.find(CtxChild)
            assert child is not None
            assert await child.event_result() == "crossing"


class TestHandlerFrame:
    def test_outside_handlers_everything_is_none(self) -> None:
        assert get_current_event() is None
        assert get_current_handler() is None
        assert get_current_bus() is None
        assert in_handler() is False

    @pytest.mark.anyio
    async def test_inside_sync_and_async_handlers(self) -> None:
        seen: list[tuple[Any, ...]] = []

        def ctx_frame_sync(event: CtxRequest) -> None:
            seen.append((get_current_event(), get_current_handler(), get_current_bus(), in_handler()))

        async def ctx_frame_async(event: CtxRequest) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append((get_current_event(), get_current_handler(), get_current_bus(), in_handler()))

        async with EventBus() as bus:
            sync_entry = bus.on(CtxRequest, ctx_frame_sync)
            async_entry = bus.on(CtxRequest, ctx_frame_async)
            event = await bus.emit(CtxRequest())
            assert get_current_event() is None
            assert in_handler() is False
        assert seen == [(event, sync_entry, bus, True), (event, async_entry, bus, True)]
        assert isinstance(sync_entry, EventHandler)

    @pytest.mark.anyio
    async def test_tasks_spawned_by_a_handler_see_the_frame(self) -> None:
        seen: list[tuple[Any, ...]] = []

        async def ctx_spawn(event: CtxRequest) -> None:
            async def child_task() -> None:
                await anyio.lowlevel.checkpoint()
                seen.append((get_current_event(), get_current_handler(), get_current_bus(), in_handler()))

            async with anyio.create_task_group() as tg:
                tg.start_soon(child_task)

        async with EventBus() as bus:
            entry = bus.on(CtxRequest, ctx_spawn)
            event = await bus.emit(CtxRequest())
        assert seen == [(event, entry, bus, True)]

    @pytest.mark.anyio
    async def test_nested_child_handler_sees_its_own_frame_and_parent_frame_is_restored(self) -> None:
        seen: list[Any] = []
        async with EventBus() as bus:

            async def ctx_outer(event: CtxRequest) -> None:
                child = bus.emit(CtxChild())
                await child
                seen.append(("outer-after", get_current_event()))

            def ctx_inner(event: CtxChild) -> None:
                seen.append(("inner", get_current_event()))

            bus.on(CtxRequest, ctx_outer)
            bus.on(CtxChild, ctx_inner)
            parent = await bus.emit(CtxRequest())
        child = parent.event_children[0]
        assert seen == [("inner", child), ("outer-after", parent)]
