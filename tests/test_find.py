"""find(): history lookups (past), waiting for emits (future), filters, and ancestry helpers."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus


class FindOrder(BaseEvent[str]):
    order_id: str = ""
    amount: int = 0


class FindRefund(BaseEvent[str]):
    order_id: str = ""


class FindChild(BaseEvent[None]):
    tag: str = ""


async def _finder(bus: EventBus, out: list[Any], *args: Any, **kwargs: Any) -> None:
    out.append(await bus.find(*args, **kwargs))


class TestPast:
    @pytest.mark.anyio
    async def test_past_true_finds_an_event_in_history(self) -> None:
        async with EventBus() as bus:
            event = await bus.emit(FindOrder(order_id="a"))
            assert await bus.find(FindOrder) is event
            assert await bus.find(FindOrder, past=True) is event
            assert await bus.find("FindOrder") is event

    @pytest.mark.anyio
    async def test_past_false_future_false_returns_none_at_once(self) -> None:
        async with EventBus() as bus:
            await bus.emit(FindOrder())
            assert await bus.find(FindOrder, past=False, future=False) is None

    @pytest.mark.anyio
    async def test_nothing_matching_returns_none(self) -> None:
        async with EventBus() as bus:
            await bus.emit(FindRefund())
            assert await bus.find(FindOrder) is None

    @pytest.mark.anyio
    async def test_past_window_in_seconds(self) -> None:
        async with EventBus() as bus:
            old = await bus.emit(FindOrder(order_id="old"))
            await anyio.sleep(0.15)  # time is the subject: the window must exclude this event
            assert await bus.find(FindOrder, past=0.05) is None
            assert await bus.find(FindOrder, past=60.0) is old
            new = await bus.emit(FindOrder(order_id="new"))
            assert await bus.find(FindOrder, past=0.05) is new

    @pytest.mark.anyio
    async def test_newest_match_wins(self) -> None:
        async with EventBus() as bus:
            events = [await bus.emit(FindOrder(order_id=str(i))) for i in range(5)]
            assert await bus.find(FindOrder) is events[-1]

    @pytest.mark.anyio
    async def test_field_equality_filters(self) -> None:
        async with EventBus() as bus:
            a = await bus.emit(FindOrder(order_id="a", amount=1))
            b = await bus.emit(FindOrder(order_id="b", amount=2))
            await bus.emit(FindOrder(order_id="c", amount=2))
            assert await bus.find(FindOrder, order_id="a") is a
            assert await bus.find(FindOrder, order_id="b", amount=2) is b
            assert await bus.find(FindOrder, order_id="b", amount=3) is None
            assert await bus.find(FindOrder, event_id=a.event_id) is a
            assert await bus.find(FindOrder, event_status="completed", order_id="a") is a
            assert await bus.find(FindOrder, no_such_field=1) is None

    @pytest.mark.anyio
    async def test_where_predicate(self) -> None:
        async with EventBus() as bus:
            small = await bus.emit(FindOrder(amount=1))
            await bus.emit(FindOrder(amount=50))
            assert await bus.find(FindOrder, where=lambda e: e.amount < 10) is small
            assert await bus.find(FindOrder, where=lambda e: e.amount > 100) is None

    @pytest.mark.anyio
    async def test_wildcard_matches_any_type(self) -> None:
        async with EventBus() as bus:
            await bus.emit(FindOrder())
            refund = await bus.emit(FindRefund(order_id="r"))
            assert await bus.find("*") is refund
            assert await bus.find("*", where=lambda e: e.event_type == "FindOrder") is not None

    @pytest.mark.anyio
    async def test_in_flight_events_are_found(self) -> None:
        gate = anyio.Event()

        async def find_gated(event: FindOrder) -> None:
            await gate.wait()

        async with EventBus() as bus:
            bus.on(FindOrder, find_gated)
            event = bus.emit(FindOrder())
            assert await bus.find(FindOrder) is event
            assert await bus.find(FindOrder, event_status="completed") is None
            gate.set()

    @pytest.mark.anyio
    async def test_find_is_scoped_to_its_bus(self) -> None:
        async with EventBus() as first, EventBus() as second:
            await first.emit(FindOrder())
            assert await second.find(FindOrder) is None

    @pytest.mark.anyio
    async def test_unknown_pattern_raises_type_error(self) -> None:
        async with EventBus() as bus:
            with pytest.raises(TypeError):
                await bus.find(42)  # type: ignore[call-overload]


class TestFuture:
    @pytest.mark.anyio
    async def test_future_true_resolves_on_emit(self) -> None:
        gate = anyio.Event()

        async def find_gated(event: FindOrder) -> None:
            await gate.wait()

        found: list[Any] = []
        async with EventBus() as bus:
            bus.on(FindOrder, find_gated)
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(_finder, bus, found, FindOrder, past=False, future=True))
                await anyio.wait_all_tasks_blocked()
                assert found == []
                event = bus.emit(FindOrder(order_id="x"))
            assert found == [event]
            assert event.event_status != "completed"  # resolved at emit, not at completion
            gate.set()

    @pytest.mark.anyio
    async def test_future_ignores_non_matching_emits(self) -> None:
        found: list[Any] = []
        async with EventBus() as bus:
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    functools.partial(_finder, bus, found, FindOrder, future=True, order_id="wanted")
                )
                await anyio.wait_all_tasks_blocked()
                bus.emit(FindOrder(order_id="other"))
                bus.emit(FindRefund(order_id="wanted"))
                await anyio.wait_all_tasks_blocked()
                assert found == []
                wanted = bus.emit(FindOrder(order_id="wanted"))
            assert found == [wanted]

    @pytest.mark.anyio
    async def test_past_and_future_returns_history_first(self) -> None:
        async with EventBus() as bus:
            old = await bus.emit(FindOrder())
            with anyio.fail_after(2):
                assert await bus.find(FindOrder, past=True, future=True) is old

    @pytest.mark.anyio
    async def test_past_false_ignores_already_emitted_in_flight_events(self) -> None:
        gate = anyio.Event()

        async def find_gated(event: FindOrder) -> None:
            await gate.wait()

        async with EventBus() as bus:
            bus.on(FindOrder, find_gated)
            bus.emit(FindOrder())
            assert await bus.find(FindOrder, past=False, future=0.05) is None
            gate.set()

    @pytest.mark.anyio
    async def test_future_timeout_returns_none(self) -> None:
        async with EventBus() as bus:
            with anyio.fail_after(5):
                assert await bus.find(FindOrder, past=False, future=0.05) is None
            assert bus.statistics().waiting_finders == 0

    @pytest.mark.anyio
    async def test_stop_resolves_pending_finders_with_none(self) -> None:
        found: list[Any] = []
        bus = EventBus()
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            tg.start_soon(functools.partial(_finder, bus, found, FindOrder, future=True))
            await anyio.wait_all_tasks_blocked()
            assert bus.statistics().waiting_finders == 1
            with anyio.fail_after(5):
                await bus.stop()
        assert found == [None]

    @pytest.mark.anyio
    async def test_leaving_the_block_resolves_pending_finders_with_none(self) -> None:
        found: list[Any] = []
        async with anyio.create_task_group() as tg:
            async with EventBus() as bus:
                tg.start_soon(functools.partial(_finder, bus, found, FindOrder, future=True))
                await anyio.wait_all_tasks_blocked()
        assert found == [None]

    @pytest.mark.anyio
    async def test_future_on_an_exited_bus_returns_none_at_once(self) -> None:
        async with EventBus() as bus:
            pass
        with anyio.fail_after(2):
            assert await bus.find(FindOrder, future=True) is None


class TestChildOf:
    @pytest.mark.anyio
    async def test_child_of_and_ancestry_helpers(self) -> None:
        async with EventBus() as bus:

            async def find_parent_handler(event: FindOrder) -> None:
                if event.order_id != "p":
                    return
                child = bus.emit(FindChild(tag="child"))
                await child

            async def find_child_handler(event: FindChild) -> None:
                if event.tag == "child":
                    bus.emit(FindChild(tag="grandchild"))

            bus.on(FindOrder, find_parent_handler)
            bus.on(FindChild, find_child_handler)
            parent = await bus.emit(FindOrder(order_id="p"))
            unrelated = await bus.emit(FindOrder(order_id="u"))
            child = await bus.find(FindChild, tag="child")
            grandchild = await bus.find(FindChild, tag="grandchild")
            assert child is not None and grandchild is not None

            assert await bus.find(FindChild, child_of=parent, tag="child") is child
            assert await bus.find(FindChild, child_of=parent) is grandchild  # newest descendant
            assert await bus.find(FindChild, child_of=child) is grandchild
            assert await bus.find(FindChild, child_of=unrelated) is None

            assert bus.event_is_child_of(child, parent)
            assert bus.event_is_child_of(grandchild, parent)
            assert not bus.event_is_child_of(parent, child)
            assert not bus.event_is_child_of(parent, parent)
            assert not bus.event_is_child_of(child, unrelated)
            assert bus.event_is_parent_of(parent, grandchild)
            assert not bus.event_is_parent_of(child, child)
            assert not bus.event_is_parent_of(grandchild, parent)
