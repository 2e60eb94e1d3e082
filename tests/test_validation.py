"""Strict runtime checks: Python types (`compile_check`) and JSON Schemas (`compile_schema_check`)."""

# typing.Optional / typing.Union are spelled out on purpose: they are among the forms under test.
# ruff: noqa: UP007, UP045
from __future__ import annotations

import collections
import collections.abc as cabc
import dataclasses
import enum
import json
import typing
from collections.abc import Iterator
from typing import (
    Annotated,
    Any,
    Literal,
    NewType,
    NotRequired,
    Optional,
    Required,
    TypedDict,
    TypeVar,
    Union,
)

import attrs
import pytest
import typing_extensions
from _interop import INTEROP

from bubus_anyio._validation._schema_checks import (
    compile_schema_check,
    describe_schema_mismatch,
    find_schema_mismatch,
)
from bubus_anyio._validation._types import compile_check, describe_mismatch, find_mismatch, type_repr


def accepts(tp: object, value: object) -> bool:
    check = compile_check(tp)
    assert check is not None, f"{tp!r} should have a check"
    return check(value)


# --------------------------------------------------------------------------------------------------
# Types used across the tests


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1


UserId = NewType("UserId", int)


@attrs.define
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Box:
    w: float


class Item(TypedDict):
    name: str
    qty: int


class Order(TypedDict):
    id: str
    items: list[Item]
    note: NotRequired[str | None]


class Partial(TypedDict, total=False):
    a: int
    b: Required[str]


class TxPartial(typing_extensions.TypedDict):
    a: int
    b: typing_extensions.NotRequired[typing_extensions.ReadOnly[str]]


class Tree(TypedDict):
    value: int
    children: list[Tree]


class Ping(TypedDict):
    pong: Pong | None


class Pong(TypedDict):
    ping: Ping | None


# --------------------------------------------------------------------------------------------------
# Python types


class TestAnything:
    @pytest.mark.parametrize("tp", [Any, object, TypeVar("T"), Union[int, Any], Optional[Any]])
    def test_no_check_is_needed(self, tp: object) -> None:
        assert compile_check(tp) is None

    def test_bound_typevar_checks_its_bound(self) -> None:
        assert accepts(TypeVar("N", bound=int), 3)
        assert not accepts(TypeVar("N", bound=int), "3")

    def test_constrained_typevar_checks_its_constraints(self) -> None:
        tv = TypeVar("S", int, str)
        assert accepts(tv, 1) and accepts(tv, "a") and not accepts(tv, 1.5)

    def test_compiled_once_per_type(self) -> None:
        assert compile_check(list[int]) is compile_check(list[int])


class TestInt:
    @pytest.mark.parametrize("value", [0, -5, 2**80, Level.LOW])
    def test_accepts_ints(self, value: object) -> None:
        assert accepts(int, value)

    @pytest.mark.parametrize("value", [True, False, "3", 3.0, None, [3]])
    def test_rejects_bools_strings_and_floats(self, value: object) -> None:
        assert not accepts(int, value)


class TestFloat:
    @pytest.mark.parametrize("value", [1.5, 0.0, 3, -2, float("inf")])
    def test_accepts_floats_and_ints(self, value: object) -> None:
        assert accepts(float, value)

    @pytest.mark.parametrize("value", [True, "1.5", None])
    def test_rejects_bools_and_strings(self, value: object) -> None:
        assert not accepts(float, value)


class TestScalars:
    def test_str(self) -> None:
        assert accepts(str, "x") and accepts(str, "")
        assert not accepts(str, b"x") and not accepts(str, 1)

    def test_bytes(self) -> None:
        assert accepts(bytes, b"x") and not accepts(bytes, "x")

    def test_bool(self) -> None:
        assert accepts(bool, True) and accepts(bool, False)
        assert not accepts(bool, 1) and not accepts(bool, "true")

    @pytest.mark.parametrize("tp", [None, type(None)])
    def test_none(self, tp: object) -> None:
        assert accepts(tp, None)
        assert not accepts(tp, 0) and not accepts(tp, "")


class TestContainers:
    def test_list_is_checked_deeply(self) -> None:
        assert accepts(list[int], [1, 2]) and accepts(list[int], [])
        assert not accepts(list[int], [1, "2"]) and not accepts(list[int], [1, True])
        assert not accepts(list[int], (1, 2))

    def test_list_of_int_subclass_takes_the_slow_path(self) -> None:
        assert accepts(list[int], [Level.LOW, 2])

    def test_dict_checks_keys_and_values(self) -> None:
        assert accepts(dict[str, int], {"a": 1})
        assert not accepts(dict[str, int], {"a": "1"})
        assert not accepts(dict[str, int], {1: 1})
        assert accepts(dict[str, Any], {"a": object()})
        assert accepts(dict[Any, int], {1: 1}) and not accepts(dict[Any, int], {1: "x"})

    def test_homogeneous_tuple(self) -> None:
        assert accepts(tuple[int, ...], (1, 2, 3)) and accepts(tuple[int, ...], ())
        assert not accepts(tuple[int, ...], (1, "2")) and not accepts(tuple[int, ...], [1])

    def test_fixed_tuple(self) -> None:
        assert accepts(tuple[int, str], (1, "a"))
        assert not accepts(tuple[int, str], ("a", 1))
        assert not accepts(tuple[int, str], (1,)) and not accepts(tuple[int, str], (1, "a", 2))
        assert accepts(tuple[()], ()) and not accepts(tuple[()], (1,))
        assert accepts(tuple[int, Any], (1, object()))

    def test_sets(self) -> None:
        assert accepts(set[int], {1, 2}) and not accepts(set[int], {1, "2"})
        assert not accepts(set[int], frozenset({1}))
        assert accepts(frozenset[str], frozenset({"a"})) and not accepts(frozenset[str], {"a"})

    @pytest.mark.parametrize(
        ("tp", "good", "bad"),
        [
            (list, [1, "x"], (1,)),
            (dict, {}, []),
            (tuple, (1, "x"), [1]),
            (set, set(), []),
            (typing.List, [1], (1,)),  # noqa: UP006
            (typing.Tuple, (1, "a"), [1]),  # noqa: UP006
        ],
    )
    def test_bare_containers_check_the_container_only(self, tp: object, good: object, bad: object) -> None:
        assert accepts(tp, good) and not accepts(tp, bad)

    def test_nested(self) -> None:
        tp = dict[str, list[tuple[int, str | None]]]
        assert accepts(tp, {"a": [(1, None), (2, "x")]})
        assert not accepts(tp, {"a": [(1, None), (2, 3)]})


class TestAbstractCollections:
    def test_sequence(self) -> None:
        assert accepts(cabc.Sequence[int], [1]) and accepts(cabc.Sequence[int], (1,))
        assert not accepts(cabc.Sequence[int], {1}) and not accepts(cabc.Sequence[int], [1, "2"])

    def test_mapping(self) -> None:
        assert accepts(cabc.Mapping[str, int], collections.OrderedDict(a=1))
        assert not accepts(cabc.Mapping[str, int], {"a": "1"})

    def test_iterable_is_never_consumed(self) -> None:
        consumed: list[int] = []

        def gen() -> Iterator[int]:
            consumed.append(1)
            yield 1

        assert accepts(cabc.Iterable[int], gen())
        assert accepts(cabc.Iterable[int], [1])
        assert not accepts(cabc.Iterable[int], 3)
        assert consumed == []

    def test_collection_is_checked_deeply(self) -> None:
        assert accepts(cabc.Collection[int], {1, 2}) and not accepts(cabc.Collection[int], ["1"])

    def test_callable(self) -> None:
        assert accepts(cabc.Callable[[int], str], len) and not accepts(cabc.Callable[..., Any], 3)


class TestUnion:
    @pytest.mark.parametrize("tp", [Optional[int], int | None, Union[None, int]])
    def test_optional(self, tp: object) -> None:
        assert accepts(tp, None) and accepts(tp, 3)
        assert not accepts(tp, "3") and not accepts(tp, True)

    def test_union(self) -> None:
        assert accepts(int | str, 1) and accepts(int | str, "a") and not accepts(int | str, 1.5)
        assert accepts(int | bool, True)
        tp = Union[int, str, list[int], None]
        assert all(accepts(tp, v) for v in (1, "a", [1], None))
        assert not accepts(tp, [1.5])


class TestLiteral:
    def test_compares_type_and_value(self) -> None:
        assert accepts(Literal[1], 1)
        assert not accepts(Literal[1], True) and not accepts(Literal[1], 1.0)
        assert accepts(Literal[True], True) and not accepts(Literal[True], 1)

    def test_strings_enums_and_none(self) -> None:
        tp = Literal["a", "b", None, Color.RED]
        assert all(accepts(tp, v) for v in ("a", "b", None, Color.RED))
        assert not accepts(tp, "c") and not accepts(tp, "red") and not accepts(tp, Color.BLUE)

    def test_unhashable_values_are_rejected(self) -> None:
        assert not accepts(Literal["a"], ["a"])


class TestLookThrough:
    def test_annotated(self) -> None:
        assert accepts(Annotated[int, "meta", {"unhashable": []}], 3)
        assert not accepts(Annotated[list[int], "meta"], ["3"])

    def test_newtype(self) -> None:
        assert accepts(UserId, 3) and not accepts(UserId, "3")

    def test_type_of(self) -> None:
        assert accepts(type[int], bool) and not accepts(type[int], str) and not accepts(type[int], 3)
        assert accepts(type, int)


class TestClasses:
    def test_attrs_and_dataclasses_by_isinstance(self) -> None:
        assert accepts(Point, Point(1, 2)) and not accepts(Point, {"x": 1, "y": 2})
        assert accepts(Box, Box(1.0)) and not accepts(Box, Point(1, 2))

    def test_any_other_class(self) -> None:
        assert accepts(Color, Color.RED) and not accepts(Color, "red")
        assert accepts(Exception, ValueError()) and not accepts(ValueError, Exception())

    def test_non_runtime_protocol_accepts_anything(self) -> None:
        class Proto(typing.Protocol):
            def meth(self) -> None: ...

        assert compile_check(Proto) is None

    def test_runtime_protocol_uses_isinstance(self) -> None:
        assert accepts(typing.SupportsInt, 3.5) and not accepts(typing.SupportsInt, "x")


class TestTypedDict:
    def test_required_keys_and_deep_values(self) -> None:
        assert accepts(Order, {"id": "o1", "items": [{"name": "a", "qty": 1}]})
        assert accepts(Order, {"id": "o1", "items": [], "note": None})
        assert not accepts(Order, {"items": []})
        assert not accepts(Order, {"id": "o1", "items": [{"name": "a", "qty": "1"}]})

    def test_extra_keys_are_rejected(self) -> None:
        assert not accepts(Item, {"name": "a", "qty": 1, "extra": 0})

    def test_not_a_dict(self) -> None:
        assert not accepts(Item, [("name", "a"), ("qty", 1)])

    def test_total_false_and_required(self) -> None:
        assert accepts(Partial, {"b": "x"}) and accepts(Partial, {"a": 1, "b": "x"})
        assert not accepts(Partial, {"a": 1}) and not accepts(Partial, {"a": "1", "b": "x"})

    def test_typing_extensions_typeddict(self) -> None:
        assert accepts(TxPartial, {"a": 1}) and accepts(TxPartial, {"a": 1, "b": "x"})
        assert not accepts(TxPartial, {"a": 1, "b": 2})

    def test_recursive(self) -> None:
        assert accepts(Tree, {"value": 1, "children": [{"value": 2, "children": []}]})
        assert not accepts(Tree, {"value": 1, "children": [{"value": "2", "children": []}]})

    def test_mutually_recursive(self) -> None:
        assert accepts(Ping, {"pong": {"ping": {"pong": None}}})
        assert not accepts(Ping, {"pong": {"ping": {"pong": 1}}})

    def test_local_self_reference(self) -> None:
        class Local(TypedDict):
            next: Local | None

        assert accepts(Local, {"next": {"next": None}}) and not accepts(Local, {"next": 1})

    def test_unresolvable_forward_reference_is_an_error(self) -> None:
        class Broken(TypedDict):
            other: Missing  # type: ignore[name-defined]  # noqa: F821

        with pytest.raises(TypeError, match="cannot resolve"):
            compile_check(Broken)


class TestUnsupported:
    def test_bare_forward_reference(self) -> None:
        with pytest.raises(TypeError, match="forward reference"):
            compile_check("Later")


class TestTypeRepr:
    @pytest.mark.parametrize(
        ("tp", "text"),
        [
            (int, "int"),
            (None, "None"),
            (type(None), "None"),
            (list[str], "list[str]"),
            (Optional[int], "int | None"),
            (int | None, "int | None"),
            (dict[str, list[int]], "dict[str, list[int]]"),
            (tuple[int, ...], "tuple[int, ...]"),
            (tuple[()], "tuple[()]"),
            (Literal["a", 1], "Literal['a', 1]"),
            (Annotated[int, "x"], "int"),
            (UserId, "UserId"),
            (Item, "Item"),
            (cabc.Sequence[int], "Sequence[int]"),
            (Any, "Any"),
        ],
    )
    def test_readable(self, tp: object, text: str) -> None:
        assert type_repr(tp) == text


class TestDescribeMismatch:
    def test_names_path_expected_type_and_value(self) -> None:
        value = {
            "id": "o1",
            "items": [{"name": "a", "qty": 1}, {"name": "b", "qty": 2}, {"name": 3, "qty": 1}],
        }
        assert describe_mismatch(Order, value) == "items[2].name: expected str, got 3 (int)"

    def test_top_level(self) -> None:
        assert describe_mismatch(int | None, "3") == "value: expected int | None, got '3' (str)"
        assert describe_mismatch(list[str], None) == "value: expected list[str], got None"

    def test_mapping_paths(self) -> None:
        assert (
            describe_mismatch(dict[str, list[int]], {"a": [1, "x"]})
            == "['a'][1]: expected int, got 'x' (str)"
        )
        assert "key 1 is not a str" in describe_mismatch(dict[str, int], {1: 1})

    def test_missing_and_unexpected_keys(self) -> None:
        assert describe_mismatch(Item, {"name": "a"}) == "qty: missing required key"
        assert describe_mismatch(Item, {"name": "a", "qty": 1, "x": 0}) == "x: unexpected key 'x' in Item"

    def test_union_looks_into_the_member_that_fits(self) -> None:
        assert (
            describe_mismatch(Optional[Item], {"name": "a", "qty": "1"}) == "qty: expected int, got '1' (str)"
        )

    def test_tuples(self) -> None:
        assert describe_mismatch(tuple[int, str], (1, 2)) == "[1]: expected str, got 2 (int)"
        assert "got 1 items" in describe_mismatch(tuple[int, str], (1,))

    def test_recursive(self) -> None:
        value = {"value": 1, "children": [{"value": 2, "children": [{"value": None, "children": []}]}]}
        assert describe_mismatch(Tree, value) == "children[0].children[0].value: expected int, got None"

    def test_long_values_are_truncated(self) -> None:
        message = describe_mismatch(int, "x" * 1000)
        assert len(message) < 260 and message.endswith("…' (str)") is False and "…" in message

    def test_mismatch_fields(self) -> None:
        found = find_mismatch(list[int], [1, "2"])
        assert found is not None
        assert (found.path, found.expected, found.value) == ("[1]", "int", "2")
        assert find_mismatch(list[int], [1]) is None


# --------------------------------------------------------------------------------------------------
# JSON Schema


def schema_accepts(schema: dict[str, Any] | bool, value: object) -> bool:
    return compile_schema_check(schema)(value)


class TestSchemaTypes:
    def test_integer_is_an_int_not_a_bool_or_float(self) -> None:
        s = {"type": "integer"}
        assert schema_accepts(s, 3) and schema_accepts(s, -(2**70))
        assert not any(schema_accepts(s, v) for v in (True, 3.0, "3", None))

    def test_number_is_int_or_float(self) -> None:
        s = {"type": "number"}
        assert schema_accepts(s, 3) and schema_accepts(s, 3.5)
        assert not schema_accepts(s, True) and not schema_accepts(s, "3.5")

    def test_string_boolean_null(self) -> None:
        assert schema_accepts({"type": "string"}, "") and not schema_accepts({"type": "string"}, 1)
        assert schema_accepts({"type": "boolean"}, False) and not schema_accepts({"type": "boolean"}, 0)
        assert schema_accepts({"type": "null"}, None) and not schema_accepts({"type": "null"}, 0)

    def test_array_and_object(self) -> None:
        assert schema_accepts({"type": "array"}, []) and schema_accepts({"type": "array"}, (1,))
        assert not schema_accepts({"type": "array"}, {})
        assert schema_accepts({"type": "object"}, {}) and not schema_accepts({"type": "object"}, [])

    def test_object_is_a_dict_only(self) -> None:
        assert not schema_accepts({"type": "object"}, Point(1, 2))

    def test_type_list(self) -> None:
        s = {"type": ["string", "null"]}
        assert schema_accepts(s, "a") and schema_accepts(s, None) and not schema_accepts(s, 1)
        assert schema_accepts({"type": ["integer", "number"]}, 1.5)

    def test_no_type_accepts_anything(self) -> None:
        assert schema_accepts({}, object()) and schema_accepts(True, 1) and not schema_accepts(False, 1)


class TestSchemaArrays:
    def test_items(self) -> None:
        s = {"type": "array", "items": {"type": "string"}}
        assert schema_accepts(s, ["a"]) and not schema_accepts(s, ["a", 1])

    def test_prefix_items_and_length(self) -> None:
        s = {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "minItems": 2,
            "maxItems": 2,
        }
        assert schema_accepts(s, [1, "a"]) and schema_accepts(s, (1, "a"))
        assert (
            not schema_accepts(s, ["a", 1])
            and not schema_accepts(s, [1])
            and not schema_accepts(s, [1, "a", 2])
        )

    def test_prefix_items_then_items(self) -> None:
        s = {"prefixItems": [{"type": "integer"}], "items": {"type": "string"}}
        assert schema_accepts(s, [1, "a", "b"]) and not schema_accepts(s, [1, 2])
        assert not schema_accepts({"prefixItems": [{}], "items": False}, [1, 2])

    def test_unique_items_compare_as_json(self) -> None:
        s = {"type": "array", "uniqueItems": True}
        assert schema_accepts(s, [1, True, "1", [1], {"a": 1}])
        assert not schema_accepts(s, [1, 1.0]) and not schema_accepts(s, [{"a": [1]}, {"a": [1]}])

    def test_contains(self) -> None:
        s = {"contains": {"type": "integer"}, "maxContains": 1}
        assert schema_accepts(s, ["a", 1]) and not schema_accepts(s, ["a"]) and not schema_accepts(s, [1, 2])


class TestSchemaObjects:
    def test_properties_required_additional(self) -> None:
        s = {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
            "required": ["a"],
            "additionalProperties": False,
        }
        assert schema_accepts(s, {"a": 1}) and schema_accepts(s, {"a": 1, "b": "x"})
        assert not schema_accepts(s, {"b": "x"}) and not schema_accepts(s, {"a": 1, "c": 0})
        assert not schema_accepts(s, {"a": "1"})

    def test_extra_properties_are_allowed_by_default(self) -> None:
        assert schema_accepts({"type": "object", "properties": {"a": {}}}, {"a": 1, "b": 2})

    def test_additional_properties_schema(self) -> None:
        s = {"type": "object", "additionalProperties": {"type": "integer"}}
        assert schema_accepts(s, {"a": 1}) and not schema_accepts(s, {"a": 1.5})

    def test_property_names_and_patterns(self) -> None:
        assert not schema_accepts({"propertyNames": {"maxLength": 1}}, {"ab": 1})
        s = {"patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False}
        assert (
            schema_accepts(s, {"x_a": 1})
            and not schema_accepts(s, {"x_a": "1"})
            and not schema_accepts(s, {"y": 1})
        )

    def test_counts_and_dependencies(self) -> None:
        assert not schema_accepts({"minProperties": 1}, {}) and not schema_accepts(
            {"maxProperties": 0}, {"a": 1}
        )
        assert not schema_accepts({"dependentRequired": {"a": ["b"]}}, {"a": 1})
        assert schema_accepts({"dependentRequired": {"a": ["b"]}}, {"b": 1})


class TestSchemaScalarsConstraints:
    def test_enum_and_const_compare_as_json(self) -> None:
        assert schema_accepts({"enum": [1, "a", None]}, 1.0) and not schema_accepts({"enum": [1]}, True)
        assert schema_accepts({"const": [1, {"a": True}]}, [1, {"a": True}])
        assert not schema_accepts({"const": False}, 0)

    def test_numeric_bounds(self) -> None:
        s = {"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991}
        assert schema_accepts(s, 2**53 - 1) and not schema_accepts(s, 2**53)
        s2 = {"exclusiveMinimum": 0, "exclusiveMaximum": 10}
        assert schema_accepts(s2, 5) and not schema_accepts(s2, 0) and not schema_accepts(s2, 10)
        assert schema_accepts(s2, "not a number")  # bounds only apply to numbers
        assert schema_accepts({"multipleOf": 0.5}, 1.5) and not schema_accepts({"multipleOf": 2}, 3)

    def test_string_lengths_and_pattern(self) -> None:
        s = {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^a"}
        assert schema_accepts(s, "ab") and not schema_accepts(s, "a") and not schema_accepts(s, "abcd")
        assert not schema_accepts(s, "ba")

    def test_ecma_only_pattern_is_skipped(self) -> None:
        assert schema_accepts({"type": "string", "pattern": "\\p{L}+"}, "123")


class TestSchemaCombinators:
    def test_any_one_all_not(self) -> None:
        assert schema_accepts({"anyOf": [{"type": "string"}, {"type": "null"}]}, None)
        one = {"oneOf": [{"type": "number"}, {"type": "integer"}]}
        assert schema_accepts(one, 1.5) and not schema_accepts(one, 1)
        assert not schema_accepts({"allOf": [{"minimum": 1}, {"maximum": 2}]}, 3)
        assert not schema_accepts({"not": {"type": "null"}}, None)

    def test_if_then_else(self) -> None:
        s = {"if": {"type": "integer"}, "then": {"minimum": 0}, "else": {"type": "string"}}
        assert schema_accepts(s, 1) and not schema_accepts(s, -1) and not schema_accepts(s, 1.5)


class TestSchemaRefs:
    def test_defs_and_recursion(self) -> None:
        s = {
            "$defs": {
                "Node": {
                    "type": "object",
                    "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
                    "required": ["next"],
                }
            },
            "$ref": "#/$defs/Node",
        }
        assert schema_accepts(s, {"next": {"next": None}}) and not schema_accepts(s, {"next": {"next": 1}})

    def test_root_reference(self) -> None:
        s = {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"$ref": "#"}]}}
        assert schema_accepts(s, [1, [2, [3]]]) and not schema_accepts(s, [1, ["x"]])

    @pytest.mark.parametrize("ref", ["http://example.com/s.json", "#/$defs/Nope"])
    def test_unresolvable_references_are_errors(self, ref: str) -> None:
        with pytest.raises(ValueError, match="ref"):
            compile_schema_check({"$ref": ref})

    def test_unsupported_keywords_are_errors(self) -> None:
        with pytest.raises(ValueError, match="unevaluatedProperties"):
            compile_schema_check({"unevaluatedProperties": False})


class TestDescribeSchemaMismatch:
    def test_path_expected_and_value(self) -> None:
        s = {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Line"}}},
            "$defs": {"Line": {"type": "object", "properties": {"qty": {"type": "integer"}}}},
        }
        message = describe_schema_mismatch(s, {"items": [{"qty": 1}, {"qty": "2"}]})
        assert message == "items[1].qty: expected integer, got '2' (str)"

    def test_missing_and_unexpected_properties(self) -> None:
        s = {
            "type": "object",
            "title": "T",
            "properties": {"a": {}},
            "required": ["a"],
            "additionalProperties": False,
        }
        assert describe_schema_mismatch(s, {}) == "a: missing required property in T"
        assert describe_schema_mismatch(s, {"a": 1, "b": 2}) == "b: unexpected property 'b' in T"

    def test_nullable_names_both_types(self) -> None:
        assert (
            describe_schema_mismatch({"type": ["string", "null"]}, 1)
            == "value: expected string | null, got 1 (int)"
        )
        s = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        assert describe_schema_mismatch(s, 1) == "value: expected string | null, got 1 (int)"

    def test_constraints_are_named(self) -> None:
        message = describe_schema_mismatch({"type": "integer", "maximum": 9007199254740991}, 2**53)
        assert "integer (<= 9007199254740991)" in message

    def test_valid_values_have_no_mismatch(self) -> None:
        assert find_schema_mismatch({"type": "integer"}, 1) is None


# --------------------------------------------------------------------------------------------------
# Schemas written by the TypeScript (zod) and Python (pydantic) runtimes


def _events(document: Any) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each event in a fixture with its result rows: top level, under "event", or under "parent"/"child"."""
    if not isinstance(document, dict):
        return
    if "parent" in document and "child" in document:
        yield from _events(document["parent"])
        yield from _events(document["child"])
    elif "event" in document:
        yield document["event"], document.get("event_results") or []
    elif "event_type" in document:
        yield document, document.get("event_results") or []


def _validated(row: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether the runtime validated this row's result: never for an absent or null result (unless the
    type is null) or an event (a forwarder's row), as reference 2.16 says."""
    if "result" not in row or (row["result"] is None and schema.get("type") != "null"):
        return False
    return not (isinstance(row["result"], dict) and "event_type" in row["result"])


def _fixture_event(directory: str, name: str) -> dict[str, Any]:
    return next(_events(json.loads((INTEROP / directory / name).read_text())))[0]


def _fixture_cases() -> list[Any]:
    cases: list[Any] = []
    for directory in ("ts-2.3.2", "py-2.3.2"):
        for path in sorted((INTEROP / directory).glob("*.json")):
            completed = path.with_name(path.name.replace("fresh_", "completed_", 1))
            borrowed = list(_events(json.loads(completed.read_text()))) if completed.exists() else []
            for event, rows in _events(json.loads(path.read_text())):
                if not rows and borrowed:  # a fresh event: the completed one of its kind has the results
                    rows = borrowed[0][1]
                schema = event.get("event_result_type")
                if schema is None:
                    continue
                valid = [
                    r["result"] for r in rows if r.get("status") == "completed" and _validated(r, schema)
                ]
                cases.append(pytest.param(schema, valid, id=f"{directory}/{path.stem}/{event['event_type']}"))
    return cases


FIXTURES = _fixture_cases()


def _break_first_leaf(value: object) -> object:
    """The same value with its first scalar swapped for one of another JSON kind."""
    if isinstance(value, dict) and value:
        key = next(iter(value))
        return {**value, key: _break_first_leaf(value[key])}
    if isinstance(value, list) and value:
        return [_break_first_leaf(value[0]), *value[1:]]
    replacements: dict[type, object] = {str: 12345, bool: "true", int: "1", float: "1.5", type(None): 0}
    return replacements.get(type(value), "?")


def _wrong_kinds(schema: dict[str, Any]) -> list[object]:
    kinds: dict[str, list[object]] = {
        "integer": ["3", True, 3.5, None, [3]],
        "number": ["3.5", True, None, {}],
        "string": [1, None, b"x", ["a"]],
        "boolean": [1, 0, "true", None],
        "null": [0, "", False, []],
        "array": [{}, "abc", None, 1],
        "object": [[], "x", None, 1],
    }
    return kinds[schema["type"]]


class TestInteropSchemas:
    def test_fixtures_were_found(self) -> None:
        assert len(FIXTURES) >= 30

    @pytest.mark.parametrize(("schema", "valid"), FIXTURES)
    def test_valid_results_are_accepted(self, schema: dict[str, Any], valid: list[object]) -> None:
        check = compile_schema_check(schema)
        for value in valid:
            assert check(value), describe_schema_mismatch(schema, value)

    @pytest.mark.parametrize(("schema", "valid"), FIXTURES)
    def test_values_of_the_wrong_kind_are_rejected(self, schema: dict[str, Any], valid: list[object]) -> None:
        check = compile_schema_check(schema)
        for value in _wrong_kinds(schema):
            assert not check(value), value
            assert find_schema_mismatch(schema, value) is not None

    @pytest.mark.parametrize(("schema", "valid"), FIXTURES)
    def test_a_broken_leaf_is_rejected_with_its_path(
        self, schema: dict[str, Any], valid: list[object]
    ) -> None:
        check = compile_schema_check(schema)
        for value in valid:
            if value in ({}, []):
                continue
            broken = _break_first_leaf(value)
            assert not check(broken), broken
            mismatch = find_schema_mismatch(schema, broken)
            assert mismatch is not None

    def test_nested_object_mismatch_message(self) -> None:
        for directory in ("ts-2.3.2", "py-2.3.2"):
            document = json.loads((INTEROP / directory / "completed_nested_object.json").read_text())
            event, rows = next(_events(document))
            value = json.loads(json.dumps(rows[0]["result"]))
            value["items"][1]["qty"] = "2"
            message = describe_schema_mismatch(event["event_result_type"], value)
            assert message.startswith("items[1].qty: expected integer"), message

    def test_zod_objects_reject_extra_keys_pydantic_objects_ignore_them(self) -> None:
        value = {"subtotal": 1, "tax": 0.5, "currency": "EUR", "extra": True}
        ts = _fixture_event("ts-2.3.2", "fresh_flat_object_result.json")
        py = _fixture_event("py-2.3.2", "fresh_flat_object_result.json")
        assert not schema_accepts(ts["event_result_type"], value)
        assert schema_accepts(py["event_result_type"], value)

    def test_zod_int_is_bounded_to_safe_integers(self) -> None:
        ts = _fixture_event("ts-2.3.2", "fresh_int_result.json")
        py = _fixture_event("py-2.3.2", "fresh_int_result.json")
        assert not schema_accepts(ts["event_result_type"], 2**53)
        assert schema_accepts(py["event_result_type"], 2**53)
