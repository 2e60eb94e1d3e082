"""Run an asyncio-only client (nats-py, asyncpg) from any anyio backend.

Backend-specific on purpose: this is the one module of the bridges that imports ``asyncio``.

On asyncio the client simply runs on the caller's loop. On any other backend (trio) :class:`AsyncioHost`
starts a private asyncio loop in a dedicated thread when entered and stops and joins it when left, so
nothing outlives the ``async with``. :meth:`AsyncioHost.run` runs one coroutine function of the client on
that loop and waits for it without blocking the caller's loop; cancelling the caller cancels the asyncio
task too. Transports built on it pull (``next_msg``, ``fetch``, ``queue.get``) rather than receive
callbacks, so the caller's own pace is the backpressure and no unbounded buffer sits between the loops.
"""

from __future__ import annotations

import asyncio  # backend-specific on purpose: see the module docstring
import contextlib
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

__all__ = ["AsyncioHost"]

T = TypeVar("T")


class AsyncioHost:
    """An asyncio loop for an asyncio-only client: the caller's own (asyncio) or a private one in a thread.

    :ivar hosted: True when the client runs on a private loop in a thread (the caller is not on asyncio)
    """

    def __init__(self, name: str = "bubus-asyncio-host") -> None:
        self.name = name
        self.hosted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self.name} is not running; use it as `async with AsyncioHost():`")
        return self._loop

    async def __aenter__(self) -> Self:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self.hosted = True
        if not self.hosted:
            return self
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._token = anyio.lowlevel.current_token()
        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        await anyio.to_thread.run_sync(started.wait)
        self._loop = loop
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.hosted:
            self._loop = None
            return
        loop, thread = self._loop, self._thread
        assert loop is not None and thread is not None
        with anyio.CancelScope(shield=True):
            try:
                await self.run(_cancel_remaining_tasks)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                await anyio.to_thread.run_sync(thread.join)
                loop.close()
                self._loop = self._thread = None

    async def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``await fn(*args)`` on the client's loop and return its result (or raise its exception).

        Cancelling the caller cancels the asyncio task and re-raises the caller's cancellation.
        """
        if not self.hosted:
            return await fn(*args)
        loop = self.loop
        done = anyio.Event()
        token = self._token
        tasks: list[asyncio.Task[T]] = []

        def finished(task: asyncio.Task[T]) -> None:  # on the client loop
            if not task.cancelled():
                task.exception()  # retrieved here, so an abandoned task never logs "never retrieved"
            with contextlib.suppress(anyio.RunFinishedError):
                anyio.from_thread.run_sync(done.set, token=token)

        def start() -> None:  # on the client loop
            task = loop.create_task(fn(*args))
            task.add_done_callback(finished)
            tasks.append(task)

        loop.call_soon_threadsafe(start)
        try:
            await done.wait()
        except BaseException:
            loop.call_soon_threadsafe(lambda: tasks and tasks[0].cancel())
            raise
        (task,) = tasks
        if task.cancelled():
            raise RuntimeError(f"{self.name}: the client loop cancelled {fn!r}")
        return task.result()


async def _cancel_remaining_tasks() -> None:
    """Cancel and await every other task on the loop, so leaving the host leaves nothing running."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()
