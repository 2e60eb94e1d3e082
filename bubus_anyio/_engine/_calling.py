"""Calling one handler for one event: its context, its cancel scopes and timeouts, and recording what it
returned, raised or was interrupted by on its row.

Callers may rely on ``run_handler`` never raising except the backend's cancellation, which it records on
the row as an abort before re-raising. Sync handlers are called directly inside the event's captured
context, with no cancel scope (they cannot be interrupted); async ones are driven step by step by a small
trampoline (``_drive``) in the calling task, so no task is spawned per handler. Everything that records an
outcome is synchronous, so level cancellation never interrupts bookkeeping halfway.

Builds on ``_runtime`` (runs, cancellation of descendants), never the reverse.
"""

from __future__ import annotations

import logging
import math
import types
from collections.abc import Callable, Generator
from contextvars import Context, copy_context
from time import perf_counter
from typing import TYPE_CHECKING, Any

import anyio
from anyio import CancelScope

from .._events._context import HandlerFrame, current_frame
from .._events._definition import result_schema_error
from .._events._errors import (
    EventBusError,
    EventHandlerAbortedError,
    EventHandlerError,
    EventHandlerTimeoutError,
)
from .._events._event import BaseEvent
from .._events._handlers import EventHandler
from .._events._results import EventResult
from .._events._time import new_timestamp
from .._events._tree import render_timeout_tree
from ._backend import is_cancelling
from ._monitor import SlowMonitor
from ._runtime import EventRun, cancel_descendants
from ._slots import SerialSlot

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus

__all__ = ["effective_handler_timeout", "record_value", "run_handler"]

logger = logging.getLogger("bubus_anyio")


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
#: scope, its deadline, the bus's ``_set_deadline``); either scope may be None.
_Deadlines = tuple[CancelScope | None, float, CancelScope | None, float, Callable[[CancelScope, float], None]]


#: What the slow monitor needs once a handler first suspends: (monitor, the handler's frame, its start on
#: ``perf_counter``).
_Watch = tuple[SlowMonitor, HandlerFrame, float]


@types.coroutine
def _drive(
    ctx: Context,
    coro: Any,
    row: EventResult[Any],
    deadlines: _Deadlines | None = None,
    watch: _Watch | None = None,
) -> Generator[Any, Any, Any]:
    """Run a handler coroutine to completion with every step inside ``ctx``: the handler sees the emit-time
    context although it runs in the processing task (no task per handler). Yielded values pass through
    untouched, so the backend's scheduling and cancellation work as for any awaited coroutine.

    While a step runs, ``row._stepping`` is set: a bus the handler emits to wakes its runloop only at the
    end of the step. A handler that emits a child and awaits it in the same step (a queue-jump) has
    processed it by then, so the other bus's runloop is not woken just to find its queue empty.

    ``deadlines`` are set on their (already entered) scopes when the handler first suspends. A handler can
    only be interrupted while suspended, so this is the same as arming them up front, minus a timer per
    handler that finishes without suspending (most of them). Likewise the slow monitor starts watching it
    then (``watch``): it is a task, and cannot run before."""
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
            if watch is not None:
                _start_watching(watch)
                watch = None
            error = None
            try:
                value = yield yielded
            except BaseException as exc:
                error = exc
    finally:
        coro.close()


def _start_watching(watch: _Watch) -> None:
    monitor, frame, started = watch
    monitor.watch_row(frame.result, frame.event, started)
    run = frame.run
    if not run.watched:
        monitor.watch_run(run)


def _arm(deadlines: _Deadlines) -> None:
    event_scope, event_deadline, handler_scope, handler_deadline, set_deadline = deadlines
    if event_scope is not None and event_deadline != math.inf:
        set_deadline(event_scope, event_deadline)
    if handler_scope is not None and handler_deadline != math.inf:
        set_deadline(handler_scope, handler_deadline)


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
    now = None if timeout is None and run.timeout is None else bus._backend.current_time()
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
        handler_scope = bus._backend.create_cancel_scope()  # armed with ``deadline`` likewise
    row._cancel_scope = handler_scope
    deadlines: _Deadlines | None = None
    if event_deadline != math.inf or (handler_scope is not None and deadline != math.inf):
        deadlines = (event_scope, event_deadline, handler_scope, deadline, bus._set_deadline)
    value: Any = _INTERRUPTED
    monitor = bus._monitor
    watch = None if monitor is None else (monitor, frame, perf_counter())  # watched once it suspends
    with event_scope if event_scope is not None else _NO_SCOPE:
        if event_scope is not None:
            run.scope_active = True
        try:
            if awaitable is not None:
                call = _drive(ctx, awaitable, row, deadlines, watch)
            elif handler.run_in_thread:
                if deadlines is not None:
                    _arm(deadlines)  # the thread starts at once: arm now, and watch
                if watch is not None:
                    _start_watching(watch)
                call = anyio.to_thread.run_sync(
                    _enter_in, ctx, frame, abandon_on_cancel=True, limiter=bus._thread_limiter
                )
            else:
                fn = handler.handler
                assert fn is not None
                call = _drive(ctx, ctx.run(_enter, frame, fn, event), row, deadlines, watch)
            if handler_scope is None:
                value = await call
            else:
                with handler_scope:
                    value = await call
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
            if monitor is not None:
                rows = monitor.rows
                if rows:
                    rows.pop(row, None)
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


def _log_timeout_tree(what: str, event: BaseEvent[Any]) -> None:
    """On a timeout, log which handler, which limit, and what it interrupted, as a tree (WARNING)."""
    if logger.isEnabledFor(logging.WARNING):
        logger.warning("⏰ %s\n%s", what, render_timeout_tree(event))


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
    held: frozenset[SerialSlot],
) -> None:
    """Run one handler for one event and record what happened on its row. Never raises, except the
    backend's cancellation (recorded as an abort first, then re-raised)."""
    if run.stopped:
        return  # a first() winner or a cancellation came first: the row stays pending, then Cancelled
    handler = row.handler
    if (
        handler.handler_timeout_is_set
        or event.event_handler_timeout is not None
        or event.event_timeout is not None
    ):
        timeout = effective_handler_timeout(handler, event, bus)
    else:  # nothing but the bus's limit applies, at both levels
        timeout = bus.event_timeout
    row.timeout = timeout
    row.status = "started"  # row.mark_started(), written out
    row.started_at = started_at = new_timestamp()
    if event.event_started_at is None:
        event.event_started_at = started_at
    hooks = bus._hooks
    if hooks is not None:
        hooks.notify("on_event_result_change", event, row, "started")
    frame = HandlerFrame(event, handler, bus, row, held, run)
    captured = event._context
    ctx = captured.copy() if captured is not None else copy_context()
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
        row.mark_error(result_schema_error(event, row, value))
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
