"""Which handlers an event gets: a bus's handler registry, indexed by pattern and resolved per event type.

Registration and removal are O(1) in the number of event types: they only drop the resolved entries they
affect, and :meth:`HandlerRegistry.for_event` rebuilds one lazily (exact-type handlers, then ``'*'``
ones, each in registration order). Once resolved, finding an event's handlers is one dict lookup, which
the engine does inline on its hot path (``resolved`` and ``forwarders`` are read directly).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._events._event import BaseEvent
from .._events._handlers import EventHandler

__all__ = ["HandlerRegistry"]

#: A duplicate-name check scans at most this many handlers of one pattern (registration stays O(1)).
_NAME_CHECK_LIMIT = 256


class HandlerRegistry:
    """The handlers of one bus."""

    __slots__ = ("by_id", "by_pattern", "forwarders", "resolved")

    def __init__(self) -> None:
        #: handler id -> entry (``EventBus.handlers`` is this dict)
        self.by_id: dict[str, EventHandler] = {}
        #: pattern ('*' included) -> entries in registration order
        self.by_pattern: dict[str, list[EventHandler]] = {}
        #: event type -> exact entries then wildcard ones; dropped on change, rebuilt by :meth:`for_event`
        self.resolved: dict[str, tuple[EventHandler, ...]] = {}
        #: how many entries forward to another bus (``bus.emit`` registered as a handler)
        self.forwarders = 0

    def add(self, entry: EventHandler, on_name_clash: Callable[[EventHandler], None]) -> None:
        """Register ``entry`` after the ones already there for its pattern. If one of those has the same
        name, ``on_name_clash(entry)`` runs first, before anything changes: when it raises (a warning
        turned into an error), nothing is registered."""
        key = entry.event_pattern
        existing = self.by_pattern.get(key)
        if existing is None:
            self.by_pattern[key] = [entry]
        else:
            if len(existing) <= _NAME_CHECK_LIMIT and any(
                h.handler_name == entry.handler_name for h in existing
            ):
                on_name_clash(entry)
            existing.append(entry)
        self.by_id[entry.id] = entry
        # written out rather than a call to _invalidate: registration is on the one-off-handler path
        if key == "*":
            self.resolved.clear()
        else:
            self.resolved.pop(key, None)
        if entry.forwards_to is not None:
            self.forwarders += 1

    def remove(self, key: str, which: Callable[[EventHandler], bool]) -> list[EventHandler]:
        """Remove the entries of pattern ``key`` for which ``which(entry)`` is true; return them in order."""
        keep: list[EventHandler] = []
        removed: list[EventHandler] = []
        for entry in self.by_pattern.get(key, ()):
            if not which(entry):
                keep.append(entry)
                continue
            removed.append(entry)
            self.by_id.pop(entry.id, None)
            if entry.forwards_to is not None:
                self.forwarders -= 1
        if keep:
            self.by_pattern[key] = keep
        else:
            self.by_pattern.pop(key, None)
        if key == "*":
            self.resolved.clear()
        else:
            self.resolved.pop(key, None)
        return removed

    def clear(self) -> None:
        self.by_id.clear()
        self.by_pattern.clear()
        self.resolved.clear()
        self.forwarders = 0

    def ids_by_pattern(self) -> dict[str, list[str]]:
        """Handler ids by pattern, in registration order (bubus's ``handlers_by_key``)."""
        return {key: [h.id for h in hs] for key, hs in self.by_pattern.items()}

    def for_event(self, event: BaseEvent[Any]) -> tuple[EventHandler, ...]:
        """Exact-type handlers, then wildcard ones, each in registration order, minus forwarders to buses
        the event already visited."""
        handlers = self.resolved.get(event.event_type)
        if handlers is None:
            by_pattern = self.by_pattern
            handlers = (*by_pattern.get(event.event_type, ()), *by_pattern.get("*", ()))
            self.resolved[event.event_type] = handlers
        if self.forwarders:
            path = event.event_path
            handlers = tuple(h for h in handlers if h.forwards_to is None or h.forwards_to.label not in path)
        return handlers
