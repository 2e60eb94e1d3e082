"""Reading the JSON wire format: events, result rows, handlers and errors, as upstream bubus (Python 2.x,
TypeScript) write them.

Reading accepts what Python 2.x and TypeScript 2.x write: missing keys mean unset, ``event_results`` as a
list or a map, errors as ``{}``, strings or ``{type, message}``, timestamps with 0-9 fractional digits or
an offset, integers where floats are expected, integers beyond 64 bits (kept exact). Anything else
raises :class:`EventValidationError` naming the field and the value, before any event is built: non-string
keys, on a subclass an ``event_type`` other than its own, two rows for one handler...

Only :mod:`._convert` is needed here (strict structure hooks, per-class plans); events are written by
:mod:`._encode`.

Longer than 500 lines because it is the one strict reader of every object on the wire (events, rows,
handlers, errors, timestamps, ids), and every branch is an upstream variant that must fail with a named
field; its shared parts live in :mod:`._convert`.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import cattrs
import orjson

from .._events import _errors
from .._events._definition import EVENT_TYPES, META_FIELDS, UPSTREAM_RESERVED, normalize_field
from .._events._errors import EventHandlerError, EventValidationError
from .._events._event import BaseEvent
from .._events._handlers import EventHandler
from .._events._ids import normalize_uuid
from .._events._results import EventResult
from ._convert import _CHILD_IDS, _PLANS, RemoteHandlerError, _GenericEvent, _Plan, _plan

__all__ = [
    "child_ids_of",
    "decode_event",
    "event_from_json",
    "handler_from_dict",
    "link_children",
    "load_object",
]


_DEFAULT: Final = object()  # a meta decoder's "leave the class default" answer
_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_GENERIC_FORBIDDEN: Final = frozenset(dir(_GenericEvent)) | UPSTREAM_RESERVED


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
    return normalize_field(field, value, where)


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
    if event_type is None and cls is not BaseEvent and cls is not _GenericEvent:
        # missing (or null) on a subclass: the class's own type, as upstream (missing equals null on input)
        event_type = cls._bubus_event_type  # pyright: ignore[reportPrivateUsage]
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
