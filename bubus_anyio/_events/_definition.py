"""Defining an event class: the field rules, the metaclass, and the checks compiled once per class.

``class CreateUser(BaseEvent[str]): email: str`` runs :class:`EventMeta` once: it checks the field names
(``event_*`` is reserved for the metadata in :data:`META_FIELDS`), records the result type ``str``, makes
the class a slotted keyword-only attrs class, registers its ``event_type`` for ``from_json``
(:data:`EVENT_TYPES`) and compiles its payload checks, so that constructing an event stays cheap. The
checks an instance runs (and the errors they raise, naming field and value) live here too; the class
itself is in :mod:`._event`, which builds on this module.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast, dataclass_transform

import attrs
import orjson

from .._validation._schema_checks import compile_schema_check
from .._validation._types import compile_check, describe_mismatch, find_mismatch, type_repr
from ._errors import EventHandlerResultSchemaError, EventValidationError
from ._time import normalize_timestamp

if TYPE_CHECKING:
    from ._event import BaseEvent
    from ._results import EventResult

__all__ = ["EVENT_TYPES", "META_FIELDS", "UPSTREAM_RESERVED", "result_schema_error"]

#: The root class the metaclass made (``BaseEvent``), known here without importing it.
_roots: list[type] = []


def _root_class() -> type:
    return _roots[0]


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

TIMEOUT_FIELDS = (
    "event_timeout",
    "event_slow_timeout",
    "event_handler_timeout",
    "event_handler_slow_timeout",
)
STATUSES = frozenset({"pending", "started", "completed"})

#: (field name, check, annotation, the annotation when it is a scalar type: a value of exactly that type
#: passes without calling the check)
PayloadCheck = tuple[str, Callable[[object], bool], Any, type | None]


def _result_type_of(namespace: Mapping[str, Any]) -> tuple[bool, Any]:
    """``(found, T)`` from ``class X(BaseEvent[T])``; ``T`` is None for ``BaseEvent[None]``."""
    for base in namespace.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, EventMeta):
            args = typing.get_args(base)
            if not args or isinstance(args[0], TypeVar):
                return False, None
            arg = args[0]
            return True, (None if arg is None or arg is type(None) else arg)
    return False, None


@dataclass_transform(kw_only_default=True, field_specifiers=(attrs.field, attrs.Factory))
class EventMeta(type):
    """Turns every subclass of :class:`BaseEvent` into a slotted, keyword-only attrs class."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> EventMeta:
        if "__attrs_attrs__" in namespace:  # attrs rebuilding the class with slots: leave it alone
            return super().__new__(mcls, name, bases, namespace, **kwargs)
        slots = namespace.pop("__bubus_slots__", True)
        is_root = not any(isinstance(base, EventMeta) for base in bases)
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
        if is_root:
            _roots.append(cls)
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
    own = {n for n in dir(_root_class()) if not n.startswith("_")} - set(META_FIELDS) - RUNTIME_FIELDS
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
        compile_payload_checks(cls)
    except NameError:
        pass  # forward references not defined yet: compiled at first construction


def payload_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of the payload fields only (the base class's own annotations name types that
    exist only for type checkers, so ``typing.get_type_hints`` on the whole class would fail)."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is _root_class() or not isinstance(klass, EventMeta):
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


def compile_payload_checks(cls: type) -> tuple[PayloadCheck, ...]:
    hints = payload_hints(cls)
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


def is_event_type_name(value: object) -> bool:
    return isinstance(value, str) and value.isidentifier() and not value.startswith("_") and len(value) <= 64


def payload_error(cls: type, name: str, tp: Any, value: Any) -> EventValidationError:
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


def result_schema_error(
    event: BaseEvent[Any], row: EventResult[Any], value: Any
) -> EventHandlerResultSchemaError:
    """The error recorded on ``row`` when its handler returned ``value``, which does not match the event's
    result type (a Python type or, for events from another runtime, a JSON Schema)."""
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


def normalize_field(field: str, value: Any, where: str | None = None) -> str:
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


def check_for_result_type(result_type: Any) -> Callable[[object], bool] | None:
    """A result check for an instance-level result type: a Python type, or a JSON Schema dict from another
    runtime (compiled once per distinct schema: restoring a snapshot meets the same schema many times)."""
    if isinstance(result_type, Mapping):
        schema = dict(cast(Mapping[str, Any], result_type))
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        check = _schema_checks.get(key)
        if check is None:
            if len(_schema_checks) > 4096:
                _schema_checks.clear()
            check = _schema_checks[key] = compile_schema_check(schema)
        return check
    return compile_check(result_type)
