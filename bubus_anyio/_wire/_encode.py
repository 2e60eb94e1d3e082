"""Writing the JSON wire format: events, result rows, handlers and errors, as upstream bubus (Python 2.x,
TypeScript) write them.

What a caller may rely on:

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

The way back is :mod:`._decode`. The two never import each other: what they share (the converter,
the per-class plans, :class:`~._convert.RemoteHandlerError`) lives in :mod:`._convert`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from typing import Any, Final, cast

import attrs
import orjson

from .._events._errors import EventValidationError
from .._events._event import BaseEvent
from .._events._handlers import EventHandler
from .._events._results import EventResult
from ._convert import _CHILD_IDS, _PLANS, JSON, RemoteHandlerError, _NoneType, _plan, _schema_for, converter

__all__ = [
    "error_to_dict",
    "event_to_dict",
    "event_to_json",
    "handler_to_dict",
    "json_value",
    "result_to_dict",
]


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


# ---------------------------------------------------------------------------------------- events, rows, handlers
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


def _is_event_class(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseEvent)


def _is_error_class(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseException)


# The wire shape of bubus objects is this module's to define, so it registers it on the shared converter:
# ``converter.unstructure(x)`` then writes events, rows, handlers and errors as the functions above do.
converter.register_unstructure_hook_func(_is_event_class, event_to_dict)
converter.register_unstructure_hook_func(lambda tp: tp is EventResult, result_to_dict)
converter.register_unstructure_hook_func(lambda tp: tp is EventHandler, handler_to_dict)
converter.register_unstructure_hook_func(_is_error_class, error_to_dict)
