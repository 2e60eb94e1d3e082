"""Python types as JSON Schema (draft 2020-12), the wire form of ``event_result_type``.

The output follows pydantic's shape (what upstream Python bubus writes), so upstream readers see familiar
schemas: sorted keys, ``title`` on object schemas and their properties, nested classes under ``$defs`` and
referenced as ``#/$defs/Name``, ``Optional`` as ``anyOf [..., {"type": "null"}]`` and ``"$schema"`` last.

What a caller may rely on: for every type this module represents and every JSON value,
``compile_schema_check(type_to_json_schema(T))`` decides like ``compile_check(T)`` does on that value's
Python form (``tuple``/``set`` become arrays, attrs/dataclass instances become dicts). Two deliberate
departures from pydantic keep that promise: a TypedDict is ``"additionalProperties": false`` (its check
rejects unknown keys), and a ``Literal`` mixing kinds also lists its ``type``s (so ``Literal[1, 'a']``
still rejects ``1.0`` and ``True``).
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, Literal, cast

import attrs

from ._types import is_typeddict, type_hints, typeddict_required_keys
from ._types import unwrap_type as _unwrap

__all__ = ["JSON_SCHEMA_DIALECT", "type_to_json_schema"]

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

JSONSchema = dict[str, Any]

_NoneType: Final = type(None)
_SCALARS: Final[Mapping[object, str]] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    _NoneType: "null",
}
_WRAPPER_NAMES: Final = frozenset({"Required", "NotRequired", "ReadOnly"})
_VERBATIM: Final = frozenset({"default", "enum", "const", "required", "examples"})


class _Unrepresentable(Exception):
    """Raised inside the generator when some part of the type has no JSON form."""


def type_to_json_schema(tp: object) -> JSONSchema | None:
    """The JSON Schema of ``tp``, with ``"$schema"`` set, or ``None`` when there is no declared type.

    ``None`` is returned for ``None`` itself (``BaseEvent[None]`` means "no result type", as upstream; use
    ``type(None)`` for a value that must be null), ``Any``, ``object``, an unbound ``TypeVar``, and any type
    with a part that has no JSON form (``bytes``, arbitrary classes). ``Any`` *nested* in a container is
    ``{}`` (anything). Supported: ``int``, ``float``, ``str``, ``bool``, ``NoneType``, ``list``/``set``/
    ``frozenset``/``tuple``/``dict`` and their ``collections.abc`` counterparts, ``Optional``/unions,
    ``Literal``, ``Enum`` classes, ``Annotated`` and ``NewType`` (looked through), attrs classes,
    dataclasses and TypedDicts (recursive ones too). A fresh dict is returned on each call.
    """
    if tp is None:
        return None
    generator = _Generator()
    try:
        schema = generator.top(tp)
    except _Unrepresentable:
        return None
    if not schema:  # Any, object, unbound TypeVar: no declared type
        return None
    result = _pydantic_sorted(schema)
    result["$schema"] = JSON_SCHEMA_DIALECT
    return result


def _title(name: str) -> str:
    """pydantic's default field title: ``unit_price`` -> ``Unit Price``."""
    return name.title().replace("_", " ")


def _is_anything(tp: object) -> bool:
    tp = _unwrap(tp)
    if isinstance(tp, typing.TypeVar):
        return tp.__bound__ is None and not tp.__constraints__
    return tp is Any or tp is object


def _is_enum(tp: type) -> bool:
    return issubclass(tp, enum.Enum)


def _is_record_class(tp: type) -> bool:
    return attrs.has(tp) or is_typeddict(tp) or dataclasses.is_dataclass(cast(object, tp))


class _Generator:
    """One schema generation: collects ``$defs`` and counts references to detect recursion."""

    def __init__(self) -> None:
        self.defs: dict[str, JSONSchema] = {}
        self.names: dict[type, str] = {}
        self.refs: dict[type, int] = {}

    def top(self, tp: object) -> JSONSchema:
        tp = _unwrap(tp)
        schema = self.schema(tp)
        if isinstance(tp, type) and tp in self.names and self.refs[tp] == 1:
            schema = self.defs.pop(self.names[tp])  # inline the top class, as pydantic does
        if self.defs:
            schema = {"$defs": self.defs, **schema}
        return schema

    def schema(self, tp: object) -> JSONSchema:
        tp = _unwrap(tp)
        if tp is Any or tp is object:
            return {}
        if tp is None:
            return {"type": "null"}
        scalar = _SCALARS.get(tp) if isinstance(tp, type) else None
        if scalar is not None:
            return {"type": scalar}
        if isinstance(tp, typing.TypeVar):
            if tp.__bound__ is not None:
                return self.schema(tp.__bound__)
            if tp.__constraints__:
                return self._union(tp.__constraints__)
            return {}
        origin = typing.get_origin(tp)
        if origin is not None:
            return self._generic(tp, origin, typing.get_args(tp))
        if isinstance(tp, type):
            if _is_enum(tp) or _is_record_class(tp):
                return self._ref(tp)
            if tp is list or tp is tuple or tp is set or tp is frozenset:
                return {
                    "items": {},
                    "type": "array",
                    **({"uniqueItems": True} if tp in (set, frozenset) else {}),
                }
            if tp is dict:
                return {"type": "object"}
        raise _Unrepresentable(cast(object, tp))

    def _generic(self, tp: object, origin: object, args: tuple[Any, ...]) -> JSONSchema:
        if origin is typing.Union or origin is types.UnionType:
            return self._union(args)
        if origin is Literal:
            return _literal(args)
        if origin is tuple:
            return self._tuple(tp, args)
        if not isinstance(origin, type):
            raise _Unrepresentable(tp)
        if issubclass(origin, Mapping):
            return self._mapping(args)
        items = self.schema(args[0]) if args else {}
        if issubclass(origin, cabc.Set):
            return {"items": items, "type": "array", "uniqueItems": True}
        if issubclass(origin, list) or origin in (cabc.Sequence, cabc.MutableSequence):
            return {"items": items, "type": "array"}
        raise _Unrepresentable(tp)

    def _union(self, members: tuple[Any, ...]) -> JSONSchema:
        if any(_is_anything(member) for member in members):
            return {}  # decided before generating the others, so no orphan $defs are left behind
        branches: list[JSONSchema] = []
        for member in members:
            branch = self.schema(member)
            if not branch:
                return {}
            if branch not in branches:
                branches.append(branch)
        return branches[0] if len(branches) == 1 else {"anyOf": branches}

    def _tuple(self, tp: object, args: tuple[Any, ...]) -> JSONSchema:
        if tp is typing.Tuple:  # noqa: UP006 - the bare alias means tuple[Any, ...]
            return {"items": {}, "type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"items": self.schema(args[0]), "type": "array"}
        if args == ((),):
            args = ()
        schema: JSONSchema = {"maxItems": len(args), "minItems": len(args), "type": "array"}
        if args:
            schema["prefixItems"] = [self.schema(arg) for arg in args]
        return schema

    def _mapping(self, args: tuple[Any, ...]) -> JSONSchema:
        schema: JSONSchema = {"type": "object"}
        if len(args) == 2:
            key = _unwrap(args[0])
            if typing.get_origin(key) is Literal or (isinstance(key, type) and issubclass(key, enum.Enum)):
                schema["propertyNames"] = self.schema(key)
            value = self.schema(args[1])
            if value:
                schema["additionalProperties"] = value
        return schema

    def _ref(self, cls: type) -> JSONSchema:
        self.refs[cls] = self.refs.get(cls, 0) + 1
        name = self.names.get(cls)
        if name is None:
            name = self._name_for(cls)
            self.names[cls] = name
            self.defs[name] = {}  # reserved: a recursive reference finds the name while we build
            self.defs[name].update(self._definition(cls))
        return {"$ref": f"#/$defs/{name}"}

    def _name_for(self, cls: type) -> str:
        taken = set(self.names.values())
        name = cls.__name__
        if name in taken:
            name = (
                f"{cls.__module__}__{cls.__qualname__}".replace(".", "__").replace("<", "").replace(">", "")
            )
        return name

    def _definition(self, cls: type) -> JSONSchema:
        if _is_enum(cls):
            return _enum_definition(cast("type[enum.Enum]", cls))
        hints = type_hints(cls)
        properties: dict[str, JSONSchema] = {}
        required: list[str] = []
        for name, hint, is_required, default in _fields(cls, hints):
            prop = self.schema(hint)
            if "$ref" not in prop:
                prop = {**prop, "title": _title(name)}
                if default is not None:
                    prop["default"] = default[0]
            properties[name] = prop
            if is_required:
                required.append(name)
        schema: JSONSchema = {"properties": properties}
        if required:
            schema["required"] = required
        schema["title"] = cls.__name__
        schema["type"] = "object"
        if is_typeddict(cls):
            schema["additionalProperties"] = False
        return schema


def _fields(cls: type, hints: dict[str, Any]) -> list[tuple[str, object, bool, tuple[object] | None]]:
    """``(name, type, required, (default,) or None)`` for the fields of an attrs class, dataclass or
    TypedDict; a default is only reported when it is a JSON scalar (pydantic writes those)."""
    if is_typeddict(cls):
        required = typeddict_required_keys(cls, hints)
        return [(name, hint, name in required, None) for name, hint in hints.items()]
    fields: list[tuple[str, object, bool, tuple[object] | None]] = []
    if attrs.has(cls):
        for field in attrs.fields(cls):
            default = cast(object, field.default)
            fields.append(
                (field.name, hints.get(field.name, field.type), default is attrs.NOTHING, _scalar(default))
            )
    else:
        for field in dataclasses.fields(cast(Any, cls)):
            no_default = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            fields.append((field.name, hints.get(field.name, field.type), no_default, _scalar(field.default)))
    return fields


def _enum_definition(cls: type[enum.Enum]) -> JSONSchema:
    schema = _literal(tuple(member.value for member in cls))
    values = cast(list[object], schema.pop("enum", None) or [schema.pop("const")])
    return {**schema, "enum": values, "title": cls.__name__}


def _scalar(default: object) -> tuple[object] | None:
    if default is None or type(default) in (bool, int, float, str):
        return (default,)
    return None


def _literal(values: tuple[Any, ...]) -> JSONSchema:
    plain: list[object] = [v.value if isinstance(v, enum.Enum) else v for v in values]
    kinds: list[str] = []
    for value in plain:
        kind = _SCALARS.get(type(value))
        if kind is None:
            raise _Unrepresentable(value)
        if kind not in kinds:
            kinds.append(kind)
    schema: JSONSchema = {"const": plain[0]} if len(plain) == 1 else {"enum": plain}
    schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    return schema


def _pydantic_sorted(schema: object) -> Any:
    """Sort keys recursively as pydantic does; field order under ``properties`` and literal values (``enum``,
    ``const``, ``default``, ``required``) are kept as they are."""
    if isinstance(schema, list):
        return [_pydantic_sorted(item) for item in cast(list[object], schema)]
    if not isinstance(schema, dict):
        return schema
    mapping = cast(dict[str, object], schema)
    result: dict[str, object] = {}
    for key in sorted(mapping):
        child = mapping[key]
        if key in _VERBATIM:
            result[key] = child
        elif key in ("properties", "$defs", "patternProperties"):
            named = cast(dict[str, object], child)
            names = list(named) if key == "properties" else sorted(named)
            result[key] = {name: _pydantic_sorted(named[name]) for name in names}
        else:
            result[key] = _pydantic_sorted(child)
    return result
