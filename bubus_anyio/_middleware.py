"""Middleware hook delivery: ordered, off the hot path, owned by the bus's task group.

Middlewares are objects with any of three optional hooks, each sync or async (told apart once per
middleware and hook, when delivery starts, never per call)::

    async def on_event_change(bus, event, status): ...            # 'pending' | 'started' | 'completed'
    async def on_event_result_change(bus, event, result, status): ...
    def on_bus_handlers_change(bus, handler, registered): ...      # a plain def works too

The engine records changes synchronously (it must, under level cancellation) and queues one notification
per change into a memory stream; a single task per bus awaits the hooks in that order. So hooks see every
transition in the order it happened, a slow hook delays other hooks but never the bus, and a bus without
middlewares pays one attribute check per transition. ``wait_until_idle()`` waits for queued notifications.
A hook that raises is logged with its traceback and does not stop later hooks.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ["HookQueue"]

logger = logging.getLogger("bubus_anyio.middleware")

Notification = tuple[str, tuple[Any, ...]]
HOOK_NAMES = ("on_event_change", "on_event_result_change", "on_bus_handlers_change")


def _resolve_hooks(middlewares: list[Any]) -> dict[str, list[tuple[Any, Any, bool]]]:
    """Per hook name: ``(middleware, bound method, is_async)`` for each middleware that has it, in order."""
    table: dict[str, list[tuple[Any, Any, bool]]] = {name: [] for name in HOOK_NAMES}
    for middleware in middlewares:
        for name in HOOK_NAMES:
            method = getattr(middleware, name, None)
            if method is not None:
                is_async = inspect.iscoroutinefunction(method) or inspect.iscoroutinefunction(
                    getattr(method, "__call__", None)  # noqa: B004 (an object with an async __call__)
                )
                table[name].append((middleware, method, is_async))
    return table


class HookQueue:
    """The ordered queue of hook calls for one bus."""

    __slots__ = ("_backlog", "_bus", "_receive", "_send", "pending")

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        # Like the bus's own queue, the stream exists only while the bus runs; earlier notifications
        # (handlers registered before the bus starts) wait in the backlog.
        self._send: MemoryObjectSendStream[Notification] | None = None
        self._receive: MemoryObjectReceiveStream[Notification] | None = None
        self._backlog: deque[Notification] = deque()
        #: notifications queued or being delivered (part of the bus's idle condition)
        self.pending = 0

    def notify(self, hook: str, *args: Any) -> None:
        """Queue ``hook(bus, *args)`` on every middleware that has it (synchronous, never blocks)."""
        self.pending += 1
        if self._send is not None:
            self._send.send_nowait((hook, args))
        else:
            self._backlog.append((hook, args))

    async def deliver_forever(self) -> None:
        """Run in the bus's task group: await each queued notification's hooks in order."""
        bus = self._bus
        send, receive = anyio.create_memory_object_stream[Notification](math.inf)
        self._send, self._receive = send, receive
        while self._backlog:
            send.send_nowait(self._backlog.popleft())
        table = _resolve_hooks(bus.middlewares)
        async for hook, args in receive:
            try:
                for middleware, method, is_async in table[hook]:
                    try:
                        if is_async:
                            await method(bus, *args)
                        else:
                            result = method(bus, *args)
                            if inspect.isawaitable(result):  # a plain def that returned a coroutine
                                await result
                    except Exception:
                        logger.exception("%s: middleware %r failed in %s", bus.label, middleware, hook)
            finally:
                self.pending -= 1
                bus._on_hooks_delivered()

    def close(self) -> None:
        """Drop what was not delivered (the bus stopped) and release the stream."""
        if self._send is not None:
            self._send.close()
        if self._receive is not None:
            self._receive.close()
        self._send = self._receive = None
        self._backlog.clear()
        self.pending = 0
