"""What the wire format's two directions share: the converter, the per-class plans, the generic event.

:mod:`._encode` writes events, result rows, handlers and errors as JSON and :mod:`._decode` reads
them back; both import this module and never each other. What they may rely on here:

- :class:`RemoteHandlerError`: a handler error whose class does not exist here, built by the decoder and
  written back by the encoder with its remote type and message;
- :data:`converter`: the one cattrs converter. Its strict structure hooks build payload values when an event
  is read; ``converter.unstructure(x)`` gives the wire shape of events, rows, handlers and errors (the
  encoder's functions, looked up the first time each class is unstructured: the encoder imports this module);
- ``_plan(cls)``: what encoding and decoding one event class needs (payload fields in order, strict decoders,
  the result type's JSON Schema), computed once per class;
- ``_GenericEvent``: the class of events whose type has no class here;
- ``_CHILD_IDS``: child event ids read from the wire whose events are not in this process, recorded by the
  decoder and written again by the encoder.
"""

from __future__ import annotations

import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import attrs
import cattrs
from cattrs.preconf.orjson import make_converter

from .._events._definition import META_FIELDS, RUNTIME_FIELDS, payload_hints
from .._events._errors import EventHandlerError
from .._events._event import BaseEvent
from .._events._results import EventResult
from .._validation._schema import type_to_json_schema

__all__ = ["JSON", "RemoteHandlerError", "converter"]

JSON = dict[str, Any]
_NoneType: Final = type(None)


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


def _make_converter() -> cattrs.Converter:
    """The one converter: strict primitives (no ``'42'`` -> 42), unknown keys in nested objects rejected.
    How bubus objects unstructure to their wire shape is registered by :mod:`._encode`, which owns that
    shape and builds on this module (never the reverse)."""
    conv = make_converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    return conv


#: The module-level converter (orjson preset, strict hooks). ``converter.unstructure(x)`` gives the wire
#: shape of events, rows, handlers and errors; ``converter.structure(v, T)`` builds payload values strictly.
converter: Final = _make_converter()


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


# the entry point of _encode and _decode (unused in this module, hence the ignore)
def _plan(cls: type[BaseEvent[Any]]) -> _Plan:  # pyright: ignore[reportUnusedFunction]
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _build_plan(cls)
    return plan


def _build_plan(cls: type[BaseEvent[Any]]) -> _Plan:
    hints = payload_hints(cls)
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


# ---------------------------------------------------------------------------------------- unresolved children
#: Unresolved child ids of rows read from the wire (their events are not in this process); kept so that
#: writing the row again loses nothing. Rows restored with their children's events do not appear here.
_CHILD_IDS: weakref.WeakKeyDictionary[EventResult[Any], list[str]] = weakref.WeakKeyDictionary()
