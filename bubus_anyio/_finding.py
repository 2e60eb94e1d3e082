"""Finding events: ``EventBus.find`` over the history and future emits, and the ancestry queries it uses.

``FindMixin`` holds these methods; ``EventBus`` inherits them. Callers may rely on ``find`` returning the
newest matching event from history (or, with ``future``, the first matching emit after the call), or None
once the time allowed runs out or the bus stops; a waiting ``find`` is resolved synchronously by ``emit``
(``_resolve_finders``). Ancestry is followed by ``event_parent`` and, once a parent has left memory, by id
through the histories of this bus and of every running bus (``_running_names``).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
import attrs

from ._events import BaseEvent
from ._history import EventHistory
from ._time import format_ns, now_ns

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ["E", "FindMixin", "pattern_key"]

E = TypeVar("E", bound=BaseEvent[Any])

#: Names of buses that are running now (inside their ``async with``/``run``): ``_bus`` registers them and
#: detects name clashes with it; ``_lookup`` searches their histories.
_running_names: dict[str, EventBus] = {}


@attrs.define(eq=False)
class _FindWaiter:
    event_type: str
    matches: Callable[[BaseEvent[Any]], bool]
    signal: anyio.Event
    result: BaseEvent[Any] | None = None


def pattern_key(pattern: object) -> str:
    """The index key for a pattern: an event class's type name, a type string, or ``'*'``."""
    if isinstance(pattern, str):
        if not pattern:
            raise TypeError("event pattern must not be empty (use '*' for every event)")
        return pattern
    if isinstance(pattern, type) and issubclass(pattern, BaseEvent):
        if pattern is BaseEvent:
            raise TypeError("BaseEvent matches every event: use the pattern '*' for that")
        return pattern._bubus_event_type
    raise TypeError(
        f"event pattern must be a BaseEvent subclass, an event type string or '*', got {pattern!r}"
    )


_MISSING = object()


class FindMixin:
    """The history and find queries of ``EventBus``.

    Uses these attributes, which ``EventBus.__init__`` sets:

    - ``_history``: the bus's ``EventHistory`` (searched newest first; looked up by id for ancestry)
    - ``_find_waiters``: the ``find`` calls waiting for a future emit, which ``emit`` resolves
    - ``_closed``: True once the bus stopped (a waiting ``find`` then returns None at once)
    """

    _history: EventHistory
    _find_waiters: list[_FindWaiter]
    _closed: bool

    @overload
    async def find(
        self,
        pattern: type[E],
        *,
        where: Callable[[E], bool] | None = None,
        child_of: BaseEvent[Any] | None = None,
        past: bool | float = True,
        future: bool | float = False,
        **fields: Any,
    ) -> E | None: ...
    @overload
    async def find(
        self,
        pattern: str,
        *,
        where: Callable[[BaseEvent[Any]], bool] | None = None,
        child_of: BaseEvent[Any] | None = None,
        past: bool | float = True,
        future: bool | float = False,
        **fields: Any,
    ) -> BaseEvent[Any] | None: ...
    async def find(
        self,
        pattern: Any,
        *,
        where: Callable[[Any], bool] | None = None,
        child_of: BaseEvent[Any] | None = None,
        past: bool | float = True,
        future: bool | float = False,
        **fields: Any,
    ) -> Any:
        """The most recent matching event from history, or the next one emitted.

        :param past: True searches all history, False none, a number only events created in the last N s
        :param future: False returns at once, True waits for a matching emit, a number waits up to N s
        :param where: a predicate on the event
        :param child_of: only descendants of this event
        :param fields: exact equality on any attribute (``event_status='completed'``, payload fields...)
        :return: the event, or None (nothing matched in time, or the bus stopped)
        """
        key = pattern_key(pattern)
        if past is False and future is False:
            return None

        def matches(event: BaseEvent[Any]) -> bool:
            if key != "*" and event.event_type != key:
                return False
            for name, value in fields.items():
                if getattr(event, name, _MISSING) != value:
                    return False
            if child_of is not None and not self.event_is_child_of(event, child_of):
                return False
            return where is None or bool(where(event))

        if past is not False:
            found = self._find_past(key, past, fields, matches)
            if found is not None:
                return found
        if future is False or self._closed:
            return None
        waiter = _FindWaiter(key, matches, anyio.Event())
        self._find_waiters.append(waiter)
        try:
            with anyio.move_on_after(None if future is True else float(future)):
                await waiter.signal.wait()
        finally:
            if waiter in self._find_waiters:
                self._find_waiters.remove(waiter)
        return waiter.result

    def _find_past(
        self,
        key: str,
        past: bool | float,
        fields: dict[str, Any],
        matches: Callable[[BaseEvent[Any]], bool],
    ) -> BaseEvent[Any] | None:
        """Newest-first search of the history (the per-type index when a type is given). Field filters are
        compared with one ``attrgetter`` call per event before the full predicate runs."""
        cutoff = None if past is True else format_ns(now_ns() - int(float(past) * 1e9))
        if "event_id" in fields:  # the id index answers at once
            event = self._history.get(fields["event_id"])
            if event is None or (cutoff is not None and event.event_created_at < cutoff):
                return None
            return event if matches(event) else None
        getter = attrgetter(*fields) if fields else None
        wanted: Any = next(iter(fields.values())) if len(fields) == 1 else tuple(fields.values())
        for event in self._history.newest_first(None if key == "*" else key):
            if cutoff is not None and event.event_created_at < cutoff:
                continue
            if getter is not None:
                try:
                    if getter(event) != wanted:
                        continue
                except AttributeError:
                    continue
            if matches(event):
                return event
        return None

    def _resolve_finders(self, event: BaseEvent[Any]) -> None:
        for waiter in list(self._find_waiters):
            if waiter.result is None and waiter.matches(event):
                waiter.result = event
                self._find_waiters.remove(waiter)
                waiter.signal.set()

    def event_is_child_of(self, event: BaseEvent[Any], ancestor: BaseEvent[Any]) -> bool:
        """True when ``ancestor`` is a parent, grandparent... of ``event`` (an event is not its own child)."""
        target = ancestor.event_id
        seen: set[str] = set()
        current: BaseEvent[Any] | None = event
        while current is not None:
            parent_id = current.event_parent_id
            if parent_id is None or parent_id in seen:
                return False
            if parent_id == target:
                return True
            seen.add(parent_id)
            parent = current.event_parent
            current = (
                parent if parent is not None and parent.event_id == parent_id else self._lookup(parent_id)
            )
        return False

    def event_is_parent_of(self, event: BaseEvent[Any], descendant: BaseEvent[Any]) -> bool:
        """True when ``event`` is an ancestor of ``descendant``."""
        return self.event_is_child_of(descendant, event)

    def _lookup(self, event_id: str) -> BaseEvent[Any] | None:
        found = self._history.get(event_id)
        if found is not None:
            return found
        for bus in list(_running_names.values()):
            found = bus._history.get(event_id)
            if found is not None:
                return found
        return None
