"""BaseEvent[T]: the typed event, an attrs class its subclasses get without a decorator.

``class CreateUser(BaseEvent[str]): email: str`` is a slotted, keyword-only attrs class whose result type is
``str``. The metaclass (:mod:`._definition`) does the definition-time work once per class (field rules,
result type, compiled payload checks) so that constructing an event stays cheap. Runtime state
(completion signal, captured context, the buses holding it) lives in private slots, outside the
serialised fields. Awaiting reaches the engine through those buses, and ``to_json``/``from_json`` reach
the wire format through the codec port (:mod:`._codec`): this module imports neither.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Generator, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Self,
    TypeVar,
    cast,
    overload,
)

import anyio
import attrs

from ._codec import wire_codec
from ._context import current_frame
from ._definition import (
    STATUSES,
    TIMEOUT_FIELDS,
    EventMeta,
    PayloadCheck,
    check_for_result_type,
    compile_payload_checks,
    is_event_type_name,
    normalize_field,
    payload_error,
    result_schema_error,
)
from ._errors import BusNotRunningError, EventValidationError
from ._handlers import EventHandler
from ._ids import normalize_uuid, uuid7
from ._modes import (
    EVENT_CONCURRENCY_VALUES,
    HANDLER_COMPLETION_VALUES,
    HANDLER_CONCURRENCY_VALUES,
    EventConcurrency,
    EventHandlerCompletion,
    EventHandlerConcurrency,
    EventStatusName,
)
from ._results import EventResult
from ._time import new_timestamp

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus
    from .._engine._backend import Signal

__all__ = ["BaseEvent"]

T = TypeVar("T")

# Field factories: the builtin types themselves (a C call, not a Python function per field per event),
# typed for attrs.
_new_str_list = cast("Callable[[], list[str]]", list)
_new_results = cast("Callable[[], dict[str, Any]]", dict)
_new_bus_list = cast("Callable[[], list[EventBus]]", list)
_new_bus_set = cast("Callable[[], set[EventBus]]", set)
_new_any_list = cast("Callable[[], list[Any]]", list)


class BaseEvent(Generic[T], metaclass=EventMeta):
    """The base of every event. ``T`` is the type its handlers return.

    Subclass it and annotate payload fields; construct with keyword arguments. Payload values are checked
    strictly (``"3"`` is not an ``int``) and a mismatch raises :class:`EventValidationError` naming the
    field, the expected type and the value. Known ``event_*`` metadata fields may be given new class-level
    defaults (``event_timeout = 5.0``); any other ``event_*`` name is an error when the class is defined.

    ``await event`` waits for it and returns it, never raising handler errors; inside a handler it processes
    the event right away, ahead of the queue. :meth:`event_result` and friends give the handlers' values.
    """

    _bubus_event_type: ClassVar[str]
    _bubus_result_type: ClassVar[Any]
    _bubus_result_check: ClassVar[Callable[[object], bool] | None]
    _bubus_payload_checks: ClassVar[tuple[PayloadCheck, ...] | None]

    event_type: str = "BaseEvent"
    event_version: str = "0.0.1"
    event_timeout: float | None = None
    event_slow_timeout: float | None = None
    event_concurrency: EventConcurrency | None = None
    event_handler_timeout: float | None = None
    event_handler_slow_timeout: float | None = None
    event_handler_concurrency: EventHandlerConcurrency | None = None
    event_handler_completion: EventHandlerCompletion | None = None
    event_result_type: Any = None
    event_id: str = ""
    event_path: list[str] = attrs.field(factory=_new_str_list)
    event_parent_id: str | None = None
    event_emitted_by_handler_id: str | None = None
    event_pending_bus_count: int = 0
    event_created_at: str = ""
    event_status: EventStatusName = "pending"
    event_started_at: str | None = None
    event_completed_at: str | None = None
    event_results: dict[str, EventResult[T]] = attrs.field(factory=_new_results, repr=False)

    # Runtime state: never serialised, never compared.
    _done: Signal | None = attrs.field(default=None, init=False, repr=False)
    _processed: anyio.Event | None = attrs.field(default=None, init=False, repr=False)
    _context: contextvars.Context | None = attrs.field(default=None, init=False, repr=False)
    _buses: list[EventBus] = attrs.field(factory=_new_bus_list, init=False, repr=False)
    _queued_on: set[EventBus] = attrs.field(factory=_new_bus_set, init=False, repr=False)
    #: The parent while this event is unfinished (it counts in the parent's ``_open_children``); cleared at
    #: completion so that parents and children do not form reference cycles, which only the cyclic garbage
    #: collector could free. ``_parent_ref`` keeps answering ``event_parent`` as long as the parent lives.
    _parent: BaseEvent[Any] | None = attrs.field(default=None, init=False, repr=False)
    _parent_ref: weakref.ref[BaseEvent[Any]] | None = attrs.field(default=None, init=False, repr=False)
    _open_children: int = attrs.field(default=0, init=False, repr=False)
    _runs: list[Any] = attrs.field(factory=_new_any_list, init=False, repr=False)
    _result_check: Callable[[object], bool] | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        cls = type(self)
        self.event_id = normalize_uuid(self.event_id) if self.event_id else str(uuid7())
        self.event_created_at = (
            normalize_field("event_created_at", self.event_created_at)
            if self.event_created_at
            else new_timestamp()
        )
        if (
            self.event_concurrency is not None
            or self.event_handler_concurrency is not None
            or self.event_handler_completion is not None
            or self.event_status != "pending"
            or self.event_type != cls._bubus_event_type
            or self.event_started_at is not None
            or self.event_completed_at is not None
        ):
            self._check_metadata()
        elif (
            self.event_timeout is not None
            or self.event_slow_timeout is not None
            or self.event_handler_timeout is not None
            or self.event_handler_slow_timeout is not None
        ):
            self._check_timeouts()  # the common case of a non-default: a per-event timeout
        if self.event_result_type is cls._bubus_result_type:
            self._result_check = cls._bubus_result_check
        elif self.event_result_type is not None:
            self._result_check = check_for_result_type(self.event_result_type)
        checks = cls._bubus_payload_checks
        if checks is None:
            checks = compile_payload_checks(cls)
        for name, check, tp, exact in checks:
            value = getattr(self, name)
            if type(value) is not exact and not check(value):
                raise payload_error(cls, name, tp, value)

    def _check_metadata(self) -> None:
        self._check_timeouts()
        name = type(self).__name__
        for field, allowed in (
            ("event_concurrency", EVENT_CONCURRENCY_VALUES),
            ("event_handler_concurrency", HANDLER_CONCURRENCY_VALUES),
            ("event_handler_completion", HANDLER_COMPLETION_VALUES),
        ):
            value = getattr(self, field)
            if value is not None and value not in allowed:
                raise EventValidationError(
                    f"{name}.{field}: expected one of {sorted(allowed)} or None, got {value!r}",
                    field=field,
                    value=value,
                    expected=" | ".join(sorted(allowed)),
                )
        if self.event_status not in STATUSES:
            raise EventValidationError(
                f"{name}.event_status: expected one of {sorted(STATUSES)}, got {self.event_status!r}",
                field="event_status",
                value=self.event_status,
            )
        event_type: object = self.event_type
        if not is_event_type_name(event_type):
            raise EventValidationError(
                f"{name}.event_type: expected an identifier not starting with '_', got {event_type!r}",
                field="event_type",
                value=event_type,
            )
        for field in ("event_started_at", "event_completed_at"):
            value = getattr(self, field)
            if value is not None:
                setattr(self, field, normalize_field(field, value))

    def _check_timeouts(self) -> None:
        name = type(self).__name__
        for field in TIMEOUT_FIELDS:
            value = getattr(self, field)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value
            ):
                raise EventValidationError(
                    f"{name}.{field}: expected a number >= 0 or None, got {value!r}",
                    field=field,
                    value=value,
                    expected="float >= 0 | None",
                )

    # ------------------------------------------------------------------ identity and display
    def __hash__(self) -> int:
        return hash(self.event_id)

    def __str__(self) -> str:
        icon = {"pending": "⏳", "started": "🏃", "completed": "✅"}.get(self.event_status, "?")
        where = f"{self.event_path[-1]}▶ " if self.event_path else ""
        return f"{where}{self.event_type}#{self.event_id[-4:]} {icon}"

    @property
    def event_label(self) -> str:
        """``Type#abcd``: the type and the last four characters of the id."""
        return f"{self.event_type}#{self.event_id[-4:]}"

    @property
    def event_children(self) -> list[BaseEvent[Any]]:
        """Every event emitted by any handler of this event, in emit order per handler."""
        return [child for row in self.event_results.values() for child in row.event_children]

    @property
    def event_parent(self) -> BaseEvent[Any] | None:
        """The parent event object, when it is known in this process (and, once both completed, still
        referenced somewhere: a completed child does not keep its parent alive)."""
        parent = self._parent
        if parent is None and self._parent_ref is not None:
            parent = self._parent_ref()
        return parent

    @property
    def event_bus(self) -> EventBus:
        """The bus processing this event (inside its handler), else the last bus it was emitted on.

        :raises BusNotRunningError: if the event was never emitted
        """
        frame = current_frame.get()
        if frame is not None and frame.event is self:
            return frame.bus
        if not self._buses:
            raise BusNotRunningError(f"{self.event_label} was never emitted on a bus")
        return self._buses[-1]

    @property
    def bus(self) -> EventBus:
        """Alias of :attr:`event_bus` (upstream's ``event.bus``; outside a handler we still answer, see
        docs/differences.md)."""
        return self.event_bus

    # ------------------------------------------------------------------ waiting
    def __await__(self) -> Generator[Any, Any, Self]:
        # A generator rather than a coroutine wrapper: one object less per ``await event``.
        # The engine is reached through a bus the event was emitted on (the back-reference ``emit`` sets),
        # so this layer never imports it.
        if self.event_status != "completed":
            buses = self._buses
            if buses:
                yield from buses[0]._wait_now(self).__await__()
            else:
                self._check_nothing_to_process()
        return self

    def _never_emitted(self) -> BusNotRunningError:
        return BusNotRunningError(
            f"{self.event_label} was never emitted on a bus, so nothing would process it"
        )

    def _check_nothing_to_process(self) -> None:
        """``await`` on an event that no bus holds: it can never finish, so this raises; except inside a
        handler for an event already started (restored from JSON, say), which has nothing left to process
        there, so that await returns at once."""
        if self.event_status == "pending" or current_frame.get() is None:
            raise self._never_emitted()

    async def event_completed(self) -> Self:
        """Wait until this event has completed, in queue order: never processes it ahead of the queue.

        Inside a handler, waiting for an event that is queued behind that handler on a serial bus could never
        finish, so it raises :class:`RuntimeError` at once instead of hanging until a timeout.

        :raises BusNotRunningError: if none of the event's buses is running
        """
        if self.event_status != "completed":
            if not self._buses:
                raise self._never_emitted()
            await self._buses[0]._wait_completed(self)
        return self

    @overload
    async def event_result(
        self,
        timeout: float | None = None,
        include: Callable[[EventResult[T]], bool] | None = None,
        raise_if_any: bool = True,
        raise_if_none: Literal[True] = True,
    ) -> T: ...
    @overload
    async def event_result(
        self,
        timeout: float | None = None,
        include: Callable[[EventResult[T]], bool] | None = None,
        raise_if_any: bool = True,
        *,
        raise_if_none: bool,
    ) -> T | None: ...
    async def event_result(
        self,
        timeout: float | None = None,
        include: Callable[[EventResult[T]], bool] | None = None,
        raise_if_any: bool = True,
        raise_if_none: bool = True,
    ) -> T | None:
        """The first included handler value, once the event is done (inside a handler: processed now).

        :param timeout: seconds to wait (default: the event's ``event_timeout``); :class:`TimeoutError` after
        :param include: which rows count (default: completed, no error, value not None and not an event)
        :param raise_if_any: re-raise a handler's error (one) or an :class:`ExceptionGroup` (several)
        :param raise_if_none: raise :class:`ValueError` when no row is included
        """
        values = await self.event_results_list(timeout, include, raise_if_any, raise_if_none)
        return values[0] if values else None

    async def event_results_list(
        self,
        timeout: float | None = None,
        include: Callable[[EventResult[T]], bool] | None = None,
        raise_if_any: bool = True,
        raise_if_none: bool = True,
    ) -> list[T]:
        """Every included handler value, in row order (exact-type handlers, then wildcard ones), with the
        same waiting and raising rules as :meth:`event_result`."""
        if timeout is None:
            timeout = self.event_timeout
        if self.event_status != "completed":
            if self._buses:
                with anyio.fail_after(timeout):
                    await self._buses[0]._wait_for_results(self)
            else:
                self._check_nothing_to_process()
        return self._collect(include, raise_if_any, raise_if_none)

    async def first(
        self, timeout: float | None = None, *, raise_if_any: bool = False, raise_if_none: bool = False
    ) -> T | None:
        """Run with ``event_handler_completion='first'`` and return the first non-None value (or None).

        Handlers after the winner are cancelled (serial) or aborted (parallel); see the concurrency docs.
        """
        if self.event_status == "pending":
            self.event_handler_completion = "first"
        values = await self.event_results_list(timeout, None, raise_if_any, raise_if_none)
        return values[0] if values else None

    def _collect(
        self, include: Callable[[EventResult[T]], bool] | None, raise_if_any: bool, raise_if_none: bool
    ) -> list[T]:
        rows = list(self.event_results.values())
        if raise_if_any:
            errors = [row.error for row in rows if row.error is not None]
            if len(errors) == 1:
                raise errors[0]
            if errors:
                raise ExceptionGroup(
                    f"Event {self.event_label} had {len(errors)} handler error(s)",
                    [e if isinstance(e, Exception) else RuntimeError(repr(e)) for e in errors],
                )
        included = include or _include_by_default
        values = [row.result for row in rows if included(row)]
        if not values and raise_if_none:
            raise ValueError(
                f"Expected at least one handler to return a non-None result for {self.event_label}, "
                f"got none from {len(rows)} handler(s)"
            )
        return values  # type: ignore[return-value]

    # ------------------------------------------------------------------ lifecycle helpers
    def event_reset(self) -> Self:
        """A fresh copy to emit again: new id, ``pending``, no results; payload, path, parent kept."""
        fresh = attrs.evolve(
            self,
            event_id="",
            event_status="pending",
            event_started_at=None,
            event_completed_at=None,
            event_pending_bus_count=0,
            event_path=list(self.event_path),
            event_results={},
        )
        extra: dict[str, Any] | None = getattr(self, "__dict__", None)
        if extra:  # a generic event read from the wire keeps its payload in __dict__
            vars(fresh).update(extra)
        return fresh

    def event_result_update(
        self, handler: EventHandler | Callable[..., Any], eventbus: EventBus | None = None, **kwargs: Any
    ) -> EventResult[T]:
        """Create (``pending``) or update the row for ``handler``: ``status=``, ``result=``, ``error=``,
        ``timeout=``. Used to seed rows, for example when restoring a snapshot. A row that ends up
        ``started`` marks a pending event started (``event_started_at`` = the row's ``started_at``)."""
        if not isinstance(handler, EventHandler):
            bus = eventbus or (self._buses[-1] if self._buses else None)
            handler = EventHandler.from_callable(
                handler,
                event_pattern=self.event_type,
                eventbus_name=bus.name if bus is not None else "EventBus",
                eventbus_id=bus.id if bus is not None else "00000000-0000-0000-0000-000000000000",
            )
        row = self.event_results.get(handler.id)
        if row is None:
            row = EventResult[T](event_id=self.event_id, handler=handler)
            self.event_results[handler.id] = row
        if "result" in kwargs and kwargs["result"] is not None:
            value = kwargs["result"]
            check = self._result_check
            if check is not None and not isinstance(value, BaseEvent) and not check(value):
                kwargs.pop("result")
                kwargs["error"] = result_schema_error(self, row, value)
        row.update(**kwargs)
        if row.status == "started":  # a row seeded as started marks its event started, as upstream does
            if self.event_status == "pending":
                self.event_status = "started"
            if self.event_started_at is None:
                self.event_started_at = row.started_at
        return row

    def to_dict(self, *, include_results: bool = False) -> dict[str, Any]:
        """The event as a JSON-ready dict in bubus's wire shape."""
        return wire_codec().to_dict(self, include_results)

    def to_json(self, *, include_results: bool = False) -> str:
        """The event as compact JSON in bubus's wire shape."""
        return wire_codec().to_json(self, include_results)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Self:
        """Read an event from JSON (or a decoded dict) written by any bubus runtime.

        On ``BaseEvent`` it returns the registered subclass for the payload's ``event_type`` (or a generic
        event keeping every field); on a subclass it builds that subclass.

        :raises EventValidationError: naming the field and value, for any malformed input
        """
        return cast(Self, wire_codec().from_json(cls, data))


def _include_by_default(row: EventResult[Any]) -> bool:
    return (
        row.status == "completed"
        and row.error is None
        and row.result is not None
        and not isinstance(row.result, BaseEvent)
    )
