"""Middleware hooks: every transition reaches every middleware, in the order it happened, off the hot path."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus, EventHandler, EventResult

pytestmark = pytest.mark.anyio


class MWPing(BaseEvent[int]):
    n: int = 0


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    async def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        self.log.append(("event", event.event_type, status))

    async def on_event_result_change(
        self, bus: EventBus, event: BaseEvent[Any], result: EventResult[Any], status: str
    ) -> None:
        self.log.append(("result", result.handler_name.rsplit(".", 1)[-1], status))

    async def on_bus_handlers_change(self, bus: EventBus, handler: EventHandler, registered: bool) -> None:
        self.log.append(("handler", handler.handler_name.rsplit(".", 1)[-1], registered))


def mw_ok(event: MWPing) -> int:
    return event.n


def mw_boom(event: MWPing) -> int:
    raise ValueError("boom")


class TestHookOrder:
    async def test_each_transition_is_delivered_in_order(self) -> None:
        recorder = Recorder()
        async with EventBus("MWOrder", middlewares=[recorder]) as bus:
            bus.on(MWPing, mw_ok)
            bus.on(MWPing, mw_boom)
            await bus.emit(MWPing(n=1))
            bus.off(MWPing, mw_boom)
        assert recorder.log == [
            ("handler", "mw_ok", True),
            ("handler", "mw_boom", True),
            ("event", "MWPing", "pending"),
            ("result", "mw_ok", "pending"),
            ("result", "mw_boom", "pending"),
            ("event", "MWPing", "started"),
            ("result", "mw_ok", "started"),
            ("result", "mw_ok", "completed"),
            ("result", "mw_boom", "started"),
            ("result", "mw_boom", "completed"),
            ("event", "MWPing", "completed"),
            ("handler", "mw_boom", False),
        ]

    async def test_an_event_without_handlers_still_reports_its_lifecycle(self) -> None:
        recorder = Recorder()
        async with EventBus("MWEmpty", middlewares=[recorder]) as bus:
            await bus.emit(MWPing())
        assert [entry[2] for entry in recorder.log] == ["pending", "started", "completed"]

    async def test_middleware_classes_are_instantiated_once(self) -> None:
        bus = EventBus("MWClass", middlewares=[Recorder])
        assert len(bus.middlewares) == 1 and isinstance(bus.middlewares[0], Recorder)


class TestIsolation:
    async def test_a_failing_hook_is_logged_and_later_hooks_still_run(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Broken:
            async def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
                raise RuntimeError("hook failed")

        recorder = Recorder()
        async with EventBus("MWBroken", middlewares=[Broken(), recorder]) as bus:
            bus.on(MWPing, mw_ok)
            event = await bus.emit(MWPing(n=3))
        assert await event.event_result() == 3
        assert ("event", "MWPing", "completed") in recorder.log
        assert any("hook failed" in r.getMessage() or r.exc_info for r in caplog.records)

    async def test_a_slow_hook_does_not_delay_the_bus(self) -> None:
        release = anyio.Event()

        class Slow:
            async def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
                await release.wait()

        async with EventBus("MWSlow", middlewares=[Slow()]) as bus:
            bus.on(MWPing, mw_ok)
            event = await bus.emit(MWPing(n=7))
            assert event.event_status == "completed"  # processed while the hook is still blocked
            assert not await bus.wait_until_idle(timeout=0.01)  # hooks pending: not idle yet
            release.set()
            assert await bus.wait_until_idle(timeout=2)
