"""The one backend-specific spot: telling a real cancellation from a stray ``CancelledError``; how the
runloop waits when its queue is empty (a cheap yield or two first, then a one-waiter parking spot); a
lighter completion signal for ``await event``; the running anyio backend class, which a bus looks up
once; how to arm a deadline that has already passed without anyio formatting the task's repr; and
whether new tasks start in spawn order (not on trio).

On trio a ``Cancelled`` exception only ever comes from a cancel scope. On asyncio a ``CancelledError`` can
also escape from awaiting *another* task or future that someone cancelled; that is the handler's own error,
not a cancellation of the bus, and treating it as one would tear the bus down. Python 3.11's
``Task.cancelling()`` says whether the current task has a cancellation request pending.
"""

from __future__ import annotations

import asyncio  # backend-specific on purpose: see the module docstring
from collections.abc import Awaitable, Callable
from typing import Any

from anyio._core._eventloop import get_async_backend  # anyio's own dispatch, looked up once per bus
from anyio.abc import AsyncBackend

__all__ = [
    "Parker",
    "Signal",
    "cheap_yield_for",
    "is_cancelling",
    "make_parker",
    "make_signal",
    "running_backend",
    "set_deadline_for",
    "tasks_start_in_spawn_order",
]


def running_backend() -> type[AsyncBackend]:
    """The anyio backend class of the running event loop.

    ``CancelScope()``, ``anyio.current_time()`` and ``anyio.lowlevel.checkpoint()`` each look the backend up
    (through sniffio) on every call; a bus looks it up once when it starts and calls the backend's
    ``create_cancel_scope``, ``current_time`` and ``checkpoint`` directly on its hot path, which is the
    same code anyio's public functions end in."""
    return get_async_backend()


def is_cancelling(exc: BaseException) -> bool:
    """True when ``exc`` (the backend's cancellation exception) means the current task is being cancelled."""
    if not isinstance(exc, asyncio.CancelledError):
        return True  # trio's Cancelled always comes from a scope
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _set_deadline(scope: Any, deadline: float) -> None:
    scope.deadline = deadline


def _set_deadline_asyncio(scope: Any, deadline: float) -> None:
    """Set ``deadline`` on an entered scope of the current (suspending) task.

    A deadline already past is set from a loop callback instead: anyio's asyncio ``CancelScope.cancel()``
    formats ``repr(current_task())`` into its reason when called inside a task (about 40k instructions: the
    task's coroutine and callbacks are rendered), and not from a callback. The callback runs before the
    task's next step (the task is running now, so nothing of it is scheduled yet), which is also when
    anyio would deliver the cancellation when set from the task: the handler is interrupted at the same
    checkpoint. Setting a deadline on a scope that has exited meanwhile does nothing."""
    loop = asyncio.get_running_loop()
    if deadline <= loop.time():
        loop.call_soon(_set_deadline, scope, deadline)
    else:
        scope.deadline = deadline


def set_deadline_for(cancelled_exc_class: type[BaseException]) -> Callable[[Any, float], None]:
    """How to arm a scope's deadline on the running backend (told apart by its cancellation class)."""
    if issubclass(cancelled_exc_class, asyncio.CancelledError):
        return _set_deadline_asyncio
    return _set_deadline


def cheap_yield_for(cancelled_exc_class: type[BaseException]) -> tuple[Callable[[], Awaitable[None]], int]:
    """How the runloop yields when its queue runs empty, before parking, and at most how many times in a
    row: the emitter of an event awaited one at a time emits the next one while the runloop yields, which
    saves a park and a wake-up per event.

    asyncio runs ready callbacks in FIFO order, so the awaiting task runs before the runloop's next step:
    one plain yield. trio runs each scheduling batch in random order, so after one yield the emitter has
    run only half the time, and after two always; its yield is ``cancel_shielded_checkpoint`` (a schedule
    point without the cancel check; the runloop parks, a cancel point, right after). Measured with
    ``benchmarks/`` (emit+await latency): trio 199k -> 192k instructions per event."""
    if issubclass(cancelled_exc_class, asyncio.CancelledError):
        return _asyncio_yield, 1
    import trio  # backend-specific on purpose: only imported when running on trio

    return trio.lowlevel.cancel_shielded_checkpoint, 2


async def _asyncio_yield() -> None:
    await asyncio.sleep(0)


class Parker:
    """Where one task (a bus's runloop) sleeps until another wakes it: :meth:`park` returns after
    :meth:`wake`, or raises the backend's cancellation. A lighter ``anyio.Event`` for exactly one waiter
    (one future per wait on asyncio, nothing on trio), which matters because a runloop parks and is woken
    once per event when events arrive one at a time.

    :meth:`wake` while nobody is parked is a no-op: the runloop looks at its queue right before parking,
    and nothing else runs between that look and the park.
    """

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        #: the parked trio task, or the future the parked asyncio task awaits; None while nobody is parked
        #: (a plain attribute rather than a property, because every emit looks at it)
        self.waiter: Any = None

    @property
    def parked(self) -> bool:
        return self.waiter is not None

    async def park(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        raise NotImplementedError


class _AsyncioParker(Parker):
    __slots__ = ()

    async def park(self) -> None:
        future = self.waiter = asyncio.get_running_loop().create_future()
        try:
            await future
        finally:
            self.waiter = None

    def wake(self) -> None:
        future = self.waiter
        if future is not None:
            self.waiter = None
            if not future.done():
                future.set_result(None)


class _TrioParker(Parker):
    __slots__ = ("_abort", "_current_task", "_reschedule", "_wait")

    def __init__(self) -> None:
        super().__init__()
        import trio  # backend-specific on purpose: only imported when running on trio

        lowlevel = trio.lowlevel
        self._current_task = lowlevel.current_task
        self._wait = lowlevel.wait_task_rescheduled
        self._reschedule = lowlevel.reschedule
        succeeded = lowlevel.Abort.SUCCEEDED

        def abort(_: Any) -> Any:
            self.waiter = None
            return succeeded

        self._abort = abort

    async def park(self) -> None:
        self.waiter = self._current_task()
        await self._wait(self._abort)

    def wake(self) -> None:
        task = self.waiter
        if task is not None:
            self.waiter = None
            self._reschedule(task)


def make_parker(cancelled_exc_class: type[BaseException]) -> Parker:
    """The parker for the running backend (told apart by its cancellation exception class)."""
    if issubclass(cancelled_exc_class, asyncio.CancelledError):
        return _AsyncioParker()
    return _TrioParker()


class Signal:
    """A one-shot flag many tasks can wait for (an event's completion): a lighter ``anyio.Event`` made
    once per awaited event, which on trio saves the wrapper and its parking lot. :meth:`wait` returns at
    once (after a checkpoint) when the flag is already set."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[Any] = []

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        raise NotImplementedError

    async def wait(self) -> None:
        raise NotImplementedError


class _AsyncioSignal(Signal):
    __slots__ = ()

    def set(self) -> None:
        self._flag = True
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    async def wait(self) -> None:
        if self._flag:
            await asyncio.sleep(0)  # still a checkpoint, as anyio.Event.wait is
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except BaseException:  # cancelled while waiting: leave the list
            if future in self._waiters:
                self._waiters.remove(future)
            raise


class _TrioSignal(Signal):
    """Made only by :func:`make_signal`, which loads ``trio.lowlevel`` first (read here as a global)."""

    __slots__ = ()

    def set(self) -> None:
        self._flag = True
        waiters, self._waiters = self._waiters, []
        if waiters:
            reschedule = _trio_lowlevel_module.reschedule
            for task in waiters:
                reschedule(task)

    async def wait(self) -> None:
        lowlevel = _trio_lowlevel_module
        if self._flag:
            await lowlevel.checkpoint()
            return
        task = lowlevel.current_task()
        self._waiters.append(task)
        succeeded = lowlevel.Abort.SUCCEEDED

        def abort(_: Any) -> Any:
            self._waiters.remove(task)
            return succeeded

        await lowlevel.wait_task_rescheduled(abort)


_trio_lowlevel_module: Any = None


def _trio_lowlevel() -> Any:
    global _trio_lowlevel_module
    if _trio_lowlevel_module is None:
        import trio  # backend-specific on purpose: only imported when running on trio

        _trio_lowlevel_module = trio.lowlevel
    return _trio_lowlevel_module


def make_signal(cancelled_exc_class: type[BaseException]) -> Signal:
    """The signal for the running backend (told apart by its cancellation exception class)."""
    if issubclass(cancelled_exc_class, asyncio.CancelledError):
        return _AsyncioSignal()
    if _trio_lowlevel_module is None:
        _trio_lowlevel()
    return _TrioSignal()


def tasks_start_in_spawn_order(cancelled_exc_class: type[BaseException]) -> bool:
    """Whether tasks spawned one after another begin in spawn order on the running backend.

    asyncio starts new tasks in creation order. trio runs each scheduling batch in a random order, so two
    parallel events emitted A then B would start B first half the time; there, the bus spawns
    interchangeable tasks that each take the oldest waiting job from a FIFO when they first run
    (``_runloop``): whichever task trio runs first begins the first job, with no extra scheduling."""
    return issubclass(cancelled_exc_class, asyncio.CancelledError)
