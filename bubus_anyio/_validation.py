"""Strict runtime checks of values against Python types and JSON Schemas, compiled once, run many times.

Two kinds of declared type reach the bus: Python annotations (payload fields, ``BaseEvent[T]``) and JSON
Schemas that arrive on the wire from other runtimes (``event_result_type``). Both are compiled here into plain
predicates (``Callable[[object], bool]``) that sit on the hot path, so compiling does all the work it can up
front: simple types become builtin bound methods such as ``str.__instancecheck__``, containers compose the
pre-compiled checks of their elements, and nothing is looked up again per call.

Checks are strict and never coerce: ``"3"`` is not an ``int``, ``True`` is not an ``int`` and ``1`` does not
match ``Literal[True]``. A predicate only answers yes or no; once it said no, :func:`describe_mismatch` (or
:func:`describe_schema_mismatch`) walks the value again, slowly, to say where and why.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import functools
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, NamedTuple, cast

__all__ = [
    "Check",
    "Mismatch",
    "compile_check",
    "compile_schema_check",
    "describe_mismatch",
    "describe_schema_mismatch",
    "find_mismatch",
    "find_schema_mismatch",
    "is_typeddict",
    "type_hints",
    "type_repr",
    "typeddict_required_keys",
]

Check = Callable[[object], bool]
"""A compiled predicate: ``True`` when the value is acceptable. Never raises for any input."""

_NoneType: Final = type(None)
_ABC_CALLABLE: Final[object] = cabc.Callable
_apply: Final = cast(Callable[[Check, object], bool], operator.call)
"""``operator.call``: ``map(_apply, checks, values)`` runs position-wise checks without a Python loop."""
_WRAPPER_NAMES: Final = frozenset({"Required", "NotRequired", "ReadOnly"})
_MAX_REPR: Final = 200


class Mismatch(NamedTuple):
    """Where and why a value failed a check; what :func:`find_mismatch` returns.

    ``path`` is empty for the value itself, else like ``items[2].name`` (``.key`` for object/TypedDict
    keys, ``[i]`` for positions, ``['k']`` for mapping keys). ``expected`` is readable (``list[str]``,
    ``int | None``). ``message`` is the full sentence, also returned by :func:`describe_mismatch`.
    """

    path: str
    expected: str
    value: object
    message: str


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


# --------------------------------------------------------------------------------------------------
# Building blocks shared by both compilers


def _is_union(origin: object) -> bool:
    return origin is typing.Union or origin is types.UnionType


def _accept(value: object, /) -> bool:
    return True


def _reject(value: object, /) -> bool:
    return False


def _is_none(value: object, /) -> bool:
    return value is None


def _is_int(value: object, /) -> bool:
    t = type(value)
    return t is int or (t is not bool and isinstance(value, int))


def _is_number(value: object, /) -> bool:
    t = type(value)
    return t is float or t is int or (t is not bool and isinstance(value, (int, float)))


def _is_array(value: object, /) -> bool:
    return isinstance(value, (list, tuple))


def _instance_check(cls: type) -> Check:
    """``isinstance(value, cls)`` as a builtin bound method: about 4x cheaper to call than a lambda."""
    return cast(Check, type(cls).__instancecheck__.__get__(cls, type(cls)))


_is_str: Final = _instance_check(str)
_is_bool: Final = _instance_check(bool)
_EXACT_TYPES: Final[Mapping[Check, frozenset[type]]] = {
    _is_int: frozenset({int}),
    _is_number: frozenset({int, float}),
    _is_str: frozenset({str}),
    _is_bool: frozenset({bool}),
    _is_none: frozenset({_NoneType}),
}


def _any_of(checks: list[Check]) -> Check:
    if not checks:
        return _reject
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) or second(value)
    frozen = tuple(checks)
    return lambda value: any(check(value) for check in frozen)


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


def _elements(container: Check, element: Check | None) -> Check:
    if element is None:
        return container
    exact = _EXACT_TYPES.get(element)
    if exact is not None:
        # Fast path: collecting the items' exact types runs in C, about 2x faster than one call per item.
        # Subclasses (an IntEnum in a list[int]) fall back to the full per-item check.
        return lambda value: (
            container(value)
            and (
                set(map(type, cast(Iterable[object], value))) <= exact
                or all(map(element, cast(Iterable[object], value)))
            )
        )
    return lambda value: container(value) and all(map(element, cast(Iterable[object], value)))


def _trampoline(cell: list[Check]) -> Check:
    """A check that defers to ``cell[0]``: how a recursive type refers to itself while being compiled."""
    return lambda value: cell[0](value)


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object (repr failed)>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 1] + "…"


def _format(path: str, expected: str, value: object, problem: str | None = None) -> Mismatch:
    where = path or "value"
    if problem is not None:
        message = f"{where}: {problem}"
    elif value is None or value is _MISSING:
        message = f"{where}: expected {expected}, got {_short_repr(value)}"
    else:
        message = f"{where}: expected {expected}, got {_short_repr(value)} ({type(value).__name__})"
    return Mismatch(path, expected, value, message)


def _join_key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------------------------------
# Python types


def is_typeddict(tp: object) -> bool:
    """``True`` for ``typing`` and ``typing_extensions`` TypedDict classes alike (``typing.is_typeddict``
    misses the latter on Python 3.11)."""
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(cast(object, tp), "__required_keys__")


def typeddict_required_keys(td: type, hints: Mapping[str, object]) -> frozenset[str]:
    """The required keys of a TypedDict, given its :func:`type_hints`.

    ``__required_keys__`` alone is wrong on Python 3.11 when annotations are strings (``from __future__
    import annotations``): ``NotRequired[...]`` inside a string is not seen. The resolved hints are.
    """
    required = set(cast("frozenset[str]", getattr(td, "__required_keys__", frozenset[str]())))
    for name, hint in hints.items():
        qualifiers: set[str] = set()
        while (origin := typing.get_origin(hint)) is typing.Annotated or (
            getattr(origin, "_name", None) in _WRAPPER_NAMES
        ):
            qualifiers.add(getattr(origin, "_name", ""))
            hint = typing.get_args(hint)[0]
        if "NotRequired" in qualifiers:
            required.discard(name)
        elif "Required" in qualifiers:
            required.add(name)
    return frozenset(required)


def type_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of ``cls`` (``Annotated``/``Required`` kept), its own name resolvable even when
    it is defined inside a function, so self-referencing classes work.

    :raises TypeError: when a forward reference names something that cannot be found
    """
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except NameError:
        try:
            return typing.get_type_hints(cls, localns={cls.__name__: cls}, include_extras=True)
        except NameError as exc:
            raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}: {exc}") from exc


def _is_record(tp: type) -> bool:
    """attrs classes and dataclasses, whose fields are checked deeply; events are not (they check their
    own payload when they are built)."""
    if hasattr(tp, "_bubus_payload_checks"):
        return False
    return hasattr(tp, "__attrs_attrs__") or dataclasses.is_dataclass(tp)


def _record_fields(tp: type) -> list[str]:
    attributes = getattr(tp, "__attrs_attrs__", None)
    if attributes is not None:
        return [str(a.name) for a in cast(Iterable[Any], attributes)]
    return [f.name for f in dataclasses.fields(cast(Any, tp))]


def unwrap_type(tp: object) -> object:
    """Strip what does not change which values are accepted: Annotated, Required/NotRequired/ReadOnly,
    NewType and type aliases (``TypeAliasType``)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated or getattr(origin, "_name", None) in _WRAPPER_NAMES:
            tp = typing.get_args(tp)[0]
        elif isinstance(tp, typing.NewType):
            tp = tp.__supertype__
        elif type(tp).__name__ == "TypeAliasType" and origin is None:
            tp = cast(Any, tp).__value__
        else:
            return tp


def _is_bare_tuple(tp: object) -> bool:
    return tp is typing.Tuple  # noqa: UP006 - the bare alias means tuple[Any, ...], unlike tuple[()]


def compile_check(tp: object) -> Check | None:
    """Compile a strict predicate for values of type ``tp``, or ``None`` when ``tp`` accepts anything
    (``Any``, ``object``, an unbound ``TypeVar``, or a union containing one of them).

    Results are cached per (hashable) type, so calling this again for the same type is cheap. The predicate
    never raises. Rules a caller may rely on:

    - no coercion: ``int`` rejects ``bool`` and ``"3"``; ``float`` accepts ``int`` (not ``bool``);
      ``Literal[1]`` rejects ``True`` and ``1.0`` (values are compared together with their type);
    - containers are checked deeply (``list``, ``dict``, ``tuple``, ``set``, ``frozenset`` and the
      ``collections.abc`` collections); iterators and other one-shot iterables (``Iterable[X]``) are only
      checked with ``isinstance``, never consumed;
    - attrs classes and dataclasses are checked deeply (an instance whose every field holds its declared
      type); events and any other class are checked with ``isinstance``; a TypedDict must be a ``dict`` with every required key, no unknown
      key, and each value of its declared type;
    - ``Annotated``, ``NewType``, ``Required``/``NotRequired``/``ReadOnly`` are looked through; recursive
      TypedDicts and forward references are resolved with :func:`typing.get_type_hints`.

    :raises TypeError: for a type expression that cannot be checked at runtime (an unresolvable forward
        reference, a non-runtime-checkable protocol is *accepted* as anything instead)
    """
    try:
        hash(tp)
    except TypeError:
        return _Compiler().compile(tp)
    return _compile_cached(tp)


@functools.lru_cache(maxsize=1024)
def _compile_cached(tp: object) -> Check | None:
    return _Compiler().compile(tp)


class _Compiler:
    """One compilation; remembers the recursive types in progress so cycles become trampolines."""

    def __init__(self) -> None:
        self._in_progress: dict[object, list[Check]] = {}

    def compile(self, tp: object) -> Check | None:
        tp = unwrap_type(tp)
        if tp is Any or tp is object:
            return None
        if tp is None or tp is _NoneType:
            return _is_none
        if tp is int:
            return _is_int
        if tp is float:
            return _is_number
        if tp is str:
            return _is_str
        if tp is bool:
            return _is_bool
        if tp is typing.LiteralString:
            return _instance_check(str)
        if tp is typing.Never or tp is typing.NoReturn:
            return _reject
        origin = typing.get_origin(tp)
        if origin is not None:
            return self._generic(tp, origin, typing.get_args(tp))
        if isinstance(tp, typing.TypeVar):
            return self._typevar(tp)
        if isinstance(tp, (str, typing.ForwardRef)):
            raise TypeError(f"cannot check against the unresolved forward reference {type_repr(tp)!r}")
        if isinstance(tp, type):
            if is_typeddict(tp):
                return self._recursive(tp, self._typeddict)
            if getattr(tp, "_is_protocol", False) and not getattr(tp, "_is_runtime_protocol", False):
                return None
            if _is_record(tp):
                return self._recursive(tp, self._record)
            return _instance_check(tp)
        if isinstance(tp, typing.ParamSpec | typing.TypeVarTuple):
            return None
        raise TypeError(f"cannot check values against {tp!r}")

    def _recursive(self, tp: type, build: Callable[[type], Check]) -> Check:
        pending = self._in_progress.get(tp)
        if pending is not None:
            return _trampoline(pending)
        cell: list[Check] = []
        self._in_progress[tp] = cell
        try:
            check = build(tp)
        finally:
            del self._in_progress[tp]
        cell.append(check)
        return check

    def _record(self, tp: type) -> Check:
        """An attrs class or dataclass: an instance whose every field holds a value of its declared type."""
        is_instance = _instance_check(tp)
        hints = type_hints(tp)
        fields: list[tuple[str, Check]] = []
        for name in _record_fields(tp):
            check = self.compile(hints.get(name, Any))
            if check is not None:
                fields.append((name, check))
        if not fields:
            return is_instance

        def check_record(value: object, /) -> bool:
            if not is_instance(value):
                return False
            for name, check in fields:
                if not check(getattr(value, name, _MISSING)):
                    return False
            return True

        return check_record

    def _typevar(self, tp: typing.TypeVar) -> Check | None:
        if tp.__bound__ is not None:
            return self.compile(tp.__bound__)
        if tp.__constraints__:
            return self._union(tp.__constraints__)
        return None

    def _union(self, members: tuple[object, ...]) -> Check | None:
        checks: list[Check] = []
        nullable = False
        for member in members:
            check = self.compile(member)
            if check is None:
                return None
            if check is _is_none:
                nullable = True
            elif check not in checks:
                checks.append(check)
        rest = _any_of(checks)
        if not nullable:
            return rest
        if not checks:
            return _is_none
        return lambda value: value is None or rest(value)

    def _generic(self, tp: object, origin: object, args: tuple[Any, ...]) -> Check | None:
        if _is_union(origin):
            return self._union(args)
        if origin is Literal:
            return _literal(args)
        if origin is type:
            return _subclass_check(args)
        if origin is tuple:
            return self._tuple(tp, args)
        if origin is _ABC_CALLABLE:
            return callable
        if not isinstance(origin, type):
            raise TypeError(f"cannot check values against {tp!r}")
        container = _instance_check(origin)
        if not args:
            return container
        if issubclass(origin, cabc.Mapping):
            return self._mapping(container, args)
        if issubclass(origin, cabc.Collection) and len(args) == 1:
            return _elements(container, self.compile(args[0]))
        return container  # iterators, generators, user generics: the class is all we can check

    def _mapping(self, container: Check, args: tuple[Any, ...]) -> Check:
        key = self.compile(args[0])
        val = self.compile(args[1]) if len(args) > 1 else None
        if key is None and val is None:
            return container
        if key is None:
            assert val is not None
            values = val
            return lambda v: container(v) and all(map(values, cast(Mapping[object, object], v).values()))
        if val is None:
            keys = key
            return lambda v: container(v) and all(map(keys, cast(Mapping[object, object], v).keys()))
        k, x = key, val
        return lambda v: (
            container(v)
            and all(map(k, cast(Mapping[object, object], v).keys()))
            and all(map(x, cast(Mapping[object, object], v).values()))
        )

    def _tuple(self, tp: object, args: tuple[Any, ...]) -> Check:
        is_tuple = _instance_check(tuple)
        if _is_bare_tuple(tp):
            return is_tuple
        if len(args) == 2 and args[1] is Ellipsis:
            return _elements(is_tuple, self.compile(args[0]))
        if args == ((),):  # typing.Tuple[()] on old-style aliases
            args = ()
        positions = tuple(self.compile(arg) or _accept for arg in args)
        size = len(positions)
        return lambda v: (
            is_tuple(v)
            and len(cast(tuple[object, ...], v)) == size
            and all(map(_apply, positions, cast(tuple[object, ...], v)))
        )

    def _typeddict(self, td: type) -> Check:
        hints = type_hints(td)
        required = typeddict_required_keys(td, hints)
        allowed = frozenset(hints)
        checks: dict[str, Check] = {}
        for name, hint in hints.items():
            check = self.compile(hint)
            if check is not None:
                checks[name] = check
        get = checks.get

        def check_typeddict(value: object, /) -> bool:
            if not isinstance(value, dict):
                return False
            mapping = cast(dict[str, object], value)
            keys = mapping.keys()
            if not (keys >= required and keys <= allowed):
                return False
            for name, item in mapping.items():
                check = get(name)
                if check is not None and not check(item):
                    return False
            return True

        return check_typeddict


def _literal(values: tuple[Any, ...]) -> Check:
    typed: frozenset[tuple[type, object]] = frozenset((type(cast(object, v)), v) for v in values)

    def check_literal(value: object, /) -> bool:
        try:
            return (type(value), value) in typed
        except TypeError:  # unhashable values are never literals
            return False

    return check_literal


def _subclass_check(args: tuple[Any, ...]) -> Check:
    bound = unwrap_type(args[0]) if args else Any
    if not isinstance(bound, type) or bound is object:
        return _instance_check(type)
    base = cast(type, bound)
    return lambda value: isinstance(value, type) and issubclass(value, base)


# --------------------------------------------------------------------------------------------------
# Readable type names and mismatch descriptions (slow path)


def type_repr(tp: object) -> str:
    """A readable name for a type expression: ``int``, ``list[str]``, ``int | None``, ``Literal['a', 1]``,
    ``tuple[int, ...]``, class qualnames. Meant for error messages, not for ``eval``."""
    if tp is None or tp is _NoneType:
        return "None"
    if tp is Any:
        return "Any"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, str):
        return tp
    if isinstance(tp, typing.ForwardRef):
        return tp.__forward_arg__
    if isinstance(tp, list):
        return "[" + ", ".join(type_repr(a) for a in cast(list[object], tp)) + "]"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return type_repr(args[0])
    if _is_union(origin):
        return " | ".join(type_repr(a) for a in args)
    if origin is Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is not None:
        name = getattr(origin, "__name__", None) or getattr(origin, "_name", None) or repr(origin)
        if origin is tuple and not args and not _is_bare_tuple(tp):
            return "tuple[()]"
        if not args:
            return str(name)
        return f"{name}[{', '.join(type_repr(a) for a in args)}]"
    if isinstance(tp, typing.NewType | typing.TypeVar):
        return tp.__name__
    if isinstance(tp, type):
        return tp.__name__ if tp.__module__ == "builtins" else tp.__qualname__
    return repr(tp).replace("typing.", "").replace("typing_extensions.", "")


def find_mismatch(tp: object, value: object) -> Mismatch | None:
    """Where ``value`` fails :func:`compile_check(tp) <compile_check>`, or ``None`` when it passes.

    Slow: meant for building an error after a compiled check said no. Inside a union, it looks into the one
    member the value's shape fits (an ``Optional[SomeTypedDict]`` given a dict reports the bad key inside).
    """
    return _find(tp, value, "")


def describe_mismatch(tp: object, value: object) -> str:
    """A one-line message for a failed check: path, expected type and the (truncated) offending value.

    For example ``items[2].name: expected str, got 3 (int)``. Returns a generic message naming ``tp`` if
    the value actually passes.
    """
    mismatch = find_mismatch(tp, value)
    if mismatch is None:
        return f"value: {_short_repr(value)} is a valid {type_repr(tp)}"
    return mismatch.message


def _passes(tp: object, value: object) -> bool:
    check = compile_check(tp)
    return check is None or check(value)


def _find(tp: object, value: object, path: str) -> Mismatch | None:
    if _passes(tp, value):
        return None
    tp = unwrap_type(tp)
    origin = typing.get_origin(tp)
    args: tuple[Any, ...] = typing.get_args(tp)
    expected = type_repr(tp)
    if _is_union(origin):
        fitting = [m for m in args if _shape_fits(m, value)]
        if len(fitting) == 1:
            return _find(fitting[0], value, path) or _format(path, expected, value)
        return _format(path, expected, value)
    if is_typeddict(tp):
        return _find_typeddict(cast(type, tp), value, path, expected)
    if isinstance(tp, type) and _is_record(tp) and isinstance(value, tp):
        hints = type_hints(tp)
        for name in _record_fields(tp):
            found = _find(hints.get(name, Any), getattr(value, name, _MISSING), _join_key(path, name))
            if found is not None:
                return found
        return _format(path, expected, value)
    if origin is None or not isinstance(origin, type) or not args or not isinstance(value, origin):
        return _format(path, expected, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _find_items(args[0], cast(tuple[object, ...], value), path) or _format(
                path, expected, value
            )
        items = cast(tuple[object, ...], value)
        if len(items) != len(args):
            return _format(
                path, expected, value, f"expected {expected}, got {len(items)} items: {_short_repr(value)}"
            )
        for i, (arg, item) in enumerate(zip(args, items, strict=True)):
            found = _find(arg, item, f"{path}[{i}]")
            if found is not None:
                return found
    elif issubclass(origin, cabc.Mapping):
        mapping = cast(Mapping[object, object], value)
        key_type: object = args[0]
        for key, item in mapping.items():
            if not _passes(key_type, key):
                return _format(
                    f"{path}[{key!r}]",
                    type_repr(key_type),
                    key,
                    f"key {_short_repr(key)} is not a {type_repr(key_type)}",
                )
            if len(args) > 1:
                found = _find(args[1], item, f"{path}[{key!r}]")
                if found is not None:
                    return found
    elif issubclass(origin, cabc.Collection):
        found = _find_items(args[0], cast(Iterable[object], value), path)
        if found is not None:
            return found
    return _format(path, expected, value)


def _find_items(tp: object, items: Iterable[object], path: str) -> Mismatch | None:
    for i, item in enumerate(items):
        found = _find(tp, item, f"{path}[{i}]")
        if found is not None:
            return found
    return None


def _find_typeddict(td: type, value: object, path: str, expected: str) -> Mismatch | None:
    if not isinstance(value, dict):
        return _format(path, expected, value)
    mapping = cast(dict[object, object], value)
    hints = type_hints(td)
    required = typeddict_required_keys(td, hints)
    for name in hints:
        if name in required and name not in mapping:
            return _format(_join_key(path, name), type_repr(hints[name]), _MISSING, "missing required key")
    for name, item in mapping.items():
        if name not in hints:
            return _format(
                _join_key(path, str(name)), expected, item, f"unexpected key {name!r} in {expected}"
            )
        found = _find(hints[cast(str, name)], item, _join_key(path, cast(str, name)))
        if found is not None:
            return found
    return _format(path, expected, mapping)


def _shape_fits(tp: object, value: object) -> bool:
    """Whether ``value`` has the outer shape of ``tp`` (for choosing which union member to blame)."""
    tp = unwrap_type(tp)
    if is_typeddict(tp):
        return isinstance(value, dict)
    origin = typing.get_origin(tp)
    if isinstance(origin, type):
        return isinstance(value, origin)
    return _passes(tp, value)


# --------------------------------------------------------------------------------------------------
# JSON Schema (draft 2020-12), as written by pydantic and zod

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
