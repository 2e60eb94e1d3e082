"""The serial slot: one holder at a time, waiters served in arrival order, and no slot lost to a
cancellation."""

from __future__ import annotations

from types import SimpleNamespace

import anyio
import pytest
from anyio import WouldBlock

from bubus_anyio._engine import _slots
from bubus_anyio._engine._slots import SerialSlot

pytestmark = pytest.mark.anyio


async def test_a_free_slot_is_taken_at_once_and_refused_while_held() -> None:
    slot = SerialSlot()
    first, second = object(), object()
    slot.acquire_on_behalf_of_nowait(first)
    assert slot.holds(first) and slot.borrowed_tokens == 1
    with pytest.raises(WouldBlock):
        slot.acquire_on_behalf_of_nowait(second)
    slot.release_on_behalf_of(first)
    assert slot.borrowed_tokens == 0
    slot.acquire_on_behalf_of_nowait(second)
    assert slot.holds(second)


async def test_only_the_holder_may_release() -> None:
    slot = SerialSlot()
    holder = object()
    slot.acquire_on_behalf_of_nowait(holder)
    with pytest.raises(RuntimeError, match="does not hold"):
        slot.release_on_behalf_of(object())
    assert slot.holds(holder)


async def test_waiters_get_the_slot_in_arrival_order_and_nobody_jumps_the_line() -> None:
    slot = SerialSlot()
    holder = object()
    slot.acquire_on_behalf_of_nowait(holder)
    order: list[int] = []

    async def wait_then_release(n: int) -> None:
        token = object()
        await slot.acquire_on_behalf_of(token)
        order.append(n)
        await anyio.lowlevel.checkpoint()
        slot.release_on_behalf_of(token)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(wait_then_release, n)
                await anyio.wait_all_tasks_blocked()
            assert slot.tasks_waiting == 3
            slot.release_on_behalf_of(holder)
            with pytest.raises(WouldBlock):  # handed to the first waiter: not free for a newcomer
                slot.acquire_on_behalf_of_nowait(object())
    assert order == [0, 1, 2]
    assert slot.borrowed_tokens == 0 and slot.tasks_waiting == 0


async def test_a_waiter_cancelled_in_line_leaves_it() -> None:
    slot = SerialSlot()
    holder = object()
    slot.acquire_on_behalf_of_nowait(holder)
    with anyio.move_on_after(0.01) as scope:
        await slot.acquire_on_behalf_of(object())
    assert scope.cancelled_caught
    assert slot.tasks_waiting == 0
    slot.release_on_behalf_of(holder)
    assert slot.borrowed_tokens == 0


async def test_a_waiter_cancelled_around_the_hand_over_never_strands_the_slot() -> None:
    """Cancelled right after the slot was handed to it, a waiter either still gets it (the cancellation
    lands at its next checkpoint, and it releases as every caller does) or passes it on at once; either
    way the next waiter gets it and the slot ends free."""
    slot = SerialSlot()
    holder = object()
    slot.acquire_on_behalf_of_nowait(holder)
    got: list[str] = []

    async def cancelled_waiter(scope: anyio.CancelScope) -> None:
        with scope:
            token = object()
            await slot.acquire_on_behalf_of(token)
            try:
                got.append("cancelled waiter")
                await anyio.lowlevel.checkpoint()
            finally:
                slot.release_on_behalf_of(token)

    async def next_waiter() -> None:
        token = object()
        await slot.acquire_on_behalf_of(token)
        got.append("next waiter")
        slot.release_on_behalf_of(token)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()
            tg.start_soon(cancelled_waiter, scope)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(next_waiter)
            await anyio.wait_all_tasks_blocked()
            slot.release_on_behalf_of(holder)  # handed to the first waiter...
            scope.cancel()  # ...which is cancelled before it runs again
    assert got[-1] == "next waiter"
    assert slot.borrowed_tokens == 0 and slot.tasks_waiting == 0


async def test_a_waiter_interrupted_after_the_hand_over_passes_the_slot_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The slot was handed over, then the wait raised (as a cancellation delivered to the waiting task
    does): the slot goes to the next waiter in line rather than to nobody."""
    slot = SerialSlot()
    holder, interrupted, behind = object(), object(), object()
    slot.acquire_on_behalf_of_nowait(holder)

    class Interrupted(Exception):
        pass

    class HandedOverThenInterrupted:
        def set(self) -> None:
            pass

        async def wait(self) -> None:
            slot._waiters.append((behind, anyio.Event()))  # pyright: ignore[reportPrivateUsage]
            slot.release_on_behalf_of(holder)  # hands the slot to ``interrupted``...
            raise Interrupted  # ...whose wait is then interrupted

    monkeypatch.setattr(_slots, "anyio", SimpleNamespace(Event=HandedOverThenInterrupted))
    with pytest.raises(Interrupted):
        await slot.acquire_on_behalf_of(interrupted)
    assert slot.holds(behind)
    assert slot.tasks_waiting == 0
