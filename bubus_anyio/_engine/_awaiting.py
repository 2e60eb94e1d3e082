"""Awaiting events: ``await event`` (queue-jumping inside handlers), ``event_completed()`` (queue order)
and the results accessors, with the deadlock checks and slot lending that keep them from hanging.

Inside a handler, ``await child`` processes the child *now*, in the handler's task, on every bus that
still holds it queued, skipping the serial slots the chain of handlers above already holds. While the
child is processed by other tasks, the waiting handler lends its slots to the child's chain (it is blocked
anyway), so the child's handlers can queue-jump onto the waiting handler's bus instead of deadlocking; a
wait for a slot gives up as soon as the event moves on elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from anyio import CancelScope, WouldBlock

from .._events._context import HandlerFrame, current_frame
from .._events._errors import BusNotRunningError
from ._backend import make_signal
from ._runloop import process
from ._runtime import DeadlockError, _acquirers, _wake_acquirers, claim, global_serial_limiter
from ._slots import SerialSlot

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus
    from .._events._event import BaseEvent

__all__ = ["live_held", "wait_completed", "wait_for_results", "wait_now"]


def _limiter_for(bus: EventBus, event: BaseEvent[Any]) -> SerialSlot | None:
    mode = event.event_concurrency or bus.event_concurrency
    if mode == "parallel":
        return None
    if mode == "bus-serial":
        return bus._limiter
    return global_serial_limiter()


def _require_running(event: BaseEvent[Any]) -> EventBus:
    """A running bus of ``event``'s, or a :class:`BusNotRunningError` saying why none is."""
    buses = event._buses
    for bus in buses:
        if bus._running:
            return bus
    if not buses:
        raise BusNotRunningError(
            f"{event.event_label} was never emitted on a bus, so nothing would process it"
        )
    labels = ", ".join(bus.label for bus in buses)
    raise BusNotRunningError(
        f"{event.event_label} is {event.event_status} but none of its buses ({labels}) is running; "
        "use `async with bus:` (or `await task_group.start(bus.run)`) around the await"
    )


async def _wait_for_progress(event: BaseEvent[Any]) -> None:
    signal = event._processed
    if signal is None:
        signal = event._processed = anyio.Event()
    await signal.wait()


_NO_LIMITERS: frozenset[SerialSlot] = frozenset()
#: Slots lent by handlers blocked in ``await event`` while other tasks process that event.
_lent: dict[BaseEvent[Any], frozenset[SerialSlot]] = {}


def live_held(frame: HandlerFrame | None) -> frozenset[SerialSlot]:
    """The slots the chain above this code holds: none once the handler returned (a task it spawned keeps
    the frame in its context, but no longer the slot)."""
    if frame is None or frame.result.is_finished:
        return _NO_LIMITERS
    return frame.held


def _effective_held(frame: HandlerFrame) -> frozenset[SerialSlot]:
    """``live_held`` plus what blocked ancestors lent to this handler's event or its ancestors."""
    status = frame.result.status
    held = frame.held if status != "completed" and status != "error" else _NO_LIMITERS  # live_held, inline
    if _lent:
        event: BaseEvent[Any] | None = frame.event
        while event is not None:
            lent = _lent.get(event)
            if lent:
                held = held | lent
            event = event.event_parent
    return held


async def _acquire_or_progress(
    limiter: SerialSlot, token: object, event: BaseEvent[Any], frame: HandlerFrame
) -> bool:
    """Wait for ``limiter`` on behalf of ``token``, unless ``event`` makes progress elsewhere (claimed,
    finished) or a slot is lent to the awaiting chain first: then give up and return False.

    A free slot is taken at once, without a scheduling round: the runloops take theirs the same way,
    and yielding here would only let the bus's runloop wake up to find its slot taken."""
    try:
        limiter.acquire_on_behalf_of_nowait(token)
    except WouldBlock:
        pass
    else:
        return True
    watched: list[BaseEvent[Any]] = [event]
    ancestor: BaseEvent[Any] | None = frame.event
    while ancestor is not None:
        watched.append(ancestor)
        ancestor = ancestor.event_parent
    scope = CancelScope()
    for item in watched:
        _acquirers.setdefault(item, []).append(scope)
    try:
        with scope:
            await limiter.acquire_on_behalf_of(token)
    finally:
        for item in watched:
            scopes = _acquirers.get(item)
            if scopes is not None:
                scopes.remove(scope)
                if not scopes:
                    del _acquirers[item]
    if scope.cancelled_caught:
        if limiter.holds(token):
            limiter.release_on_behalf_of(token)
        return False
    return True


async def _wait_lending(event: BaseEvent[Any], held: frozenset[SerialSlot]) -> None:
    """Wait for ``event``, processed in other tasks, while lending our slots to its handlers: they may need
    to queue-jump onto a bus whose slot we hold, and we are blocked until they finish."""
    previous = _lent.get(event)
    if held:
        _lent[event] = held if previous is None else previous | held
        _wake_acquirers(event)
    try:
        await _wait_for_progress(event)
    finally:
        if held:
            if previous is None:
                _lent.pop(event, None)
            else:
                _lent[event] = previous


#: Queue-jumps between two scheduling rounds, counted across the process (see ``process_now``).
_JUMPS_PER_CHECKPOINT = 16
_jumps_since_checkpoint = 0


async def process_now(event: BaseEvent[Any], frame: HandlerFrame) -> None:
    """Queue-jump: process ``event`` in this task on every bus that still holds it queued, then wait for
    the buses processing it elsewhere. Returns when no bus holds it any more (its own queued descendants
    may still be pending).

    Every ``_JUMPS_PER_CHECKPOINT``-th event processed this way yields once afterwards (after, so that no
    other runloop wakes up to take the event first), as the runloop does for a backlog: a handler awaiting
    many children whose handlers never suspend stays cancellable, its timeout still fires, and other tasks
    still get their turn. Yielding after every one would cost a scheduling round (and arming the handler's
    deadline) per ``await child``: about 9% of upstream's worst-case scenario."""
    global _jumps_since_checkpoint
    processed_here = False
    queued_on = event._queued_on
    while event.event_pending_bus_count > 0:
        bus: EventBus | None = None
        if queued_on:
            for candidate in event._buses:
                if candidate in queued_on:
                    bus = candidate  # the first bus (in emit order) that still holds it queued
                    break
        held = _effective_held(frame)
        if bus is None:
            _require_running(event)
            await _wait_lending(event, held)
            continue
        if not bus._running:
            raise BusNotRunningError(f"{event.event_label} is queued on {bus.label}, which is not running")
        mode = event.event_concurrency or bus.event_concurrency  # _limiter_for(bus, event), written out
        limiter = (
            None if mode == "parallel" else bus._limiter if mode == "bus-serial" else global_serial_limiter()
        )
        if limiter is None or limiter in held:
            claim(bus, event)
            processed_here = True
            await process(bus, event, held, frame)
            continue
        token = object()
        if not await _acquire_or_progress(limiter, token, event, frame):
            continue  # the event moved on (or a slot was lent to us): look again
        try:
            if bus in event._queued_on:
                claim(bus, event)
                processed_here = True
                await process(bus, event, held | {limiter}, frame)
        finally:
            limiter.release_on_behalf_of(token)
    if processed_here:
        _jumps_since_checkpoint += 1
        if _jumps_since_checkpoint >= _JUMPS_PER_CHECKPOINT:
            _jumps_since_checkpoint = 0
            await frame.bus._backend.checkpoint()


def _check_not_waiting_on_self(event: BaseEvent[Any], frame: HandlerFrame, what: str) -> None:
    ancestor: BaseEvent[Any] | None = frame.event
    while ancestor is not None:
        if ancestor is event:
            raise DeadlockError(
                f"{what} on {event.event_label} inside its own handler {frame.handler.label} (or a descendant's) "
                "could never finish: an event completes only after its handlers return"
            )
        parent = ancestor._parent  # ancestor.event_parent, written out: this runs on every ``await child``
        if parent is None and ancestor._parent_ref is not None:
            parent = ancestor._parent_ref()
        ancestor = parent


async def wait_now(event: BaseEvent[Any]) -> None:
    """``await event``: inside a handler, process it now; outside, wait for completion."""
    frame = current_frame.get()
    if frame is None:
        await wait_completed(event)
        return
    _check_not_waiting_on_self(event, frame, "await")
    if event.event_pending_bus_count == 0:
        if event.event_status == "pending":
            _require_running(event)  # never emitted: raises
        return
    for bus in event._buses:
        if bus._running:
            break
    else:
        _require_running(event)  # raises, saying why no bus runs
    await process_now(event, frame)


async def wait_for_results(event: BaseEvent[Any]) -> None:
    """What ``event_result()`` and friends wait for: like ``await event``."""
    await wait_now(event)


async def wait_completed(event: BaseEvent[Any]) -> None:
    """Wait for completion in queue order, never processing the event here."""
    if event.event_status == "completed":
        return
    running = _require_running(event)
    frame = current_frame.get()
    if frame is not None:
        _check_not_waiting_on_self(event, frame, "event_completed()")
        held = live_held(frame)
        for bus in event._buses:
            if bus in event._queued_on and _limiter_for(bus, event) in held:
                raise DeadlockError(
                    f"event_completed() on {event.event_label} inside handler {frame.handler.label}: the event is "
                    f"queued behind this handler on the serial bus {bus.label}, so it could never complete. "
                    "Use `await event` to process it now."
                )
    done = event._done
    if done is None:
        done = event._done = make_signal(running._cancelled_exc)
    await done.wait()
