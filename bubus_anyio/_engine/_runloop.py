"""Processing events on a bus: ``process`` runs a claimed event's handlers under its policy and timeout,
and ``run_loop`` feeds it, in FIFO order, from the bus's stream.

Hot path (per event, serial modes): the runloop receives the event, takes the event limiter without a
checkpoint when it is free, claims the event, creates one row per handler, calls each handler
(``_calling.run_handler``), and the event completes when the last bus finishes it. Serial events are
processed in the runloop task, parallel ones in a task each (started in FIFO order, also on trio,
whose scheduler runs a batch of new tasks in random order: there each new task takes the oldest waiting
event when it first runs); the runloop checkpoints once every
``_EVENTS_PER_CHECKPOINT`` events while it drains a backlog. ``process`` is also what a queue-jump
(``_awaiting``) calls to process a child inline in the awaiting handler's task.

Builds on ``_calling`` and ``_runtime``; neither imports this module.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
from anyio import WouldBlock

from .._events._context import HandlerFrame
from .._events._event import BaseEvent
from .._events._results import EventResult
from .._events._time import new_timestamp
from ._backend import cheap_yield_for
from ._calling import _abort_reason, _log_timeout_tree, run_handler
from ._runtime import (
    EventRun,
    _cancel_pending_rows,
    cancel_descendants,
    claim,
    create_rows,
    finish_on_bus,
    global_serial_limiter,
)
from ._slots import SerialSlot

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus

__all__ = ["process", "run_loop"]


async def process(
    bus: EventBus, event: BaseEvent[Any], held: frozenset[SerialSlot], parent_frame: HandlerFrame | None
) -> None:
    """Process a claimed event on ``bus``: run its handlers under the event's policy and timeout."""
    rows = create_rows(bus, event)
    hooks = bus._hooks
    if not rows and hooks is None:  # nothing to run here (a child forwarded past this bus, say)
        if event.event_status == "pending":
            event.event_status = "started"
            event.event_started_at = new_timestamp()
        finish_on_bus(bus, event)
        return
    timeout = event.event_timeout if event.event_timeout is not None else bus.event_timeout
    run = EventRun(bus, event, timeout, parent_frame, rows)
    runs = event._runs
    runs.append(run)
    run.first = (event.event_handler_completion or bus.event_handler_completion) == "first"
    if hooks is not None:
        hooks.notify("on_event_change", event, "pending")
        for row in rows:
            hooks.notify("on_event_result_change", event, row, "pending")
    if event.event_status == "pending":
        event.event_status = "started"
        if not rows:
            event.event_started_at = new_timestamp()
        # else: stamped by the first handler to start (one clock reading for both, as bubus's Python does)
    if hooks is not None:
        hooks.notify("on_event_change", event, "started")
    try:
        if rows:
            run.parallel = (event.event_handler_concurrency or bus.event_handler_concurrency) == "parallel"
            if run.parallel and len(rows) > 1:
                await _run_parallel(bus, event, rows, run, held)
            else:
                for row in rows:
                    if run.stopped:
                        break
                    await run_handler(bus, event, row, run, held)
            if run.stopped:
                _cancel_pending_rows(bus, event, rows, _stop_reason(run))
                if run.timed_out:
                    cancel_descendants(
                        [c for row in rows for c in row.event_children],
                        f"its parent event {event.event_label} timed out after {timeout}s",
                    )
                    _log_timeout_tree(f"{event.event_label} timed out after {timeout}s on {bus.label}", event)
    except BaseException:
        _cancel_pending_rows(bus, event, rows, _abort_reason(run))
        raise
    finally:
        runs.remove(run)
        if run.watched:
            monitor = bus._monitor
            if monitor is not None:
                monitor.unwatch_run(run)
        finish_on_bus(bus, event)


async def _run_parallel(
    bus: EventBus,
    event: BaseEvent[Any],
    rows: list[EventResult[Any]],
    run: EventRun,
    held: frozenset[SerialSlot],
) -> None:
    """All handlers of the event at once, started in registration order. Sync handlers cannot overlap
    anything, so the ones before the first handler that can suspend run inline (no task each); from that
    one on, each gets a task in a task group inside the event-level scope, spawned in order (on trio, where
    a batch of new tasks runs in random order, each task takes the next row when it first runs)."""
    waiting: list[EventResult[Any]] = []
    for row in rows:
        handler = row.handler
        if waiting or handler.is_async or handler.run_in_thread:
            waiting.append(row)
        else:
            await run_handler(bus, event, row, run, held)
    if not waiting or run.stopped:
        return
    if len(waiting) == 1:
        await run_handler(bus, event, waiting[0], run, held)
        return
    scope = run.new_scope()
    run.scope_active = True
    try:
        with scope:
            async with anyio.create_task_group() as tg:
                if bus._spawn_order_kept:
                    for row in waiting:
                        tg.start_soon(run_handler, bus, event, row, run, held)
                else:
                    jobs = deque(waiting)
                    for _ in waiting:
                        tg.start_soon(_run_next_handler, jobs, bus, event, run, held)
    finally:
        run.scope_active = False
    if scope.cancelled_caught:
        run.stopped = True
        if run.cancel_reason is None:
            run.timed_out = True


async def _run_next_handler(
    jobs: deque[EventResult[Any]],
    bus: EventBus,
    event: BaseEvent[Any],
    run: EventRun,
    held: frozenset[SerialSlot],
) -> None:
    """trio: run the oldest row nobody has taken yet. One task is spawned per row and each takes its row
    synchronously in its first step (a task always runs its first step, even when cancelled), so every row
    is taken once and rows begin in order whatever order trio runs the tasks in."""
    await run_handler(bus, event, jobs.popleft(), run, held)


async def _process_next(jobs: deque[BaseEvent[Any]], bus: EventBus) -> None:
    """trio: process the oldest parallel event nobody has taken yet (as :func:`_run_next_handler`)."""
    await process(bus, jobs.popleft(), _NO_LIMITERS, None)


_NO_LIMITERS: frozenset[SerialSlot] = frozenset()


def _stop_reason(run: EventRun) -> str:
    if run.cancel_reason is None and not run.timed_out:
        return "first() resolved"
    return _abort_reason(run)


_EVENTS_PER_CHECKPOINT = 16
#: At most this many parks in a row go without the cheap yield after it kept finding nothing.
_MAX_SKIPPED_YIELDS = 15


async def run_loop(bus: EventBus) -> None:
    """Receive events in FIFO order; process serial ones inline (no task per event), spawn parallel ones.

    While a backlog is waiting the loop takes events without a scheduling round each, yielding once every
    ``_EVENTS_PER_CHECKPOINT`` events so other tasks (emitters, other buses) still get their turn.

    An empty queue first costs a cheap yield or two (``_backend.cheap_yield_for``), because the emitter of
    an event that is awaited one at a time usually emits the next one meanwhile, which saves parking and
    waking. When those yields keep finding nothing (a bus whose events come from elsewhere), they are
    skipped for 1, 3, 7 and then 15 parks, and tried again; a yield that finds an event resets the count."""
    assert bus._receive_stream is not None
    receive_nowait = bus._receive_stream.receive_nowait
    budget = _EVENTS_PER_CHECKPOINT
    bus_limiter = bus._limiter
    assert bus_limiter is not None
    bus_held = frozenset((bus_limiter,))
    no_limiters: frozenset[SerialSlot] = frozenset()
    default_mode = bus.event_concurrency
    work_tg = bus._work_tg
    assert work_tg is not None
    # trio: parallel events wait here for the first task that runs, so they start in FIFO order
    parallel_jobs: deque[BaseEvent[Any]] | None = None if bus._spawn_order_kept else deque()
    event: BaseEvent[Any] | None = None
    checkpoint = bus._backend.checkpoint  # anyio.lowlevel.checkpoint without its backend lookup
    cheap_yield, max_yields = cheap_yield_for(bus._cancelled_exc)
    arrival = bus._arrival
    assert arrival is not None
    yielded = 0  # cheap yields since the queue ran empty
    misses = 0  # idle periods in a row where the cheap yields found nothing (as 2**misses - 1)
    skips = 0  # parks left to go straight to, without trying the cheap yield
    try:
        while True:
            event = None
            try:
                event = receive_nowait()
            except WouldBlock:
                budget = _EVENTS_PER_CHECKPOINT
                if yielded >= max_yields:  # they found nothing: skip them the next 1, 3, 7, 15 times
                    yielded = 0
                    misses = min(2 * misses + 1, _MAX_SKIPPED_YIELDS)
                    skips = misses
                elif skips and not yielded:
                    skips -= 1
                else:
                    yielded += 1
                    await cheap_yield()
                    continue
                await arrival.park()  # emit wakes it
                continue
            else:
                if yielded:  # the cheap yield paid off
                    yielded = 0
                    misses = 0
                budget -= 1
                if not budget:
                    budget = _EVENTS_PER_CHECKPOINT
                    await checkpoint()
            if bus not in event._queued_on:
                continue  # claimed by a queue-jump or a cancellation
            mode = event.event_concurrency or default_mode
            if mode == "parallel":
                claim(bus, event)
                if parallel_jobs is None:
                    work_tg.start_soon(process, bus, event, no_limiters, None)
                else:
                    parallel_jobs.append(event)
                    work_tg.start_soon(_process_next, parallel_jobs, bus)
                continue
            if mode == "bus-serial":
                limiter = bus_limiter
                held = bus_held
            else:
                limiter = global_serial_limiter()
                held = frozenset((limiter,))
            token = object()
            try:
                limiter.acquire_on_behalf_of_nowait(token)
            except WouldBlock:
                await limiter.acquire_on_behalf_of(token)
            try:
                if bus in event._queued_on:
                    claim(bus, event)
                    await process(bus, event, held, None)
            finally:
                limiter.release_on_behalf_of(token)
    finally:
        # Cancelled between taking an event off the stream and claiming it (at the periodic checkpoint or
        # while waiting for the serial slot): put it back first in line, so the shutdown releases it
        # (cancelled rows) instead of losing it.
        if event is not None and bus in event._queued_on:
            bus._backlog.appendleft(event)
