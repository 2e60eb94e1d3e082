"""Python types as JSON Schema (`type_to_json_schema`), and the round trip through `compile_schema_check`."""

# typing.Optional / typing.Union are spelled out on purpose: they are among the forms under test.
# ruff: noqa: UP007, UP045
from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import itertools
import json
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, TypeVar, Union

import attrs
import pytest
from _interop import INTEROP
from hypothesis import given, settings
from hypothesis import strategies as st

from bubus_anyio._validation._schema import JSON_SCHEMA_DIALECT, type_to_json_schema
from bubus_anyio._validation._schema_checks import compile_schema_check, find_schema_mismatch
from bubus_anyio._validation._types import compile_check, find_mismatch


def schema_of(tp: object) -> dict[str, Any]:
    schema = type_to_json_schema(tp)
    assert schema is not None
    assert schema.pop("$schema") == JSON_SCHEMA_DIALECT
    return schema


@attrs.define
class Customer:
    name: str
    email: str


@attrs.define
class LineItem:
    sku: str
    qty: int
    unit_price: float


@attrs.define
class OrderResult:
    order_id: str
    customer: Customer
    items: list[LineItem]
    total: float
    notes: str | None


@dataclasses.dataclass
class Settings:
    name: str
    retries: int = 3
    tags: list[str] = dataclasses.field(default_factory=list)


class Totals(TypedDict):
    subtotal: float
    tax: float
    currency: str


class Tree(TypedDict):
    value: int
    children: list[Tree]


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


class TestNoDeclaredType:
    @pytest.mark.parametrize("tp", [None, Any, object, TypeVar("T")])
    def test_is_none(self, tp: object) -> None:
        assert type_to_json_schema(tp) is None

    @pytest.mark.parametrize("tp", [bytes, complex, list[bytes], Literal[b"x"], cabc.Iterator[int]])
    def test_unrepresentable_types_are_none(self, tp: object) -> None:
        assert type_to_json_schema(tp) is None

    def test_none_type_is_null(self) -> None:
        assert schema_of(type(None)) == {"type": "null"}


class TestScalars:
    @pytest.mark.parametrize(
        ("tp", "json_type"), [(int, "integer"), (float, "number"), (str, "string"), (bool, "boolean")]
    )
    def test_scalar(self, tp: type, json_type: str) -> None:
        assert schema_of(tp) == {"type": json_type}

    def test_dialect_is_last_like_pydantic(self) -> None:
        assert list(type_to_json_schema(int) or {}) == ["type", "$schema"]

    def test_annotated_and_newtype_are_looked_through(self) -> None:
        assert schema_of(Annotated[int, "meta"]) == {"type": "integer"}
        assert schema_of(NewType("UserId", str)) == {"type": "string"}


class TestContainers:
    def test_list(self) -> None:
        assert schema_of(list[str]) == {"items": {"type": "string"}, "type": "array"}
        assert schema_of(list) == {"items": {}, "type": "array"}
        assert schema_of(cabc.Sequence[int]) == {"items": {"type": "integer"}, "type": "array"}

    def test_sets_have_unique_items(self) -> None:
        expected = {"items": {"type": "integer"}, "type": "array", "uniqueItems": True}
        assert schema_of(set[int]) == expected == schema_of(frozenset[int])

    def test_tuples(self) -> None:
        assert schema_of(tuple[int, ...]) == {"items": {"type": "integer"}, "type": "array"}
        assert schema_of(tuple[int, str]) == {
            "maxItems": 2,
            "minItems": 2,
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "type": "array",
        }
        assert schema_of(tuple[()]) == {"maxItems": 0, "minItems": 0, "type": "array"}

    def test_dicts(self) -> None:
        assert schema_of(dict[str, int]) == {"additionalProperties": {"type": "integer"}, "type": "object"}
        assert schema_of(dict) == {"type": "object"} == schema_of(dict[str, Any])
        assert schema_of(dict[Literal["a", "b"], int])["propertyNames"] == {
            "enum": ["a", "b"],
            "type": "string",
        }

    def test_python_fixture_shapes(self) -> None:
        for name, tp in [
            ("int_result", int),
            ("float_result", float),
            ("str_result", str),
            ("bool_result", bool),
            ("null_result", type(None)),
            ("list_str_result", list[str]),
            ("dict_str_int_result", dict[str, int]),
            ("dict_str_list_int_result", dict[str, list[int]]),
        ]:
            fixture = json.loads((INTEROP / "py-2.3.2" / f"fresh_{name}.json").read_text())
            assert type_to_json_schema(tp) == fixture["event_result_type"], name


class TestUnionsAndLiterals:
    def test_optional_is_any_of_null(self) -> None:
        expected = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
        assert schema_of(Optional[int]) == expected == schema_of(int | None)

    def test_union(self) -> None:
        assert schema_of(Union[int, str, list[int]]) == {
            "anyOf": [
                {"type": "integer"},
                {"type": "string"},
                {"items": {"type": "integer"}, "type": "array"},
            ]
        }

    def test_union_with_any_is_anything(self) -> None:
        assert schema_of(list[int | Any]) == {"items": {}, "type": "array"}

    def test_literals(self) -> None:
        assert schema_of(Literal["a"]) == {"const": "a", "type": "string"}
        assert schema_of(Literal[1, 2]) == {"enum": [1, 2], "type": "integer"}
        assert schema_of(Literal[1, "a", None]) == {
            "enum": [1, "a", None],
            "type": ["integer", "string", "null"],
        }
        assert schema_of(Literal[Shade.DARK]) == {"const": "dark", "type": "string"}

    def test_enum_classes_go_to_defs(self) -> None:
        assert schema_of(list[Shade]) == {
            "$defs": {"Shade": {"enum": ["light", "dark"], "title": "Shade", "type": "string"}},
            "items": {"$ref": "#/$defs/Shade"},
            "type": "array",
        }


class TestRecords:
    def test_attrs_classes_match_pydantic_byte_for_byte(self) -> None:
        fixture = json.loads((INTEROP / "py-2.3.2" / "fresh_nested_object.json").read_text())
        assert json.dumps(type_to_json_schema(OrderResult)) == json.dumps(fixture["event_result_type"])

    def test_typeddict_matches_pydantic_but_forbids_extra_keys(self) -> None:
        fixture = json.loads((INTEROP / "py-2.3.2" / "fresh_flat_object_result.json").read_text())
        assert type_to_json_schema(Totals) == {**fixture["event_result_type"], "additionalProperties": False}

    def test_dataclass_defaults(self) -> None:
        assert schema_of(Settings) == {
            "properties": {
                "name": {"title": "Name", "type": "string"},
                "retries": {"default": 3, "title": "Retries", "type": "integer"},
                "tags": {"items": {"type": "string"}, "title": "Tags", "type": "array"},
            },
            "required": ["name"],
            "title": "Settings",
            "type": "object",
        }

    def test_not_required_keys(self) -> None:
        class Partial(TypedDict):
            a: int
            b: NotRequired[str]

        assert schema_of(Partial)["required"] == ["a"]

    def test_recursive_types_keep_a_top_level_ref(self) -> None:
        schema = schema_of(Tree)
        assert schema["$ref"] == "#/$defs/Tree"
        assert schema["$defs"]["Tree"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}

    def test_records_nested_in_containers(self) -> None:
        schema = schema_of(list[Customer])
        assert schema["items"] == {"$ref": "#/$defs/Customer"} and "Customer" in schema["$defs"]

    def test_name_clashes_get_distinct_defs(self) -> None:
        def make() -> type:
            @attrs.define
            class Customer:
                id: int

            return Customer

        schema = schema_of(tuple[Customer, make()])
        assert len(schema["$defs"]) == 2


# --------------------------------------------------------------------------------------------------
# Round trip: compile_schema_check(type_to_json_schema(T)) decides like compile_check(T)


def to_json(value: object) -> object:
    """The JSON form of a Python value: what another runtime would see."""
    if attrs.has(type(value)):
        return to_json(attrs.asdict(value, recurse=False))  # type: ignore[arg-type]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    return value


_names = itertools.count()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abcd"), inner, max_size=3),
    max_leaves=8,
)
leaf_types = st.sampled_from(
    [
        int,
        float,
        str,
        bool,
        type(None),
        Any,
        Literal[1, "a"],
        Literal[True],
        Literal["x", "y"],
        Literal[None, 2],
    ]
)


def _typed_dict(fields: list[tuple[str, object, bool]]) -> object:
    annotations = {name: tp if required else NotRequired[tp] for name, tp, required in fields}
    return TypedDict(f"TD{next(_names)}", annotations)  # type: ignore[operator]


json_types = st.recursive(
    leaf_types,
    lambda inner: st.one_of(
        inner.map(lambda t: list[t]),  # type: ignore[valid-type]
        inner.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
        inner.map(lambda t: Optional[t]),
        st.tuples(inner, inner).map(lambda ab: Union[ab[0], ab[1]]),
        st.lists(
            st.tuples(st.sampled_from("abcd"), inner, st.booleans()), max_size=3, unique_by=lambda f: f[0]
        ).map(_typed_dict),
    ),
    max_leaves=6,
)


def values_of(tp: Any) -> st.SearchStrategy[object]:
    """Values valid for ``tp``, built from its structure."""
    from typing import get_args, get_origin

    simple: dict[object, st.SearchStrategy[object]] = {
        int: st.integers(),
        float: st.floats(allow_nan=False) | st.integers(),
        str: st.text(max_size=3),
        bool: st.booleans(),
        type(None): st.none(),
        Any: json_values,
    }
    if tp in simple:
        return simple[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return st.sampled_from(args)
    if origin is list:
        return st.lists(values_of(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=2), values_of(args[1]), max_size=3)
    if origin is Union:
        return st.one_of(*(values_of(a) for a in args))
    if hasattr(tp, "__required_keys__"):
        from bubus_anyio._validation._types import type_hints, typeddict_required_keys

        hints = type_hints(tp)
        required = typeddict_required_keys(tp, hints)
        strip = {k: get_args(v)[0] if k not in required else v for k, v in hints.items()}
        return st.fixed_dictionaries(
            {k: values_of(v) for k, v in strip.items() if k in required},
            optional={k: values_of(v) for k, v in strip.items() if k not in required},
        )
    raise AssertionError(tp)


def perturb(value: object, how: str) -> object:
    """A near miss of a valid value: every int made a float, every bool an int, a key dropped or added."""
    if isinstance(value, dict):
        items = {k: perturb(v, how) for k, v in value.items()}
        if how == "drop-key" and items:
            del items[next(iter(items))]
        if how == "extra-key":
            items["zz"] = 0
        return items
    if isinstance(value, list):
        return [perturb(v, how) for v in value]
    if how == "int->float" and type(value) is int:
        return float(value)
    if how == "bool->int" and type(value) is bool:
        return int(value)
    return value


def near_misses(tp: object) -> st.SearchStrategy[object]:
    hows = st.sampled_from(["int->float", "bool->int", "drop-key", "extra-key"])
    return st.builds(perturb, values_of(tp), hows)


class TestRoundTrip:
    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_schema_decides_like_the_python_check(self, data: st.DataObject) -> None:
        tp = data.draw(json_types, label="type")
        check = compile_check(tp)
        schema = type_to_json_schema(tp)
        if check is None:
            assert schema is None
            return
        assert schema is not None
        schema_check = compile_schema_check(schema)
        value = data.draw(values_of(tp) | near_misses(tp) | json_values, label="value")
        assert check(value) == schema_check(value), (schema, value)
        if not check(value):
            assert find_mismatch(tp, value) is not None
            assert find_schema_mismatch(schema, value) is not None

    @pytest.mark.parametrize(
        ("tp", "values"),
        [
            (tuple[int, str], [(1, "a"), (2, "")]),
            (tuple[float, ...], [(), (1, 2.5)]),
            (set[int], [set(), {1, 2, 3}]),
            (frozenset[str], [frozenset({"a", "b"})]),
            (OrderResult, [OrderResult("o", Customer("a", "b"), [LineItem("s", 1, 2.5)], 3, None)]),
            (Settings, [Settings("x"), Settings("y", 5, ["t"])]),
            (list[Shade], [[Shade.LIGHT, Shade.DARK]]),
            (dict[str, tuple[int, Customer]], [{"k": (1, Customer("n", "e"))}]),
        ],
    )
    def test_python_only_shapes_are_valid_in_their_json_form(self, tp: object, values: list[object]) -> None:
        check, schema = compile_check(tp), type_to_json_schema(tp)
        assert check is not None and schema is not None
        for value in values:
            assert check(value)
            assert compile_schema_check(schema)(to_json(value)), (schema, to_json(value))

    @pytest.mark.parametrize(
        ("tp", "json_value"),
        [
            (tuple[int, str], ["a", 1]),
            (tuple[int, str], [1]),
            (set[int], [1, 1]),
            (
                OrderResult,
                {"order_id": "o", "customer": {"name": "a"}, "items": [], "total": 1, "notes": None},
            ),
            (Settings, {"name": 1}),
            (list[Shade], ["grey"]),
        ],
    )
    def test_python_only_shapes_reject_bad_json(self, tp: object, json_value: object) -> None:
        schema = type_to_json_schema(tp)
        assert schema is not None
        assert not compile_schema_check(schema)(json_value)
