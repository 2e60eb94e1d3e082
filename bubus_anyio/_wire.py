"""The JSON wire format: events, result rows, handlers and errors, as upstream bubus (Python 2.x, TypeScript)
write and read them.

Writing (what a caller may rely on):

- every built-in ``event_*`` key is written, ``null`` when unset, in upstream Python's key order, then the
  payload flat beside them (declared fields in class order; a generic event's fields in the order read);
- ``event_result_type`` is a JSON Schema (a schema read from the wire is written back unchanged);
- timestamps are canonical (30 characters, UTC, 9 fractional digits), ids are lowercase uuids;
- values become JSON types: attrs/dataclass instances become objects, tuples and sets arrays, enums their
  value, an event its ``event_id`` (at any depth, never recursively), anything else its ``repr``;
- values JSON cannot carry (NaN/infinite floats, integers beyond 64 bits, bytes, a value containing
  itself) raise :class:`EventValidationError` naming the field's path, in the payload or a row's result;
- errors are ``{"type": <class name>, "message": str(error)}``;
- ``include_results=True`` adds the TypeScript-style ``event_results`` list of flat rows (every key of
  the reference's row table, ``null`` when unset).

Reading accepts what Python 2.x and TypeScript 2.x write: missing keys mean unset, ``event_results`` as a
list or a map, errors as ``{}``, strings or ``{type, message}``, timestamps with 0-9 fractional digits or
an offset, integers where floats are expected, integers beyond 64 bits (kept exact). Anything else
raises :class:`EventValidationError` naming the field and the value, before any event is built: non-string
keys, on a subclass an ``event_type`` other than its own, two rows for one handler...
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import enum
import json
import re
import typing
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import attrs
import cattrs
import orjson
from cattrs.preconf.orjson import make_converter

from . import _errors
from ._errors import EventHandlerError, EventValidationError
from ._events import (
    EVENT_TYPES,
    META_FIELDS,
    RUNTIME_FIELDS,
    UPSTREAM_RESERVED,
    BaseEvent,
    _payload_hints,  # pyright: ignore[reportPrivateUsage]
)
from ._handlers import EventHandler
from ._ids import normalize_uuid
from ._results import EventResult
from ._schema import type_to_json_schema
from ._time import normalize_timestamp

__all__ = [
    "RemoteHandlerError",
    "converter",
    "decode_event",
    "error_to_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
    "handler_from_dict",
    "handler_to_dict",
    "json_value",
    "link_children",
    "load_object",
    "result_to_dict",
]

JSON = dict[str, Any]
_NoneType: Final = type(None)
_DEFAULT: Final = object()  # a meta decoder's "leave the class default" answer
_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class RemoteHandlerError(EventHandlerError):
    """A handler error read from the wire whose class does not exist here.

    Errors read back become the matching bubus error class (``EventHandlerTimeoutError``...) or built-in
    exception (``ValueError``...) when there is one; anything else (a TypeScript ``Error``, a user's class)
    becomes this, and is written back with its original type name and message.

    :ivar type: the error's class name in the runtime that raised it (``"Error"`` when it was not sent)
    :ivar message: its message
    """

    def __init__(self, type: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.type = type
        self.message = message

    def __repr__(self) -> str:
        return f"RemoteHandlerError({self.type!r}, {self.message!r})"


# ---------------------------------------------------------------------------------------- the converter
def _structure_int(value: object, _: object) -> int:
    if type(value) is int:
        return value
    raise TypeError(f"expected int, got {value!r}")


def _structure_float(value: object, _: object) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise TypeError(f"expected float, got {value!r}")


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected str, got {value!r}")


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise TypeError(f"expected bool, got {value!r}")


def _is_event_class(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseEvent)


def _make_converter() -> cattrs.Converter:
    """The one converter: strict primitives (no ``'42'`` -> 42), unknown keys in nested objects rejected,
    bubus objects unstructured to their wire shape."""
    conv = make_converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_unstructure_hook_func(_is_event_class, lambda event: event_to_dict(event))
    conv.register_unstructure_hook_func(lambda tp: tp is EventResult, lambda row: result_to_dict(row))
    conv.register_unstructure_hook_func(lambda tp: tp is EventHandler, lambda entry: handler_to_dict(entry))
    conv.register_unstructure_hook_func(
        lambda tp: isinstance(tp, type) and issubclass(tp, BaseException), lambda exc: error_to_dict(exc)
    )
    return conv


#: The module-level converter (orjson preset, strict hooks). ``converter.unstructure(x)`` gives the wire
#: shape of events, rows, handlers and errors; ``converter.structure(v, T)`` builds payload values strictly.
converter: Final = _make_converter()


# ---------------------------------------------------------------------------------------- values
#: What orjson can write: integers in [-2**63, 2**64 - 1]; beyond that it raises a bare TypeError.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_BIG_INT: Final = "integers beyond 64 bits cannot be written (orjson's limit)"
#: Written as they are, no check needed.
_PLAIN: Final = frozenset({str, bool, _NoneType})
#: ``event_to_json``'s fast path: ints too, checked only when orjson refuses one.
_FAST: Final = frozenset({str, int, bool, _NoneType})


class _Unwritable(Exception):
    """A value with no JSON form, found while walking a value; ``keys`` is the path to it, innermost first
    (each container level appends its key on the way out)."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.keys: list[str | int] = []

    def path(self, field: str) -> str:
        """The dotted path from ``field`` (``box.items[2].x``)."""
        for key in reversed(self.keys):
            field = f"{field}[{key}]" if type(key) is int else f"{field}.{key}" if field else str(key)
        return field

    def error(self, where: str, field: str) -> EventValidationError:
        path = self.path(field)
        return EventValidationError(
            f"{where}.{path}: {self.reason}, got {self.value!r:.200}", field=path, value=self.value
        )


def _json_key(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, enum.Enum):
        return str(cast(object, key.value))
    return str(key)


def json_value(value: object) -> Any:
    """``value`` as JSON types: attrs/dataclass instances -> objects (their ``init`` fields), tuples/sets
    -> arrays, enums -> their value, events -> their ``event_id`` (never written recursively), datetimes
    -> ISO strings, anything unknown -> its ``repr``.

    :raises EventValidationError: a value JSON cannot carry: NaN or infinite floats, integers beyond 64
        bits, bytes, or a value that contains itself; ``.field`` is its path inside ``value``
    """
    return _field_json("value", "", value)


def _field_json(where: str, field: str, value: object) -> Any:
    """:func:`_to_json` with its failures as an :class:`EventValidationError` naming ``where.field...``."""
    try:
        return _to_json(value)
    except _Unwritable as exc:
        raise exc.error(where, field) from None
    except RecursionError:
        raise EventValidationError(
            f"{where}.{field}: the value contains itself (or is nested too deeply) and cannot be written",
            field=field or None,
            value=value,
        ) from None


def _to_json(value: object) -> Any:
    t = type(value)
    if t in _PLAIN:
        return value
    if t is int:
        if _INT_MIN <= cast(int, value) <= _INT_MAX:
            return value
        raise _Unwritable(value, _BIG_INT)
    if t is float:
        if cast(float, value) - cast(float, value) == 0.0:  # false for NaN and +-inf
            return value
        raise _Unwritable(value, "NaN and infinite floats have no JSON form")
    if t is list or t is tuple:
        return _array(cast(list[object], value))
    if t is dict:
        return _object(cast(dict[object, object], value))
    if isinstance(value, BaseEvent):
        return value.event_id
    if isinstance(value, enum.Enum):
        return _to_json(value.value)
    if isinstance(value, (str, bool)):  # subclasses of the scalars
        return value
    if isinstance(value, (int, float)):
        return _to_json(int(value) if isinstance(value, int) else float(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise _Unwritable(
            cast(object, value), "bytes have no JSON form (encode them as text first, e.g. base64)"
        )
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, BaseException):
        return error_to_dict(value)
    if attrs.has(t):
        return _object({f.name: getattr(value, f.name) for f in attrs.fields(t) if f.init})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _object({f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init})
    if isinstance(value, Mapping):
        return _object(cast(Mapping[object, object], value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return _array(cast(list[object], value))
    return repr(value)


def _array(items: list[object]) -> list[Any]:
    try:
        return [_to_json(item) for item in items]
    except _Unwritable as exc:  # find the failing index (the fast path above does not track it)
        for index, item in enumerate(items):
            try:
                _to_json(item)
            except _Unwritable:
                exc.keys.append(index)
                break
        raise


def _object(mapping: Mapping[object, object]) -> dict[str, Any]:
    try:
        return {_json_key(k): _to_json(v) for k, v in mapping.items()}
    except _Unwritable as exc:
        for key, item in mapping.items():
            try:
                _to_json(item)
            except _Unwritable:
                exc.keys.append(_json_key(key))
                break
        raise


def error_to_dict(error: BaseException) -> JSON:
    """``{"type": <class name>, "message": str(error)}`` (a :class:`RemoteHandlerError` keeps the remote
    type and message it was read with)."""
    if isinstance(error, RemoteHandlerError):
        return {"type": error.type, "message": error.message}
    return {"type": type(error).__name__, "message": str(error)}


# ---------------------------------------------------------------------------------------- per-class plans
@attrs.frozen
class _Plan:
    """What encoding and decoding one event class needs, computed once per class."""

    payload: tuple[str, ...]
    #: payload field -> (its type, a strict structure hook or None when the raw JSON value is checked as is)
    decoders: Mapping[str, tuple[Any, Callable[[Any, Any], Any] | None]]
    required: frozenset[str]
    result_type: Any
    schema: JSON | None
    result_hook: Callable[[Any, Any], Any] | None
    generic: bool
    #: nullable ``event_*`` fields whose class default is not None (so a ``null`` must be passed on)
    null_overrides: frozenset[str]


_PLANS: dict[type, _Plan] = {}
_NULLABLE_META: Final = frozenset(
    {
        "event_timeout",
        "event_slow_timeout",
        "event_concurrency",
        "event_handler_timeout",
        "event_handler_slow_timeout",
        "event_handler_concurrency",
        "event_handler_completion",
        "event_parent_id",
        "event_emitted_by_handler_id",
        "event_started_at",
        "event_completed_at",
    }
)
_JSON_NATIVE: Final[frozenset[object]] = frozenset(
    {int, str, bool, _NoneType, typing.Any, object, list, dict}
)


def _needs_structure(tp: object) -> bool:
    """False when the raw JSON value can be handed to the class's own strict check unchanged."""
    if tp in _JSON_NATIVE or tp is None:
        return False
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return False
    if origin in (list, dict, typing.Union) or type(tp).__name__ == "UnionType":
        return any(_needs_structure(arg) for arg in typing.get_args(tp))
    if origin is typing.Annotated:
        return _needs_structure(typing.get_args(tp)[0])
    return not (isinstance(tp, type) and typing.is_typeddict(tp))


def _plan(cls: type[BaseEvent[Any]]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _build_plan(cls)
    return plan


def _build_plan(cls: type[BaseEvent[Any]]) -> _Plan:
    hints = _payload_hints(cls)
    names: list[str] = []
    decoders: dict[str, tuple[Any, Callable[[Any, Any], Any] | None]] = {}
    required: set[str] = set()
    for field in attrs.fields(cls):
        name = field.name
        if not field.init or name in META_FIELDS or name in RUNTIME_FIELDS or name.startswith("_"):
            continue
        tp = hints.get(name, Any)
        names.append(name)
        decoders[name] = (tp, converter.get_structure_hook(tp) if _needs_structure(tp) else None)
        if field.default is attrs.NOTHING:
            required.add(name)
    result_type: Any = cls._bubus_result_type  # pyright: ignore[reportPrivateUsage]
    schema = _schema_for(result_type)
    result_hook = None
    if result_type is not None and not isinstance(result_type, Mapping) and _needs_structure(result_type):
        result_hook = converter.get_structure_hook(result_type)
    return _Plan(
        payload=tuple(names),
        decoders=decoders,
        required=frozenset(required),
        result_type=result_type,
        schema=schema,
        result_hook=result_hook,
        generic=cls is _GenericEvent,
        null_overrides=frozenset(
            name
            for name in _NULLABLE_META
            if attrs.fields_dict(cls)[name].default is not None  # pyright: ignore[reportUnknownMemberType]
        ),
    )


_SCHEMAS: dict[object, JSON | None] = {}


def _schema_for(result_type: object) -> JSON | None:
    """The JSON Schema of a Python result type (cached per hashable type); a dict is returned unchanged."""
    if result_type is None:
        return None
    if isinstance(result_type, Mapping):
        return cast(JSON, result_type)
    try:
        return _SCHEMAS[result_type]
    except KeyError:
        schema = _SCHEMAS[result_type] = type_to_json_schema(result_type)
        return schema
    except TypeError:  # unhashable type expression
        return type_to_json_schema(result_type)


# ---------------------------------------------------------------------------------------- the generic event
class _GenericEvent(BaseEvent[None]):
    """An event whose type has no class here: every payload field is kept (readable as an attribute) and
    written back unchanged, in the order it was read."""

    __bubus_slots__ = False


_GENERIC_FORBIDDEN: Final = frozenset(dir(_GenericEvent)) | UPSTREAM_RESERVED


# ---------------------------------------------------------------------------------------- encoding
#: Unresolved child ids of rows read from the wire (their events are not in this process); kept so that
#: writing the row again loses nothing. Rows restored with their children's events do not appear here.
_CHILD_IDS: weakref.WeakKeyDictionary[EventResult[Any], list[str]] = weakref.WeakKeyDictionary()


def _child_ids(row: EventResult[Any]) -> list[str]:
    ids = [child.event_id for child in row.event_children]
    if _CHILD_IDS:
        stored = _CHILD_IDS.get(row)
        if stored is not None:
            seen = set(stored)
            return [*stored, *(i for i in ids if i not in seen)]
    return ids


def result_to_dict(row: EventResult[Any]) -> JSON:
    """One result row, flat, every key of the reference's row table in upstream Python's order."""
    handler = row.handler
    error = row.error
    return {
        "id": row.id,
        "status": row.status,
        "event_id": row.event_id,
        "handler_id": handler.id,
        "handler_name": handler.handler_name,
        "handler_file_path": handler.handler_file_path,
        "handler_timeout": handler.handler_timeout,
        "handler_slow_timeout": handler.handler_slow_timeout,
        "handler_registered_at": handler.handler_registered_at,
        "handler_event_pattern": handler.event_pattern,
        "eventbus_id": handler.eventbus_id,
        "eventbus_name": handler.eventbus_name,
        "started_at": row.started_at,
        "completed_at": row.completed_at,
        "result": _field_json(f"event_results[{handler.label}]", "result", row.result),
        "error": None if error is None else error_to_dict(error),
        "event_children": _child_ids(row),
    }


def handler_to_dict(entry: EventHandler) -> JSON:
    """A handler entry as in a bus snapshot (the callable is never written)."""
    return {
        "id": entry.id,
        "handler_name": entry.handler_name,
        "handler_file_path": entry.handler_file_path,
        "handler_timeout": entry.handler_timeout,
        "handler_slow_timeout": entry.handler_slow_timeout,
        "handler_registered_at": entry.handler_registered_at,
        "event_pattern": entry.event_pattern,
        "eventbus_name": entry.eventbus_name,
        "eventbus_id": entry.eventbus_id,
    }


def _encode_event(event: BaseEvent[Any], include_results: bool, fast: frozenset[type]) -> JSON:
    """The event as a wire dict; payload values whose type is in ``fast`` are taken as they are (with
    ``_FAST``, ints too: orjson refuses those beyond 64 bits itself)."""
    cls = type(event)
    plan = _PLANS.get(cls) or _plan(cls)
    result_type = event.event_result_type
    if result_type is None:
        schema = None
    elif result_type is plan.result_type:
        schema = plan.schema
    else:
        schema = _schema_for(result_type)
    out: JSON = {
        "event_type": event.event_type,
        "event_version": event.event_version,
        "event_timeout": event.event_timeout,
        "event_slow_timeout": event.event_slow_timeout,
        "event_concurrency": event.event_concurrency,
        "event_handler_timeout": event.event_handler_timeout,
        "event_handler_slow_timeout": event.event_handler_slow_timeout,
        "event_handler_concurrency": event.event_handler_concurrency,
        "event_handler_completion": event.event_handler_completion,
        "event_result_type": schema,
        "event_id": event.event_id,
        "event_path": list(event.event_path),
        "event_parent_id": event.event_parent_id,
        "event_emitted_by_handler_id": event.event_emitted_by_handler_id,
        "event_pending_bus_count": event.event_pending_bus_count,
        "event_created_at": event.event_created_at,
        "event_status": event.event_status,
        "event_started_at": event.event_started_at,
        "event_completed_at": event.event_completed_at,
    }
    for name in vars(event) if plan.generic else plan.payload:
        value: Any = getattr(event, name)
        t = type(value)  # pyright: ignore[reportUnknownVariableType]
        if (
            t in fast
            or (t is float and value - value == 0.0)  # finite
            or (t is int and _INT_MIN <= value <= _INT_MAX)
        ):
            out[name] = value
        else:
            out[name] = _field_json(event.event_type, name, value)
    if include_results:
        out["event_results"] = [result_to_dict(row) for row in event.event_results.values()]
    return out


def event_to_dict(event: BaseEvent[Any], *, include_results: bool = False) -> JSON:
    """The event as a JSON-ready dict in the wire shape (a fresh dict; nested schemas are copies).

    :raises EventValidationError: a value JSON cannot carry (see :func:`json_value`), naming its field
    """
    out = _encode_event(event, include_results, _PLAIN)
    schema = out["event_result_type"]
    if schema is not None:
        out["event_result_type"] = orjson.loads(orjson.dumps(schema))
    return out


def event_to_json(event: BaseEvent[Any], *, include_results: bool = False) -> str:
    """The event as compact JSON text in the wire shape.

    :raises EventValidationError: a value JSON cannot carry (see :func:`json_value`), naming its field
    """
    out = _encode_event(event, include_results, _FAST)
    try:
        return orjson.dumps(out).decode()
    except TypeError:  # an int beyond 64 bits: encode again checking ints, to name the field
        _encode_event(event, include_results, _PLAIN)
        raise


# ---------------------------------------------------------------------------------------- decoding helpers
def _invalid(where: str, field: str, value: Any, expected: str) -> EventValidationError:
    return EventValidationError(
        f"{where}.{field}: expected {expected}, got {value!r:.200}",
        field=field,
        value=value,
        expected=expected,
    )


def load_object(data: str | bytes | bytearray | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """Parse JSON text (or take a decoded mapping) and require a JSON object at the top level.

    :raises EventValidationError: malformed JSON, or not an object
    """
    if isinstance(data, (str, bytes, bytearray, memoryview)):
        try:
            obj: object = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventValidationError(
                f"{what}: malformed JSON ({exc})",
                value=bytes(data[:200]) if not isinstance(data, str) else data[:200],
            ) from None
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if _LONG_DIGIT_RUN in raw.translate(_DIGITS):
            obj = _exact_loads(raw, obj)
    else:
        obj = data
    if not isinstance(obj, Mapping):
        raise EventValidationError(
            f"{what}: expected a JSON object, got {obj!r:.200} ({type(obj).__name__})",
            value=obj,
            expected="object",
        )
    return cast(Mapping[str, Any], obj)


#: Every byte but the ASCII digits becomes a space: a run of 19 digits then shows as 19 zeros.
_DIGITS: Final = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_DIGIT_RUN: Final = b"0" * 19


def _exact_loads(raw: bytes, parsed: object) -> object:
    """orjson reads an integer literal beyond 64 bits as a float: the text has a 19+ digit run (maybe such
    a literal, maybe a long string of digits), so read it again with the stdlib, which keeps it an int."""
    try:
        return json.loads(raw)
    except ValueError:  # pragma: no cover - orjson accepted the text; keep its reading
        return parsed


def _str(where: str, field: str, value: object) -> Any:
    if type(value) is not str:
        raise _invalid(where, field, value, "string")
    return value


def _opt_str(where: str, field: str, value: object) -> Any:
    return None if value is None else _str(where, field, value)


def _number(where: str, field: str, value: object) -> Any:
    if value is None:
        return None
    if type(value) is not float and type(value) is not int:
        raise _invalid(where, field, value, "number or null")
    return float(value)


def _uuid(where: str, field: str, value: object) -> Any:
    if type(value) is not str:
        raise _invalid(where, field, value, "uuid string")
    if _CANONICAL_UUID.fullmatch(value) is not None:
        return value
    try:
        return normalize_uuid(value)
    except ValueError:
        raise _invalid(where, field, value, "uuid string") from None


def _opt_uuid(where: str, field: str, value: object) -> Any:
    return None if value is None else _uuid(where, field, value)


def _timestamp(where: str, field: str, value: object) -> Any:
    if type(value) is not str:
        raise _invalid(where, field, value, "timestamp string")
    try:
        return normalize_timestamp(value)
    except ValueError as exc:
        raise EventValidationError(
            f"{where}.{field}: {exc}", field=field, value=value, expected="timestamp"
        ) from None


def _event_timestamp(where: str, field: str, value: object) -> Any:
    """An event's own timestamps: type-checked here, normalised (and rejected) by the event's constructor."""
    if value is None or type(value) is str:
        return value
    raise _invalid(where, field, value, "timestamp string")


def _opt_timestamp(where: str, field: str, value: object) -> Any:
    return None if value is None else _timestamp(where, field, value)


def _or_default(decode: Callable[[str, str, object], Any]) -> Callable[[str, str, object], Any]:
    """For fields that cannot be None: null means "use the default" (a missing key does too)."""

    def decode_or_default(where: str, field: str, value: object) -> Any:
        return _DEFAULT if value is None else decode(where, field, value)

    return decode_or_default


def _path(where: str, field: str, value: object) -> Any:
    if value is None:
        return _DEFAULT
    items = cast(list[object], value) if isinstance(value, list) else None
    if items is None or any(type(item) is not str for item in items):
        raise _invalid(where, field, value, "list of bus labels (strings)")
    return list(items)


def _pending_count(where: str, field: str, value: object) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise _invalid(where, field, value, "integer >= 0")
    return _DEFAULT  # a runtime counter of this process: an event read from the wire is on no bus here


def _result_type(where: str, field: str, value: object) -> Any:
    if value is None or isinstance(value, dict):
        return cast(dict[str, Any] | None, value)
    raise _invalid(where, field, value, "JSON Schema object or null")


def _mode(where: str, field: str, value: object) -> Any:
    return _opt_str(where, field, value)  # the event's constructor checks the vocabulary


_META_DECODERS: Final[Mapping[str, Callable[[str, str, object], Any]]] = {
    "event_type": _str,
    "event_version": _or_default(_str),
    "event_timeout": _number,
    "event_slow_timeout": _number,
    "event_concurrency": _mode,
    "event_handler_timeout": _number,
    "event_handler_slow_timeout": _number,
    "event_handler_concurrency": _mode,
    "event_handler_completion": _mode,
    "event_result_type": _result_type,
    "event_id": _or_default(_uuid),
    "event_path": _path,
    "event_parent_id": _opt_uuid,
    "event_emitted_by_handler_id": _opt_uuid,
    "event_pending_bus_count": _pending_count,
    "event_created_at": _or_default(_event_timestamp),
    "event_status": _or_default(_str),
    "event_started_at": _event_timestamp,
    "event_completed_at": _event_timestamp,
}
assert tuple(_META_DECODERS) == tuple(META_FIELDS)

_LEGACY_KEYS: Final = frozenset({"event_schema", "event_processed_at"})


# ---------------------------------------------------------------------------------------- decoding events
def event_from_json(cls: type[BaseEvent[Any]], data: str | bytes | Mapping[str, Any]) -> BaseEvent[Any]:
    """Read one event (JSON text or a decoded object) written by any bubus 2.x runtime.

    On :class:`BaseEvent` the class is looked up by ``event_type`` (unknown types give a generic event that
    keeps every payload field); a subclass reads only its own ``event_type``, and checks its payload strictly.
    ``event_results`` (list or map) become :class:`EventResult` rows with stub handler entries.

    :raises EventValidationError: naming the field and the value; no event is built
    """
    return decode_event(cls, load_object(data, cls.__name__))


def decode_event(
    cls: type[BaseEvent[Any]],
    obj: Mapping[str, Any],
    handlers: Mapping[str, EventHandler] | None = None,
) -> BaseEvent[Any]:
    """:func:`event_from_json` on an already decoded object; result rows link to ``handlers[handler_id]``
    when given (bus restore), else get their own stub entries."""
    event_type = obj.get("event_type")
    if type(event_type) is not str:
        raise _invalid(cls.__name__, "event_type", event_type, "string")
    if _LEGACY_KEYS & obj.keys():
        key = "event_schema" if "event_schema" in obj else "event_processed_at"
        raise EventValidationError(
            f"{event_type}.{key}: this is the bubus 1.x wire format (PyPI bubus <= 1.6), which is not "
            "supported; re-emit the event from bubus 2.x",
            field=key,
            value=obj[key],
        )
    klass = cls
    if cls is BaseEvent:
        klass = EVENT_TYPES.get(event_type, _GenericEvent)
    elif event_type != cls._bubus_event_type and cls is not _GenericEvent:  # pyright: ignore[reportPrivateUsage]
        raise _invalid(
            cls.__name__,
            "event_type",
            event_type,
            f"{cls._bubus_event_type!r} (read other types with BaseEvent.from_json)",  # pyright: ignore[reportPrivateUsage]
        )
    plan = _PLANS.get(klass) or _plan(klass)
    kwargs: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    rows: object = None
    null_overrides = plan.null_overrides
    for key, value in obj.items():
        decode = _META_DECODERS.get(key)
        if decode is not None:
            if value is None:
                if key in null_overrides:  # null beats a class default such as ``event_timeout = 5.0``
                    kwargs[key] = None
                continue
            decoded = decode(event_type, key, value)
            if decoded is not _DEFAULT:
                kwargs[key] = decoded
        elif key == "event_results":
            rows = value
        else:
            try:
                meta = key.startswith("event_")
            except (AttributeError, TypeError):  # not a string (a mapping handed to from_json)
                raise _bad_key(event_type, key, value) from None
            if meta:
                raise EventValidationError(
                    f"{event_type}.{key}: unknown event metadata field (known: {', '.join(META_FIELDS)})",
                    field=key,
                    value=value,
                )
            payload[key] = value
    if plan.result_type is not None:
        kwargs.pop("event_result_type", None)  # the class's own result type wins
    if plan.generic:
        _check_generic_payload(event_type, payload)
    else:
        _decode_payload(klass, plan, event_type, payload, kwargs)
    event = _construct(klass, event_type, kwargs)
    if plan.generic and payload:
        vars(event).update(payload)
    if rows is not None:
        _attach_rows(event, plan, rows, handlers)
    return event


def _bad_key(event_type: str, key: object, value: object) -> EventValidationError:
    return EventValidationError(
        f"{event_type}: keys must be strings, got {key!r:.200} ({type(key).__name__})",
        field=repr(key),
        value=value,
    )


def _check_generic_payload(event_type: str, payload: Mapping[str, Any]) -> None:
    for key in payload:
        if key.startswith(("_", "model_")) or key in _GENERIC_FORBIDDEN:
            raise EventValidationError(
                f"{event_type}.{key}: {key!r} is a reserved name and cannot be a payload field",
                field=key,
                value=payload[key],
            )


def _decode_payload(
    klass: type, plan: _Plan, event_type: str, payload: Mapping[str, Any], kwargs: dict[str, Any]
) -> None:
    decoders = plan.decoders
    for key, value in payload.items():
        entry = decoders.get(key)
        if entry is None:
            raise EventValidationError(
                f"{event_type}.{key}: unknown payload field for {klass.__name__} "
                f"(fields: {', '.join(plan.payload) or 'none'})",
                field=key,
                value=value,
            )
        tp, hook = entry
        if hook is not None:
            try:
                value = hook(value, tp)
            except Exception as exc:
                raise _structure_error(klass, key, value, exc) from None
        kwargs[key] = value
    missing = plan.required - payload.keys()
    if missing:
        key = min(missing)
        raise EventValidationError(
            f"{event_type}.{key}: required payload field of {klass.__name__} is missing",
            field=key,
            expected=str(decoders[key][0]),
        )


def _structure_error(klass: type, field: str, value: object, exc: Exception) -> EventValidationError:
    try:
        details = cattrs.transform_error(exc, path=f"{klass.__name__}.{field}")
    except Exception:  # pragma: no cover - transform_error only knows cattrs' own errors
        details = [f"{exc} @ {klass.__name__}.{field}"]
    return EventValidationError(
        f"{klass.__name__}.{field}: {'; '.join(details)} (got {value!r:.200})", field=field, value=value
    )


def _construct(klass: type[BaseEvent[Any]], event_type: str, kwargs: dict[str, Any]) -> BaseEvent[Any]:
    try:
        return klass(**kwargs)
    except EventValidationError:
        raise
    except (TypeError, ValueError) as exc:
        raise EventValidationError(f"{event_type}: {exc}", value=kwargs) from None


# ---------------------------------------------------------------------------------------- decoding rows
_ROW_KEYS: Final = frozenset(
    {
        "id",
        "status",
        "event_id",
        "handler_id",
        "handler_name",
        "handler_file_path",
        "handler_timeout",
        "handler_slow_timeout",
        "handler_registered_at",
        "handler_event_pattern",
        "eventbus_id",
        "eventbus_name",
        "started_at",
        "completed_at",
        "result",
        "error",
        "event_children",
    }
)
_ROW_STATUSES: Final = frozenset({"pending", "started", "completed", "error"})
_KNOWN_ERRORS: Final[Mapping[str, type[EventHandlerError]]] = {
    cls.__name__: cls
    for cls in (
        _errors.EventHandlerError,
        _errors.EventHandlerTimeoutError,
        _errors.EventHandlerAbortedError,
        _errors.EventHandlerCancelledError,
        _errors.EventHandlerResultSchemaError,
    )
}


def _attach_rows(
    event: BaseEvent[Any], plan: _Plan, rows: object, handlers: Mapping[str, EventHandler] | None
) -> None:
    where = f"{event.event_type}.event_results"
    if isinstance(rows, list):
        items = [(f"{where}[{i}]", raw) for i, raw in enumerate(cast(list[object], rows))]
    elif isinstance(rows, dict):
        items = [(f"{where}[{k!r}]", raw) for k, raw in cast(dict[str, object], rows).items()]
    else:
        raise _invalid(event.event_type, "event_results", rows, "list or map of result rows")
    for row_where, raw in items:
        if not isinstance(raw, dict):
            raise EventValidationError(
                f"{row_where}: expected a result row object, got {raw!r:.200}",
                field="event_results",
                value=raw,
            )
        row = _decode_row(event, plan, row_where, cast(dict[str, Any], raw), handlers)
        handler_id = row.handler.id
        if handler_id in event.event_results:
            raise EventValidationError(
                f"{row_where}.handler_id: a second result row for handler {handler_id} (one row per handler)",
                field="event_results",
                value=handler_id,
            )
        event.event_results[handler_id] = row


def _decode_row(
    event: BaseEvent[Any],
    plan: _Plan,
    where: str,
    raw: Mapping[str, Any],
    handlers: Mapping[str, EventHandler] | None,
) -> EventResult[Any]:
    unknown = raw.keys() - _ROW_KEYS
    if unknown:
        key = min(unknown, key=str)
        raise EventValidationError(
            f"{where}.{key}: unknown result row field (known: {', '.join(sorted(_ROW_KEYS))})",
            field=key,
            value=raw[key],
        )
    status = raw.get("status")
    if status not in _ROW_STATUSES:
        raise _invalid(where, "status", status, " | ".join(sorted(_ROW_STATUSES)))
    event_id = raw.get("event_id")
    if event_id is not None and _uuid(where, "event_id", event_id) != event.event_id:
        raise _invalid(where, "event_id", event_id, f"the owning event's id {event.event_id}")
    handler_id = _uuid(where, "handler_id", raw.get("handler_id"))
    entry = handlers.get(handler_id) if handlers is not None else None
    if entry is None:
        entry = _handler_from_row(event, where, handler_id, raw)
    row: EventResult[Any] = EventResult(
        event_id=event.event_id,
        handler=entry,
        id=_uuid(where, "id", raw.get("id")),
        status=status,
        started_at=_opt_timestamp(where, "started_at", raw.get("started_at")),
        completed_at=_opt_timestamp(where, "completed_at", raw.get("completed_at")),
        result=_decode_result(event, plan, raw.get("result"), entry.handler_name),
    )
    error = raw.get("error")
    if error is not None:
        row.error = _decode_error(event, row, where, error)
    children = raw.get("event_children")
    if children is not None:
        if type(children) is not list:
            raise _invalid(where, "event_children", children, "list of event ids")
        ids = [_uuid(where, "event_children", child) for child in cast(list[object], children)]
        if ids:
            _CHILD_IDS[row] = ids
    return row


def _handler_from_row(
    event: BaseEvent[Any], where: str, handler_id: str, raw: Mapping[str, Any]
) -> EventHandler:
    timeout = _number(where, "handler_timeout", raw.get("handler_timeout"))
    slow = _number(where, "handler_slow_timeout", raw.get("handler_slow_timeout"))
    registered = raw.get("handler_registered_at")
    pattern = raw.get("handler_event_pattern")
    return EventHandler(
        id=handler_id,
        handler=None,
        handler_name=_str(where, "handler_name", raw.get("handler_name", "anonymous")),
        handler_file_path=_opt_str(where, "handler_file_path", raw.get("handler_file_path")),
        handler_timeout=timeout,
        handler_slow_timeout=slow,
        handler_registered_at=(
            event.event_created_at
            if registered is None
            else _timestamp(where, "handler_registered_at", registered)
        ),
        event_pattern=event.event_type if pattern is None else _str(where, "handler_event_pattern", pattern),
        eventbus_name=_str(where, "eventbus_name", raw.get("eventbus_name", "EventBus")),
        eventbus_id=_uuid(where, "eventbus_id", raw.get("eventbus_id")),
        handler_timeout_is_set=timeout is not None,
        handler_slow_timeout_is_set=slow is not None,
    )


def _decode_result(event: BaseEvent[Any], plan: _Plan, value: object, handler_name: str) -> Any:
    """A row's value: the event itself when the row is a forwarder's (its value was the event, written as
    its id or, by Python 2.x, inline); a structured instance when the class's result type needs one."""
    if value is None:
        return None
    if _is_self_reference(event, value, handler_name):
        return event
    hook = plan.result_hook
    if hook is not None:
        try:
            return hook(value, plan.result_type)
        except Exception:
            return value  # kept as read: the row is history, not re-validated
    return value


_FORWARDER_NAMES: Final = (".emit", ".dispatch")


def _is_self_reference(event: BaseEvent[Any], value: object, handler_name: str) -> bool:
    """The event's id is the event only in a forwarder's row (a bus's ``emit``/``dispatch`` as handler);
    any other handler may well return the id string itself. Python's inlined event is unambiguous."""
    if isinstance(value, str):
        return value == event.event_id and handler_name.endswith(_FORWARDER_NAMES)
    if isinstance(value, dict):
        inline = cast(dict[str, object], value)
        return inline.get("event_id") == event.event_id and "event_type" in inline
    return False


#: Built-in exceptions never rebuilt from the wire: raised from a coroutine, ``StopIteration`` and
#: ``StopAsyncIteration`` turn into a misleading RuntimeError; groups need their sub-exceptions.
_NOT_REBUILT: Final = (StopIteration, StopAsyncIteration, BaseExceptionGroup)


def _decode_error(event: BaseEvent[Any], row: EventResult[Any], where: str, value: object) -> BaseException:
    """An error read back: the matching bubus error class or built-in exception when there is one (same
    type name, same message), else a :class:`RemoteHandlerError`."""
    if isinstance(value, str):
        return Exception(value)
    if not isinstance(value, dict):
        raise _invalid(where, "error", value, "error object, string or null")
    obj = cast(dict[str, object], value)
    type_name = obj.get("type", obj.get("name")) or "Error"
    message = obj.get("message") or ""
    if not isinstance(type_name, str) or not isinstance(message, str):
        raise _invalid(where, "error", obj, '{"type": string, "message": string}')
    known = _KNOWN_ERRORS.get(type_name)
    if known is not None:
        return known(message, event=event, handler=row.handler, event_result=row)
    builtin = getattr(builtins, type_name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception) and not issubclass(builtin, _NOT_REBUILT):
        try:
            error = builtin(message)
        except Exception:
            error = None
        if error is not None and str(error) == message:
            return error
    return RemoteHandlerError(type_name, message, event=event, handler=row.handler, event_result=row)


# ---------------------------------------------------------------------------------------- handlers
_HANDLER_KEYS: Final = frozenset(
    {
        "id",
        "handler_name",
        "handler_file_path",
        "handler_timeout",
        "handler_slow_timeout",
        "handler_registered_at",
        "event_pattern",
        "eventbus_name",
        "eventbus_id",
    }
)


def handler_from_dict(raw: object, where: str) -> EventHandler:
    """A stub :class:`EventHandler` (``handler=None``) from its snapshot JSON; attach the callable later
    with ``entry.handler = fn``. A missing or null ``handler_timeout`` reads as "not set".

    :raises EventValidationError: naming the field and the value
    """
    if not isinstance(raw, dict):
        raise EventValidationError(f"{where}: expected a handler object, got {raw!r:.200}", value=raw)
    obj = cast(dict[str, Any], raw)
    unknown = obj.keys() - _HANDLER_KEYS
    if unknown:
        key = min(unknown, key=str)
        raise EventValidationError(f"{where}.{key}: unknown handler field", field=key, value=obj[key])
    timeout = _number(where, "handler_timeout", obj.get("handler_timeout"))
    slow = _number(where, "handler_slow_timeout", obj.get("handler_slow_timeout"))
    registered = obj.get("handler_registered_at")
    return EventHandler(
        id=_uuid(where, "id", obj.get("id")),
        handler=None,
        handler_name=_str(where, "handler_name", obj.get("handler_name", "anonymous")),
        handler_file_path=_opt_str(where, "handler_file_path", obj.get("handler_file_path")),
        handler_timeout=timeout,
        handler_slow_timeout=slow,
        handler_registered_at=_timestamp(where, "handler_registered_at", registered),
        event_pattern=_str(where, "event_pattern", obj.get("event_pattern")),
        eventbus_name=_str(where, "eventbus_name", obj.get("eventbus_name")),
        eventbus_id=_uuid(where, "eventbus_id", obj.get("eventbus_id")),
        handler_timeout_is_set=timeout is not None,
        handler_slow_timeout_is_set=slow is not None,
    )


def child_ids_of(row: EventResult[Any]) -> list[str] | None:
    """The child event ids read for ``row`` that are not linked to event objects yet (None: none)."""
    return _CHILD_IDS.get(row)


def link_children(row: EventResult[Any], lookup: Callable[[str], BaseEvent[Any] | None]) -> None:
    """Replace the child ids read for ``row`` by event objects where ``lookup`` finds them; the ids it
    cannot find stay recorded and are still written."""
    ids = _CHILD_IDS.get(row)
    if not ids:
        return
    found = [lookup(child_id) for child_id in ids]
    row.event_children.extend(child for child in found if child is not None)
    if all(child is not None for child in found):
        del _CHILD_IDS[row]
