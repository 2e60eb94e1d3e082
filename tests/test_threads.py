"""Sync handlers offloaded with ``run_in_thread=True``: thread identity, emitting from the thread, timeouts."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandlerTimeoutError,
    get_current_bus,
    get_current_event,
    in_handler,
)

pytestmark = pytest.mark.anyio


class THWork(BaseEvent[Any]):
    n: int = 0


class THChild(BaseEvent[str]):
    pass


class THNext(BaseEvent[str]):
    pass


async def test_runs_in_worker_thread_and_sync_default_runs_on_loop() -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}
    with anyio.fail_after(5):
        async with EventBus("THIdent") as bus:

            def threaded(event: THWork) -> int:
                seen["threaded"] = threading.get_ident()
                assert in_handler()
                assert get_current_event() is event
                assert get_current_bus() is bus
                return event.n * 2

            def on_loop(event: THWork) -> int:
                seen["on_loop"] = threading.get_ident()
                return event.n + 1

            h_thread = bus.on(THWork, threaded, run_in_thread=True)
            h_loop = bus.on(THWork, on_loop)
            event = bus.emit(THWork(n=21))
            await event
    assert seen["threaded"] != loop_thread
    assert seen["on_loop"] == loop_thread
    assert event.event_results[h_thread.id].result == 42
    assert event.event_results[h_loop.id].result == 22
    assert await event.event_results_list() == [42, 22]


async def test_emit_from_thread_links_child_to_parent() -> None:
    holder: dict[str, Any] = {}
    with anyio.fail_after(5):
        async with EventBus("THEmit") as bus:

            def threaded(event: THWork) -> str:
                holder["thread"] = threading.get_ident()
                holder["child"] = bus.emit(THChild())
                return "emitted"

            def on_child(event: THChild) -> str:
                holder["child_thread"] = threading.get_ident()
                return "child-done"

            h_parent = bus.on(THWork, threaded, run_in_thread=True)
            bus.on(THChild, on_child)
            parent = bus.emit(THWork())
            await parent
            child = holder["child"]
            assert child.event_status == "completed"
            assert child.event_parent_id == parent.event_id
            assert child.event_emitted_by_handler_id == h_parent.id
            assert parent.event_children == [child]
            assert bus.event_is_child_of(child, parent)
            assert await child.event_result() == "child-done"
    assert holder["child_thread"] != holder["thread"]  # the child's handler ran on the loop


async def test_many_emits_from_threads_are_safe() -> None:
    received: list[int] = []
    with anyio.fail_after(5):
        async with EventBus("THMany", event_handler_concurrency="parallel") as bus:

            def make(offset: int) -> Any:
                def threaded(event: THWork) -> None:
                    for i in range(20):
                        bus.emit(THNext(event_version=f"{offset + i}"))

                threaded.__name__ = f"emitter_{offset}"
                return threaded

            def on_next(event: THNext) -> str:
                received.append(int(event.event_version))
                return "ok"

            for offset in (0, 100, 200):
                bus.on(THWork, make(offset), run_in_thread=True)
            bus.on(THNext, on_next)
            parent = bus.emit(THWork())
            await parent
            assert len(parent.event_children) == 60
    assert sorted(received) == sorted([o + i for o in (0, 100, 200) for i in range(20)])


async def test_parallel_threaded_handlers_run_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=3)
    with anyio.fail_after(5):
        async with EventBus("THParallel", event_handler_concurrency="parallel") as bus:

            def left(event: THWork) -> str:
                barrier.wait()  # both threads must be inside at once
                return "left"

            def right(event: THWork) -> str:
                barrier.wait()
                return "right"

            bus.on(THWork, left, run_in_thread=True)
            bus.on(THWork, right, run_in_thread=True)
            event = bus.emit(THWork())
            assert await event.event_results_list() == ["left", "right"]


async def test_thread_handler_timeout_abandons_thread() -> None:
    ran: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("THTimeout") as bus:

            def blocking(event: THWork) -> str:
                time.sleep(0.3)
                ran.append("blocking-finished")
                return "too late"

            def after(event: THWork) -> str:
                ran.append("after")
                return "after"

            def on_next(event: THNext) -> str:
                ran.append("next")
                return "next"

            h_block = bus.on(THWork, blocking, run_in_thread=True, handler_timeout=0.05)
            h_after = bus.on(THWork, after)
            bus.on(THNext, on_next)
            event = bus.emit(THWork())
            follow = bus.emit(THNext())
            await event
            await follow
            assert ran[:2] == ["after", "next"]
    row = event.event_results[h_block.id]
    assert row.status == "error"
    assert isinstance(row.error, EventHandlerTimeoutError)
    assert row.error.timeout == 0.05
    assert event.event_results[h_after.id].result == "after"
    assert row.result is None  # the abandoned thread's late value is never recorded
