"""Forwarding with ``a.on('*', b.emit)``: one event object, one result map, paths, cycles, per-bus policy."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus

pytestmark = pytest.mark.anyio


class FWPing(BaseEvent[str]):
    n: int = 0


class FWChild(BaseEvent[str]):
    pass


async def test_same_object_travels_and_results_merge() -> None:
    seen: list[tuple[str, BaseEvent[Any]]] = []
    with anyio.fail_after(5):
        async with EventBus("FWOrigin") as a, EventBus("FWTarget") as b:

            def on_a(event: FWPing) -> str:
                seen.append(("a", event))
                return "from-a"

            def on_b(event: FWPing) -> str:
                seen.append(("b", event))
                return "from-b"

            h_a = a.on(FWPing, on_a)
            forwarder = a.on("*", b.emit)
            h_b = b.on(FWPing, on_b)
            event = a.emit(FWPing(n=1))
            await event
            assert event.event_status == "completed"
            assert [name for name, _ in seen] == ["a", "b"]
            assert all(obj is event for _, obj in seen)
            assert event.event_path == [a.label, b.label]

            rows = event.event_results
            assert set(rows) == {h_a.id, forwarder.id, h_b.id}
            assert (rows[h_a.id].eventbus_id, rows[h_a.id].eventbus_name) == (a.id, a.name)
            assert (rows[forwarder.id].eventbus_id, rows[forwarder.id].eventbus_name) == (a.id, a.name)
            assert (rows[h_b.id].eventbus_id, rows[h_b.id].eventbus_name) == (b.id, b.name)
            assert rows[forwarder.id].status == "completed"
            assert rows[forwarder.id].result is event

            # The forwarder's row (the event itself) is excluded from the typed accessors.
            assert await event.event_results_list() == ["from-a", "from-b"]
            assert await event.event_result() == "from-a"
            assert event in a.event_history.values()
            assert event in b.event_history.values()


@pytest.mark.parametrize("mode", ["bus-serial", "global-serial", "parallel"])
async def test_chain_path_lists_each_bus_once_in_visit_order(mode: str) -> None:
    hits: list[str] = []
    with anyio.fail_after(5):
        async with (
            EventBus("FWChainA", event_concurrency=mode) as a,  # type: ignore[arg-type]
            EventBus("FWChainB", event_concurrency=mode) as b,  # type: ignore[arg-type]
            EventBus("FWChainC", event_concurrency=mode) as c,  # type: ignore[arg-type]
        ):
            for bus in (a, b, c):

                def record(event: FWPing, name: str = bus.name) -> None:
                    hits.append(name)

                bus.on(FWPing, record)
            a.on("*", b.emit)
            b.on("*", c.emit)
            event = a.emit(FWPing())
            await event
            assert hits == [a.name, b.name, c.name]
            assert event.event_path == [a.label, b.label, c.label]


async def test_cycle_runs_once_per_bus() -> None:
    hits: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("FWCycleA") as a, EventBus("FWCycleB") as b, EventBus("FWCycleC") as c:
            for bus in (a, b, c):

                def record(event: FWPing, name: str = bus.name) -> None:
                    hits.append(name)

                bus.on(FWPing, record)
            a.on("*", b.emit)
            b.on("*", c.emit)
            c.on("*", a.emit)
            event = a.emit(FWPing())
            await event
            for bus in (a, b, c):
                await bus.wait_until_idle()
            assert sorted(hits) == sorted([a.name, b.name, c.name])
            assert event.event_path == [a.label, b.label, c.label]
            assert event.event_status == "completed"
            # Emitting again into the cycle from the middle does not re-run anything.
            hits.clear()
            assert b.emit(event) is event
            await anyio.lowlevel.checkpoint()
            assert hits == []


async def test_bidirectional_forwarding_runs_once_per_bus() -> None:
    hits: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("FWBiA") as a, EventBus("FWBiB") as b:
            for bus in (a, b):

                def record(event: FWPing, name: str = bus.name) -> None:
                    hits.append(name)

                bus.on(FWPing, record)
            a.on("*", b.emit)
            b.on("*", a.emit)
            first = a.emit(FWPing(n=1))
            second = b.emit(FWPing(n=2))
            await first
            await second
    assert sorted(hits) == sorted([a.name, b.name, a.name, b.name])
    assert first.event_path == [a.label, b.label]
    assert second.event_path == [b.label, a.label]


async def test_forwarded_event_obeys_target_bus_defaults() -> None:
    gate = anyio.Event()
    running = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}
    with anyio.fail_after(5):
        async with (
            EventBus("FWPolicyA") as a,
            EventBus("FWPolicyB", event_handler_concurrency="parallel") as b,
        ):

            def make(bus_key: str, tag: str) -> Any:
                async def handler(event: FWPing) -> None:
                    running[bus_key] += 1
                    peak[bus_key] = max(peak[bus_key], running[bus_key])
                    await gate.wait()
                    running[bus_key] -= 1

                handler.__name__ = f"policy_{bus_key}_{tag}"
                return handler

            a.on(FWPing, b.emit)  # exact-type forwarder first, so A's handlers block after the forward
            a.on(FWPing, make("a", "1"))
            a.on(FWPing, make("a", "2"))
            b.on(FWPing, make("b", "1"))
            b.on(FWPing, make("b", "2"))
            event = a.emit(FWPing())
            await anyio.wait_all_tasks_blocked()
            assert running == {"a": 1, "b": 2}
            gate.set()
            await event
    assert peak == {"a": 1, "b": 2}
    assert event.event_handler_concurrency is None


async def test_forwarded_event_respects_target_timeout_default() -> None:
    with anyio.fail_after(5):
        async with (
            EventBus("FWTimeoutA", event_timeout=None) as a,
            EventBus("FWTimeoutB", event_timeout=0.05) as b,
        ):

            async def slow(event: FWPing) -> str:
                await anyio.sleep(0.5)
                return "slow"

            a.on("*", b.emit)
            h_a = a.on(FWPing, lambda e: "fast")
            h_b = b.on(FWPing, slow)
            event = a.emit(FWPing())
            await event
    assert event.event_results[h_a.id].status == "completed"
    assert event.event_results[h_a.id].timeout is None
    assert event.event_results[h_b.id].status == "error"
    assert event.event_results[h_b.id].timeout == 0.05
    assert event.event_timeout is None


async def test_await_on_origin_waits_for_every_bus() -> None:
    gate = anyio.Event()
    done: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("FWWaitA") as a, EventBus("FWWaitB") as b, EventBus("FWWaitC") as c:

            def on_a(event: FWPing) -> None:
                done.append("a")

            async def on_c(event: FWPing) -> str:
                await gate.wait()
                done.append("c")
                return "c"

            a.on(FWPing, on_a)
            a.on("*", b.emit)
            b.on("*", c.emit)
            c.on(FWPing, on_c)
            event = a.emit(FWPing())
            await anyio.wait_all_tasks_blocked()
            assert done == ["a"]
            assert event.event_status == "started"

            async def release_later() -> None:
                await anyio.wait_all_tasks_blocked()
                gate.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(release_later)
                await event
                assert done == ["a", "c"]
                assert event.event_status == "completed"
            assert await event.event_result() == "c"


async def test_emit_from_handler_to_other_bus_links_parent_and_child() -> None:
    holder: dict[str, BaseEvent[Any]] = {}
    with anyio.fail_after(5):
        async with EventBus("FWLinkA") as a, EventBus("FWLinkB") as b:

            def on_ping(event: FWPing) -> None:
                holder["child"] = b.emit(FWChild())

            def on_child(event: FWChild) -> str:
                return "child-done"

            h_ping = a.on(FWPing, on_ping)
            b.on(FWChild, on_child)
            parent = a.emit(FWPing())
            await parent
            child = holder["child"]
            assert child.event_status == "completed"  # the parent completes only after its children
            assert child.event_parent_id == parent.event_id
            assert child.event_parent is parent
            assert child.event_emitted_by_handler_id == h_ping.id
            assert parent.event_children == [child]
            assert a.event_is_parent_of(parent, child)
            assert b.event_is_child_of(child, parent)
            assert child.event_path == [b.label]
            assert await child.event_result() == "child-done"


async def test_forwarding_inside_own_handler_is_not_its_own_child() -> None:
    with anyio.fail_after(5):
        async with EventBus("FWSelfA") as a, EventBus("FWSelfB") as b:

            def forward(event: FWPing) -> None:
                b.emit(event)

            def on_b(event: FWPing) -> str:
                return "b"

            a.on(FWPing, forward)
            b.on(FWPing, on_b)
            event = a.emit(FWPing())
            await event
            assert event.event_parent_id is None
            assert event.event_children == []
            assert event.event_path == [a.label, b.label]
            assert await event.event_result() == "b"
