"""Finding events: the search behind ``EventBus.find`` and the ancestry queries it uses.

Plain functions over what they are given (a bus's history, its list of waiting finders), so that
``EventBus`` calls into this module and this module never needs the bus. Callers may rely on :func:`find`
returning the newest matching event from history (or, with ``future``, the first matching emit after the
call), or None once the time allowed runs out or the bus stops; a waiting ``find`` is resolved
synchronously by ``emit`` (:func:`resolve_finders`). Ancestry is followed by ``event_parent`` and, once a
parent has left memory, by id through the ``lookup`` the caller passes (the bus searches its own history,
then those of the other running buses).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

import anyio
import attrs

from .._events._event import BaseEvent
from .._events._time import format_ns, now_ns
from ._history import EventHistory

__all__ = ["FindWaiter", "event_is_child_of", "find", "pattern_key", "resolve_finders"]


@attrs.define(eq=False)
class FindWaiter:
    """A ``find(future=...)`` call waiting for a matching emit."""

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


async def find(
    history: EventHistory,
    waiters: list[FindWaiter],
    closed: bool,
    pattern: object,
    *,
    where: Callable[[Any], bool] | None,
    child_of: BaseEvent[Any] | None,
    past: bool | float,
    future: bool | float,
    fields: dict[str, Any],
    is_child_of: Callable[[BaseEvent[Any], BaseEvent[Any]], bool],
) -> BaseEvent[Any] | None:
    """``EventBus.find`` over ``history``; a future search waits in ``waiters`` unless the bus is ``closed``;
    ``child_of`` is decided by ``is_child_of(event, ancestor)``."""
    key = pattern_key(pattern)
    if past is False and future is False:
        return None

    def matches(event: BaseEvent[Any]) -> bool:
        if key != "*" and event.event_type != key:
            return False
        for name, value in fields.items():
            if getattr(event, name, _MISSING) != value:
                return False
        if child_of is not None and not is_child_of(event, child_of):
            return False
        return where is None or bool(where(event))

    if past is not False:
        found = _find_past(history, key, past, fields, matches)
        if found is not None:
            return found
    if future is False or closed:
        return None
    waiter = FindWaiter(key, matches, anyio.Event())
    waiters.append(waiter)
    try:
        with anyio.move_on_after(None if future is True else float(future)):
            await waiter.signal.wait()
    finally:
        if waiter in waiters:
            waiters.remove(waiter)
    return waiter.result


def _find_past(
    history: EventHistory,
    key: str,
    past: bool | float,
    fields: dict[str, Any],
    matches: Callable[[BaseEvent[Any]], bool],
) -> BaseEvent[Any] | None:
    """Newest-first search of the history (the per-type index when a type is given). Field filters are
    compared with one ``attrgetter`` call per event before the full predicate runs."""
    cutoff = None if past is True else format_ns(now_ns() - int(float(past) * 1e9))
    if "event_id" in fields:  # the id index answers at once
        event = history.get(fields["event_id"])
        if event is None or (cutoff is not None and event.event_created_at < cutoff):
            return None
        return event if matches(event) else None
    getter = attrgetter(*fields) if fields else None
    wanted: Any = next(iter(fields.values())) if len(fields) == 1 else tuple(fields.values())
    for event in history.newest_first(None if key == "*" else key):
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


def resolve_finders(waiters: list[FindWaiter], event: BaseEvent[Any]) -> None:
    """Hand ``event`` (just emitted) to every waiting finder it matches."""
    for waiter in list(waiters):
        if waiter.result is None and waiter.matches(event):
            waiter.result = event
            waiters.remove(waiter)
            waiter.signal.set()


def event_is_child_of(
    event: BaseEvent[Any], ancestor: BaseEvent[Any], lookup: Callable[[str], BaseEvent[Any] | None]
) -> bool:
    """True when ``ancestor`` is a parent, grandparent... of ``event`` (an event is not its own child).
    A parent that left memory (its weak link is dead) is found by id with ``lookup``."""
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
        current = parent if parent is not None and parent.event_id == parent_id else lookup(parent_id)
    return False
