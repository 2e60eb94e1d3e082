"""The backend-specific spot: the runloop's one-waiter parker and the completion signal, on asyncio
and trio."""

from __future__ import annotations

import anyio
import pytest

from bubus_anyio._engine._backend import make_parker, make_signal

pytestmark = pytest.mark.anyio


async def test_park_returns_once_another_task_wakes_it() -> None:
    parker = make_parker(anyio.get_cancelled_exc_class())
    woke: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def sleeper() -> None:
                await parker.park()
                woke.append("sleeper")

            tg.start_soon(sleeper)
            while not parker.parked:
                await anyio.lowlevel.checkpoint()
            parker.wake()
            assert not parker.parked
    assert woke == ["sleeper"]


async def test_a_wake_with_nobody_parked_is_not_remembered() -> None:
    parker = make_parker(anyio.get_cancelled_exc_class())
    parker.wake()
    with anyio.move_on_after(0.05) as scope:
        await parker.park()
    assert scope.cancelled_caught  # the earlier wake did not let this park through


async def test_cancelling_a_parked_task_raises_and_leaves_the_parker_empty() -> None:
    parker = make_parker(anyio.get_cancelled_exc_class())
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(parker.park)
            while not parker.parked:
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    assert not parker.parked
    parker.wake()  # nothing to wake: a no-op, not an error


async def test_a_signal_wakes_every_waiter_and_lets_later_waiters_through() -> None:
    signal = make_signal(anyio.get_cancelled_exc_class())
    woke: list[int] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def waiter(index: int) -> None:
                await signal.wait()
                woke.append(index)

            for index in range(3):
                tg.start_soon(waiter, index)
            await anyio.wait_all_tasks_blocked()
            assert woke == [] and not signal.is_set()
            signal.set()
        await signal.wait()  # already set: returns at once
    assert sorted(woke) == [0, 1, 2] and signal.is_set()


async def test_a_cancelled_signal_waiter_leaves_the_others_waiting() -> None:
    signal = make_signal(anyio.get_cancelled_exc_class())
    woke: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def waiter(name: str) -> None:
                await signal.wait()
                woke.append(name)

            with anyio.CancelScope() as doomed:
                tg.start_soon(waiter, "kept")
                await anyio.wait_all_tasks_blocked()
                doomed.cancel()
                await signal.wait()  # cancelled here, in this task's own scope
            assert doomed.cancelled_caught
            signal.set()
    assert woke == ["kept"]
