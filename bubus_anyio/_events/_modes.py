"""Status and mode vocabularies, shared by events, results and the bus.

Each vocabulary exists twice on purpose: as a ``Literal`` alias (what annotations use, so a type checker
accepts plain strings such as ``'parallel'``) and as a :class:`enum.StrEnum` (what upstream bubus exports;
its members *are* those strings, so either spelling may be passed and compared).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

__all__ = [
    "EventConcurrency",
    "EventConcurrencyMode",
    "EventHandlerCompletion",
    "EventHandlerCompletionMode",
    "EventHandlerConcurrency",
    "EventHandlerConcurrencyMode",
    "EventResultStatus",
    "EventStatus",
    "EventStatusName",
    "ResultStatusName",
]

EventConcurrency = Literal["global-serial", "bus-serial", "parallel"]
EventHandlerConcurrency = Literal["serial", "parallel"]
EventHandlerCompletion = Literal["all", "first"]
EventStatusName = Literal["pending", "started", "completed"]
ResultStatusName = Literal["pending", "started", "completed", "error"]


class EventStatus(StrEnum):
    """An event's lifecycle. There is no ``error`` status for events: errors live on result rows."""

    PENDING = "pending"
    STARTED = "started"
    COMPLETED = "completed"


class EventResultStatus(StrEnum):
    """One handler row's lifecycle."""

    PENDING = "pending"
    STARTED = "started"
    COMPLETED = "completed"
    ERROR = "error"


class EventConcurrencyMode(StrEnum):
    """How events overlap: one at a time per event loop, one at a time per bus, or freely."""

    GLOBAL_SERIAL = "global-serial"
    BUS_SERIAL = "bus-serial"
    PARALLEL = "parallel"


class EventHandlerConcurrencyMode(StrEnum):
    """How the handlers of one event overlap."""

    SERIAL = "serial"
    PARALLEL = "parallel"


class EventHandlerCompletionMode(StrEnum):
    """When an event's handlers are done: after all of them, or at the first non-None result."""

    ALL = "all"
    FIRST = "first"


EVENT_CONCURRENCY_VALUES: frozenset[str] = frozenset(m.value for m in EventConcurrencyMode)
HANDLER_CONCURRENCY_VALUES: frozenset[str] = frozenset(m.value for m in EventHandlerConcurrencyMode)
HANDLER_COMPLETION_VALUES: frozenset[str] = frozenset(m.value for m in EventHandlerCompletionMode)
