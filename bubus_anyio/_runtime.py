"""The engine: claiming queued events, processing them on a bus, running handlers, completing events.

Hot path (per event, serial modes): the runloop receives the event, takes the event limiter without a
checkpoint when it is free, claims the event, creates one row per handler, calls each handler inside the
event's captured context (sync handlers directly, async ones through a tiny trampoline, so no task is
spawned), records the result and completes the event. Everything that records an outcome is synchronous,
so level cancellation (trio semantics) never interrupts bookkeeping halfway.

Queue-jumping: ``await child`` inside a handler processes the child *now*, in the handler's task, on every
bus that still holds an unclaimed copy. Each event keeps the set of buses holding such a copy
(``_queued_on``); claiming removes the bus from it, so the runloop that later receives the copy from its
stream skips it. Limiters already held by the chain of handlers above (``HandlerFrame.held``) are not taken
again, which is what keeps ``bus-serial`` and ``global-serial`` free of deadlocks.
"""

from __future__ import annotations

import logging
import math
import types
from collections.abc import Callable, Generator, Iterable
from contextvars import Context, copy_context
from time import perf_counter
from typing import TYPE_CHECKING, Any

import anyio
from anyio import CancelScope, CapacityLimiter, WouldBlock
from anyio.lowlevel import RunVar, checkpoint

from ._backend import checkpoint_is_cheap, is_cancelling
from ._context import HandlerFrame, current_frame
from ._errors import (
    EventBusError,
    EventHandlerAbortedError,
    EventHandlerCancelledError,
    EventHandlerError,
    EventHandlerResultSchemaError,
    EventHandlerTimeoutError,
)
from ._events import BaseEvent
from ._handlers import EventHandler
from ._results import EventResult
from ._time import new_timestamp
from ._validation import describe_mismatch, type_repr

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ["DeadlockError", "claim", "global_serial_limiter", "process", "run_loop"]

logger = logging.getLogger("bubus_anyio")

_global_serial_limiter: RunVar[CapacityLimiter] = RunVar("bubus_anyio_global_serial_limiter")


class DeadlockError(EventBusError, RuntimeError):
    """Waiting for this event from here could never finish (for example ``event_completed()`` inside a
    handler, on a child queued behind that handler on a serial bus). Use ``await child`` instead."""


def global_serial_limiter() -> CapacityLimiter:
    """The one limiter that ``global-serial`` events share, per event-loop run."""
    try:
        return _global_serial_limiter.get()
    except LookupError:
        limiter = CapacityLimiter(1)
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
        self.rows = rows

    def deadline(self, now: float) -> float:
        """This run's budget as an anyio deadline (``now`` is ``anyio.current_time()``)."""
        timeout = self.timeout
        return math.inf if timeout is None else now - (perf_counter() - self.started) + timeout

    def new_scope(self, deadline: float | None = None) -> CancelScope:
        """An event-level scope (already cancelled if the run was), with this run's deadline unless the
        caller gives one (``math.inf`` to arm it later)."""
        if deadline is None:
            deadline = self.deadline(anyio.current_time()) if self.timeout is not None else math.inf
        scope = CancelScope(deadline=deadline)
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


# ---------------------------------------------------------------------------------------- calling handlers
def _enter(frame: HandlerFrame, fn: Callable[[Any], Any], event: BaseEvent[Any]) -> Any:
    current_frame.set(frame)
    return fn(event)


def _enter_in(ctx: Context, frame: HandlerFrame) -> Any:
    """Run a sync handler in a worker thread, inside the handler's context."""
    fn = frame.handler.handler
    assert fn is not None
    return ctx.run(_enter, frame, fn, frame.event)


async def _await_value(value: Any) -> Any:
    return await value


#: Deadlines to set on the handler's scopes when it first suspends: (event scope, its deadline, handler
#: scope, its deadline); either scope may be None.
_Deadlines = tuple[CancelScope | None, float, CancelScope | None, float]


@types.coroutine
def _drive(
    ctx: Context, coro: Any, row: EventResult[Any], deadlines: _Deadlines | None = None
) -> Generator[Any, Any, Any]:
    """Run a handler coroutine to completion with every step inside ``ctx``: the handler sees the emit-time
    context although it runs in the processing task (no task per handler). Yielded values pass through
    untouched, so the backend's scheduling and cancellation work as for any awaited coroutine.

    While a step runs, ``row._stepping`` is set: a bus the handler emits to wakes its runloop only at the
    end of the step. A handler that emits a child and awaits it in the same step (a queue-jump) has
    processed it by then, so the other bus's runloop is not woken just to find its queue empty.

    ``deadlines`` are set on their (already entered) scopes when the handler first suspends. A handler can
    only be interrupted while suspended, so this is the same as arming them up front, minus a timer per
    handler that finishes without suspending (most of them)."""
    run = ctx.run
    send = coro.send
    throw = coro.throw
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            row._stepping = True
            try:
                yielded = run(send, value) if error is None else run(throw, error)
            except StopIteration as stop:
                return stop.value
            finally:
                row._stepping = False
                if row._wakes is not None:
                    _wake_deferred(row)
            if deadlines is not None:
                _arm(deadlines)
                deadlines = None
            error = None
            try:
                value = yield yielded
            except BaseException as exc:
                error = exc
    finally:
        coro.close()


def _arm(deadlines: _Deadlines) -> None:
    event_scope, event_deadline, handler_scope, handler_deadline = deadlines
    if event_scope is not None and event_deadline != math.inf:
        event_scope.deadline = event_deadline
    if handler_scope is not None and handler_deadline != math.inf:
        handler_scope.deadline = handler_deadline


def _wake_deferred(row: EventResult[Any]) -> None:
    wakes = row._wakes
    row._wakes = None
    if wakes is not None:
        for bus in wakes:
            bus._wake_runloop(deferred=True)


_INTERRUPTED: Any = object()


async def _run_in_scopes(frame: HandlerFrame, ctx: Context, timeout: float | None, awaitable: Any) -> Any:
    """Run a handler that can suspend (async, in a thread, or a sync one that returned an awaitable) inside
    the event-level scope (unless an enclosing one is active) and, when it could fire first, the handler's
    own scope. Records timeouts and aborts on the row. Returns the value, or ``_INTERRUPTED`` when the row
    already holds the outcome. Sync handlers never get here: they cannot be interrupted, so they need no
    scope, which keeps the common path free of cancel-scope costs.

    Every run needs its event-level scope, even a root event's without a timeout: a handler of another
    event may emit the running event elsewhere and so adopt it as a child, and that handler's timeout must
    then abort it (``EventRun.cancel``)."""
    row, run, event, bus = frame.result, frame.run, frame.event, frame.bus
    handler = row.handler
    now = None if timeout is None and run.timeout is None else anyio.current_time()
    event_deadline = math.inf
    if run.scope_active:
        event_scope = None
    else:
        if now is not None:
            event_deadline = run.deadline(now)
        event_scope = run.new_scope(math.inf)  # armed by _arm when the handler first suspends
    deadline = math.inf if timeout is None or now is None else now + timeout
    handler_scope: CancelScope | None = None
    if (
        (event_scope is None and timeout is not None)
        or (event_scope is not None and deadline < event_deadline)
        or (run.first and run.parallel)
    ):
        handler_scope = CancelScope()  # armed with ``deadline`` likewise
    row._cancel_scope = handler_scope
    deadlines: _Deadlines | None = None
    if event_deadline != math.inf or (handler_scope is not None and deadline != math.inf):
        deadlines = (event_scope, event_deadline, handler_scope, deadline)
    value: Any = _INTERRUPTED
    with event_scope if event_scope is not None else _NO_SCOPE:
        if event_scope is not None:
            run.scope_active = True
        try:
            with handler_scope if handler_scope is not None else _NO_SCOPE:
                if awaitable is not None:
                    value = await _drive(ctx, awaitable, row, deadlines)
                elif handler.run_in_thread:
                    if deadlines is not None:
                        _arm(deadlines)  # the thread starts at once: arm now
                    value = await anyio.to_thread.run_sync(
                        _enter_in, ctx, frame, abandon_on_cancel=True, limiter=bus._thread_limiter
                    )
                else:
                    fn = handler.handler
                    assert fn is not None
                    value = await _drive(ctx, ctx.run(_enter, frame, fn, event), row, deadlines)
        except bus._cancelled_exc as exc:
            if not is_cancelling(exc):
                _record_stray_cancellation(event, row, exc)
                return _INTERRUPTED
            _record_abort(run, row)
            raise
        finally:
            row._cancel_scope = None
            if event_scope is not None:
                run.scope_active = False
        if handler_scope is not None and handler_scope.cancelled_caught:
            value = _INTERRUPTED
            reason = row._abort_reason
            if reason is not None:
                row.mark_error(_aborted(event, row, reason, None))
            else:
                children = row.event_children
                extra = f" and interrupted any processing of {len(children)} child events" if children else ""
                row.mark_error(
                    EventHandlerTimeoutError(
                        f"Event handler {handler.label}({event.event_label}) timed out after {timeout}s{extra}",
                        event=event,
                        handler=handler,
                        event_result=row,
                        timeout=timeout,
                    )
                )
                cancel_descendants(
                    children,
                    f"its parent handler {handler.label}({event.event_label}) timed out after {timeout}s",
                )
                _log_timeout_tree(f"{handler.label}({event.event_label}) timed out after {timeout}s", event)
    if event_scope is not None and event_scope.cancelled_caught:
        run.stopped = True
        if run.cancel_reason is None:
            run.timed_out = True
        return _INTERRUPTED
    return value


class _NoScope:
    """A do-nothing context manager (cheaper than ``contextlib.nullcontext`` on the slow path)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SCOPE = _NoScope()


def effective_handler_timeout(handler: EventHandler, event: BaseEvent[Any], bus: EventBus) -> float | None:
    """min(handler level, event level) over the non-None ones (reference §2.6)."""
    if handler.handler_timeout_is_set:
        handler_level = handler.handler_timeout
    elif event.event_handler_timeout is not None:
        handler_level = event.event_handler_timeout
    else:
        handler_level = bus.event_timeout
    event_level = event.event_timeout if event.event_timeout is not None else bus.event_timeout
    if handler_level is None:
        return event_level
    if event_level is None:
        return handler_level
    return handler_level if handler_level < event_level else event_level


def schema_error(event: BaseEvent[Any], row: EventResult[Any], value: Any) -> EventHandlerResultSchemaError:
    expected = event.event_result_type
    if isinstance(expected, dict):
        detail = "value does not match the event's JSON Schema"
        readable = "JSON Schema"
    else:
        readable = type_repr(expected)
        detail = describe_mismatch(expected, value)
    return EventHandlerResultSchemaError(
        f"Event handler {row.handler.label}({event.event_label}) returned {value!r:.200}, "
        f"expected {readable} ({detail})",
        raw_value=value,
        expected_schema=expected,
        event=event,
        handler=row.handler,
        event_result=row,
    )


def _abort_reason(run: EventRun) -> str:
    """Name the scope whose cancellation reached a running handler."""
    while True:
        if run.cancel_reason is not None:
            return run.cancel_reason
        if run.timed_out or (run.scope is not None and run.scope.cancel_called):
            return f"the event {run.event.event_label} timed out after {run.timeout}s on {run.bus.label}"
        frame = run.parent_frame
        if frame is None or (run.bus._serve_scope is not None and run.bus._serve_scope.cancel_called):
            if run.bus._serve_scope is not None and run.bus._serve_scope.cancel_called:
                return f"the bus {run.bus.label} was stopped or cancelled while it ran"
            return f"a cancel scope around {run.bus.label}'s processing was cancelled"
        row = frame.result
        scope = row._cancel_scope
        if scope is not None and scope.cancel_called:
            return row._abort_reason or (
                f"its parent handler {frame.handler.label}({frame.event.event_label}) timed out after {row.timeout}s"
            )
        parent_run: EventRun = frame.run
        if (
            parent_run.cancel_reason is None
            and not parent_run.timed_out
            and not (parent_run.scope is not None and parent_run.scope.cancel_called)
        ):
            if parent_run.parent_frame is None and not (
                parent_run.bus._serve_scope is not None and parent_run.bus._serve_scope.cancel_called
            ):
                return (
                    f"a cancel scope inside its awaiting handler {frame.handler.label}"
                    f"({frame.event.event_label}) was cancelled (a timeout around the await?)"
                )
        run = parent_run


async def run_handler(
    bus: EventBus,
    event: BaseEvent[Any],
    row: EventResult[Any],
    run: EventRun,
    held: frozenset[CapacityLimiter],
) -> None:
    """Run one handler for one event and record what happened on its row. Never raises, except the
    backend's cancellation (recorded as an abort first, then re-raised)."""
    if run.stopped:
        return  # a first() winner or a cancellation came first: the row stays pending, then Cancelled
    handler = row.handler
    timeout = effective_handler_timeout(handler, event, bus)
    row.timeout = timeout
    row.mark_started()
    if event.event_started_at is None:
        event.event_started_at = row.started_at
    hooks = bus._hooks
    if hooks is not None:
        hooks.notify("on_event_result_change", event, row, "started")
    frame = HandlerFrame(event, handler, bus, row, held, run)
    captured = event._context
    ctx = captured.copy() if captured is not None else copy_context()
    monitor = bus._monitor
    if monitor is not None:
        monitor.watch_row(row, event)
    try:
        fn = handler.handler
        if fn is None:
            raise EventBusError(
                f"handler {handler.label} has no callable attached (restored from a snapshot?)"
            )
        if handler.is_async or handler.run_in_thread:
            value = await _run_in_scopes(frame, ctx, timeout, None)
        else:
            value = ctx.run(_enter, frame, fn, event)
            if hasattr(value, "__await__") and not isinstance(value, BaseEvent):
                value = await _run_in_scopes(frame, ctx, timeout, _await_value(value))
        if value is _INTERRUPTED:
            return
    except bus._cancelled_exc as exc:
        if not is_cancelling(exc):
            _record_stray_cancellation(event, row, exc)
            return
        _record_abort(run, row)
        raise
    except Exception as exc:
        if isinstance(exc, TimeoutError) and not isinstance(exc, EventHandlerTimeoutError):
            error: BaseException = EventHandlerTimeoutError(
                f"Event handler {handler.label}({event.event_label}) timed out: {exc}",
                event=event,
                handler=handler,
                event_result=row,
                timeout=getattr(exc, "timeout", timeout),
            )
            error.__cause__ = exc
        else:
            error = exc
        row.mark_error(error)
        logger.error(
            "❌ %s handler %s(%s) raised %s: %s",
            bus.label,
            handler.label,
            event.event_label,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        return
    except BaseException as exc:  # KeyboardInterrupt, SystemExit...: recorded, then it propagates
        if not row.is_finished:
            row.mark_error(exc)
            run.cancel_reason = f"{type(exc).__name__} was raised by handler {handler.label}"
        raise
    finally:
        row._cancel_scope = None
        if monitor is not None:
            monitor.unwatch_row(row)
        if hooks is not None and row.is_finished:
            hooks.notify("on_event_result_change", event, row, "completed")
    record_value(event, row, value, run)
    if hooks is not None:
        hooks.notify("on_event_result_change", event, row, "completed")


def _record_stray_cancellation(event: BaseEvent[Any], row: EventResult[Any], exc: BaseException) -> None:
    """asyncio: the handler let out a ``CancelledError`` that is not a cancellation of this task (it awaited
    something someone else cancelled). That is the handler's failure, recorded like any error."""
    error = EventHandlerError(
        f"Event handler {row.handler.label}({event.event_label}) raised {type(exc).__name__} although "
        "nothing cancelled it (it awaited a task or future that was cancelled elsewhere)",
        event=event,
        handler=row.handler,
        event_result=row,
    )
    error.__cause__ = exc
    row.mark_error(error)


def _record_abort(run: EventRun, row: EventResult[Any]) -> None:
    """A cancellation from outside reached a running handler: record it (synchronously: under level
    cancellation nothing here may await) and cancel what the handler emitted. The caller re-raises."""
    if not row.is_finished:
        reason = _abort_reason(run)
        row.mark_error(_aborted(run.event, row, reason, run.timeout))
        cancel_descendants(
            row.event_children, f"its parent handler {row.handler.label} was aborted: {reason}"
        )


def _aborted(
    event: BaseEvent[Any], row: EventResult[Any], reason: str, timeout: float | None
) -> EventHandlerAbortedError:
    return EventHandlerAbortedError(
        f"Event handler {row.handler.label}({event.event_label}) was interrupted because {reason}",
        event=event,
        handler=row.handler,
        event_result=row,
        timeout=timeout,
    )


def record_value(event: BaseEvent[Any], row: EventResult[Any], value: Any, run: EventRun) -> None:
    if value is None or isinstance(value, BaseEvent):
        row.mark_completed(value)
        return
    if isinstance(value, BaseException):
        logger.warning(
            "%s returned an exception instead of raising it; recorded as an error", row.handler.label
        )
        row.mark_error(value)
        return
    check = event._result_check
    if check is not None and not check(value):
        row.mark_error(schema_error(event, row, value))
        return
    row.mark_completed(value)
    if run.first and not run.stopped:
        run.stopped = True
        for other in run.rows:
            if other is not row and other.status == "started":
                other_scope = other._cancel_scope
                if other_scope is not None:
                    other._abort_reason = "first() resolved"
                    other_scope.cancel()
                cancel_descendants(other.event_children, "first() resolved")


# ---------------------------------------------------------------------------------------- processing
def claim(bus: EventBus, event: BaseEvent[Any]) -> None:
    """Take ``event`` out of ``bus``'s queue (logically: its copy in the stream will be skipped)."""
    event._queued_on.discard(bus)
    del bus._queue[event]
    bus._on_dequeued()
    if _acquirers:
        _wake_acquirers(event)


_new_row: Callable[[str, EventHandler], EventResult[Any]] = EventResult  # unsubscripted: 3x cheaper


def create_rows(bus: EventBus, event: BaseEvent[Any]) -> list[EventResult[Any]]:
    """One row per handler that should still run here (existing finished rows are never re-run)."""
    results = event.event_results
    rows: list[EventResult[Any]] = []
    for handler in bus._handlers_for(event):
        row = results.get(handler.id)
        if row is None:
            row = _new_row(event.event_id, handler)
            results[handler.id] = row
        elif row.status != "pending":
            continue
        rows.append(row)
    return rows


async def process(
    bus: EventBus, event: BaseEvent[Any], held: frozenset[CapacityLimiter], parent_frame: HandlerFrame | None
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
    monitor = bus._monitor
    if monitor is not None:
        monitor.watch_run(
            run, event.event_slow_timeout if event.event_slow_timeout is not None else bus.event_slow_timeout
        )
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
        if monitor is not None:
            monitor.unwatch_run(run)
        finish_on_bus(bus, event)


async def _run_parallel(
    bus: EventBus,
    event: BaseEvent[Any],
    rows: list[EventResult[Any]],
    run: EventRun,
    held: frozenset[CapacityLimiter],
) -> None:
    """All handlers of the event at once. Sync handlers cannot overlap anything, so they run inline first
    (no task each); the others start together in a task group inside the event-level scope."""
    waiting: list[EventResult[Any]] = []
    for row in rows:
        handler = row.handler
        if handler.is_async or handler.run_in_thread:
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
                for row in waiting:
                    tg.start_soon(run_handler, bus, event, row, run, held)
    finally:
        run.scope_active = False
    if scope.cancelled_caught:
        run.stopped = True
        if run.cancel_reason is None:
            run.timed_out = True


def _log_timeout_tree(what: str, event: BaseEvent[Any]) -> None:
    """On a timeout, log which handler, which limit, and what it interrupted, as a tree (WARNING)."""
    if logger.isEnabledFor(logging.WARNING):
        from ._tree import render_timeout_tree

        logger.warning("⏰ %s\n%s", what, render_timeout_tree(event))


def _stop_reason(run: EventRun) -> str:
    if run.cancel_reason is None and not run.timed_out:
        return "first() resolved"
    return _abort_reason(run)


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
    """``bus`` is done with ``event``: count it down, complete it (and its ancestors) when nothing is left.
    (Runs once per event and bus: ``notify_progress`` and ``bus._on_finished`` are written out here.)"""
    event.event_pending_bus_count -= 1
    signal = event._processed
    if signal is not None:
        event._processed = None
        signal.set()
    if _acquirers:
        _wake_acquirers(event)
    bus._in_flight -= 1
    if bus._idle is not None:
        bus._on_finished()
    if event.event_pending_bus_count == 0:
        maybe_complete(event)


def notify_progress(event: BaseEvent[Any]) -> None:
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


# ---------------------------------------------------------------------------------------- the runloop
_EVENTS_PER_CHECKPOINT = 16


async def run_loop(bus: EventBus) -> None:
    """Receive events in FIFO order; process serial ones inline (no task per event), spawn parallel ones.

    While a backlog is waiting the loop takes events without a scheduling round each, yielding once every
    ``_EVENTS_PER_CHECKPOINT`` events so other tasks (emitters, other buses) still get their turn."""
    assert bus._receive_stream is not None
    receive_nowait = bus._receive_stream.receive_nowait
    budget = _EVENTS_PER_CHECKPOINT
    bus_limiter = bus._limiter
    assert bus_limiter is not None
    bus_held = frozenset((bus_limiter,))
    no_limiters: frozenset[CapacityLimiter] = frozenset()
    default_mode = bus.event_concurrency
    work_tg = bus._work_tg
    assert work_tg is not None
    event: BaseEvent[Any] | None = None
    yield_first = checkpoint_is_cheap(bus._cancelled_exc)
    arrival = bus._arrival
    assert arrival is not None
    yielded = False
    try:
        while True:
            event = None
            try:
                event = receive_nowait()
            except WouldBlock:
                budget = _EVENTS_PER_CHECKPOINT
                if yield_first and not yielded:
                    # asyncio: one cheap yield often lets the emitter queue the next event
                    yielded = True
                    await checkpoint()
                    continue
                yielded = False
                await arrival.park()  # emit wakes it
                continue
            else:
                yielded = False
                budget -= 1
                if not budget:
                    budget = _EVENTS_PER_CHECKPOINT
                    await checkpoint()
            if bus not in event._queued_on:
                continue  # claimed by a queue-jump or a cancellation
            mode = event.event_concurrency or default_mode
            if mode == "parallel":
                claim(bus, event)
                work_tg.start_soon(process, bus, event, no_limiters, None)
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


#: Scopes of queue-jumps blocked on a slot, by the events whose progress (or new lend) must wake them.
_acquirers: dict[BaseEvent[Any], list[CancelScope]] = {}


def _wake_acquirers(event: BaseEvent[Any]) -> None:
    for scope in _acquirers.get(event, ()):
        scope.cancel()
