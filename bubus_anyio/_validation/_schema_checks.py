"""Strict runtime checks of values against JSON Schemas from other runtimes, compiled once, run many times.

Events read from the wire may declare their result type as a JSON Schema (``event_result_type``, draft
2020-12 as pydantic and zod write it) instead of a Python annotation. :func:`compile_schema_check` turns such
a schema into the same kind of predicate :mod:`._types` builds for Python types (a ``Check``:
``Callable[[object], bool]`` that never raises), composed from the same primitive checks, so a schema written
in TypeScript and a Python type judge a value alike: strictly, without coercion.

A predicate only answers yes or no; once it said no, :func:`describe_schema_mismatch` walks the value again,
slowly, to say where and why (a ``Mismatch``, as :func:`._types.find_mismatch` returns).

This module builds on :mod:`._types`; that module never imports this one.

Longer than 500 lines because every JSON Schema keyword pydantic and zod write needs a compile step and a
mismatch explanation that must stay in step, as in :mod:`._types`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Final, cast

from ._types import (
    _MISSING,
    Check,
    Mismatch,
    _accept,
    _any_of,
    _apply,
    _elements,
    _format,
    _instance_check,
    _is_bool,
    _is_int,
    _is_none,
    _is_number,
    _is_str,
    _join_key,
    _reject,
    _short_repr,
    _trampoline,
)

__all__ = [
    "compile_schema_check",
    "describe_schema_mismatch",
    "find_schema_mismatch",
]

# --------------------------------------------------------------------------------------------------
# JSON Schema (draft 2020-12), as written by pydantic and zod


def _is_array(value: object, /) -> bool:
    return isinstance(value, (list, tuple))


def _all_of(checks: list[Check]) -> Check:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    frozen = tuple(checks)
    return lambda value: all(check(value) for check in frozen)


_UNSUPPORTED_KEYWORDS: Final = frozenset(
    {"unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"}
)
_JSON_TYPE_CHECKS: Final[Mapping[str, Check]] = {
    "integer": _is_int,
    "number": _is_number,
    "string": _is_str,
    "boolean": _is_bool,
    "null": _is_none,
    "array": _is_array,
    "object": _instance_check(dict),
}


def _json_key(value: object) -> object:
    """A hashable key under which JSON-equal values are equal: ``1 == 1.0`` but ``True != 1``."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, (list, tuple)):
        return ("a", tuple(_json_key(item) for item in cast(Iterable[object], value)))
    if isinstance(value, dict):
        items = cast(dict[object, object], value).items()
        return ("o", frozenset((k, _json_key(v)) for k, v in items))
    return ("?", id(value))


def compile_schema_check(schema: Mapping[str, object] | bool) -> Check:
    """Compile a JSON Schema (draft 2020-12, the dialect pydantic and zod write) into a strict predicate.

    Compile once per schema and keep the predicate: compiling walks the whole schema, checking does not.
    Values are Python values as ``orjson``/``json`` decode them, with these choices, made to match zod's
    strict mode and this module's :func:`compile_check`:

    - ``integer`` is a Python ``int`` (not ``bool``, not ``3.0``); ``number`` is ``int`` or ``float``;
    - ``array`` is a ``list`` or ``tuple``; ``object`` is a ``dict`` (not an attrs/dataclass instance);
    - ``enum``, ``const`` and ``uniqueItems`` compare as JSON does (``1`` equals ``1.0``, never ``true``);
    - local ``$ref`` (``#``, ``#/$defs/...``) may be recursive; ``format`` is an annotation only, and a
      ``pattern`` Python's ``re`` cannot compile is skipped, as the reference allows.

    :raises ValueError: for a remote ``$ref`` or an assertion keyword this checker does not implement
        (``unevaluated*``, ``$dynamicRef``), rather than silently accepting too much
    """
    return _SchemaCompiler(schema).compile(schema)


class _SchemaCompiler:
    def __init__(self, root: Mapping[str, object] | bool) -> None:
        self.root = root
        self._cells: dict[int, list[Check]] = {}

    def resolve(self, ref: str) -> Mapping[str, object] | bool:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: object = self.root
        for part in filter(None, ref[1:].split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = cast(Mapping[str, object], node)[part]  # pyright: ignore[reportUnnecessaryCast]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(cast(list[object], node)):
                node = cast(list[object], node)[int(part)]
            else:
                raise ValueError(f"$ref {ref!r} does not resolve")
        if not isinstance(node, (Mapping, bool)):
            raise ValueError(f"$ref {ref!r} does not point at a schema")
        return cast(Mapping[str, object] | bool, node)

    def compile(self, node: object) -> Check:
        if node is True:
            return _accept
        if node is False:
            return _reject
        if not isinstance(node, Mapping):
            raise ValueError(f"not a JSON Schema: {_short_repr(node)}")
        key = id(cast(object, node))
        pending = self._cells.get(key)
        if pending is not None:
            return pending[0] if pending else _trampoline(pending)
        cell: list[Check] = []
        self._cells[key] = cell
        check = self._compile_node(cast(Mapping[str, object], node))
        cell.append(check)
        return check

    def _compile_node(self, node: Mapping[str, object]) -> Check:
        unsupported = _UNSUPPORTED_KEYWORDS.intersection(node)
        if unsupported:
            raise ValueError(f"unsupported JSON Schema keyword(s): {', '.join(sorted(unsupported))}")
        checks: list[Check] = []
        if "$ref" in node:
            checks.append(self.compile(self.resolve(cast(str, node["$ref"]))))
        type_check = _type_check(node.get("type"))
        if node.get("type") == "array" and node.keys() & _ARRAY_KEYWORDS == {"items"}:
            # the common `array of X` shape as one closure, without the general array machinery
            checks.append(_elements(_is_array, self.compile(node["items"])))
        else:
            if type_check is not None:
                checks.append(type_check)
            if node.keys() & _ARRAY_KEYWORDS:
                checks.append(self._array(node))
        if node.keys() & _OBJECT_KEYWORDS:
            checks.append(self._object(node))
        checks.extend(_scalar_checks(node))
        checks.extend(self._combinators(node))
        return _all_of(checks)

    def _combinators(self, node: Mapping[str, object]) -> list[Check]:
        checks: list[Check] = []
        if "allOf" in node:
            checks.append(_all_of([self.compile(s) for s in _schemas(node["allOf"])]))
        if "anyOf" in node:
            checks.append(_any_of([self.compile(s) for s in _schemas(node["anyOf"])]))
        if "oneOf" in node:
            branches = tuple(self.compile(s) for s in _schemas(node["oneOf"]))
            checks.append(lambda v: sum(1 for branch in branches if branch(v)) == 1)
        if "not" in node:
            negated = self.compile(node["not"])
            checks.append(lambda v: not negated(v))
        if "if" in node:
            condition = self.compile(node["if"])
            then = self.compile(node.get("then", True))
            otherwise = self.compile(node.get("else", True))
            checks.append(lambda v: then(v) if condition(v) else otherwise(v))
        return checks

    def _object(self, node: Mapping[str, object]) -> Check:
        properties: dict[object, Check] = {
            k: self.compile(s) for k, s in _mapping(node.get("properties")).items()
        }
        patterns = [
            (re.compile(p), self.compile(s)) for p, s in _mapping(node.get("patternProperties")).items()
        ]
        additional = self.compile(node["additionalProperties"]) if "additionalProperties" in node else None
        names = self.compile(node["propertyNames"]) if "propertyNames" in node else None
        required = tuple(cast(list[str], node.get("required", ())))
        dependent = {k: tuple(cast(list[str], v)) for k, v in _mapping(node.get("dependentRequired")).items()}
        dependent_schemas = {k: self.compile(s) for k, s in _mapping(node.get("dependentSchemas")).items()}
        low = cast(int, node.get("minProperties", 0))
        high = cast(float, node.get("maxProperties", math.inf))
        get = properties.get

        def check_object(value: object, /) -> bool:
            if not isinstance(value, dict):
                return True
            mapping = cast(dict[object, object], value)
            if not low <= len(mapping) <= high or not all(map(mapping.__contains__, required)):
                return False
            for key, item in mapping.items():
                check = get(key)
                matched = check is not None
                if check is not None and not check(item):
                    return False
                for pattern, pattern_check in patterns:
                    if isinstance(key, str) and pattern.search(key):
                        matched = True
                        if not pattern_check(item):
                            return False
                if not matched and additional is not None and not additional(item):
                    return False
                if names is not None and not names(key):
                    return False
            for key, needed in dependent.items():
                if key in mapping and not all(map(mapping.__contains__, needed)):
                    return False
            return all(check(mapping) for key, check in dependent_schemas.items() if key in mapping)

        return check_object

    def _array(self, node: Mapping[str, object]) -> Check:
        prefix = tuple(self.compile(s) for s in _schemas(node.get("prefixItems", [])))
        items = self.compile(node["items"]) if "items" in node else None
        contains = self.compile(node["contains"]) if "contains" in node else None
        min_contains = cast(int, node.get("minContains", 1))
        max_contains = cast(float, node.get("maxContains", math.inf))
        low = cast(int, node.get("minItems", 0))
        high = cast(float, node.get("maxItems", math.inf))
        unique = node.get("uniqueItems") is True
        skip = len(prefix)

        def check_array(value: object, /) -> bool:
            if not isinstance(value, (list, tuple)):
                return True
            seq = cast(list[object], value)
            if not low <= len(seq) <= high:
                return False
            if prefix and not all(map(_apply, prefix, seq)):
                return False
            if items is not None and not all(map(items, seq[skip:] if skip else seq)):
                return False
            if unique and len({_json_key(item) for item in seq}) != len(seq):
                return False
            if contains is not None:
                found = sum(1 for item in seq if contains(item))
                return min_contains <= found <= max_contains
            return True

        return check_array


_OBJECT_KEYWORDS: Final = frozenset(
    {
        "properties",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "required",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
    }
)
_ARRAY_KEYWORDS: Final = frozenset(
    {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"}
)


def _has_any(node: Mapping[str, object], keywords: Iterable[str]) -> bool:
    return any(k in node for k in keywords)


def _types_of(node: Mapping[str, object]) -> tuple[str, ...]:
    declared = node.get("type")
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, list):
        return tuple(cast(list[str], declared))
    return ()


def _mapping(value: object) -> Mapping[str, object]:
    return cast(Mapping[str, object], value) if isinstance(value, Mapping) else {}


def _schemas(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of schemas, got {_short_repr(value)}")
    return cast(list[object], value)


def _type_check(declared: object) -> Check | None:
    if declared is None:
        return None
    names = [declared] if isinstance(declared, str) else cast(list[object], declared)
    try:
        checks = [_JSON_TYPE_CHECKS[cast(str, name)] for name in names]
    except (KeyError, TypeError):
        raise ValueError(f"unknown JSON Schema type {declared!r}") from None
    if _is_int in checks and _is_number in checks:
        checks.remove(_is_int)
    if _is_none in checks and len(checks) == 2:
        other = checks[1 - checks.index(_is_none)]
        return lambda value: value is None or other(value)
    return _any_of(checks)


def _scalar_checks(node: Mapping[str, object]) -> list[Check]:
    checks: list[Check] = []
    if "enum" in node:
        allowed = frozenset(_json_key(v) for v in cast(list[object], node["enum"]))
        checks.append(lambda v: _json_key(v) in allowed)
    if "const" in node:
        const = _json_key(node["const"])
        checks.append(lambda v: _json_key(v) == const)
    bounds = _number_bounds(node)
    if bounds is not None:
        checks.append(bounds)
    lengths = _string_bounds(node)
    if lengths is not None:
        checks.append(lengths)
    return checks


def _number_bounds(node: Mapping[str, object]) -> Check | None:
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
    if not _has_any(node, keys):
        return None
    low = cast(float, node.get("minimum", -math.inf))
    high = cast(float, node.get("maximum", math.inf))
    low_ex = cast(float, node.get("exclusiveMinimum", -math.inf))
    high_ex = cast(float, node.get("exclusiveMaximum", math.inf))
    multiple = cast("float | None", node.get("multipleOf"))

    def check_bounds(value: object, /) -> bool:
        if not _is_number(value):
            return True
        number = cast(float, value)
        if not (low <= number <= high and low_ex < number < high_ex):
            return False
        return multiple is None or _is_multiple(number, multiple)

    return check_bounds


def _is_multiple(number: float, multiple: float) -> bool:
    if isinstance(number, int) and isinstance(multiple, int):
        return number % multiple == 0
    quotient = number / multiple
    return math.isfinite(quotient) and quotient == round(quotient)


def _string_bounds(node: Mapping[str, object]) -> Check | None:
    if not _has_any(node, ("minLength", "maxLength", "pattern")):
        return None
    low = cast(int, node.get("minLength", 0))
    high = cast(float, node.get("maxLength", math.inf))
    pattern: re.Pattern[str] | None = None
    if "pattern" in node:
        try:
            pattern = re.compile(cast(str, node["pattern"]))
        except re.error:
            pattern = None  # an ECMA-only regex: patterns may be lost across runtimes (reference 3.6)

    def check_string(value: object, /) -> bool:
        if not isinstance(value, str):
            return True
        return low <= len(value) <= high and (pattern is None or pattern.search(value) is not None)

    return check_string


# --------------------------------------------------------------------------------------------------
# JSON Schema mismatch descriptions (slow path)


def find_schema_mismatch(schema: Mapping[str, object] | bool, value: object) -> Mismatch | None:
    """Where ``value`` fails :func:`compile_schema_check(schema) <compile_schema_check>`, or ``None``."""
    return _SchemaExplainer(schema).find(schema, value, "")


def describe_schema_mismatch(schema: Mapping[str, object] | bool, value: object) -> str:
    """A one-line message for a value a JSON Schema rejected, e.g.
    ``items[1].qty: expected integer, got '2' (str)``. Slow path only."""
    mismatch = find_schema_mismatch(schema, value)
    if mismatch is None:
        return f"value: {_short_repr(value)} matches the schema"
    return mismatch.message


class _SchemaExplainer:
    def __init__(self, root: Mapping[str, object] | bool) -> None:
        self.compiler = _SchemaCompiler(root)

    def passes(self, node: object, value: object) -> bool:
        return self.compiler.compile(node)(value)

    def find(self, node: object, value: object, path: str) -> Mismatch | None:
        if self.passes(node, value):
            return None
        if not isinstance(node, Mapping):
            return _format(
                path, "nothing (false schema)", value, f"no value is allowed here, got {_short_repr(value)}"
            )
        schema = cast(Mapping[str, object], node)
        expected = self.schema_repr(schema)
        if "$ref" in schema:
            found = self.find(self.compiler.resolve(cast(str, schema["$ref"])), value, path)
            if found is not None:
                return found
        type_check = _type_check(schema.get("type"))
        if type_check is not None and not type_check(value):
            return _format(path, expected, value)
        for keyword in ("allOf", "anyOf", "oneOf"):
            if keyword in schema and not self.passes({keyword: schema[keyword]}, value):
                branches = _schemas(schema[keyword])
                fitting = [b for b in branches if self._shape_fits(b, value)]
                if keyword == "allOf" or len(fitting) == 1:
                    for branch in branches if keyword == "allOf" else fitting:
                        found = self.find(branch, value, path)
                        if found is not None:
                            return found
                return _format(path, expected, value)
        if isinstance(value, dict):
            found = self._find_in_object(schema, cast(dict[object, object], value), path, expected)
            if found is not None:
                return found
        if isinstance(value, (list, tuple)):
            found = self._find_in_array(schema, cast(list[object], value), path)
            if found is not None:
                return found
        return _format(path, expected, cast(object, value))

    def _shape_fits(self, node: object, value: object) -> bool:
        if isinstance(node, Mapping) and "$ref" in node:
            node = self.compiler.resolve(cast(str, cast(Mapping[str, object], node)["$ref"]))
        if not isinstance(node, Mapping):
            return node is True
        schema = cast(Mapping[str, object], node)
        type_check = _type_check(schema.get("type"))
        return type_check(value) if type_check is not None else self.passes(schema, value)

    def _find_in_object(
        self, schema: Mapping[str, object], value: dict[object, object], path: str, expected: str
    ) -> Mismatch | None:
        for name in cast(list[str], schema.get("required", ())):
            if name not in value:
                return _format(
                    _join_key(path, name), "a value", _MISSING, f"missing required property in {expected}"
                )
        properties = _mapping(schema.get("properties"))
        patterns = _mapping(schema.get("patternProperties"))
        for key, item in value.items():
            sub = _join_key(path, key) if isinstance(key, str) and key.isidentifier() else f"{path}[{key!r}]"
            if "propertyNames" in schema and not self.passes(schema["propertyNames"], key):
                return _format(
                    sub, self.schema_repr(schema["propertyNames"]), key, f"key {key!r} is not allowed"
                )
            matched = [properties[key]] if isinstance(key, str) and key in properties else []
            matched += [s for p, s in patterns.items() if isinstance(key, str) and re.search(p, key)]
            if not matched and "additionalProperties" in schema:
                additional = schema["additionalProperties"]
                if additional is False:
                    return _format(sub, expected, item, f"unexpected property {key!r} in {expected}")
                matched = [additional]
            for sub_schema in matched:
                found = self.find(sub_schema, item, sub)
                if found is not None:
                    return found
        return None

    def _find_in_array(self, schema: Mapping[str, object], value: list[object], path: str) -> Mismatch | None:
        prefix = _schemas(schema.get("prefixItems", []))
        for i, item in enumerate(value):
            sub_schema = prefix[i] if i < len(prefix) else schema.get("items", True)
            found = self.find(sub_schema, item, f"{path}[{i}]")
            if found is not None:
                return found
        return None

    def schema_repr(self, node: object) -> str:
        """A short readable name: ``integer``, ``array of string``, ``string | null``, a title."""
        if node is True or (isinstance(node, Mapping) and not node):
            return "anything"
        if not isinstance(node, Mapping):
            return "nothing"
        schema = cast(Mapping[str, object], node)
        if "$ref" in schema:
            return cast(str, schema["$ref"]).rsplit("/", 1)[-1] or "#"
        if "title" in schema and "object" in _types_of(schema):
            return cast(str, schema["title"])
        if "const" in schema:
            return f"const {schema['const']!r}"
        if "enum" in schema:
            return "one of " + _short_repr(schema["enum"])
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                return " | ".join(self.schema_repr(s) for s in _schemas(schema[keyword]))
        names = " | ".join(_types_of(schema)) or "a value"
        if names == "array" and "items" in schema:
            return f"array of {self.schema_repr(schema['items'])}"
        return names + _constraint_repr(schema)


def _constraint_repr(schema: Mapping[str, object]) -> str:
    symbols = {
        "minimum": ">=",
        "maximum": "<=",
        "exclusiveMinimum": ">",
        "exclusiveMaximum": "<",
        "minLength": "length >=",
        "maxLength": "length <=",
        "minItems": "items >=",
        "maxItems": "items <=",
    }
    parts = [f"{symbol} {schema[key]}" for key, symbol in symbols.items() if key in schema]
    if schema.get("uniqueItems") is True:
        parts.append("unique items")
    return f" ({', '.join(parts)})" if parts else ""
