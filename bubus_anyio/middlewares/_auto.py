"""The auto-* middlewares: turn handler errors, handler results and handler (un)registration into events.

They exist so that what normally stays on a result row can travel where only events go (over a bridge, to
another bus, into a write-ahead log). Each emits on the bus whose hook fired, from the bus's hook task, so
the new event is queued like any other (``emit`` never blocks) and processed after the one that caused it.
The generated events name their source as their parent (``event_parent_id``).

``{T}ErrorEvent`` and ``{T}ResultEvent`` classes are made once per source type ``T`` and registered like
user classes, so ``BaseEvent.from_json`` rebuilds them in this process; events whose own type already ends
with ``ErrorEvent`` or ``ResultEvent`` never produce more (no feedback loop).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from bubus_anyio import BaseEvent, EventBus, EventHandler, EventResult

from ._protocol import EventBusMiddleware

__all__ = [
    "AutoErrorEvent",
    "AutoErrorEventMiddleware",
    "AutoHandlerChangeEventMiddleware",
    "AutoResultEvent",
    "AutoReturnEventMiddleware",
    "BusHandlerRegisteredEvent",
    "BusHandlerUnregisteredEvent",
]

_GUARDED_SUFFIXES = ("ErrorEvent", "ResultEvent")


class AutoErrorEvent(BaseEvent[None]):
    """Base of every ``{T}ErrorEvent``: ``error`` is the exception (on the wire ``{type, message}``),
    ``error_type`` its class name, ``source_event_type`` the ``T`` that failed."""

    error: Any = None
    error_type: str = ""
    source_event_type: str = ""
    handler_name: str = ""


class AutoResultEvent(BaseEvent[None]):
    """Base of every ``{T}ResultEvent``: ``data`` is what the handler returned."""

    data: Any = None
    source_event_type: str = ""
    handler_name: str = ""


class BusHandlerRegisteredEvent(BaseEvent[None]):
    """A handler was registered with ``on()``; ``handler`` is its wire snapshot (no callable)."""

    handler: dict[str, Any]


class BusHandlerUnregisteredEvent(BaseEvent[None]):
    """A handler was removed with ``off()``; ``handler`` is its wire snapshot (no callable)."""

    handler: dict[str, Any]


_classes: dict[str, type[BaseEvent[None]]] = {}
_classes_lock = threading.Lock()


def _derived(base: type[BaseEvent[None]], event_type: str) -> type[BaseEvent[None]]:
    """The class for ``event_type`` (made on first use, then reused: a class is registered once)."""
    with _classes_lock:
        cls = _classes.get(event_type)
        if cls is None:
            namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": event_type}
            cls = _classes[event_type] = type(event_type, (base,), namespace)
        return cls


def _guarded(event: BaseEvent[Any]) -> bool:
    return event.event_type.endswith(_GUARDED_SUFFIXES)


def handler_snapshot(handler: EventHandler) -> dict[str, Any]:
    """A handler's serialisable fields, as in a bus snapshot."""
    return {
        "id": handler.id,
        "handler_name": handler.handler_name,
        "handler_file_path": handler.handler_file_path,
        "handler_timeout": handler.handler_timeout,
        "handler_slow_timeout": handler.handler_slow_timeout,
        "handler_registered_at": handler.handler_registered_at,
        "event_pattern": handler.event_pattern,
        "eventbus_name": handler.eventbus_name,
        "eventbus_id": handler.eventbus_id,
    }


class AutoErrorEventMiddleware(EventBusMiddleware):
    """When a handler's row completes with an error, emit ``{T}ErrorEvent(error=..., error_type=...)``."""

    def on_event_result_change(
        self, bus: EventBus, event: BaseEvent[Any], result: EventResult[Any], status: str
    ) -> None:
        if status != "completed" or result.error is None or _guarded(event) or not bus.is_running:
            return
        cls: Any = _derived(AutoErrorEvent, f"{event.event_type}ErrorEvent")
        bus.emit(
            cls(
                error=result.error,
                error_type=type(result.error).__name__,
                source_event_type=event.event_type,
                handler_name=result.handler_name,
                event_parent_id=event.event_id,
            )
        )


class AutoReturnEventMiddleware(EventBusMiddleware):
    """When a handler returns a value that is neither None nor an event, emit ``{T}ResultEvent(data=...)``."""

    def on_event_result_change(
        self, bus: EventBus, event: BaseEvent[Any], result: EventResult[Any], status: str
    ) -> None:
        if status != "completed" or result.error is not None or _guarded(event) or not bus.is_running:
            return
        value = result.result
        if value is None or isinstance(value, BaseEvent):
            return
        cls: Any = _derived(AutoResultEvent, f"{event.event_type}ResultEvent")
        bus.emit(
            cls(
                data=value,
                source_event_type=event.event_type,
                handler_name=result.handler_name,
                event_parent_id=event.event_id,
            )
        )


class AutoHandlerChangeEventMiddleware(EventBusMiddleware):
    """Emit ``BusHandlerRegisteredEvent`` / ``BusHandlerUnregisteredEvent`` on ``on()`` / ``off()``.

    Registrations made before the bus runs are announced once it starts (the hook queue keeps them)."""

    kinds: ClassVar[dict[bool, type[BaseEvent[None]]]] = {
        True: BusHandlerRegisteredEvent,
        False: BusHandlerUnregisteredEvent,
    }

    def on_bus_handlers_change(self, bus: EventBus, handler: EventHandler, registered: bool) -> None:
        if not bus.is_running:
            return
        cls: Any = self.kinds[registered]
        bus.emit(cls(handler=handler_snapshot(handler)))
