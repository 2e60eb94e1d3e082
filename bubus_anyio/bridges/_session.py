"""Bridges whose transport needs a structured lifetime around the bridge (a client's task group, a thread).

Server clients (coredis' connection pool, a hosted asyncio loop) open task groups or threads that must be
entered before the bridge's own task group and left after it, in the same task. :class:`SessionBridge`
does exactly that: entering it opens ``transport.session()`` first and then the bridge; leaving it leaves
the bridge (which closes the transport) and then the session, so no client task or thread outlives the
``async with``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._bridge import EventBridge
from ._transport import Transport

__all__ = ["SessionBridge", "SessionTransport"]


class SessionTransport(Transport, Protocol):
    """A transport with a lifetime: ``session()`` is entered around ``connect()`` ... ``aclose()``."""

    def session(self) -> AbstractAsyncContextManager[None]: ...


class SessionBridge(EventBridge):
    """An :class:`EventBridge` over a :class:`SessionTransport` (see the module docstring).

    The session is held by a task of its own (in a task group around the bridge's), so the client's cancel
    scopes never interleave with the bridge's in the caller's task.
    """

    def __init__(self, transport: SessionTransport, **options: Any) -> None:
        super().__init__(transport, **options)
        self._session_transport = transport
        self._session_tg: TaskGroup | None = None
        self._session_done: anyio.Event | None = None

    async def _hold_session(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        done = self._session_done = anyio.Event()
        async with self._session_transport.session():
            task_status.started()
            await done.wait()

    async def __aenter__(self) -> Self:
        tg = self._session_tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(self._hold_session)
            await super().__aenter__()
        except BaseException as exc:
            if self._session_done is not None:
                self._session_done.set()
            await _exit_reraising(tg, exc)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg, done = self._session_tg, self._session_done
        assert tg is not None and done is not None
        try:
            suppress = await super().__aexit__(exc_type, exc, tb)
        except BaseException as error:
            done.set()
            await _exit_reraising(tg, error)
            raise
        done.set()
        await tg.__aexit__(None, None, None)
        return suppress


async def _exit_reraising(tg: TaskGroup, exc: BaseException) -> None:
    """Leave ``tg`` while ``exc`` propagates; a group wrapping only ``exc`` is unwrapped so callers see it."""
    try:
        await tg.__aexit__(type(exc), exc, exc.__traceback__)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and group.exceptions[0] is exc:
            return
        raise
