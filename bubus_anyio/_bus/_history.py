"""Bounded event history with a per-type index, so ``find`` never scans everything.

Policy (SPEC §2): completed events are evicted oldest-first (in completion order) whenever the history is
over ``max_history_size``; unfinished ones only with ``max_history_drop=True`` (warned once), otherwise the
bus refuses the emit with :class:`HistoryFullError`. ``max_history_size=0`` keeps only in-flight events;
``None`` keeps everything. Every operation is O(1) amortised: no scan per emit.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._events._errors import HistoryFullError

if TYPE_CHECKING:
    from .._events._event import BaseEvent

__all__ = ["EventHistory"]

logger = logging.getLogger("bubus_anyio")


class EventHistory:
    """An ordered, read-only mapping ``event_id -> event`` (oldest first) kept by a bus."""

    __slots__ = (
        "_by_type",
        "_completed",
        "_events",
        "_owner",
        "_warned",
        "max_history_drop",
        "max_history_size",
    )

    def __init__(self, max_history_size: int | None, max_history_drop: bool, owner: str = "") -> None:
        self.max_history_size = max_history_size
        self.max_history_drop = max_history_drop
        self._events: OrderedDict[str, BaseEvent[Any]] = OrderedDict()
        self._by_type: dict[str, dict[str, BaseEvent[Any]]] = {}
        self._completed: deque[str] = deque()
        self._owner = owner
        self._warned = False

    # Mapping protocol (read-only).
    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._events

    def __getitem__(self, event_id: str) -> BaseEvent[Any]:
        return self._events[event_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._events)

    def get(self, event_id: str) -> BaseEvent[Any] | None:
        return self._events.get(event_id)

    def values(self) -> list[BaseEvent[Any]]:
        return list(self._events.values())

    def keys(self) -> list[str]:
        return list(self._events)

    def items(self) -> list[tuple[str, BaseEvent[Any]]]:
        return list(self._events.items())

    def newest_first(self, event_type: str | None = None) -> Iterator[BaseEvent[Any]]:
        """Events newest first, all of them or those of one type (served from the type index)."""
        if event_type is None:
            return reversed(self._events.values())
        bucket = self._by_type.get(event_type)
        return reversed(bucket.values()) if bucket else iter(())

    def __repr__(self) -> str:
        return f"EventHistory(size={len(self._events)}, max_history_size={self.max_history_size})"

    # Mutations, driven by the bus.
    def make_room(self) -> None:
        """Called before an emit adds an event: evict what policy allows, or refuse.

        :raises HistoryFullError: ``drop=False`` and the history is full of unfinished events
        """
        limit = self.max_history_size
        if limit is None or limit == 0 or len(self._events) < limit:
            return
        self._evict_completed(limit - 1)
        if len(self._events) >= limit and not self.max_history_drop:
            raise HistoryFullError(
                f"{self._owner}: history limit reached ({len(self._events)}/{limit}) with unfinished events; "
                "set max_history_drop=True to drop the oldest ones, raise max_history_size, or await events"
            )

    def add(self, event: BaseEvent[Any]) -> None:
        event_id = event.event_id
        if event_id in self._events:
            return
        self._events[event_id] = event
        bucket = self._by_type.get(event.event_type)
        if bucket is None:
            bucket = self._by_type[event.event_type] = {}
        bucket[event_id] = event
        limit = self.max_history_size
        if limit and len(self._events) > limit:
            self._trim(limit)

    def on_completed(self, event: BaseEvent[Any]) -> None:
        event_id = event.event_id
        if event_id not in self._events:
            return
        limit = self.max_history_size
        if limit == 0:
            self.remove(event_id)
        elif limit is not None:
            self._completed.append(event_id)
            if len(self._events) > limit:
                self._trim(limit)

    def remove(self, event_id: str) -> None:
        event = self._events.pop(event_id, None)
        if event is not None:
            bucket = self._by_type.get(event.event_type)
            if bucket is not None:
                bucket.pop(event_id, None)
                if not bucket:
                    del self._by_type[event.event_type]

    def clear(self) -> None:
        self._events.clear()
        self._by_type.clear()
        self._completed.clear()

    def _evict_completed(self, target: int) -> None:
        completed = self._completed
        events = self._events
        by_type = self._by_type
        while len(events) > target and completed:
            event = events.pop(completed.popleft(), None)
            if event is not None:  # ``remove`` written out: this runs once per emit on a full history
                bucket = by_type.get(event.event_type)
                if bucket is not None:
                    bucket.pop(event.event_id, None)
                    if not bucket:
                        del by_type[event.event_type]

    def _trim(self, limit: int) -> None:
        self._evict_completed(limit)
        if len(self._events) > limit and self.max_history_drop:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%s: history is over max_history_size=%d with unfinished events; dropping the oldest "
                    "entries (they keep running but disappear from find() and log_tree())",
                    self._owner,
                    limit,
                )
            while len(self._events) > limit:
                event_id = next(iter(self._events))
                self.remove(event_id)
