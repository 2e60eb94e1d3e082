"""auto-* middlewares: handler errors, results and (un)registrations become events on the bus."""

from __future__ import annotations

from typing import Any

import pytest

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.middlewares import (
    AutoErrorEvent,
    AutoErrorEventMiddleware,
    AutoHandlerChangeEventMiddleware,
    AutoResultEvent,
    AutoReturnEventMiddleware,
    BusHandlerRegisteredEvent,
    BusHandlerUnregisteredEvent,
)

pytestmark = pytest.mark.anyio


class AutoCharge(BaseEvent[Any]):
    amount: int = 0


def auto_charge(event: AutoCharge) -> Any:
    if event.amount < 0:
        raise ValueError(f"negative amount {event.amount}")
    if event.amount == 0:
        return None
    return {"charged": event.amount}


class TestAutoError:
    async def test_a_failed_handler_emits_a_type_error_event(self) -> None:
        seen: list[BaseEvent[Any]] = []
        async with EventBus("AutoErr", middlewares=[AutoErrorEventMiddleware()]) as bus:
            bus.on(AutoCharge, auto_charge)
            bus.on("*", seen.append)
            source = await bus.emit(AutoCharge(amount=-5))
            await bus.wait_until_idle()
        errors = [e for e in seen if e.event_type == "AutoChargeErrorEvent"]
        assert len(errors) == 1
        error = errors[0]
        assert isinstance(error, AutoErrorEvent)
        assert error.error_type == "ValueError" and isinstance(error.error, ValueError)
        assert error.source_event_type == "AutoCharge"
        assert error.event_parent_id == source.event_id
        wire = error.to_dict()
        assert wire["error"] == {"type": "ValueError", "message": "negative amount -5"}
        assert type(BaseEvent.from_json(error.to_json())) is type(error)

    async def test_error_events_do_not_feed_back(self) -> None:
        def always_fails(event: BaseEvent[Any]) -> None:
            raise RuntimeError("everything fails")

        async with EventBus("AutoLoop", middlewares=[AutoErrorEventMiddleware()]) as bus:
            bus.on("*", always_fails)
            await bus.emit(AutoCharge(amount=1))
            await bus.wait_until_idle()
            types = [e.event_type for e in bus.event_history.values()]
        assert types == ["AutoCharge", "AutoChargeErrorEvent"]


class TestAutoReturn:
    async def test_values_become_result_events_and_none_does_not(self) -> None:
        async with EventBus("AutoRet", middlewares=[AutoReturnEventMiddleware()]) as bus:
            bus.on(AutoCharge, auto_charge)
            await bus.emit(AutoCharge(amount=3))
            await bus.emit(AutoCharge(amount=0))
            await bus.emit(AutoCharge(amount=-1))
            await bus.wait_until_idle()
            results = [e for e in bus.event_history.values() if isinstance(e, AutoResultEvent)]
        assert [(e.event_type, e.data) for e in results] == [("AutoChargeResultEvent", {"charged": 3})]

    async def test_returned_events_are_not_wrapped(self) -> None:
        async with EventBus("AutoRetEvt", middlewares=[AutoReturnEventMiddleware()]) as bus:
            bus.on(AutoCharge, lambda e: AutoCharge(amount=0))
            await bus.emit(AutoCharge(amount=1))
            await bus.wait_until_idle()
            assert not [e for e in bus.event_history.values() if isinstance(e, AutoResultEvent)]


class TestAutoHandlerChange:
    async def test_on_and_off_become_events_with_a_handler_snapshot(self) -> None:
        async with EventBus("AutoHandlers", middlewares=[AutoHandlerChangeEventMiddleware()]) as bus:
            entry = bus.on(AutoCharge, auto_charge)
            await bus.wait_until_idle()
            bus.off(AutoCharge, auto_charge)
            await bus.wait_until_idle()
            changes = [
                e
                for e in bus.event_history.values()
                if isinstance(e, BusHandlerRegisteredEvent | BusHandlerUnregisteredEvent)
            ]
        assert [type(e).__name__ for e in changes] == [
            "BusHandlerRegisteredEvent",
            "BusHandlerUnregisteredEvent",
        ]
        snapshot = changes[0].handler
        assert snapshot["id"] == entry.id and snapshot["event_pattern"] == "AutoCharge"
        assert snapshot["eventbus_id"] == bus.id and "handler" not in snapshot
        assert BaseEvent.from_json(changes[1].to_json()).to_dict() == changes[1].to_dict()
