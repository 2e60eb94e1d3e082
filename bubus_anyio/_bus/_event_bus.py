"""EventBus: the user-facing object. Lifecycle, registration, emit, find, idle, stop, introspection.

A bus is a task group: ``async with EventBus('App') as bus:`` (or ``await task_group.start(bus.run)``) owns
every task the bus starts (its runloop, parallel event tasks, the slow-handler monitor). Leaving the block
waits for queued work to finish; an exception in the body cancels it. No task outlives the block.

Longer than 500 lines because it is the one class users hold: every method is documented public API (its
docstrings are about a third of the module), while the work behind them lives beside it (``_registry``,
``_history``, ``_finding``, ``_snapshot``) and in the engine. Splitting the class itself would take mixins.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import copy_context
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar, cast, overload

import anyio
import attrs
from anyio import TASK_STATUS_IGNORED, CancelScope, CapacityLimiter, WouldBlock
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._engine import _awaiting, _runloop, _runtime
from .._engine._backend import (
    Parker,
    make_parker,
    running_backend,
    set_deadline_for,
    tasks_start_in_spawn_order,
)
from .._engine._hooks import HookQueue
from .._engine._monitor import SlowMonitor
from .._engine._runtime import DeadlockError
from .._engine._slots import SerialSlot
from .._events._context import current_frame
from .._events._errors import BusNotRunningError, QueueFullError
from .._events._event import BaseEvent
from .._events._handlers import _UNSET, EventHandler, ForwardingTarget, HandlerCallable
from .._events._ids import new_id, normalize_uuid
from .._events._modes import (
    EVENT_CONCURRENCY_VALUES,
    HANDLER_COMPLETION_VALUES,
    HANDLER_CONCURRENCY_VALUES,
    EventConcurrency,
    EventHandlerCompletion,
    EventHandlerConcurrency,
)
from .._events._tree import render_tree
from . import _finding
from ._finding import FindWaiter, pattern_key
from ._history import EventHistory
from ._instances import AllInstances, forget, iter_instances, register
from ._registry import HandlerRegistry
from ._snapshot import bus_from_json, bus_to_dict, bus_to_json

__all__ = ["BusStatistics", "EventBus"]

logger = logging.getLogger("bubus_anyio")

#: Copies of events claimed by queue-jumps stay in the runloop's stream until it wakes; a skipped wake-up
#: (``_wake_runloop(deferred=True)``) still happens once this many have piled up, so they never accumulate.
_CLAIMED_COPIES_BEFORE_DRAIN = 64

E = TypeVar("E", bound=BaseEvent[Any])

#: Buses running now (inside their ``async with``/``run``), by name: for name clashes, and for finding a
#: parent by id in other buses' histories once it left memory.
_running_names: dict[str, EventBus] = {}

EventPattern = type[BaseEvent[Any]] | str


@attrs.frozen
class BusStatistics:
    """A snapshot of a bus's state, for introspection instead of log spam."""

    label: str
    is_running: bool
    queued: int
    in_flight: int
    history_size: int
    waiting_finders: int
    handlers: int
    limiter_borrowed_tokens: int
    limiter_waiting: int


def _validate_timeout(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0 or None, got {value!r}")
    return float(value)


def _validate_mode(name: str, value: str, allowed: frozenset[str]) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return str(value)


class EventBus(ForwardingTarget):
    """An in-memory async event bus.

    :param name: an identifier (default ``EventBus_<8 chars of id>``); a clash with a running bus warns and
        gets a suffix
    :param event_concurrency: ``'bus-serial'`` (one event at a time on this bus), ``'global-serial'`` (one at
        a time across every bus of this event loop) or ``'parallel'``
    :param event_handler_concurrency: ``'serial'`` or ``'parallel'`` handlers within one event
    :param event_handler_completion: ``'all'`` or ``'first'`` (stop at the first non-None result)
    :param event_timeout: default event and handler timeout in seconds (None: no limit)
    :param event_slow_timeout: warn about events still running after this many seconds
    :param event_handler_slow_timeout: warn about handlers still running after this many seconds
    :param event_handler_detect_file_paths: record ``file:line`` of handlers at registration
    :param max_history_size: events kept for ``find`` and ``log_tree`` (None: all; 0: only in-flight)
    :param max_history_drop: when the history is full of unfinished events, drop the oldest (True) or refuse
        new emits with :class:`HistoryFullError` (False); completed events are always evicted first
    :param max_pending: bound on events waiting in the queue (``emit`` raises :class:`QueueFullError`,
        ``await send()`` waits); None is unbounded
    :param middlewares: objects with optional async hooks ``on_event_change``, ``on_event_result_change``,
        ``on_bus_handlers_change`` (classes are instantiated once)
    """

    # What ``await event``, ``event_completed()`` and the result accessors run: the engine's entry points,
    # reached by an event through the buses it was emitted on (so the event layer never imports the engine).
    _wait_now = staticmethod(_awaiting.wait_now)
    _wait_completed = staticmethod(_awaiting.wait_completed)
    _wait_for_results = staticmethod(_awaiting.wait_for_results)

    def __init__(
        self,
        name: str | None = None,
        *,
        id: str | None = None,
        event_concurrency: EventConcurrency = "bus-serial",
        event_handler_concurrency: EventHandlerConcurrency = "serial",
        event_handler_completion: EventHandlerCompletion = "all",
        event_timeout: float | None = 60.0,
        event_slow_timeout: float | None = 300.0,
        event_handler_slow_timeout: float | None = 30.0,
        event_handler_detect_file_paths: bool = True,
        max_history_size: int | None = 100,
        max_history_drop: bool = True,
        max_pending: int | None = None,
        middlewares: tuple[Any, ...] | list[Any] = (),
    ) -> None:
        self.id = normalize_uuid(id) if id is not None else new_id()
        if name is None:
            name = f"{type(self).__name__}_{self.id[-8:]}"
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"bus name must be an identifier not starting with '_', got {name!r}")
        self.name = self._unique_name(name)
        self._label_name: str | None = None
        self._label = ""
        self.event_concurrency: EventConcurrency = _validate_mode(
            "event_concurrency", event_concurrency or "bus-serial", EVENT_CONCURRENCY_VALUES
        )
        self.event_handler_concurrency: EventHandlerConcurrency = _validate_mode(
            "event_handler_concurrency", event_handler_concurrency or "serial", HANDLER_CONCURRENCY_VALUES
        )
        self.event_handler_completion: EventHandlerCompletion = _validate_mode(
            "event_handler_completion", event_handler_completion or "all", HANDLER_COMPLETION_VALUES
        )
        self.event_timeout = _validate_timeout("event_timeout", event_timeout)
        self.event_slow_timeout = _validate_timeout("event_slow_timeout", event_slow_timeout)
        self.event_handler_slow_timeout = _validate_timeout(
            "event_handler_slow_timeout", event_handler_slow_timeout
        )
        self.event_handler_detect_file_paths = bool(event_handler_detect_file_paths)
        history_size: object = max_history_size
        if history_size is not None and (
            isinstance(history_size, bool)
            or not isinstance(history_size, int)  # pyright: ignore[reportUnnecessaryIsInstance]
            or history_size < 0
        ):
            raise ValueError(f"max_history_size must be an int >= 0 or None, got {max_history_size!r}")
        if max_pending is not None and (
            isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1  # pyright: ignore[reportUnnecessaryIsInstance]
        ):
            raise ValueError(f"max_pending must be an int >= 1 or None, got {max_pending!r}")
        self.max_pending = max_pending
        self.middlewares: list[Any] = [m() if isinstance(m, type) else m for m in middlewares]
        self._hooks: HookQueue | None = HookQueue(self) if self.middlewares else None

        self._registry = HandlerRegistry()
        #: handler id -> :class:`EventHandler`, in registration order
        self.handlers: dict[str, EventHandler] = self._registry.by_id
        self._history = EventHistory(max_history_size, max_history_drop, owner=self.label)

        # The stream exists only while the bus runs (so a bus that never runs leaves nothing unclosed);
        # events emitted before that wait in the backlog, in order.
        self._send_stream: MemoryObjectSendStream[BaseEvent[Any]] | None = None
        self._receive_stream: MemoryObjectReceiveStream[BaseEvent[Any]] | None = None
        self._backlog: deque[BaseEvent[Any]] = deque()
        #: set by emit when the runloop sleeps on an empty queue
        #: where the runloop waits for events while its queue is empty (made when the bus starts)
        self._arrival: Parker | None = None
        #: events waiting on this bus and not claimed yet, in FIFO order (what a snapshot writes as the queue),
        #: keyed by ``id(event)``: two event objects may share an ``event_id`` (a message decoded twice), and
        #: an event's own ``__hash__`` is Python code
        self._queue: dict[int, BaseEvent[Any]] = {}
        self._in_flight = 0
        self._running = False
        self._closed = False
        self._loop_thread: int | None = None
        self._token: Any = None
        self._cancelled_exc: type[BaseException] = BaseException
        #: the running anyio backend class (``create_cancel_scope``, ``current_time``, ``checkpoint``)
        self._backend: Any = None
        #: ``_backend.set_deadline_for`` the running backend: (scope, deadline) -> None
        self._set_deadline: Any = None
        #: False on trio: parallel tasks then take their job from a FIFO when they first run (``_runloop``)
        self._spawn_order_kept = True
        self._limiter: SerialSlot | None = None
        self._thread_limiter: CapacityLimiter | None = None
        self._tg: TaskGroup | None = None
        self._work_tg: TaskGroup | None = None
        self._serve_scope: CancelScope | None = None
        self._served: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self._room: anyio.Event | None = None
        self._find_waiters: list[FindWaiter] = []
        #: slow warnings; None when the bus has no slow thresholds (then handlers are not watched)
        self._monitor: SlowMonitor | None = None
        register(self)  # EventBus.all_instances

    #: The live buses of this class (constructed, not garbage-collected; running or not), as upstream:
    #: a read-only set, one per class. :meth:`iter_all_instances` includes subclasses.
    all_instances = AllInstances()

    @classmethod
    def iter_all_instances(cls) -> Iterator[EventBus]:
        """The live buses of this class and its subclasses (upstream's ``iter_all_instances``)."""
        return iter_instances(cls, subclasses=True)

    # ------------------------------------------------------------------ identity
    @property
    def label(self) -> str:
        """``Name#abcd``: the name and the last four characters of the id (as in ``event_path``)."""
        name = self.name
        if name is not self._label_name:  # computed again only when the name changed (once per emit)
            self._label_name = name
            self._label = f"{name}#{self.id[-4:]}"
        return self._label

    @property
    def _queued(self) -> int:
        """How many events wait on this bus, not claimed yet."""
        return len(self._queue)

    @property
    def is_running(self) -> bool:
        """True inside ``async with bus`` / ``bus.run``, until it stops."""
        return self._running

    @property
    def event_history(self) -> EventHistory:
        """The bounded history (a read-only mapping ``event_id -> event``, oldest first)."""
        return self._history

    @property
    def max_history_size(self) -> int | None:
        return self._history.max_history_size

    @property
    def max_history_drop(self) -> bool:
        return self._history.max_history_drop

    @property
    def handlers_by_key(self) -> MappingProxyType[str, list[str]]:
        """Handler ids by pattern, in registration order: a read-only copy (register with :meth:`on`)."""
        return MappingProxyType(self._registry.ids_by_pattern())

    @property
    def events_pending(self) -> list[BaseEvent[Any]]:
        """The events of the history still ``pending``, oldest first (upstream's list view)."""
        return [e for e in self._history.values() if e.event_status == "pending"]

    @property
    def events_started(self) -> list[BaseEvent[Any]]:
        """The events of the history ``started`` and not completed, oldest first."""
        return [e for e in self._history.values() if e.event_status == "started"]

    @property
    def events_completed(self) -> list[BaseEvent[Any]]:
        """The events of the history ``completed``, oldest first."""
        return [e for e in self._history.values() if e.event_status == "completed"]

    def __str__(self) -> str:
        icon = "🟢" if self._running else "🔴"
        return (
            f"{self.label}{icon}(queue={self._queued} active={self._in_flight} "
            f"history={len(self._history)} handlers={len(self.handlers)})"
        )

    def __repr__(self) -> str:
        return f"<EventBus {self.label} running={self._running}>"

    def _unique_name(self, name: str) -> str:
        if name in _running_names and _running_names[name] is not self:
            new_name = f"{name}_{new_id()[-8:]}"
            warnings.warn(
                f"EventBus name {name!r} is already used by a running bus; renamed this one to {new_name!r}",
                UserWarning,
                stacklevel=3,
            )
            return new_name
        return name

    # ------------------------------------------------------------------ registration
    def on(
        self,
        pattern: EventPattern,
        handler: HandlerCallable,
        *,
        handler_timeout: float | None = _UNSET,
        handler_slow_timeout: float | None = _UNSET,
        run_in_thread: bool = False,
    ) -> EventHandler:
        """Register ``handler`` (sync or async, any callable) for events matching ``pattern``.

        Handlers of one event run exact-type first, then ``'*'`` ones, each group in registration order.

        :param handler_timeout: this handler's limit, overriding the event's and bus's (None: no
            handler-level limit; the event's own timeout still caps it)
        :param handler_slow_timeout: warn when this handler runs longer than this
        :param run_in_thread: run a sync handler in a worker thread (it may call ``bus.emit``)
        :return: the registered :class:`EventHandler` (keep it, or its id, for :meth:`off`)
        """
        key = pattern_key(pattern)
        entry = EventHandler.from_callable(
            handler,
            event_pattern=key,
            eventbus_name=self.name,
            eventbus_id=self.id,
            detect_handler_file_path=self.event_handler_detect_file_paths,
            handler_timeout=handler_timeout,
            handler_slow_timeout=handler_slow_timeout,
            run_in_thread=run_in_thread,
        )
        return self.add_handler(entry)

    def add_handler(self, entry: EventHandler) -> EventHandler:
        """Register a prepared :class:`EventHandler` (used by :meth:`on` and by snapshot restore)."""
        self._registry.add(entry, self._warn_name_clash)
        if self._hooks is not None:
            self._hooks.notify("on_bus_handlers_change", entry, True)
        return entry

    def _warn_name_clash(self, entry: EventHandler) -> None:
        warnings.warn(  # called before the registry changes: raised as an error, it registers nothing
            f"{self.label}: another handler named {entry.handler_name!r} is already registered for "
            f"{entry.event_pattern!r}",
            UserWarning,
            stacklevel=5,  # the caller of on() (on -> add_handler -> registry.add -> here)
        )

    def off(self, pattern: EventPattern, handler: HandlerCallable | EventHandler | str | None = None) -> None:
        """Remove handlers from ``pattern``: the given callable, handler id or :class:`EventHandler`, or all
        of them when ``handler`` is omitted. Only that pattern's handlers are touched."""
        key = pattern_key(pattern)

        def removed(entry: EventHandler) -> bool:
            if handler is None:
                return True
            if isinstance(handler, EventHandler):
                return entry is handler or entry.id == handler.id
            if isinstance(handler, str):
                return entry.id == handler
            return entry.handler is handler or entry.handler == handler

        for entry in self._registry.remove(key, removed):
            if self._hooks is not None:
                self._hooks.notify("on_bus_handlers_change", entry, False)

    # ------------------------------------------------------------------ emitting
    async def send(self, event: E) -> E:
        """Like :meth:`emit`, but waits for room when ``max_pending`` events are already queued.

        :raises DeadlockError: called from a handler holding this bus's serial slot while the queue is
            full (room could never be made)
        """
        limit = self.max_pending
        while limit is not None and self._queued >= limit:
            held = _awaiting.live_held(current_frame.get())
            if held and self._running and self._serial_slot() in held:
                raise DeadlockError(
                    f"{self.label}: send() from a handler holding this bus's serial slot while its queue "
                    f"is full ({self._queued}/{limit}) would never get room"
                )
            if not self._running:
                raise BusNotRunningError(
                    f"{self.label} is not running and its queue is full ({self._queued}/{limit}); "
                    "nothing would make room"
                )
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()
        return self.emit(event)

    def _serial_slot(self) -> SerialSlot | None:
        """The slot this bus's runloop takes for its events by default (None in parallel mode)."""
        if self.event_concurrency == "parallel":
            return None
        if self.event_concurrency == "global-serial":
            return _runtime.global_serial_limiter()
        return self._limiter

    def emit(self, event: E) -> E:
        """Queue ``event`` (FIFO) and return it at once. Safe to call from a worker thread.

        Inside a handler the event becomes a child of the handler's event. Emitting an event that already
        visited this bus returns it unchanged (so forwarding cycles end).

        :raises BusNotRunningError: the bus has stopped
        :raises HistoryFullError: ``max_history_drop=False`` and the history is full of unfinished events
        :raises QueueFullError: ``max_pending`` events are already waiting
        """
        thread = self._loop_thread
        if thread is not None and thread != threading.get_ident():
            emitted = anyio.from_thread.run_sync(_run_in_copied_context, self.emit, event, token=self._token)
            return cast(E, emitted)
        if not isinstance(event, BaseEvent):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"emit() takes a BaseEvent instance, got {event!r}")
        if self._closed:
            raise BusNotRunningError(f"{self.label} has stopped; cannot emit {event.event_label}")
        label = self._label if self.name is self._label_name else self.label
        path = event.event_path
        if self in event._buses:
            return event  # this bus already has it: forwarding cycles end here
        if event.event_status == "completed":
            if label not in path:
                path.append(label)
            event._buses.append(self)
            self._history.make_room()
            self._history.add(event)
            return event
        self._history.make_room()
        if self.max_pending is not None and self._queued >= self.max_pending:
            raise QueueFullError(
                f"{self.label}: {self._queued} events already queued (max_pending={self.max_pending}); "
                f"cannot emit {event.event_label} (use `await bus.send(event)` to wait for room)"
            )
        frame = current_frame.get()
        if frame is not None and frame.event is not event:
            parent = frame.event
            if event.event_parent_id is None:
                event.event_parent_id = parent.event_id
            if event.event_emitted_by_handler_id is None:
                event.event_emitted_by_handler_id = frame.handler.id
                frame.result.event_children.append(event)
                if (
                    event.event_parent_id == parent.event_id
                    and event._parent is None
                    and parent.event_status != "completed"
                ):
                    event._parent = parent
                    event._parent_ref = weakref.ref(parent)
                    parent._open_children += 1
        if event._context is None:
            event._context = copy_context()
        if label not in path:  # a reset copy keeps its path: the label is not written twice
            path.append(label)
        event._buses.append(self)
        event._queued_on.add(self)
        event.event_pending_bus_count += 1
        self._queue[id(event)] = event
        stream = self._send_stream
        if stream is not None:
            stream.send_nowait(event)
            arrival = self._arrival
            if arrival is not None and arrival.waiter is not None:
                # deferred only from a handler step of this same event loop (a handler on another loop
                # reaches here through from_thread, with its frame in the copied context)
                if (
                    frame is not None
                    and frame.result._stepping
                    and frame.bus._loop_thread == self._loop_thread
                ):
                    wakes = frame.result._wakes
                    if wakes is None:
                        frame.result._wakes = [self]
                    elif self not in wakes:
                        wakes.append(self)
                else:
                    self._wake_runloop()
        else:
            self._backlog.append(event)
        self._history.add(event)
        if self._find_waiters:
            _finding.resolve_finders(self._find_waiters, event)
        if event._processed is not None:
            _runtime.notify_progress(event)
        return event

    dispatch = emit

    def _requeue(self, event: BaseEvent[Any]) -> None:
        """Queue a restored event again (snapshot restore): no parent linking, no ``event_path`` append."""
        if self not in event._buses:
            event._buses.append(self)
        event._queued_on.add(self)
        event.event_pending_bus_count += 1
        self._queue[id(event)] = event
        if self._send_stream is not None:
            self._send_stream.send_nowait(event)
            self._wake_runloop()
        else:
            self._backlog.append(event)
        self._history.add(event)

    def _wake_runloop(self, *, deferred: bool = False) -> None:
        """Wake the runloop if it is parked. A ``deferred`` wake-up (at the end of a handler step that
        emitted here) is skipped when queue-jumps already claimed everything it would find, unless the
        stream holds enough claimed copies to be worth draining."""
        arrival = self._arrival
        if arrival is None or arrival.waiter is None:
            return
        if deferred and not self._queue:
            stream = self._send_stream
            if stream is None or stream.statistics().current_buffer_used < _CLAIMED_COPIES_BEFORE_DRAIN:
                return
        arrival.wake()

    # ------------------------------------------------------------------ bookkeeping hooks for the runtime
    def _on_dequeued(self) -> None:
        """An event left the queue (``claim`` counted it in flight) and someone waits for room."""
        room = self._room
        if room is not None and self.max_pending is not None and self._queued < self.max_pending:
            self._room = None
            room.set()

    def _on_finished(self) -> None:
        """An event finished here and someone waits for idle (``_in_flight`` is already counted down)."""
        idle = self._idle
        if idle is not None and self._queued == 0 and self._in_flight == 0:
            if self._hooks is None or self._hooks.pending == 0:
                self._idle = None
                idle.set()

    def _on_hooks_delivered(self) -> None:
        idle = self._idle
        if idle is not None and self._queued == 0 and self._in_flight == 0 and self._hooks is not None:
            if self._hooks.pending == 0:
                self._idle = None
                idle.set()

    def _is_idle(self) -> bool:
        return not self._queued and not self._in_flight and (self._hooks is None or not self._hooks.pending)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> EventBus:
        if self._running or self._closed:
            raise RuntimeError(f"{self.label} is already running or has stopped; a bus runs once")
        self._served = anyio.Event()
        tg = self._tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(self._serve)
        except BaseException as exc:
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        if exc_type is None and self._running:
            try:
                await self.wait_until_idle()
            except BaseException as drain_error:
                # Cancelled (or failed) while draining: abort the bus, and still close its task group.
                if self._serve_scope is not None:
                    self._serve_scope.cancel()
                await tg.__aexit__(type(drain_error), drain_error, drain_error.__traceback__)
                raise
        if self._serve_scope is not None:
            self._serve_scope.cancel()
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # The bus's own tasks never fail, so a group holding only the body's exception is just the
            # task group's wrapping: let the body's exception propagate unchanged, as from any resource.
            if exc is not None and len(group.exceptions) == 1 and group.exceptions[0] is exc:
                return False
            raise

    async def run(self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        """Run the bus inside a task group you own: ``await task_group.start(bus.run)``.

        Returns after :meth:`stop`; cancelling the task group aborts the bus.
        """
        async with self:
            task_status.started()
            assert self._served is not None
            await self._served.wait()

    async def _serve(self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        if self.name in _running_names and _running_names[self.name] is not self:
            self.name = self._unique_name(self.name)
        _running_names[self.name] = self
        self._running = True
        self._loop_thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
        self._cancelled_exc = anyio.get_cancelled_exc_class()
        self._backend = running_backend()
        self._set_deadline = set_deadline_for(self._cancelled_exc)
        self._arrival = make_parker(self._cancelled_exc)
        self._spawn_order_kept = tasks_start_in_spawn_order(self._cancelled_exc)
        self._limiter = SerialSlot()
        self._thread_limiter = CapacityLimiter(40)
        send, receive = anyio.create_memory_object_stream[BaseEvent[Any]](math.inf)
        self._send_stream, self._receive_stream = send, receive
        while self._backlog:
            send.send_nowait(self._backlog.popleft())
        if self.event_handler_slow_timeout is not None or self.event_slow_timeout is not None:
            self._monitor = SlowMonitor(self.label, self.event_handler_slow_timeout)
        try:
            with CancelScope() as scope:
                self._serve_scope = scope
                async with anyio.create_task_group() as work_tg:
                    self._work_tg = work_tg
                    if self._monitor is not None:
                        work_tg.start_soon(self._monitor.run_forever)
                    if self._hooks is not None:
                        work_tg.start_soon(self._hooks.deliver_forever)
                    task_status.started()
                    await _runloop.run_loop(self)
        finally:
            self._shut_down()

    def _shut_down(self) -> None:
        """Synchronous cleanup once the bus's tasks are gone: release queued events (cancelled rows, so
        their awaiters wake), resolve finders with None, free the name."""
        self._running = False
        self._closed = True
        self._loop_thread = None
        if _running_names.get(self.name) is self:
            del _running_names[self.name]
        reason = f"the bus {self.label} stopped before processing it"
        receive = self._receive_stream
        if receive is not None:
            while True:
                try:
                    self._backlog.append(receive.receive_nowait())
                except (WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
            receive.close()
        if self._send_stream is not None:
            self._send_stream.close()
        while self._backlog:
            _runtime.drop_queued(self, self._backlog.popleft(), reason)
        if self._hooks is not None:
            self._hooks.close()
        for waiter in self._find_waiters:
            waiter.signal.set()
        self._find_waiters.clear()
        for signal in (self._idle, self._room):
            if signal is not None:
                signal.set()
        self._idle = self._room = None
        if self._served is not None:
            self._served.set()

    async def stop(self, timeout: float | None = None, clear: bool = False) -> None:
        """Stop the bus. With ``timeout``, first wait up to that long for it to become idle.

        Handlers still running are aborted (rows say :class:`EventHandlerAbortedError`), queued events get
        :class:`EventHandlerCancelledError` rows and complete, pending ``find`` calls return None. A stopped
        bus cannot run again; ``emit`` raises :class:`BusNotRunningError`.

        :param clear: also forget history and handlers
        """
        if self._running:
            frame = current_frame.get()
            inside = frame is not None and frame.bus is self and not frame.result.is_finished
            if timeout is not None and timeout > 0 and not inside:
                await self.wait_until_idle(timeout)
            if self._serve_scope is not None:
                self._serve_scope.cancel()
            if not inside and self._served is not None:
                await self._served.wait()
        else:
            for waiter in self._find_waiters:
                waiter.signal.set()
            self._find_waiters.clear()
        if clear:
            forget(self)  # out of all_instances, as upstream
            self._history.clear()
            self._registry.clear()

    async def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running on this bus.

        :return: True when idle, False if ``timeout`` seconds passed first
        :raises DeadlockError: called from a handler of this bus (it could never be idle)
        """
        frame = current_frame.get()
        if frame is not None and frame.bus is self and not frame.result.is_finished:
            raise DeadlockError(
                f"wait_until_idle() from handler {frame.handler.label} of {self.label} never returns"
            )
        if not self._running and not self._is_idle():
            raise BusNotRunningError(
                f"{self.label} is not running, so its {self._queued} queued event(s) would never be processed"
            )
        with anyio.move_on_after(timeout):
            while not self._is_idle():
                if self._idle is None:
                    self._idle = anyio.Event()
                await self._idle.wait()
            return True
        logger.warning(
            "%s: not idle after %ss (queued=%d, running=%d)",
            self.label,
            timeout,
            self._queued,
            self._in_flight,
        )
        return False

    # ------------------------------------------------------------------ introspection
    def statistics(self) -> BusStatistics:
        """A frozen snapshot: queued and in-flight events, history size, waiting finders, handlers, and the
        serial slot's borrowed tokens and waiters (the shared global slot under ``global-serial``)."""
        limiter = self._limiter
        if self.event_concurrency == "global-serial" and self._running:
            limiter = _runtime.global_serial_limiter()  # the slot this bus's events actually take

        return BusStatistics(
            label=self.label,
            is_running=self._running,
            queued=self._queued,
            in_flight=self._in_flight,
            history_size=len(self._history),
            waiting_finders=len(self._find_waiters),
            handlers=len(self.handlers),
            limiter_borrowed_tokens=limiter.borrowed_tokens if limiter is not None else 0,
            limiter_waiting=limiter.tasks_waiting if limiter is not None else 0,
        )

    # ------------------------------------------------------------------ history queries
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
        return await _finding.find(
            self._history,
            self._find_waiters,
            self._closed,
            pattern,
            where=where,
            child_of=child_of,
            past=past,
            future=future,
            fields=fields,
            is_child_of=self.event_is_child_of,
        )

    def event_is_child_of(self, event: BaseEvent[Any], ancestor: BaseEvent[Any]) -> bool:
        """True when ``ancestor`` is a parent, grandparent... of ``event`` (an event is not its own child)."""
        return _finding.event_is_child_of(event, ancestor, self._lookup)

    def event_is_parent_of(self, event: BaseEvent[Any], descendant: BaseEvent[Any]) -> bool:
        """True when ``event`` is an ancestor of ``descendant``."""
        return self.event_is_child_of(descendant, event)

    def _lookup(self, event_id: str) -> BaseEvent[Any] | None:
        """An event by id from this bus's history, else from any running bus's."""
        found = self._history.get(event_id)
        if found is not None:
            return found
        for bus in list(_running_names.values()):
            found = bus._history.get(event_id)
            if found is not None:
                return found
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot in bubus's bus shape: config, handlers, handler index, history with result
        rows, and the ids still queued (FIFO)."""
        return bus_to_dict(self)

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON."""
        return bus_to_json(self)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> EventBus:
        """Restore a bus from a snapshot written by any bubus runtime. Handlers come back as stubs: attach
        callables by id (``bus.handlers[id].handler = fn``). The restored queue runs in FIFO order once the
        bus runs; rows already finished are never run again.

        :raises EventValidationError: naming the field and value, for malformed input
        """
        return bus_from_json(cls, data)

    def log_tree(self) -> str:
        """The event history as a tree: events, the handler rows under them, children under the handler that
        emitted them. Also logged at DEBUG on ``bubus_anyio``."""
        text = render_tree(self)
        logger.debug("%s", text)
        return text


def _run_in_copied_context(fn: Callable[[E], E], event: E) -> E:
    """Run ``fn(event)`` in a copy of the calling thread's context (so a handler's frame travels along)."""
    return copy_context().run(fn, event)
