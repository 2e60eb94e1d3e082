"""What processing and handler calls share: an event's runs on buses, claiming queued copies, completing
events and cancelling them with their descendants.

Everything here is synchronous: recording an outcome never awaits, so level cancellation
(trio semantics) never interrupts bookkeeping halfway. Callers may rely on ``finish_on_bus`` running once
per event and bus, and on ``maybe_complete`` completing an event (and then its ancestors) exactly when no
bus holds it and all its children completed.

Queue-jumping: ``await child`` inside a handler processes the child *now*, in the handler's task, on every
bus that still holds an unclaimed copy. Each event keeps the set of buses holding such a copy
(``_queued_on``); claiming removes the bus from it, so the runloop that later receives the copy from its
stream skips it. Limiters already held by the chain of handlers above (``HandlerFrame.held``) are not taken
again, which is what keeps ``bus-serial`` and ``global-serial`` free of deadlocks.

The lowest of the engine modules: ``_calling`` and ``_runloop`` build on it; it imports neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from anyio import CancelScope
from anyio.lowlevel import RunVar

from .._events._context import HandlerFrame
from .._events._errors import EventBusError, EventHandlerCancelledError
from .._events._event import BaseEvent
from .._events._handlers import EventHandler
from .._events._ids import uuid7
from .._events._results import EventResult
from .._events._time import new_timestamp
from ._slots import SerialSlot

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus

__all__ = ["DeadlockError", "EventRun", "cancel_descendants", "claim", "global_serial_limiter"]

_global_serial_limiter: RunVar[SerialSlot] = RunVar("bubus_anyio_global_serial_limiter")


class DeadlockError(EventBusError, RuntimeError):
    """Waiting for this event from here could never finish (for example ``event_completed()`` inside a
    handler, on a child queued behind that handler on a serial bus). Use ``await child`` instead."""


def global_serial_limiter() -> SerialSlot:
    """The one limiter that ``global-serial`` events share, per event-loop run."""
    try:
        return _global_serial_limiter.get()
    except LookupError:
        limiter = SerialSlot()
        _global_serial_limiter.set(limiter)
        return limiter


class EventRun:
    """One processing of one event on one bus: its time budget, and why it was cancelled if it was.

    Cancel scopes are created lazily: only once a handler actually suspends (a sync handler, or an async one
    that returns without awaiting anything, cannot be interrupted, so it needs none). The budget is kept as
    a start time on ``perf_counter`` and converted to an anyio deadline when a scope is made.
    """

    __slots__ = (
        "bus",
        "cancel_reason",
        "event",
        "first",
        "parallel",
        "parent_frame",
        "rows",
        "scope",
        "scope_active",
        "started",
        "stopped",
        "timed_out",
        "timeout",
        "watched",
    )

    def __init__(
        self,
        bus: EventBus,
        event: BaseEvent[Any],
        timeout: float | None,
        parent_frame: HandlerFrame | None,
        rows: list[EventResult[Any]],
    ) -> None:
        self.bus = bus
        self.event = event
        self.timeout = timeout
        self.started = perf_counter()
        #: the event-level scope currently entered (or last entered), if any
        self.scope: CancelScope | None = None
        self.scope_active = False
        self.cancel_reason: str | None = None
        self.parent_frame = parent_frame
        self.first = False
        self.parallel = False
        self.stopped = False
        self.timed_out = False
        #: whether the slow monitor watches this run (from its first handler that can suspend)
        self.watched = False
        self.rows = rows

    def deadline(self, now: float) -> float:
        """This run's budget as an anyio deadline (``now`` is ``anyio.current_time()``)."""
        timeout = self.timeout
        return math.inf if timeout is None else now - (perf_counter() - self.started) + timeout

    def new_scope(self, deadline: float | None = None) -> CancelScope:
        """An event-level scope (already cancelled if the run was), with this run's deadline unless the
        caller gives one (``math.inf`` to arm it later)."""
        if deadline is None:
            backend = self.bus._backend
            deadline = self.deadline(backend.current_time()) if self.timeout is not None else math.inf
        scope: CancelScope = self.bus._backend.create_cancel_scope(deadline=deadline)
        if self.cancel_reason is not None:
            scope.cancel()
        self.scope = scope
        return scope

    def cancel(self, reason: str) -> None:
        """Abort this run from outside (a parent timed out, a ``first`` winner): running handlers are
        interrupted, handlers not started yet never start."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.stopped = True
        if self.scope is not None and self.scope_active:
            self.scope.cancel()


# ------------------------------------------------------------------------ claims, completion, cancellation
def claim(bus: EventBus, event: BaseEvent[Any]) -> None:
    """Take ``event`` out of ``bus``'s queue (logically: its copy in the stream will be skipped)."""
    event._queued_on.discard(bus)
    del bus._queue[id(event)]
    bus._in_flight += 1
    if bus._room is not None:  # someone waits in send() for room
        bus._on_dequeued()
    if _acquirers:
        _wake_acquirers(event)


_new_row: Callable[[str, EventHandler, str], EventResult[Any]] = EventResult  # unsubscripted: 3x cheaper


def create_rows(bus: EventBus, event: BaseEvent[Any]) -> list[EventResult[Any]]:
    """One row per handler that should still run here (existing finished rows are never re-run)."""
    results = event.event_results
    rows: list[EventResult[Any]] = []
    registry = bus._registry
    handlers = registry.resolved.get(event.event_type)  # registry.for_event(event), its common case inline
    if handlers is None or registry.forwarders:
        handlers = registry.for_event(event)
    for handler in handlers:
        row = results.get(handler.id)
        if row is None:
            row = _new_row(event.event_id, handler, str(uuid7()))  # new_id(), written out
            results[handler.id] = row
        elif row.status != "pending":
            continue
        rows.append(row)
    return rows


def _cancel_pending_rows(
    bus: EventBus, event: BaseEvent[Any], rows: Iterable[EventResult[Any]], reason: str
) -> None:
    hooks = bus._hooks
    for row in rows:
        if row.status == "pending":
            row.mark_error(
                EventHandlerCancelledError(
                    f"Cancelled pending handler {row.handler.label}({event.event_label}) because {reason}",
                    event=event,
                    handler=row.handler,
                    event_result=row,
                )
            )
            if hooks is not None:
                hooks.notify("on_event_result_change", event, row, "completed")


def finish_on_bus(bus: EventBus, event: BaseEvent[Any]) -> None:
    """``bus`` is done with ``event``: count it down, complete it (and its ancestors) when nothing is left."""
    event.event_pending_bus_count -= 1
    notify_progress(event)
    bus._in_flight -= 1  # bus._on_finished() only matters to someone waiting for idle
    if bus._idle is not None:
        bus._on_finished()
    if event.event_pending_bus_count == 0:
        maybe_complete(event)


def notify_progress(event: BaseEvent[Any]) -> None:
    """``event`` moved on (queued, processed somewhere): wake who waits for that, and blocked slot waits."""
    signal = event._processed
    if signal is not None:
        event._processed = None
        signal.set()
    if _acquirers:
        _wake_acquirers(event)


def maybe_complete(event: BaseEvent[Any] | None) -> None:
    """Complete ``event`` when no bus holds it and all its children completed; then try its parent."""
    while (
        event is not None
        and event.event_status != "completed"
        and event.event_pending_bus_count == 0
        and event._open_children == 0
        and event.event_status != "pending"
    ):
        complete(event)
        parent = event._parent
        if parent is None:
            return
        event._parent = None  # the weak link answers event_parent from now on (no parent<->child cycle)
        parent._open_children -= 1
        event = parent


def complete(event: BaseEvent[Any]) -> None:
    event.event_status = "completed"
    event.event_completed_at = now = new_timestamp()
    if event.event_started_at is None:
        event.event_started_at = now
    event._context = None
    done = event._done
    if done is not None:
        done.set()
    for bus in event._buses:
        bus._history.on_completed(event)
        if bus._hooks is not None:
            bus._hooks.notify("on_event_change", event, "completed")


def cancel_descendants(children: Iterable[BaseEvent[Any]], reason: str) -> None:
    """Cancel every unfinished descendant, on every bus: queued copies are claimed out of their queues
    and get a cancelled row for each handler that would have run; running copies are aborted."""
    stack = list(children)
    while stack:
        child = stack.pop()
        if child.event_status == "completed":
            continue
        for bus in [b for b in child._buses if b in child._queued_on]:
            claim(bus, child)
            if child.event_status == "pending":
                child.event_status = "started"
                child.event_started_at = new_timestamp()
            _cancel_pending_rows(bus, child, create_rows(bus, child), reason)
            finish_on_bus(bus, child)
        for run in list(child._runs):
            run.cancel(reason)
        stack.extend(child.event_children)


def drop_queued(bus: EventBus, event: BaseEvent[Any], reason: str) -> None:
    """Release a copy of ``event`` still queued on a bus that is shutting down."""
    if bus not in event._queued_on:
        return
    claim(bus, event)
    if event.event_status == "pending":
        event.event_status = "started"
        event.event_started_at = new_timestamp()
    _cancel_pending_rows(bus, event, create_rows(bus, event), reason)
    finish_on_bus(bus, event)


#: Scopes of queue-jumps blocked on a slot, by the events whose progress (or new lend) must wake them.
_acquirers: dict[BaseEvent[Any], list[CancelScope]] = {}


def _wake_acquirers(event: BaseEvent[Any]) -> None:
    for scope in _acquirers.get(event, ()):
        scope.cancel()
