"""Queue-jump: awaiting a child inside a handler processes it now, ahead of earlier queued events."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from bubus_anyio import BaseEvent, DeadlockError, EventBus

pytestmark = pytest.mark.anyio

SERIAL_MODES = ["bus-serial", "global-serial"]


class QJParent(BaseEvent[Any]):
    pass


class QJChild(BaseEvent[str]):
    pass


class QJSibling(BaseEvent[Any]):
    pass


class QJLevel(BaseEvent[int]):
    depth: int = 0


class QJBlocker(BaseEvent[Any]):
    pass


@pytest.mark.parametrize("mode", SERIAL_MODES)
async def test_await_child_jumps_ahead_of_sibling(mode: str) -> None:
    order: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("QJOrder", event_concurrency=mode) as bus:  # type: ignore[arg-type]

            async def on_parent(event: QJParent) -> None:
                order.append("parent_start")
                sibling = bus.emit(QJSibling())
                child = bus.emit(QJChild())
                await child
                assert child.event_status == "completed"
                order.append("parent_end")
                assert sibling.event_status == "pending"

            def on_child(event: QJChild) -> str:
                order.append("child")
                return "child-result"

            def on_sibling(event: QJSibling) -> None:
                order.append("sibling")

            bus.on(QJParent, on_parent)
            bus.on(QJChild, on_child)
            bus.on(QJSibling, on_sibling)
            parent = bus.emit(QJParent())
            await parent
    assert order == ["parent_start", "child", "parent_end", "sibling"]
    assert parent.event_status == "completed"
    assert [c.event_type for c in parent.event_children] == ["QJSibling", "QJChild"]


@pytest.mark.parametrize("mode", SERIAL_MODES)
async def test_await_child_ahead_of_events_queued_before_parent_ran(mode: str) -> None:
    """Events emitted from outside before the child stay behind it (no overshoot either)."""
    order: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("QJOvershoot", event_concurrency=mode) as bus:  # type: ignore[arg-type]

            async def on_parent(event: QJParent) -> None:
                child = bus.emit(QJChild())
                await child
                order.append("parent_end")

            def on_child(event: QJChild) -> str:
                order.append("child")
                return "ok"

            def on_sibling(event: QJSibling) -> None:
                order.append("sibling")

            bus.on(QJParent, on_parent)
            bus.on(QJChild, on_child)
            bus.on(QJSibling, on_sibling)
            parent = bus.emit(QJParent())
            bus.emit(QJSibling())
            bus.emit(QJSibling())
            await parent
            await bus.wait_until_idle()
    assert order == ["child", "parent_end", "sibling", "sibling"]


@pytest.mark.parametrize("mode", SERIAL_MODES)
async def test_await_child_on_other_bus_no_deadlock(mode: str) -> None:
    """A handler on A awaits a child emitted on B; under global-serial both share the one limiter."""
    order: list[str] = []
    with anyio.fail_after(5):
        async with (
            EventBus("QJCrossA", event_concurrency=mode) as a,  # type: ignore[arg-type]
            EventBus("QJCrossB", event_concurrency=mode) as b,  # type: ignore[arg-type]
        ):

            async def on_parent(event: QJParent) -> None:
                child = b.emit(QJChild())
                await child
                order.append("parent_end")

            def on_child(event: QJChild) -> str:
                order.append("child")
                return "ok"

            a.on(QJParent, on_parent)
            b.on(QJChild, on_child)
            parent = a.emit(QJParent())
            await parent
    assert order == ["child", "parent_end"]


@pytest.mark.parametrize("mode", SERIAL_MODES)
async def test_await_forwarded_child_processed_on_both_buses(mode: str) -> None:
    order: list[str] = []
    with anyio.fail_after(5):
        async with (
            EventBus("QJFwdA", event_concurrency=mode) as a,  # type: ignore[arg-type]
            EventBus("QJFwdB", event_concurrency=mode) as b,  # type: ignore[arg-type]
        ):

            async def on_parent(event: QJParent) -> None:
                sibling = a.emit(QJSibling())
                child = a.emit(QJChild())
                await child
                order.append("parent_end")
                assert sibling.event_status == "pending"

            def child_on_a(event: QJChild) -> str:
                order.append("child@A")
                return "a"

            def child_on_b(event: QJChild) -> str:
                order.append("child@B")
                return "b"

            def on_sibling(event: QJSibling) -> None:
                order.append("sibling")

            a.on(QJParent, on_parent)
            a.on(QJChild, child_on_a)
            a.on(QJSibling, on_sibling)
            a.on(QJChild, b.emit)
            b.on(QJChild, child_on_b)
            parent = a.emit(QJParent())
            await parent
            await b.wait_until_idle()
    assert order == ["child@A", "child@B", "parent_end", "sibling"]


@pytest.mark.parametrize("mode", SERIAL_MODES)
async def test_five_nested_awaits(mode: str) -> None:
    trace: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("QJDeep", event_concurrency=mode) as bus:  # type: ignore[arg-type]

            async def on_level(event: QJLevel) -> int:
                trace.append(f"start{event.depth}")
                if event.depth < 5:
                    bus.emit(QJSibling())  # queued behind the whole chain
                    child = bus.emit(QJLevel(depth=event.depth + 1))
                    value = await child.event_result()
                    trace.append(f"end{event.depth}")
                    return value + 1
                trace.append(f"end{event.depth}")
                return 0

            def on_sibling(event: QJSibling) -> None:
                trace.append("sibling")

            bus.on(QJLevel, on_level)
            bus.on(QJSibling, on_sibling)
            root = bus.emit(QJLevel(depth=0))
            assert await root.event_result() == 5
            await bus.wait_until_idle()
    assert trace == [
        *(f"start{i}" for i in range(6)),
        *(f"end{i}" for i in reversed(range(6))),
        *(["sibling"] * 5),
    ]


async def test_several_tasks_await_same_child_handlers_run_once() -> None:
    runs: list[int] = []
    seen: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("QJShared") as bus:

            async def on_parent(event: QJParent) -> None:
                child = bus.emit(QJChild())

                async def waiter(i: int) -> None:
                    await child
                    assert child.event_status == "completed"
                    seen.append(f"waiter{i}")

                async with anyio.create_task_group() as tg:
                    for i in range(4):
                        tg.start_soon(waiter, i)
                await child
                seen.append("parent")

            async def on_child(event: QJChild) -> str:
                runs.append(1)
                await anyio.lowlevel.checkpoint()
                return "once"

            bus.on(QJParent, on_parent)
            bus.on(QJChild, on_child)
            parent = bus.emit(QJParent())
            await parent
    assert runs == [1]
    assert sorted(seen) == ["parent", "waiter0", "waiter1", "waiter2", "waiter3"]


async def test_parallel_handlers_of_parent_await_same_child() -> None:
    runs: list[int] = []
    with anyio.fail_after(5):
        async with EventBus("QJSharedPar", event_handler_concurrency="parallel") as bus:
            holder: dict[str, BaseEvent[Any]] = {}
            emitted = anyio.Event()

            async def first_handler(event: QJParent) -> str:
                holder["child"] = bus.emit(QJChild())
                emitted.set()
                return await holder["child"].event_result()

            async def second_handler(event: QJParent) -> str:
                await emitted.wait()
                return await holder["child"].event_result()

            async def on_child(event: QJChild) -> str:
                runs.append(1)
                await anyio.lowlevel.checkpoint()
                return "shared"

            bus.on(QJParent, first_handler)
            bus.on(QJParent, second_handler)
            bus.on(QJChild, on_child)
            parent = bus.emit(QJParent())
            assert await parent.event_results_list() == ["shared", "shared"]
    assert runs == [1]


@pytest.mark.parametrize("accessor", ["event_result", "event_results_list", "first"])
@pytest.mark.parametrize("mode", SERIAL_MODES)
async def test_result_accessors_inside_handler_process_child_first(accessor: str, mode: str) -> None:
    order: list[str] = []
    got: list[Any] = []
    with anyio.fail_after(5):
        async with EventBus("QJAccessor", event_concurrency=mode) as bus:  # type: ignore[arg-type]

            async def on_parent(event: QJParent) -> None:
                bus.emit(QJSibling())
                child = bus.emit(QJChild())
                if accessor == "event_result":
                    got.append(await child.event_result())
                elif accessor == "event_results_list":
                    got.append(await child.event_results_list())
                else:
                    got.append(await child.first())
                order.append("parent_end")

            def on_child(event: QJChild) -> str:
                order.append("child")
                return "value"

            def on_sibling(event: QJSibling) -> None:
                order.append("sibling")

            bus.on(QJParent, on_parent)
            bus.on(QJChild, on_child)
            bus.on(QJSibling, on_sibling)
            await bus.emit(QJParent())
            await bus.wait_until_idle()
    assert order == ["child", "parent_end", "sibling"]
    assert got == (["value"] if accessor != "event_results_list" else [["value"]])


@pytest.mark.parametrize("mode", SERIAL_MODES)
async def test_event_completed_inside_handler_on_queued_child_raises_deadlock(mode: str) -> None:
    caught: list[BaseException] = []
    child_ran: list[int] = []
    with anyio.fail_after(5):
        async with EventBus("QJDeadlock", event_concurrency=mode, event_timeout=None) as bus:  # type: ignore[arg-type]

            async def on_parent(event: QJParent) -> None:
                child = bus.emit(QJChild())
                try:
                    await child.event_completed()
                except DeadlockError as exc:
                    caught.append(exc)
                assert child.event_status == "pending"  # never jumped

            def on_child(event: QJChild) -> str:
                child_ran.append(1)
                return "later"

            bus.on(QJParent, on_parent)
            bus.on(QJChild, on_child)
            parent = bus.emit(QJParent())
            await parent
    assert len(caught) == 1
    assert isinstance(caught[0], RuntimeError)
    assert child_ran == [1]  # processed normally in queue order afterwards


async def test_event_completed_inside_handler_waits_under_parallel_events() -> None:
    order: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("QJCompletedPar", event_concurrency="parallel") as bus:

            async def on_parent(event: QJParent) -> None:
                child = bus.emit(QJChild())
                await child.event_completed()
                assert child.event_status == "completed"
                order.append("parent_end")

            async def on_child(event: QJChild) -> str:
                await anyio.lowlevel.checkpoint()
                order.append("child")
                return "done"

            bus.on(QJParent, on_parent)
            bus.on(QJChild, on_child)
            await bus.emit(QJParent())
    assert order == ["child", "parent_end"]


async def test_event_completed_inside_handler_on_other_idle_bus_waits() -> None:
    """The child is queued on another bus-serial bus the handler does not hold: it just waits."""
    with anyio.fail_after(5):
        async with EventBus("QJCompletedA") as a, EventBus("QJCompletedB") as b:

            async def on_parent(event: QJParent) -> str:
                child = b.emit(QJChild())
                await child.event_completed()
                return await child.event_result()

            a.on(QJParent, on_parent)

            def on_child(event: QJChild) -> str:
                return "from-b"

            b.on(QJChild, on_child)
            parent = a.emit(QJParent())
            assert await parent.event_result() == "from-b"


async def test_await_outside_handler_waits_in_queue_order() -> None:
    order: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("QJOutside") as bus:
            gate = anyio.Event()

            async def on_blocker(event: QJBlocker) -> None:
                await gate.wait()
                order.append("blocker")

            def on_child(event: QJChild) -> str:
                order.append("child")
                return "x"

            bus.on(QJBlocker, on_blocker)
            bus.on(QJChild, on_child)
            bus.emit(QJBlocker())
            child = bus.emit(QJChild())
            await anyio.wait_all_tasks_blocked()
            assert child.event_status == "pending"
            gate.set()
            await child
    assert order == ["blocker", "child"]


# ------------------------------------------------------------------ wake-ups of the other bus's runloop
async def test_child_emitted_to_an_idle_bus_and_not_awaited_is_still_processed() -> None:
    """An async handler's emits wake the other bus's runloop at the end of the handler's step (after any
    queue-jump in that step): a child it only emits, or waits for in queue order, still runs there."""
    seen: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("WakeA") as bus_a, EventBus("WakeB") as bus_b:

            async def on_parent(event: QJParent) -> None:
                bus_b.emit(QJSibling())  # emitted, never awaited: the handler then returns
                child = bus_b.emit(QJChild())
                await child.event_completed()  # queue order: bus B's runloop must run it

            bus_a.on(QJParent, on_parent)
            bus_b.on(QJSibling, lambda event: seen.append("sibling"))
            bus_b.on(QJChild, lambda event: seen.append("child") or "ok")
            await bus_a.emit(QJParent())
            await bus_b.wait_until_idle()
    assert seen == ["sibling", "child"]


async def test_copies_of_children_claimed_by_queue_jumps_do_not_pile_up_on_the_other_bus() -> None:
    """A queue-jump claims the child before the other bus's runloop wakes, so that runloop is not woken for
    it; the copies left in its stream are still drained every so often, never kept without bound."""
    with anyio.fail_after(10):
        async with EventBus("PileA") as bus_a, EventBus("PileB") as bus_b:

            async def on_parent(event: QJParent) -> None:
                child = bus_b.emit(QJChild())
                await child
                assert child.event_status == "completed"

            bus_a.on(QJParent, on_parent)
            bus_b.on(QJChild, lambda event: "ok")
            stream = bus_b._send_stream
            assert stream is not None
            most = 0
            for _ in range(500):
                await bus_a.emit(QJParent())
                most = max(most, stream.statistics().current_buffer_used)
            assert 0 < most <= 64


# ------------------------------------------------------------------ queue-jumps still let others run
class QJTick(BaseEvent[str]):
    pass


async def test_a_handler_awaiting_many_children_still_times_out() -> None:
    """Queue-jumps yield once every 16 events processed inline (as the runloop does for a backlog), so a
    handler awaiting child after child whose handlers never suspend is still interrupted by its timeout.
    (Regression: once a cross-bus queue-jump stopped going through a checkpoint, such a handler could not
    be interrupted at all.)"""
    import time

    with anyio.fail_after(5):
        async with EventBus("QJManyA") as bus_a, EventBus("QJManyB") as bus_b:
            bus_b.on(QJTick, lambda event: time.sleep(0.002) or "tick")

            async def outer(event: QJParent) -> str:
                for _ in range(100):
                    await bus_b.emit(QJTick())
                return "finished"

            bus_a.on(QJParent, outer, handler_timeout=0.05)
            event = await bus_a.emit(QJParent())
    (row,) = event.event_results.values()
    assert row.status == "error"
    assert "timed out after 0.05s" in str(row.error)


async def test_other_tasks_get_a_turn_at_least_every_16_queue_jumps() -> None:
    ticks: list[int] = []
    with anyio.fail_after(5):
        async with EventBus("QJTurnA") as bus_a, EventBus("QJTurnB") as bus_b:
            bus_b.on(QJTick, lambda event: "tick")

            async def outer(event: QJParent) -> str:
                for _ in range(160):
                    await bus_b.emit(QJTick())
                return "finished"

            bus_a.on(QJParent, outer)
            async with anyio.create_task_group() as tg:

                async def ticker() -> None:
                    while True:
                        ticks.append(1)
                        await anyio.lowlevel.checkpoint()

                tg.start_soon(ticker)
                await anyio.lowlevel.checkpoint()
                before = len(ticks)
                await bus_a.emit(QJParent())
                during = len(ticks) - before
                tg.cancel_scope.cancel()
    assert during >= 160 // 16 - 1
