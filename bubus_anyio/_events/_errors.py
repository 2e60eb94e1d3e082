"""The error taxonomy.

Every error here is an :class:`Exception`, never a :class:`BaseException`: a handler row that says
"cancelled" or "aborted" is a *record* of what happened, not a live cancellation, so it must never be
confused with the backend's own cancellation exception (``asyncio.CancelledError`` / ``trio.Cancelled``),
which the bus always lets propagate.

Errors carry the objects they are about (``event``, ``handler``, ``timeout``) so callers can react without
parsing messages; messages still name the event, the handler and the scope that expired, for logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._event import BaseEvent
    from ._handlers import EventHandler
    from ._results import EventResult

__all__ = [
    "BusNotRunningError",
    "EventBusError",
    "EventHandlerAbortedError",
    "EventHandlerCancelledError",
    "EventHandlerError",
    "EventHandlerResultSchemaError",
    "EventHandlerTimeoutError",
    "EventValidationError",
    "HistoryFullError",
    "QueueFullError",
]


class EventBusError(Exception):
    """Base class of every error this library raises or records on its own account."""


class EventValidationError(EventBusError, ValueError):
    """An event's payload, metadata or wire form is invalid.

    :ivar field: the offending field's name (a dotted path for nested values), or ``None``
    :ivar value: the offending value
    :ivar expected: a readable description of what was expected, or ``None``
    """

    def __init__(
        self, message: str, *, field: str | None = None, value: Any = None, expected: str | None = None
    ):
        super().__init__(message)
        self.field = field
        self.value = value
        self.expected = expected


class EventHandlerError(EventBusError):
    """A handler did not produce a result; recorded on its :class:`EventResult` row.

    :ivar event: the event the handler ran (or would have run) for
    :ivar handler: the :class:`EventHandler` concerned
    :ivar event_result: the row this error was recorded on
    :ivar timeout: the limit (seconds) that expired, where one did
    """

    def __init__(
        self,
        message: str,
        *,
        event: BaseEvent[Any] | None = None,
        handler: EventHandler | None = None,
        event_result: EventResult[Any] | None = None,
        timeout: float | None = None,
    ):
        super().__init__(message)
        self.event = event
        self.handler = handler
        self.event_result = event_result
        self.timeout = timeout


class EventHandlerTimeoutError(EventHandlerError, TimeoutError):
    """The handler ran past its own effective timeout (or raised a plain :class:`TimeoutError`)."""


class EventHandlerAbortedError(EventHandlerError):
    """The handler was running and something outside it stopped it: the event's timeout, a parent's
    timeout, a ``first`` winner, or the bus shutting down."""


class EventHandlerCancelledError(EventHandlerError):
    """The handler never started: its event was cancelled (timeout, parent timeout, ``first`` resolved, bus
    stopped) before its turn came."""


class EventHandlerResultSchemaError(EventHandlerError, ValueError):
    """The handler returned a value its event's result type does not accept (strict, no coercion).

    :ivar raw_value: the value the handler returned
    :ivar expected_schema: the declared result type (a Python type or a JSON Schema dict)
    """

    def __init__(self, message: str, *, raw_value: Any = None, expected_schema: Any = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.raw_value = raw_value
        self.expected_schema = expected_schema


class HistoryFullError(EventBusError):
    """``emit`` was refused: ``max_history_drop=False`` and the history is full of unfinished events."""


class QueueFullError(EventBusError):
    """``emit`` was refused: ``max_pending`` events are already waiting on the bus (``await bus.send()``
    waits for room instead)."""


class BusNotRunningError(EventBusError, RuntimeError):
    """The operation needs a running bus: awaiting an event none of whose buses runs, or emitting to a bus
    that has exited."""
