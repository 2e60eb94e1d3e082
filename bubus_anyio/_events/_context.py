"""The handler frame: what the code running inside a handler can learn about where it runs.

One context variable holds one frame per handler call, never modified once made (set in that call's
private copy of the emit-time context), so reading it is a single ``ContextVar.get`` and tasks a handler
spawns inherit it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus
    from .._engine._slots import SerialSlot
    from ._event import BaseEvent
    from ._handlers import EventHandler
    from ._results import EventResult

__all__ = [
    "HandlerFrame",
    "current_frame",
    "get_current_bus",
    "get_current_event",
    "get_current_handler",
    "in_handler",
]


@attrs.define(slots=True, eq=False)
class HandlerFrame:
    """Where a handler call runs: its event, handler, bus and row, plus the event limiters that the chain of
    processing above it already holds (a queue-jump must not try to take those again).

    Never modified after it is made. (Not an ``attrs.frozen`` class only because one is made per handler
    call and a frozen ``__init__`` costs three times as much.)"""

    event: BaseEvent[Any]
    handler: EventHandler
    bus: EventBus
    result: EventResult[Any]
    held: frozenset[SerialSlot]
    #: The processing (``_runtime.EventRun``) this call belongs to.
    run: Any


current_frame: ContextVar[HandlerFrame | None] = ContextVar("bubus_anyio_handler_frame", default=None)


def get_current_event() -> BaseEvent[Any] | None:
    """The event whose handler is running in this context (including tasks that handler spawned)."""
    frame = current_frame.get()
    return None if frame is None else frame.event


def get_current_handler() -> EventHandler | None:
    """The :class:`EventHandler` running in this context, or ``None`` outside handlers."""
    frame = current_frame.get()
    return None if frame is None else frame.handler


def get_current_bus() -> EventBus | None:
    """The bus whose handler is running in this context, or ``None`` outside handlers."""
    frame = current_frame.get()
    return None if frame is None else frame.bus


def in_handler() -> bool:
    """True inside a handler call, and inside tasks a handler spawned."""
    return current_frame.get() is not None
