"""Middleware hook delivery: ordered, off the hot path, owned by the bus's task group.

Middlewares are objects with any of three optional hooks, each sync or async (told apart once per
middleware and hook, when delivery starts, never per call)::

    async def on_event_change(bus, event, status): ...            # 'pending' | 'started' | 'completed'
    async def on_event_result_change(bus, event, result, status): ...
    def on_bus_handlers_change(bus, handler, registered): ...      # a plain def works too

The engine records changes synchronously (it must, under level cancellation) and queues one notification
per change (a deque append); a single task per bus calls the hooks in that order. So hooks see every
transition in the order it happened, a slow hook delays other hooks but never the bus, and a bus without
middlewares pays one attribute check per transition. ``wait_until_idle()`` waits for queued notifications.
A hook that raises is logged with its traceback and does not stop later hooks.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus

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
    """The ordered queue of hook calls for one bus.

    A plain deque plus a wake-up event (rather than a memory stream): queuing is an append, and the
    delivery task checkpoints once per batch of sync hooks instead of once per notification, so a bus
    with only sync middlewares pays no task switch per transition.
    """

    __slots__ = ("_bus", "_queue", "_wake", "pending")

    #: notifications delivered between two forced checkpoints (hooks that never suspend, sync or async,
    #: must not let a long backlog monopolise the loop)
    BATCH = 256

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        # Notifications made before the bus runs (handlers registered early) wait here too.
        self._queue: deque[Notification] = deque()
        self._wake: anyio.Event | None = None
        #: notifications queued or being delivered (part of the bus's idle condition)
        self.pending = 0

    def notify(self, hook: str, *args: Any) -> None:
        """Queue ``hook(bus, *args)`` on every middleware that has it (synchronous, never blocks)."""
        self.pending += 1
        self._queue.append((hook, args))
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    async def deliver_forever(self) -> None:
        """Run in the bus's task group: call each queued notification's hooks in order."""
        bus = self._bus
        queue = self._queue
        table = _resolve_hooks(bus.middlewares)
        since_checkpoint = 0
        while True:
            if not queue:
                since_checkpoint = 0
                wake = self._wake = anyio.Event()
                await wake.wait()
                continue
            hook, args = queue.popleft()
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
                if not self.pending:  # only then can the bus have become idle
                    bus._on_hooks_delivered()
            since_checkpoint += 1
            if since_checkpoint >= self.BATCH:
                since_checkpoint = 0
                await anyio.lowlevel.checkpoint()

    def close(self) -> None:
        """Drop what was not delivered (the bus stopped)."""
        self._queue.clear()
        self._wake = None
        self.pending = 0
