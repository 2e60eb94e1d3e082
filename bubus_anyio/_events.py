"""BaseEvent[T]: the typed event, an attrs class its subclasses get without a decorator.

``class CreateUser(BaseEvent[str]): email: str`` is a slotted, keyword-only attrs class whose result type is
``str``. The metaclass does the definition-time work once per class (field rules, result type, compiled
payload checks) so that constructing an event stays cheap. Runtime state (completion signal, captured
context, the buses holding it) lives in private slots, outside the serialised fields.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import typing
import warnings
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
    dataclass_transform,
    overload,
)

import anyio
import attrs
import orjson

from ._backend import Signal
from ._context import current_frame
from ._errors import BusNotRunningError, EventValidationError
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
from ._time import new_timestamp, normalize_timestamp
from ._validation import compile_check, find_mismatch, type_repr

if TYPE_CHECKING:
    from ._bus import EventBus
    from ._handlers import EventHandler

__all__ = ["BaseEvent"]

T = TypeVar("T")

#: Every built-in ``event_*`` field with its annotation, in wire order.
META_FIELDS: dict[str, str] = {
    "event_type": "str",
    "event_version": "str",
    "event_timeout": "float | None",
    "event_slow_timeout": "float | None",
    "event_concurrency": "EventConcurrency | None",
    "event_handler_timeout": "float | None",
    "event_handler_slow_timeout": "float | None",
    "event_handler_concurrency": "EventHandlerConcurrency | None",
    "event_handler_completion": "EventHandlerCompletion | None",
    "event_result_type": "Any",
    "event_id": "str",
    "event_path": "list[str]",
    "event_parent_id": "str | None",
    "event_emitted_by_handler_id": "str | None",
    "event_pending_bus_count": "int",
    "event_created_at": "str",
    "event_status": "EventStatusName",
    "event_started_at": "str | None",
    "event_completed_at": "str | None",
}
#: Fields that exist on the object but are not user-settable defaults / payload.
RUNTIME_FIELDS = frozenset({"event_results"})
#: Names a payload may not use because upstream reserves them (on top of our own methods).
UPSTREAM_RESERVED = frozenset({"bus", "first", "toString", "toJSON", "fromJSON"})

_TIMEOUT_FIELDS = (
    "event_timeout",
    "event_slow_timeout",
    "event_handler_timeout",
    "event_handler_slow_timeout",
)
_STATUSES = frozenset({"pending", "started", "completed"})

#: (field name, check, annotation, the annotation when it is a scalar type: a value of exactly that type
#: passes without calling the check)
PayloadCheck = tuple[str, Callable[[object], bool], Any, type | None]

_runtime: Any = None


def _get_runtime() -> Any:
    global _runtime
    if _runtime is None:
        from . import _awaiting as runtime

        _runtime = runtime
    return _runtime


def _result_type_of(namespace: Mapping[str, Any]) -> tuple[bool, Any]:
    """``(found, T)`` from ``class X(BaseEvent[T])``; ``T`` is None for ``BaseEvent[None]``."""
    for base in namespace.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, _EventMeta):
            args = typing.get_args(base)
            if not args or isinstance(args[0], TypeVar):
                return False, None
            arg = args[0]
            return True, (None if arg is None or arg is type(None) else arg)
    return False, None


@dataclass_transform(kw_only_default=True, field_specifiers=(attrs.field, attrs.Factory))
class _EventMeta(type):
    """Turns every subclass of :class:`BaseEvent` into a slotted, keyword-only attrs class."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _EventMeta:
        if "__attrs_attrs__" in namespace:  # attrs rebuilding the class with slots: leave it alone
            return super().__new__(mcls, name, bases, namespace, **kwargs)
        slots = namespace.pop("__bubus_slots__", True)
        is_root = not any(isinstance(base, _EventMeta) for base in bases)
        annotations: dict[str, Any] = namespace.setdefault("__annotations__", {})
        if not is_root:
            _check_field_names(name, annotations, namespace)
            for key in list(namespace):
                if key in META_FIELDS and key not in annotations:
                    annotations[key] = META_FIELDS[key]
            if "event_type" not in namespace:
                annotations["event_type"] = "str"
                namespace["event_type"] = name
            found, result_type = _result_type_of(namespace)
            if found and "event_result_type" not in namespace:
                annotations["event_result_type"] = "Any"
                namespace["event_result_type"] = result_type
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        cls = attrs.define(slots=slots, kw_only=True, eq=False, weakref_slot=True)(cls)
        _prepare_class(cls)
        return cls


def _check_field_names(class_name: str, annotations: Mapping[str, Any], namespace: Mapping[str, Any]) -> None:
    for field_name, annotation in annotations.items():
        if isinstance(annotation, str) and annotation.replace("typing.", "").startswith("ClassVar"):
            continue
        if typing.get_origin(annotation) is ClassVar:
            continue
        if field_name.startswith("event_") and field_name not in META_FIELDS:
            raise TypeError(
                f"{class_name}.{field_name}: payload fields may not start with 'event_' "
                f"(reserved for event metadata; known ones are {', '.join(META_FIELDS)})"
            )
        if field_name in RUNTIME_FIELDS:
            raise TypeError(
                f"{class_name}.{field_name}: '{field_name}' is managed by the bus and cannot be declared"
            )
        if field_name in _reserved_names() or field_name.startswith("model_"):
            raise TypeError(f"{class_name}.{field_name}: '{field_name}' is a reserved name on events")
    for key in namespace:
        if key.startswith("event_") and key not in META_FIELDS and key not in annotations:
            value = namespace[key]
            if not callable(value) and not isinstance(value, (property, staticmethod, classmethod)):
                raise TypeError(
                    f"{class_name}.{key}: unknown event metadata field (known: {', '.join(META_FIELDS)})"
                )


@functools.cache
def _reserved_names() -> frozenset[str]:
    own = {n for n in dir(BaseEvent) if not n.startswith("_")} - set(META_FIELDS) - RUNTIME_FIELDS
    return frozenset(own | UPSTREAM_RESERVED)


#: ``event_type`` -> the class ``BaseEvent.from_json`` builds for it (the latest definition wins).
EVENT_TYPES: dict[str, type[BaseEvent[Any]]] = {}


def _register(cls: type[BaseEvent[Any]], event_type: str) -> None:
    previous = EVENT_TYPES.get(event_type)
    if (
        previous is not None
        and previous is not cls
        and (previous.__module__, previous.__qualname__) != (cls.__module__, cls.__qualname__)
    ):
        warnings.warn(
            f"event type {event_type!r} is defined twice ({previous.__module__}.{previous.__qualname__} and "
            f"{cls.__module__}.{cls.__qualname__}); from_json() will build the latter",
            UserWarning,
            stacklevel=4,
        )
    EVENT_TYPES[event_type] = cls


def _prepare_class(cls: Any) -> None:
    """Definition-time work: the class's event type, its result check and its payload checks."""
    fields = {a.name: a for a in attrs.fields(cls)}
    event_type = fields["event_type"].default
    cls._bubus_event_type = event_type
    if cls.__name__ != "BaseEvent" and not cls.__name__.startswith("_"):
        _register(cls, event_type)
    result_type = fields["event_result_type"].default
    cls._bubus_result_type = result_type
    cls._bubus_result_check = compile_check(result_type) if result_type is not None else None
    cls._bubus_payload_checks = None
    try:
        _compile_payload_checks(cls)
    except NameError:
        pass  # forward references not defined yet: compiled at first construction


def _payload_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of the payload fields only (the base class's own annotations name types that
    exist only for type checkers, so ``typing.get_type_hints`` on the whole class would fail)."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is BaseEvent or not isinstance(klass, _EventMeta):
            continue
        module = sys.modules.get(klass.__module__)
        globalns = dict(vars(module)) if module is not None else {}
        localns = {klass.__name__: klass, **dict(vars(klass))}
        for name, annotation in inspect.get_annotations(klass).items():
            if name in META_FIELDS or name.startswith("_"):
                continue
            if isinstance(annotation, str):
                annotation = eval(annotation, globalns, localns)
            hints[name] = annotation
    return hints


_SCALAR_TYPES: frozenset[type] = frozenset({int, float, str, bool, bytes})


def _compile_payload_checks(cls: type) -> tuple[PayloadCheck, ...]:
    hints = _payload_hints(cls)
    checks: list[PayloadCheck] = []
    for a in attrs.fields(cls):
        if not a.init or a.name in META_FIELDS or a.name in RUNTIME_FIELDS or a.name.startswith("_"):
            continue
        tp = hints.get(a.name, Any)
        check = compile_check(tp)
        if check is not None:
            checks.append((a.name, check, tp, tp if tp in _SCALAR_TYPES else None))
    result = tuple(checks)
    cls._bubus_payload_checks = result
    return result


# Field factories: the builtin types themselves (a C call, not a Python function per field per event),
# typed for attrs.
_new_str_list = cast("Callable[[], list[str]]", list)
_new_results = cast("Callable[[], dict[str, Any]]", dict)
_new_bus_list = cast("Callable[[], list[EventBus]]", list)
_new_bus_set = cast("Callable[[], set[EventBus]]", set)
_new_any_list = cast("Callable[[], list[Any]]", list)


class BaseEvent(Generic[T], metaclass=_EventMeta):
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
            _normalize_field("event_created_at", self.event_created_at)
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
            self._result_check = _check_for_result_type(self.event_result_type)
        checks = cls._bubus_payload_checks
        if checks is None:
            checks = _compile_payload_checks(cls)
        for name, check, tp, exact in checks:
            value = getattr(self, name)
            if type(value) is not exact and not check(value):
                raise _payload_error(cls, name, tp, value)

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
        if self.event_status not in _STATUSES:
            raise EventValidationError(
                f"{name}.event_status: expected one of {sorted(_STATUSES)}, got {self.event_status!r}",
                field="event_status",
                value=self.event_status,
            )
        event_type: object = self.event_type
        if not _is_event_type_name(event_type):
            raise EventValidationError(
                f"{name}.event_type: expected an identifier not starting with '_', got {event_type!r}",
                field="event_type",
                value=event_type,
            )
        for field in ("event_started_at", "event_completed_at"):
            value = getattr(self, field)
            if value is not None:
                setattr(self, field, _normalize_field(field, value))

    def _check_timeouts(self) -> None:
        name = type(self).__name__
        for field in _TIMEOUT_FIELDS:
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
        if self.event_status != "completed":
            runtime = _runtime if _runtime is not None else _get_runtime()
            yield from runtime.wait_now(self).__await__()
        return self

    async def event_completed(self) -> Self:
        """Wait until this event has completed, in queue order: never processes it ahead of the queue.

        Inside a handler, waiting for an event that is queued behind that handler on a serial bus could never
        finish, so it raises :class:`RuntimeError` at once instead of hanging until a timeout.

        :raises BusNotRunningError: if none of the event's buses is running
        """
        if self.event_status != "completed":
            await _get_runtime().wait_completed(self)
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
            with anyio.fail_after(timeout):
                await _get_runtime().wait_for_results(self)
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
        from ._handlers import EventHandler

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
                from ._calling import schema_error

                kwargs.pop("result")
                kwargs["error"] = schema_error(self, row, value)
        row.update(**kwargs)
        if row.status == "started":  # a row seeded as started marks its event started, as upstream does
            if self.event_status == "pending":
                self.event_status = "started"
            if self.event_started_at is None:
                self.event_started_at = row.started_at
        return row

    def to_dict(self, *, include_results: bool = False) -> dict[str, Any]:
        """The event as a JSON-ready dict in bubus's wire shape."""
        from ._wire_encode import event_to_dict

        return event_to_dict(self, include_results=include_results)

    def to_json(self, *, include_results: bool = False) -> str:
        """The event as compact JSON in bubus's wire shape."""
        from ._wire_encode import event_to_json

        return event_to_json(self, include_results=include_results)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Self:
        """Read an event from JSON (or a decoded dict) written by any bubus runtime.

        On ``BaseEvent`` it returns the registered subclass for the payload's ``event_type`` (or a generic
        event keeping every field); on a subclass it builds that subclass.

        :raises EventValidationError: naming the field and value, for any malformed input
        """
        from ._wire_decode import event_from_json

        return event_from_json(cls, data)  # type: ignore[no-any-return]


def _is_event_type_name(value: object) -> bool:
    return isinstance(value, str) and value.isidentifier() and not value.startswith("_") and len(value) <= 64


def _payload_error(cls: type, name: str, tp: Any, value: Any) -> EventValidationError:
    """``Cls.field: expected int, got '3' (str)``; the path goes deeper for nested values."""
    mismatch = find_mismatch(tp, value)
    if mismatch is None or not mismatch.path:
        detail = f"expected {type_repr(tp)}, got {value!r:.200} ({type(value).__name__})"
        return EventValidationError(
            f"{cls.__name__}.{name}: {detail}", field=name, value=value, expected=type_repr(tp)
        )
    separator = "" if mismatch.path.startswith("[") else "."
    return EventValidationError(
        f"{cls.__name__}.{name}{separator}{mismatch.message}",
        field=f"{name}{separator}{mismatch.path}",
        value=mismatch.value,
        expected=mismatch.expected,
    )


def _include_by_default(row: EventResult[Any]) -> bool:
    return (
        row.status == "completed"
        and row.error is None
        and row.result is not None
        and not isinstance(row.result, BaseEvent)
    )


def _normalize_field(field: str, value: Any, where: str | None = None) -> str:
    """``value`` in canonical timestamp form, or an :class:`EventValidationError` naming the field (after
    ``where``, when given: the wire decoder names the object it reads)."""
    try:
        return normalize_timestamp(value)
    except ValueError as exc:
        label = field if where is None else f"{where}.{field}"
        raise EventValidationError(
            f"{label}: {exc}", field=field, value=value, expected="timestamp"
        ) from None


_schema_checks: dict[bytes, Callable[[object], bool]] = {}


def _check_for_result_type(result_type: Any) -> Callable[[object], bool] | None:
    """A result check for an instance-level result type: a Python type, or a JSON Schema dict from another
    runtime (compiled once per distinct schema: restoring a snapshot meets the same schema many times)."""
    if isinstance(result_type, Mapping):
        from ._schema_checks import compile_schema_check

        schema = dict(cast(Mapping[str, Any], result_type))
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        check = _schema_checks.get(key)
        if check is None:
            if len(_schema_checks) > 4096:
                _schema_checks.clear()
            check = _schema_checks[key] = compile_schema_check(schema)
        return check
    return compile_check(result_type)
