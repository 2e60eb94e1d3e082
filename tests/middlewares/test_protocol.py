"""The hook protocol as middlewares see it: sync or async hooks, told apart once, delivered in order."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from bubus_anyio import BaseEvent, EventBus, EventHandler, EventResult
from bubus_anyio.middlewares import EventBusMiddleware

pytestmark = pytest.mark.anyio


class ProtoPing(BaseEvent[int]):
    n: int = 0


def proto_ok(event: ProtoPing) -> int:
    return event.n


class SyncRecorder(EventBusMiddleware):
    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.log = log
        self.threads: set[int] = set()

    def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        self.threads.add(threading.get_ident())
        self.log.append(("sync", "event", status))

    def on_event_result_change(
        self, bus: EventBus, event: BaseEvent[Any], result: EventResult[Any], status: str
    ) -> None:
        self.log.append(("sync", "result", status))

    def on_bus_handlers_change(self, bus: EventBus, handler: EventHandler, registered: bool) -> None:
        self.log.append(("sync", "handler", str(registered)))


class AsyncRecorder(EventBusMiddleware):
    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.log = log

    async def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        self.log.append(("async", "event", status))


class TestSyncAndAsyncHooks:
    async def test_sync_and_async_hooks_interleave_in_middleware_order(self) -> None:
        log: list[tuple[str, ...]] = []
        async with EventBus("ProtoMixed", middlewares=[SyncRecorder(log), AsyncRecorder(log)]) as bus:
            bus.on(ProtoPing, proto_ok)
            await bus.emit(ProtoPing(n=1))
        events = [entry for entry in log if entry[1] == "event"]
        assert events == [
            ("sync", "event", "pending"),
            ("async", "event", "pending"),
            ("sync", "event", "started"),
            ("async", "event", "started"),
            ("sync", "event", "completed"),
            ("async", "event", "completed"),
        ]
        assert ("sync", "handler", "True") in log
        assert [e for e in log if e[1] == "result"] == [
            ("sync", "result", "pending"),
            ("sync", "result", "started"),
            ("sync", "result", "completed"),
        ]

    async def test_sync_hooks_run_on_the_event_loop_thread(self) -> None:
        recorder = SyncRecorder([])
        async with EventBus("ProtoThread", middlewares=[recorder]) as bus:
            await bus.emit(ProtoPing())
        assert recorder.threads == {threading.get_ident()}

    async def test_hooks_are_looked_up_once_per_bus_not_per_call(self) -> None:
        lookups: list[str] = []

        class Counting:
            def __getattr__(self, name: str) -> Any:
                lookups.append(name)
                if name == "on_event_change":
                    return lambda bus, event, status: None  # pyright: ignore[reportUnknownLambdaType]
                raise AttributeError(name)

        async with EventBus("ProtoLookup", middlewares=[Counting()]) as bus:
            for n in range(5):
                await bus.emit(ProtoPing(n=n))
        assert lookups.count("on_event_change") == 1

    async def test_a_raising_sync_hook_is_logged_and_the_bus_goes_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Raising:
            def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
                raise RuntimeError(f"sync hook failed at {status}")

        log: list[tuple[str, ...]] = []
        with caplog.at_level(logging.ERROR, logger="bubus_anyio.middleware"):
            async with EventBus("ProtoRaise", middlewares=[Raising(), AsyncRecorder(log)]) as bus:
                bus.on(ProtoPing, proto_ok)
                event = await bus.emit(ProtoPing(n=4))
        assert await event.event_result() == 4
        assert ("async", "event", "completed") in log
        failures = [r for r in caplog.records if r.exc_info and "sync hook failed" in str(r.exc_info[1])]
        assert len(failures) == 3  # pending, started, completed


class TestBaseClass:
    def test_the_base_class_defines_no_hooks_so_none_are_called(self) -> None:
        for name in ("on_event_change", "on_event_result_change", "on_bus_handlers_change"):
            assert not hasattr(EventBusMiddleware(), name)

    def test_it_is_a_context_manager_that_closes(self) -> None:
        closed: list[bool] = []

        class Closing(EventBusMiddleware):
            def close(self) -> None:
                closed.append(True)

        with Closing() as middleware:
            assert isinstance(middleware, Closing)
        assert closed == [True]

    def test_a_bus_without_middlewares_has_no_hook_queue(self) -> None:
        assert EventBus("ProtoNone")._hooks is None
