"""Parent/child tracking: ids on any bus, multi-level chains, explicit parents kept, children lists, and a
parent completing only after its children."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus


class PcParent(BaseEvent[str]):
    pass


class PcChild(BaseEvent[str]):
    level: int = 1


class PcLeaf(BaseEvent[str]):
    pass


class TestLinks:
    @pytest.mark.anyio
    async def test_child_emitted_in_a_handler_is_linked_to_its_parent(self) -> None:
        async with EventBus() as bus:

            def pc_emit_child(event: PcParent) -> str:
                bus.emit(PcChild())
                return "parent"

            entry = bus.on(PcParent, pc_emit_child)
            parent = await bus.emit(PcParent())
        (child,) = parent.event_children
        assert isinstance(child, PcChild)
        assert child.event_parent_id == parent.event_id
        assert child.event_emitted_by_handler_id == entry.id
        assert parent.event_results[entry.id].event_children == [child]
        assert parent.event_parent_id is None
        assert parent.event_emitted_by_handler_id is None

    @pytest.mark.anyio
    async def test_children_on_another_bus_are_linked(self) -> None:
        async with EventBus() as first, EventBus() as second:

            async def pc_cross(event: PcParent) -> str:
                await second.emit(PcChild())
                return "done"

            entry = first.on(PcParent, pc_cross)
            second.on(PcChild, lambda e: "child")
            with anyio.fail_after(5):
                parent = await first.emit(PcParent())
        (child,) = parent.event_children
        assert child.event_parent_id == parent.event_id
        assert child.event_emitted_by_handler_id == entry.id
        assert child.event_path == [second.label]
        assert await child.event_result() == "child"

    @pytest.mark.anyio
    async def test_multi_level_chains(self) -> None:
        async with EventBus() as bus:

            async def pc_level1(event: PcParent) -> str:
                await bus.emit(PcChild(level=1))
                return "p"

            async def pc_level2(event: PcChild) -> str:
                if event.level < 3:
                    await bus.emit(PcChild(level=event.level + 1))
                return f"c{event.level}"

            bus.on(PcParent, pc_level1)
            bus.on(PcChild, pc_level2)
            with anyio.fail_after(5):
                root = await bus.emit(PcParent())
        (c1,) = root.event_children
        (c2,) = c1.event_children
        (c3,) = c2.event_children
        assert [c.level for c in (c1, c2, c3)] == [1, 2, 3]  # type: ignore[attr-defined]
        assert c1.event_parent_id == root.event_id
        assert c2.event_parent_id == c1.event_id
        assert c3.event_parent_id == c2.event_id
        assert c3.event_children == []
        assert bus.event_is_child_of(c3, root)

    @pytest.mark.anyio
    async def test_explicit_parent_id_is_kept(self) -> None:
        explicit = "018f8e40-1234-7000-8000-000000001234"
        async with EventBus() as bus:

            def pc_explicit(event: PcParent) -> str:
                bus.emit(PcChild(event_parent_id=explicit))
                return "p"

            entry = bus.on(PcParent, pc_explicit)
            parent = await bus.emit(PcParent())
        (child,) = parent.event_children
        assert child.event_parent_id == explicit
        assert child.event_emitted_by_handler_id == entry.id

    @pytest.mark.anyio
    async def test_events_emitted_outside_handlers_have_no_parent(self) -> None:
        async with EventBus() as bus:
            event = await bus.emit(PcParent())
        assert event.event_parent_id is None
        assert event.event_emitted_by_handler_id is None

    @pytest.mark.anyio
    async def test_children_of_several_handlers_are_concatenated_in_handler_order(self) -> None:
        async with EventBus() as bus:

            def pc_first(event: PcParent) -> None:
                bus.emit(PcChild(level=1))
                bus.emit(PcChild(level=2))

            def pc_second(event: PcParent) -> None:
                bus.emit(PcLeaf())

            first = bus.on(PcParent, pc_first)
            second = bus.on(PcParent, pc_second)
            parent = await bus.emit(PcParent())
        kinds = [(type(c).__name__, getattr(c, "level", None)) for c in parent.event_children]
        assert kinds == [("PcChild", 1), ("PcChild", 2), ("PcLeaf", None)]
        assert [c.event_emitted_by_handler_id for c in parent.event_children] == [
            first.id,
            first.id,
            second.id,
        ]

    @pytest.mark.anyio
    async def test_erroring_handlers_still_record_children(self) -> None:
        async with EventBus() as bus:

            def pc_fail(event: PcParent) -> None:
                bus.emit(PcLeaf())
                raise RuntimeError("after emitting")

            entry = bus.on(PcParent, pc_fail)
            parent = await bus.emit(PcParent())
        row = parent.event_results[entry.id]
        assert row.status == "error"
        assert len(row.event_children) == 1


class TestCompletion:
    @pytest.mark.anyio
    async def test_parent_completes_only_after_its_unawaited_children(self) -> None:
        order: list[str] = []
        async with EventBus() as bus:

            def pc_fire_and_forget(event: PcParent) -> str:
                bus.emit(PcChild())
                order.append("parent handler done")
                return "p"

            async def pc_slow_child(event: PcChild) -> str:
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                order.append("child handler done")
                return "c"

            bus.on(PcParent, pc_fire_and_forget)
            bus.on(PcChild, pc_slow_child)
            parent = bus.emit(PcParent())
            with anyio.fail_after(5):
                await parent
            (child,) = parent.event_children
            assert child.event_status == "completed"
            assert order == ["parent handler done", "child handler done"]
            assert parent.event_completed_at is not None and child.event_completed_at is not None
            assert parent.event_completed_at >= child.event_completed_at

    @pytest.mark.anyio
    async def test_parent_waits_for_children_on_another_bus(self) -> None:
        gate = anyio.Event()
        async with EventBus() as first, EventBus() as second:

            def pc_forget(event: PcParent) -> str:
                second.emit(PcChild())
                return "p"

            async def pc_gated_child(event: PcChild) -> str:
                await gate.wait()
                return "c"

            first.on(PcParent, pc_forget)
            second.on(PcChild, pc_gated_child)
            parent = first.emit(PcParent())
            done: list[Any] = []

            async def waiter() -> None:
                done.append(await parent)

            async with anyio.create_task_group() as tg:
                tg.cancel_scope.deadline = anyio.current_time() + 5
                tg.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                assert done == []
                assert parent.event_status == "started"
                gate.set()
            assert done == [parent]
            assert parent.event_children[0].event_status == "completed"

    @pytest.mark.anyio
    async def test_awaited_child_runs_before_the_parent_handler_continues(self) -> None:
        order: list[str] = []
        async with EventBus() as bus:

            async def pc_await_child(event: PcParent) -> str:
                sibling = bus.emit(PcLeaf())
                child = bus.emit(PcChild())
                await child
                order.append("parent resumed")
                assert sibling.event_status == "pending"
                return await child.event_result()

            bus.on(PcParent, pc_await_child)
            bus.on(PcChild, lambda e: order.append("child") or "child-value")
            bus.on(PcLeaf, lambda e: order.append("sibling") or "leaf")
            parent = bus.emit(PcParent())
            with anyio.fail_after(5):
                assert await parent.event_result() == "child-value"
        assert order == ["child", "parent resumed", "sibling"]


class TestMemory:
    @pytest.mark.anyio
    async def test_finished_trees_are_freed_by_reference_counting_alone(self) -> None:
        """A completed child no longer holds its parent strongly, so a finished tree that left history is
        freed at once, without waiting for the cyclic garbage collector; ``event_parent`` still answers
        while the parent lives."""
        import gc
        import weakref

        gc.collect()
        gc.disable()
        try:
            async with EventBus("Freed", max_history_size=1) as bus:

                async def pc_await_child(event: PcParent) -> str:
                    await bus.emit(PcChild())
                    return "parent"

                bus.on(PcParent, pc_await_child)
                bus.on(PcChild, lambda event: "child")
                parent = await bus.emit(PcParent())
                (child,) = parent.event_children
                assert child.event_parent is parent
                refs = [weakref.ref(parent), weakref.ref(child)]
                del parent, child
                for _ in range(3):
                    await bus.emit(PcLeaf())  # pushes the tree out of the one-entry history
                assert [ref() for ref in refs] == [None, None]
        finally:
            gc.enable()


class PlParent(BaseEvent[str]):
    pass


class PlChild(BaseEvent[str]):
    pass


@pytest.mark.anyio
async def test_awaiting_an_ancestor_from_a_task_spawned_by_a_finished_child_is_a_deadlock_error() -> None:
    """The parent's handler owns a task group; its child's handler starts a worker in it (the worker keeps
    the child's frame) that awaits the parent: the parent's handler waits for the worker, the worker for
    the parent. That is a DeadlockError at once, although the child has completed by then and holds its
    parent only weakly. (Regression: the ancestor walks once stopped at a completed child, and this hung
    until the event timeout.)"""
    outcome: list[str] = []
    with anyio.fail_after(2):
        async with EventBus("PlBus", event_timeout=0.3) as bus:
            groups: list[anyio.abc.TaskGroup] = []

            async def on_parent(event: PlParent) -> str:
                async with anyio.create_task_group() as tg:
                    groups.append(tg)
                    await bus.emit(PlChild())
                return "parent"

            async def on_child(event: PlChild) -> str:
                parent = event.event_parent
                assert parent is not None

                async def worker() -> None:
                    try:
                        await parent
                        outcome.append("returned")
                    except Exception as exc:
                        outcome.append(type(exc).__name__)

                groups[0].start_soon(worker)
                return "child"

            bus.on(PlParent, on_parent)
            bus.on(PlChild, on_child)
            parent_event = await bus.emit(PlParent())
    assert outcome == ["DeadlockError"], [row.error for row in parent_event.event_results.values()]
    assert await parent_event.event_result() == "parent"
