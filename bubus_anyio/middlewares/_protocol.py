"""The middleware protocol, its base class, and what the built-ins share (ordered off-loop I/O, errors).

A middleware is any object with some of these hooks, each a plain ``def`` or an ``async def``::

    on_event_change(bus, event, status)                  # status: 'pending' | 'started' | 'completed'
    on_event_result_change(bus, event, result, status)   # result: the EventResult row
    on_bus_handlers_change(bus, handler, registered)     # registered: True on on(), False on off()

What a middleware may rely on (the bus guarantees it): hooks of one bus are called one at a time, in the
order the transitions happened, from one task the bus owns, so a slow hook delays later hooks but never
the bus; an exception from a hook is logged on ``bubus_anyio.middleware`` and never reaches the bus or the
other middlewares; a clean exit of ``async with bus`` (and ``wait_until_idle()``) waits until every hook
queued so far has returned. A hook that must not block the event loop (file or database I/O) hands its
blocking part to a worker thread, as :class:`OrderedWorker` does for the built-ins.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

from bubus_anyio import EventBusError

__all__ = ["BatchingWriter", "EventBusMiddleware", "MiddlewareWriteError", "OrderedWorker"]

logger = logging.getLogger("bubus_anyio.middlewares")

R = TypeVar("R")


class EventBusMiddleware:
    """Optional base class for middlewares (upstream's name). It defines *no* hooks on purpose: the bus
    calls only the hooks a subclass defines, so a subclass that watches only events pays nothing for result
    rows. Subclasses that hold a resource override :meth:`close`; every middleware is a context manager
    that calls it, and ``close()`` may be called more than once."""

    def close(self) -> None:
        """Release files and connections. Idempotent; the default does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class MiddlewareWriteError(EventBusError, OSError):
    """A middleware could not write what it observed (disk full, file locked, database busy).

    It is logged at ERROR on ``bubus_anyio.middlewares`` with the cause chained; the bus keeps processing.
    ``middleware`` is the middleware's class name, ``target`` the path or database it writes to.
    """

    def __init__(self, middleware: str, target: str, what: str, cause: BaseException) -> None:
        super().__init__(f"{middleware}: could not write {what} to {target}: {type(cause).__name__}: {cause}")
        self.middleware = middleware
        self.target = target
        self.cause = cause


class OrderedWorker:
    """Runs blocking calls in worker threads one at a time, in call order, for one middleware.

    A ``CapacityLimiter(1)`` orders the calls across every bus that shares the middleware (its limiter is
    made lazily, on the event loop that first uses it); a thread lock guards the resource from a call that
    outlived a cancellation. A call that was started is always finished (the worker thread is never
    abandoned), so a cancelled bus still writes the line it was writing.
    """

    def __init__(self) -> None:
        self._limiter: anyio.CapacityLimiter | None = None
        self.lock = threading.Lock()

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(self._locked, fn, args, limiter=self._limiter)

    def _locked(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        with self.lock:
            return fn(*args)


def check_number(name: str, value: object, *, minimum: float, integer: bool = False) -> None:
    """Reject an option that is not a number (an int when ``integer``) >= ``minimum``, naming it and its value."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        kind = "an int" if integer else "a number"
        raise ValueError(f"{name} must be {kind} >= {minimum:g}, got {value!r}")


def report_write_error(error: MiddlewareWriteError) -> None:
    """Log ``error`` (with its cause) where operators look for it; never raises."""
    logger.error("%s", error, exc_info=error)


class BatchingWriter:
    """Writer-task mode for a middleware that writes what its hooks queue (the WAL, the SQLite mirror).

    Outside ``async with middleware`` the hooks write themselves (each hook returns once its write is
    done). Inside it, a writer task owned by the middleware runs :meth:`flush` whenever something is
    queued, so everything that accumulated during one write goes out in the next: far fewer worker-thread
    calls, fsyncs and transactions in a burst, at the price of writes trailing the hooks by one round.
    Leaving ``async with`` writes what is still queued. Subclasses provide :meth:`_has_queued` and
    :meth:`flush`, and call :meth:`_kick` after queuing while :attr:`writer_running`.
    """

    _writer_tg: anyio.abc.TaskGroup | None = None
    _wake: anyio.Event | None = None
    _stopping: bool = False

    @property
    def writer_running(self) -> bool:
        return self._writer_tg is not None

    def _has_queued(self) -> bool:
        raise NotImplementedError

    async def flush(self) -> bool:
        """Write what is queued; False when the write failed (logged)."""
        raise NotImplementedError

    def _kick(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()

    async def __aenter__(self) -> Self:
        if self._writer_tg is not None:
            raise RuntimeError(f"{type(self).__name__} is already running its writer")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._stopping = False
        self._writer_tg = tg
        tg.start_soon(self._write_forever)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg = self._writer_tg
        assert tg is not None
        self._stopping = True
        self._kick()
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        finally:
            self._writer_tg = None

    async def _write_forever(self) -> None:
        while True:
            if self._has_queued():
                if await self.flush():
                    continue
                if self._stopping:
                    return  # the last attempt is close()'s
            elif self._stopping:
                return
            # nothing queued, or a failed write put it back: wait for news instead of spinning
            wake = self._wake = anyio.Event()
            await wake.wait()
