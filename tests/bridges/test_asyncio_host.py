"""AsyncioHost: an asyncio-only client's coroutines run from asyncio and trio alike, and nothing outlives
the host's ``async with``."""

from __future__ import annotations

import asyncio  # the client side of these tests is asyncio code on purpose
import threading

import anyio
import anyio.to_thread
import pytest

from bubus_anyio.bridges._asyncio_host import AsyncioHost

pytestmark = pytest.mark.anyio


async def client_add(a: int, b: int) -> tuple[int, int]:
    await asyncio.sleep(0)
    return a + b, threading.get_ident()


async def client_fails() -> None:
    await asyncio.sleep(0)
    raise KeyError("boom")


async def test_runs_on_the_callers_loop_under_asyncio_and_a_thread_under_trio(anyio_backend: str) -> None:
    async with AsyncioHost() as host:
        total, thread = await host.run(client_add, 2, 3)
        assert total == 5
        assert host.hosted == (anyio_backend == "trio")
        assert (thread == threading.get_ident()) == (anyio_backend == "asyncio")


async def test_client_exception_reaches_the_caller() -> None:
    async with AsyncioHost() as host:
        with pytest.raises(KeyError, match="boom"):
            await host.run(client_fails)


async def test_cancelling_the_caller_cancels_the_client_task() -> None:
    cancelled = threading.Event()

    async def client_waits_forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with AsyncioHost() as host:
        with anyio.move_on_after(0.2) as scope:
            await host.run(client_waits_forever)
        assert scope.cancelled_caught
        # the client task ends on its own loop, maybe a thread away
        assert await anyio.to_thread.run_sync(cancelled.wait, 5)


async def test_leaving_stops_the_thread_and_its_tasks(anyio_backend: str) -> None:
    leftover: list[asyncio.Task[None]] = []

    async def client_spawns() -> None:
        leftover.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))

    async with AsyncioHost() as host:
        await host.run(client_spawns)
        thread = host._thread  # pyright: ignore[reportPrivateUsage]
    if anyio_backend == "trio":
        assert thread is not None and not thread.is_alive()
        assert leftover[0].cancelled()
    else:
        leftover[0].cancel()  # on asyncio the client shares the caller's loop, which owns its tasks
