"""Handler and event timeouts, their outcomes, and parent timeouts cancelling descendants on every bus."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandlerAbortedError,
    EventHandlerCancelledError,
    EventHandlerError,
    EventHandlerTimeoutError,
)

pytestmark = pytest.mark.anyio

UNSET: Any = object()


class TOWork(BaseEvent[Any]):
    pass


class TONext(BaseEvent[Any]):
    pass


class TOParent(BaseEvent[Any]):
    pass


class TOChild(BaseEvent[Any]):
    pass


class TOGrandChild(BaseEvent[Any]):
    pass


class TOBlocker(BaseEvent[Any]):
    pass


# ------------------------------------------------------------------------------------------ resolution
@pytest.mark.parametrize(
    ("handler_timeout", "event_handler_timeout", "event_timeout", "bus_timeout", "expected"),
    [
        # the reference's example: the bus default caps the handler level even when the event raised its own
        (UNSET, None, 0.5, 0.05, 0.05),
        (UNSET, 0.5, 0.5, 0.05, 0.5),  # ... unless event_handler_timeout is raised too
        (UNSET, None, None, 0.05, 0.05),
        (UNSET, None, 0.05, 60.0, 0.05),
        (UNSET, 0.07, None, 60.0, 0.07),
        (UNSET, 0.07, 0.05, 60.0, 0.05),
        (0.03, None, None, 60.0, 0.03),  # handler option beats the rest...
        (0.03, 0.07, None, 60.0, 0.03),
        (2.0, 0.07, None, 60.0, 2.0),
        (2.0, None, 0.05, 60.0, 0.05),  # ...but is capped by the event level
        (None, None, None, 60.0, 60.0),  # None at handler level: the event level still applies
        (None, None, 0.05, None, 0.05),
        (None, None, None, None, None),  # everything disabled
        (UNSET, None, None, None, None),
        (UNSET, 0.07, None, None, 0.07),
        (0.03, None, None, None, 0.03),
    ],
)
async def test_effective_handler_timeout(
    handler_timeout: Any,
    event_handler_timeout: float | None,
    event_timeout: float | None,
    bus_timeout: float | None,
    expected: float | None,
) -> None:
    with anyio.fail_after(5):
        async with EventBus("TOResolve", event_timeout=bus_timeout) as bus:
            kwargs = {} if handler_timeout is UNSET else {"handler_timeout": handler_timeout}
            handler = bus.on(TOWork, lambda e: "ok", **kwargs)
            event = bus.emit(TOWork(event_timeout=event_timeout, event_handler_timeout=event_handler_timeout))
            await event
    row = event.event_results[handler.id]
    assert row.status == "completed"
    assert row.timeout == expected
    # resolved at processing time, never written onto the event
    assert event.event_timeout == event_timeout
    assert event.event_handler_timeout == event_handler_timeout


async def test_reference_example_event_timeout_does_not_raise_handler_budget() -> None:
    """event_timeout=0.5 on a bus with event_timeout=0.05: each handler still gets 0.05 s."""
    with anyio.fail_after(5):
        async with EventBus("TOExample", event_timeout=0.05) as bus:

            async def slow(event: TOWork) -> str:
                await anyio.sleep(0.3)
                return "too late"

            handler = bus.on(TOWork, slow)
            event = bus.emit(TOWork(event_timeout=0.5))
            await event
    row = event.event_results[handler.id]
    assert isinstance(row.error, EventHandlerTimeoutError)
    assert row.error.timeout == 0.05
    assert row.timeout == 0.05


# ------------------------------------------------------------------------------------------ outcomes
async def test_own_deadline_gives_timeout_error_and_bus_continues() -> None:
    ran: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("TOOwn") as bus:

            async def slow_handler(event: TOWork) -> str:
                ran.append("slow")
                await anyio.sleep_forever()
                return "never"

            def after(event: TOWork) -> str:
                ran.append("after")
                return "after"

            def on_next(event: TONext) -> str:
                ran.append("next")
                return "next"

            slow = bus.on(TOWork, slow_handler, handler_timeout=0.05)
            later = bus.on(TOWork, after)
            bus.on(TONext, on_next)
            event = bus.emit(TOWork())
            follow = bus.emit(TONext())
            await event
            await follow
    assert ran == ["slow", "after", "next"]
    row = event.event_results[slow.id]
    assert row.status == "error"
    error = row.error
    assert isinstance(error, EventHandlerTimeoutError)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, EventHandlerError)
    assert error.timeout == 0.05
    assert error.event is event
    assert error.handler is slow
    message = str(error)
    assert "slow_handler" in message
    assert "0.05" in message
    assert "timed out" in message
    assert event.event_results[later.id].result == "after"
    assert await follow.event_result() == "next"
    with pytest.raises(EventHandlerTimeoutError):
        await event.event_result()


async def test_a_budget_spent_before_the_first_await_interrupts_the_handler_at_that_await() -> None:
    """Deadlines are armed when a handler first suspends (one that never suspends cannot be interrupted
    anyway): a handler that spent its whole budget computing is interrupted at its first await, and one
    that finishes without awaiting keeps its result, whichever limit ran out."""
    import time

    def spin(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    with anyio.fail_after(5):
        async with EventBus("TOSpent") as bus:

            async def computes_then_awaits(event: TOWork) -> str:
                spin(0.03)
                await anyio.lowlevel.checkpoint()
                return "unreachable"

            async def computes_only(event: TONext) -> str:
                spin(0.03)
                return "kept"

            handler_limited = bus.on(TOWork, computes_then_awaits, handler_timeout=0.01)
            handler_event = await bus.emit(TOWork())
            bus.off(TOWork, handler_limited)
            bus.on(TOWork, computes_then_awaits)
            event_limited = await bus.emit(TOWork(event_timeout=0.01))
            bus.on(TONext, computes_only, handler_timeout=0.01)
            finished = await bus.emit(TONext(event_timeout=0.01))
    (row,) = handler_event.event_results.values()
    assert isinstance(row.error, EventHandlerTimeoutError)
    (row,) = event_limited.event_results.values()
    assert isinstance(row.error, EventHandlerAbortedError)
    assert await finished.event_result() == "kept"


async def test_event_deadline_while_running_aborts_and_pending_serial_handler_is_cancelled() -> None:
    ran: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("TOEventDeadline") as bus:

            async def first(event: TOWork) -> None:
                ran.append("first")
                await anyio.sleep_forever()

            def second(event: TOWork) -> str:
                ran.append("second")
                return "never"

            def on_next(event: TONext) -> str:
                ran.append("next")
                return "next"

            h_first = bus.on(TOWork, first)
            h_second = bus.on(TOWork, second)
            bus.on(TONext, on_next)
            event = bus.emit(TOWork(event_timeout=0.05))
            follow = bus.emit(TONext())
            await event
            await follow
    assert ran == ["first", "next"]
    first_error = event.event_results[h_first.id].error
    second_error = event.event_results[h_second.id].error
    assert isinstance(first_error, EventHandlerAbortedError)
    assert not isinstance(first_error, EventHandlerTimeoutError)
    assert "timed out" in str(first_error) and "0.05" in str(first_error)
    assert isinstance(second_error, EventHandlerCancelledError)
    assert event.event_status == "completed"
    assert await follow.event_result() == "next"


async def test_serial_handler_behind_own_timeout_cancelled_when_event_times_out() -> None:
    """h1 times out on its own budget, h2 then runs into the event's deadline, h3 never starts."""
    ran: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("TOChain") as bus:

            async def h1(event: TOWork) -> None:
                ran.append("h1")
                await anyio.sleep_forever()

            async def h2(event: TOWork) -> None:
                ran.append("h2")
                await anyio.sleep_forever()

            def h3(event: TOWork) -> None:
                ran.append("h3")

            r1 = bus.on(TOWork, h1, handler_timeout=0.02)
            r2 = bus.on(TOWork, h2)
            r3 = bus.on(TOWork, h3)
            event = bus.emit(TOWork(event_timeout=0.5))  # wide margin over h1: a loaded machine delays it
            await event
    assert ran == ["h1", "h2"]
    rows = event.event_results
    assert isinstance(rows[r1.id].error, EventHandlerTimeoutError)
    assert isinstance(rows[r2.id].error, EventHandlerAbortedError)
    assert isinstance(rows[r3.id].error, EventHandlerCancelledError)


async def test_plain_timeout_error_is_normalised() -> None:
    original = TimeoutError("upstream call took too long")
    with anyio.fail_after(5):
        async with EventBus("TOPlain") as bus:

            def raises(event: TOWork) -> None:
                raise original

            handler = bus.on(TOWork, raises)
            event = bus.emit(TOWork())
            await event
    error = event.event_results[handler.id].error
    assert isinstance(error, EventHandlerTimeoutError)
    assert error.__cause__ is original
    assert "raises" in str(error)


async def test_parallel_handlers_one_times_out_others_complete() -> None:
    with anyio.fail_after(5):
        async with EventBus("TOParallel", event_handler_concurrency="parallel") as bus:

            async def slow(event: TOWork) -> None:
                await anyio.sleep_forever()

            async def fast(event: TOWork) -> str:
                await anyio.lowlevel.checkpoint()
                return "fast"

            h_slow = bus.on(TOWork, slow, handler_timeout=0.05)
            h_fast = bus.on(TOWork, fast)
            event = bus.emit(TOWork())
            await event
    assert isinstance(event.event_results[h_slow.id].error, EventHandlerTimeoutError)
    assert event.event_results[h_fast.id].result == "fast"


# ------------------------------------------------------------------------------------------ parent timeout
async def test_parent_timeout_aborts_awaited_child() -> None:
    child_finished: list[bool] = []
    holder: dict[str, BaseEvent[Any]] = {}
    with anyio.fail_after(5):
        async with EventBus("TOAwaited") as bus:

            async def on_parent(event: TOParent) -> None:
                holder["child"] = child = bus.emit(TOChild())
                await child

            async def on_child(event: TOChild) -> None:
                await anyio.sleep_forever()
                child_finished.append(True)

            h_parent = bus.on(TOParent, on_parent, handler_timeout=0.05)
            h_child = bus.on(TOChild, on_child)
            parent = bus.emit(TOParent())
            await parent
    child = holder["child"]
    assert isinstance(parent.event_results[h_parent.id].error, EventHandlerTimeoutError)
    child_error = child.event_results[h_child.id].error
    assert isinstance(child_error, EventHandlerAbortedError)
    assert "on_parent" in str(child_error)
    assert child_finished == []
    assert child.event_status == "completed"
    assert parent.event_status == "completed"


async def test_parent_timeout_cancels_queued_children_on_every_bus() -> None:
    ran: list[str] = []
    holder: dict[str, BaseEvent[Any]] = {}
    with anyio.fail_after(5):
        async with EventBus("TOQueuedA") as a, EventBus("TOQueuedB") as b:
            gate = anyio.Event()

            async def on_blocker(event: TOBlocker) -> None:
                await gate.wait()

            async def on_parent(event: TOParent) -> None:
                child = holder["child"] = TOChild()
                a.emit(child)  # queued behind this handler on A
                b.emit(child)  # queued behind the blocker on B
                holder["grandchild_host"] = a.emit(TOWork())  # a second queued child
                await anyio.sleep_forever()

            def child_on_a(event: TOChild) -> None:
                ran.append("child@A")

            def child_on_a_too(event: TOChild) -> None:
                ran.append("child@A2")

            def child_on_b(event: TOChild) -> None:
                ran.append("child@B")

            def work_on_a(event: TOWork) -> None:
                ran.append("work@A")

            b.on(TOBlocker, on_blocker)
            h_parent = a.on(TOParent, on_parent, handler_timeout=0.05)
            h_a = a.on(TOChild, child_on_a)
            h_a2 = a.on(TOChild, child_on_a_too)
            h_b = b.on(TOChild, child_on_b)
            h_work = a.on(TOWork, work_on_a)
            b.emit(TOBlocker())
            await anyio.wait_all_tasks_blocked()
            parent = a.emit(TOParent())
            await parent
            child = holder["child"]
            work = holder["grandchild_host"]
            assert child.event_status == "completed"
            assert work.event_status == "completed"
            assert a.statistics().queued == 0
            assert b.statistics().queued == 0
            gate.set()
            await a.wait_until_idle()
            await b.wait_until_idle()
    assert ran == []  # never ran, even after both buses drained
    assert isinstance(parent.event_results[h_parent.id].error, EventHandlerTimeoutError)
    assert child.event_path == [a.label, b.label]
    assert set(child.event_results) == {h_a.id, h_a2.id, h_b.id}
    for row in child.event_results.values():
        assert isinstance(row.error, EventHandlerCancelledError)
        assert "pending" in str(row.error)
    assert {child.event_results[h_a.id].eventbus_id, child.event_results[h_b.id].eventbus_id} == {a.id, b.id}
    assert isinstance(work.event_results[h_work.id].error, EventHandlerCancelledError)


async def test_parent_timeout_aborts_child_running_on_other_bus() -> None:
    child_started = anyio.Event()
    child_finished: list[bool] = []
    holder: dict[str, BaseEvent[Any]] = {}
    with anyio.fail_after(5):
        async with EventBus("TORemoteA") as a, EventBus("TORemoteB") as b:

            async def on_parent(event: TOParent) -> None:
                holder["child"] = b.emit(TOChild())  # processed by B's runloop, another task
                await child_started.wait()
                await anyio.sleep_forever()

            async def on_child(event: TOChild) -> None:
                holder["grandchild"] = b.emit(TOGrandChild())  # queued behind this handler on B
                child_started.set()
                await anyio.sleep_forever()
                child_finished.append(True)

            grandchild_ran: list[bool] = []

            def on_grandchild(event: TOGrandChild) -> None:
                grandchild_ran.append(True)

            h_parent = a.on(TOParent, on_parent, handler_timeout=0.1)
            h_child = b.on(TOChild, on_child)
            h_grand = b.on(TOGrandChild, on_grandchild)
            parent = a.emit(TOParent())
            await parent
            child = holder["child"]
            grandchild = holder["grandchild"]
            assert child.event_status == "completed"
            assert grandchild.event_status == "completed"
            await b.wait_until_idle()
    assert isinstance(parent.event_results[h_parent.id].error, EventHandlerTimeoutError)
    assert isinstance(child.event_results[h_child.id].error, EventHandlerAbortedError)
    assert isinstance(grandchild.event_results[h_grand.id].error, EventHandlerCancelledError)
    assert child_finished == []
    assert grandchild_ran == []


async def test_event_timeout_of_parent_cancels_queued_child() -> None:
    ran: list[str] = []
    holder: dict[str, BaseEvent[Any]] = {}
    with anyio.fail_after(5):
        async with EventBus("TOEventParent") as bus:

            async def on_parent(event: TOParent) -> None:
                holder["child"] = bus.emit(TOChild())
                await anyio.sleep_forever()

            def on_child(event: TOChild) -> None:
                ran.append("child")

            bus.on(TOParent, on_parent)
            h_child = bus.on(TOChild, on_child)
            parent = bus.emit(TOParent(event_timeout=0.05))
            await parent
            await bus.wait_until_idle()
    assert ran == []
    assert isinstance(holder["child"].event_results[h_child.id].error, EventHandlerCancelledError)


async def test_child_with_own_handlers_after_parent_timeout_not_rerun() -> None:
    """A child cancelled by the parent timeout is never processed later, even when emitted again."""
    ran: list[str] = []
    holder: dict[str, BaseEvent[Any]] = {}
    with anyio.fail_after(5):
        async with EventBus("TONoRerun") as bus:

            async def on_parent(event: TOParent) -> None:
                holder["child"] = bus.emit(TOChild())
                await anyio.sleep_forever()

            def on_child(event: TOChild) -> None:
                ran.append("child")

            bus.on(TOParent, on_parent, handler_timeout=0.05)
            bus.on(TOChild, on_child)
            await bus.emit(TOParent())
            child = holder["child"]
            assert bus.emit(child) is child  # already visited this bus: a no-op
            await bus.wait_until_idle()
    assert ran == []


async def test_a_timeout_logs_the_tree_of_what_it_interrupted(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning names the handler and its limit, marks where it fired, what it interrupted (the awaited
    child) and what never started (the queued child)."""

    class TOTreeParent(BaseEvent[int]):
        pass

    class TOTreeChild(BaseEvent[None]):
        pass

    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("TOTree") as bus:

            async def parent(event: TOTreeParent) -> int:
                bus.emit(TOTreeChild())
                await bus.emit(TOTreeChild())
                return 1

            async def child(event: TOTreeChild) -> None:
                await anyio.sleep_forever()

            bus.on(TOTreeParent, parent, handler_timeout=0.05)
            bus.on(TOTreeChild, child)
            await bus.emit(TOTreeParent())
    trees = [r.getMessage() for r in caplog.records if r.getMessage().startswith("⏰")]
    assert len(trees) == 1
    tree = trees[0]
    assert "timed out after 0.05s" in tree.splitlines()[0]
    assert "TIMEOUT HERE (limit 0.05s)" in tree
    assert "INTERRUPTED" in tree
    assert "never started" in tree


class RsRoot(BaseEvent[str]):
    pass


class RsTrigger(BaseEvent[None]):
    pass


async def test_running_root_event_adopted_by_a_timed_out_handler_is_aborted() -> None:
    """A running root event that a handler of another event emits elsewhere becomes that handler's child;
    when that handler times out, the root's running handler is aborted like any descendant's (SPEC §2),
    although the root had no parent, and no timeout, when its handler started. (Regression: runs of such
    events once got no event-level cancel scope, so nothing could stop them.)"""
    with anyio.fail_after(2):
        async with (
            EventBus("RsOne", event_timeout=None) as one,
            EventBus("RsTwo", event_timeout=None) as two,
            EventBus("RsThree", event_timeout=None) as three,
        ):
            started = anyio.Event()

            async def slow(event: RsRoot) -> str:
                started.set()
                await anyio.sleep(1)
                return "finished"

            one.on(RsRoot, slow)
            root = one.emit(RsRoot())

            async def adopt(event: RsTrigger) -> None:
                three.emit(root)  # root becomes this handler's child
                await anyio.sleep(1)

            two.on(RsTrigger, adopt, handler_timeout=0.05)
            await started.wait()
            t0 = anyio.current_time()
            await two.emit(RsTrigger())
            await root
            elapsed = anyio.current_time() - t0
    assert root.event_parent_id is not None
    row = next(row for row in root.event_results.values() if row.handler.eventbus_name == "RsOne")
    assert isinstance(row.error, EventHandlerAbortedError), (row.status, row.result, elapsed)


class IcParent(BaseEvent[Any]):
    pass


class IcChild(BaseEvent[Any]):
    pass


class IcOther(BaseEvent[Any]):
    pass


async def test_an_inline_child_with_a_shorter_limit_than_its_parent_times_out_on_its_own() -> None:
    """A child awaited by the handler that emitted it runs inside that handler's scopes; its own, shorter
    limit still interrupts it, and the parent handler goes on."""
    with anyio.fail_after(5):
        async with EventBus("IcShorter") as bus:

            async def on_parent(event: IcParent) -> str:
                child = await bus.emit(IcChild(event_timeout=0.02))
                return child.event_status

            async def on_child(event: IcChild) -> None:
                await anyio.sleep_forever()

            bus.on(IcParent, on_parent, handler_timeout=5)
            h_child = bus.on(IcChild, on_child)
            parent = await bus.emit(IcParent())
    assert await parent.event_result() == "completed"
    (child,) = parent.event_children
    error = child.event_results[h_child.id].error
    assert isinstance(error, EventHandlerAbortedError)
    assert "IcChild" in str(error) and "timed out after 0.02s" in str(error)


async def test_an_inline_child_is_aborted_when_its_parents_event_times_out() -> None:
    with anyio.fail_after(5):
        async with EventBus("IcEventLimit") as bus:

            async def on_parent(event: IcParent) -> None:
                await bus.emit(IcChild())

            async def on_child(event: IcChild) -> None:
                await anyio.sleep_forever()

            bus.on(IcParent, on_parent)
            h_child = bus.on(IcChild, on_child)
            parent = await bus.emit(IcParent(event_timeout=0.05))
    (child,) = parent.event_children
    error = child.event_results[h_child.id].error
    assert isinstance(error, EventHandlerAbortedError)
    assert "IcParent" in str(error)


async def test_a_child_awaited_inline_by_an_unrelated_handler_is_aborted_by_its_own_parents_timeout() -> None:
    """The child of one handler, processed inline by another event's handler (which holds the bus's serial
    slot), runs outside its parent's scopes: its parent's timeout must still abort it, through scopes of
    its own."""
    holder: dict[str, BaseEvent[Any]] = {}
    with anyio.fail_after(2):
        async with EventBus("IcParentBus") as x, EventBus("IcChildBus") as y:
            emitted = anyio.Event()

            async def emits_then_hangs(event: IcParent) -> None:
                holder["child"] = y.emit(IcChild())
                emitted.set()
                await anyio.sleep_forever()

            async def awaits_someone_elses_child(event: IcOther) -> str:
                await emitted.wait()
                child = await holder["child"]  # processed here: this handler holds y's slot
                return child.event_status

            async def hangs(event: IcChild) -> None:
                await anyio.sleep_forever()

            y.on(IcOther, awaits_someone_elses_child)
            h_child = y.on(IcChild, hangs)
            x.on(IcParent, emits_then_hangs, handler_timeout=0.05)
            other = y.emit(IcOther())
            await x.emit(IcParent())
            await other
    assert await other.event_result() == "completed"
    error = holder["child"].event_results[h_child.id].error
    assert isinstance(error, EventHandlerAbortedError)
    assert "emits_then_hangs" in str(error)


async def test_a_child_awaited_by_a_task_its_parent_spawned_elsewhere_is_aborted_by_the_parents_timeout() -> (
    None
):
    """A task spawned into an outer task group inherits the handler's context, so its ``await child``
    processes the child inline, but outside the parent handler's scopes: the parent's timeout must still
    abort the child, through scopes of its own."""
    holder: dict[str, BaseEvent[Any]] = {}
    statuses: list[str] = []
    with anyio.fail_after(2):
        async with anyio.create_task_group() as outer, EventBus("IcSpawned") as bus:

            async def await_it(child: BaseEvent[Any]) -> None:
                await child
                statuses.append(child.event_status)

            async def spawns_an_awaiter(event: IcParent) -> None:
                holder["child"] = child = bus.emit(IcChild())
                outer.start_soon(await_it, child)
                await anyio.sleep_forever()

            async def hangs(event: IcChild) -> None:
                await anyio.sleep_forever()

            bus.on(IcParent, spawns_an_awaiter, handler_timeout=0.05)
            h_child = bus.on(IcChild, hangs)
            await bus.emit(IcParent())
    assert statuses == ["completed"]
    error = holder["child"].event_results[h_child.id].error
    assert isinstance(error, EventHandlerAbortedError)
    assert "spawns_an_awaiter" in str(error)


class ShParent(BaseEvent[Any]):
    pass


class ShChild(BaseEvent[Any]):
    pass


async def test_a_child_awaited_under_a_shield_keeps_its_own_event_timeout() -> None:
    """A handler may shield ``await child`` from its own timeout (a cleanup step); the child then still
    obeys its own limit, which needs scopes of its own inside the shield."""
    with anyio.fail_after(3):
        async with EventBus("ShEvent", event_timeout=None) as bus:

            async def on_parent(event: ShParent) -> str:
                with anyio.CancelScope(shield=True):
                    child = await bus.emit(ShChild(event_timeout=0.05))
                return child.event_status

            async def on_child(event: ShChild) -> None:
                await anyio.sleep(2)

            bus.on(ShParent, on_parent, handler_timeout=0.02)
            h_child = bus.on(ShChild, on_child)
            t0 = anyio.current_time()
            parent = await bus.emit(ShParent())
            elapsed = anyio.current_time() - t0
    (child,) = parent.event_children
    error = child.event_results[h_child.id].error
    assert isinstance(error, EventHandlerAbortedError)
    assert "timed out after 0.05s" in str(error)
    assert elapsed < 1.0


async def test_a_child_awaited_under_a_shield_keeps_its_own_handler_timeout() -> None:
    with anyio.fail_after(3):
        async with EventBus("ShHandler", event_timeout=None) as bus:

            async def on_parent(event: ShParent) -> None:
                with anyio.CancelScope(shield=True):
                    await bus.emit(ShChild())

            async def on_child(event: ShChild) -> None:
                await anyio.sleep(2)

            bus.on(ShParent, on_parent, handler_timeout=0.02)
            h_child = bus.on(ShChild, on_child, handler_timeout=0.05)
            parent = await bus.emit(ShParent())
    (child,) = parent.event_children
    assert isinstance(child.event_results[h_child.id].error, EventHandlerTimeoutError)


async def test_a_shielded_child_of_a_first_loser_is_aborted_when_first_resolves() -> None:
    """``first()`` cancels the losers and their descendants; a loser's child awaited under a shield is
    reached through its own scope."""
    with anyio.fail_after(4):
        async with EventBus("ShFirst", event_timeout=None, event_handler_concurrency="parallel") as bus:

            async def fast(event: ShParent) -> str:
                await anyio.sleep(0.02)
                return "fast"

            async def loser(event: ShParent) -> str:
                with anyio.CancelScope(shield=True):
                    await bus.emit(ShChild())
                return "slow"

            async def on_child(event: ShChild) -> None:
                await anyio.sleep(2)

            bus.on(ShParent, fast)
            h_loser = bus.on(ShParent, loser)
            h_child = bus.on(ShChild, on_child)
            t0 = anyio.current_time()
            parent = bus.emit(ShParent(event_handler_completion="first"))
            assert await parent.first() == "fast"
            elapsed = anyio.current_time() - t0
            await bus.wait_until_idle()
    (child,) = parent.event_results[h_loser.id].event_children
    error = child.event_results[h_child.id].error
    assert isinstance(error, EventHandlerAbortedError)
    assert "first() resolved" in str(error)
    assert elapsed < 1.0
