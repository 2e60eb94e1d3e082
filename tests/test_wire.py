"""The wire format of our own events: what `to_json` writes, what `from_json` accepts and what it refuses."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandlerResultSchemaError,
    EventHandlerTimeoutError,
    EventValidationError,
)
from bubus_anyio._events._definition import META_FIELDS
from bubus_anyio._events._time import normalize_timestamp
from bubus_anyio._wire._convert import RemoteHandlerError, converter
from bubus_anyio._wire._decode import event_from_json
from bubus_anyio._wire._encode import event_to_json, json_value

ROW_KEYS = [
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
]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


@attrs.define
class WirePoint:
    x: int
    y: float


@attrs.define
class WireShape:
    name: str
    points: list[WirePoint]
    origin: WirePoint | None = None


@dataclasses.dataclass
class WireDataPoint:
    label: str
    weight: float


class WireTotals(TypedDict):
    subtotal: float
    currency: str


class WireColor(enum.Enum):
    RED = "red"


class WireAdd(BaseEvent[int]):
    a: int
    b: int


class WireNote(BaseEvent[None]):
    text: str
    tags: list[str] = attrs.field(factory=list)


class WireShapeEvent(BaseEvent[WireShape]):
    shape: WireShape
    data: WireDataPoint | None = None
    totals: WireTotals | None = None
    pair: tuple[int, str] = (0, "")


class WireFloaty(BaseEvent[float]):
    value: float


class WireTimed(BaseEvent[str]):
    event_timeout = 5.0
    who: str = "x"


class WireAnything(BaseEvent[None]):
    value: Any = None


class WireRenamed(BaseEvent[None]):
    event_type = "WireRenamedOnTheWire"
    n: int = 0


def _dict(event: BaseEvent[Any], **kw: Any) -> dict[str, Any]:
    return json.loads(event.to_json(**kw))


class TestWriting:
    def test_every_builtin_key_in_python_order_then_payload(self) -> None:
        data = _dict(WireAdd(a=1, b=2))
        assert list(data) == [*META_FIELDS, "a", "b"]
        assert data["event_timeout"] is None and data["event_parent_id"] is None
        assert data["event_result_type"] == {
            "type": "integer",
            "$schema": "https://json-schema.org/draft/2020-12/schema",
        }
        assert UUID_RE.match(data["event_id"]) and TS_RE.match(data["event_created_at"])
        assert data["event_status"] == "pending" and data["event_path"] == []

    def test_no_result_type_is_null_and_no_results_unless_asked(self) -> None:
        data = _dict(WireNote(text="hi"))
        assert data["event_result_type"] is None
        assert "event_results" not in data
        assert _dict(WireNote(text="hi"), include_results=True)["event_results"] == []

    def test_to_dict_equals_to_json_and_is_a_fresh_copy(self) -> None:
        event = WireAdd(a=1, b=2)
        data = event.to_dict()
        assert data == json.loads(event.to_json())
        data["event_result_type"]["type"] = "string"
        assert event.to_dict()["event_result_type"]["type"] == "integer"

    def test_structured_payload_values_become_json_types(self) -> None:
        event = WireShapeEvent(
            shape=WireShape(name="tri", points=[WirePoint(1, 2.5)]),
            data=WireDataPoint("d", 1.0),
            totals={"subtotal": 1.0, "currency": "EUR"},
            pair=(1, "a"),
        )
        data = _dict(event)
        assert data["shape"] == {"name": "tri", "points": [{"x": 1, "y": 2.5}], "origin": None}
        assert data["data"] == {"label": "d", "weight": 1.0}
        assert data["totals"] == {"subtotal": 1.0, "currency": "EUR"}
        assert data["pair"] == [1, "a"]
        assert data["event_result_type"]["title"] == "WireShape"

    def test_odd_values_never_break_the_writer(self) -> None:
        other = WireNote(text="x")
        when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        event = WireAnything(value={"e": other, "s": {3}, "c": WireColor.RED, "t": when, "o": object, 1: "k"})
        value = _dict(event)["value"]
        assert value["e"] == other.event_id
        assert value["s"] == [3] and value["c"] == "red" and value["1"] == "k"
        assert value["t"] == when.isoformat()
        assert value["o"] == repr(object)

    def test_instance_level_result_type_written_as_schema(self) -> None:
        assert _dict(WireNote(text="x", event_result_type=list[str]))["event_result_type"]["type"] == "array"
        schema = {"type": "string", "$schema": "https://json-schema.org/draft/2020-12/schema"}
        assert _dict(WireNote(text="x", event_result_type=schema))["event_result_type"] == schema

    def test_converter_unstructures_bus_objects(self) -> None:
        event = WireAdd(a=1, b=2)
        assert converter.unstructure(event) == event.to_dict()
        assert converter.unstructure(ValueError("boom")) == {"type": "ValueError", "message": "boom"}


class TestResultsOnTheWire:
    @pytest.mark.anyio
    async def test_rows_carry_every_reference_key(self) -> None:
        async with EventBus("WireRowsBus") as bus:
            bus.on(WireAdd, lambda e: e.a + e.b)
            bus.on("*", lambda e: "not an int")
            event = await bus.emit(WireAdd(a=1, b=2))
        rows = _dict(event, include_results=True)["event_results"]
        assert [list(row) for row in rows] == [ROW_KEYS, ROW_KEYS]
        ok, bad = rows
        assert ok["status"] == "completed" and ok["result"] == 3 and ok["error"] is None
        assert bad["status"] == "error" and bad["result"] is None
        assert bad["error"]["type"] == "EventHandlerResultSchemaError"
        assert ok["eventbus_name"] == "WireRowsBus" and ok["handler_event_pattern"] == "WireAdd"
        assert TS_RE.match(ok["started_at"]) and TS_RE.match(ok["handler_registered_at"])

    @pytest.mark.anyio
    async def test_round_trip_with_results_is_lossless(self) -> None:
        async with EventBus("WireRoundBus") as bus:
            bus.on(WireAdd, lambda e: e.a + e.b, handler_timeout=3.0)

            def boom(event: WireAdd) -> int:
                raise KeyError("missing")

            bus.on("*", boom)
            event = await bus.emit(WireAdd(a=1, b=2))
        text = event.to_json(include_results=True)
        back = BaseEvent.from_json(text)
        assert type(back) is WireAdd
        assert back.to_json(include_results=True) == text
        rows = list(back.event_results.values())
        assert rows[0].result == 3 and rows[0].handler.handler_timeout == 3.0
        assert rows[0].handler.handler_timeout_is_set and rows[0].handler.handler is None
        assert isinstance(rows[1].error, RemoteHandlerError)  # str(KeyError) is quoted: no exact rebuild
        assert rows[1].error.type == "KeyError"
        assert await back.event_result(raise_if_any=False) == 3

    @pytest.mark.anyio
    async def test_a_result_that_is_an_event_is_written_as_its_id(self) -> None:
        async with EventBus("WireFwdA") as bus_a, EventBus("WireFwdB") as bus_b:
            bus_a.on("*", bus_b.emit)
            bus_b.on(WireAdd, lambda e: 7)
            event = await bus_a.emit(WireAdd(a=1, b=2))
        text = event.to_json(include_results=True)
        rows = json.loads(text)["event_results"]
        assert rows[0]["result"] == event.event_id
        back = BaseEvent.from_json(text)
        assert next(iter(back.event_results.values())).result is back
        assert await back.event_result() == 7

    @pytest.mark.anyio
    async def test_timeout_and_schema_errors_come_back_as_our_classes(self) -> None:
        async with EventBus("WireErrBus") as bus:

            def slow(event: WireAdd) -> int:
                time.sleep(0.2)
                return 1

            bus.on(WireAdd, slow, handler_timeout=0.01, run_in_thread=True)
            bus.on("*", lambda e: "nope")
            event = await bus.emit(WireAdd(a=1, b=2))
        back = BaseEvent.from_json(event.to_json(include_results=True))
        timeout_row, schema_row = back.event_results.values()
        assert isinstance(timeout_row.error, EventHandlerTimeoutError)
        assert isinstance(schema_row.error, EventHandlerResultSchemaError)
        assert schema_row.error.event is back and schema_row.error.event_result is schema_row
        assert str(timeout_row.error) == str(next(iter(event.event_results.values())).error)


class TestErrorsRead:
    def _row(self, error: object) -> dict[str, Any]:
        return {
            "id": "01a21abe-9ab2-765a-87a1-7a0998332b98",
            "status": "error",
            "handler_id": "d2e5fbbc-5304-5940-84b7-5b71c730dd43",
            "handler_name": "h",
            "handler_event_pattern": "WireNote",
            "eventbus_name": "B",
            "eventbus_id": "01a21abe-9ab1-7649-8839-119150cfff05",
            "error": error,
        }

    @pytest.mark.parametrize(
        ("error", "cls", "written"),
        [
            ({}, RemoteHandlerError, {"type": "Error", "message": ""}),
            ("boom", Exception, {"type": "Exception", "message": "boom"}),
            (
                {"type": "ValueError", "message": "boom"},
                ValueError,
                {"type": "ValueError", "message": "boom"},
            ),
            ({"type": "TypeError", "message": "t"}, TypeError, {"type": "TypeError", "message": "t"}),
            (
                {"type": "MyAppError", "message": "m"},
                RemoteHandlerError,
                {"type": "MyAppError", "message": "m"},
            ),
            (
                {"type": "EventHandlerTimeoutError", "message": "late"},
                EventHandlerTimeoutError,
                {"type": "EventHandlerTimeoutError", "message": "late"},
            ),
        ],
    )
    def test_error_shapes(self, error: object, cls: type[BaseException], written: dict[str, str]) -> None:
        event = WireNote.from_json(
            {"event_type": "WireNote", "text": "x", "event_results": [self._row(error)]}
        )
        (row,) = event.event_results.values()
        assert type(row.error) is cls
        assert _dict(event, include_results=True)["event_results"][0]["error"] == written

    def test_rows_accepted_as_a_map_and_timestamps_defaulted(self) -> None:
        row = self._row(None) | {"status": "completed", "result": "ok"}
        event = BaseEvent.from_json(
            {"event_type": "WireNote", "text": "x", "event_results": {row["handler_id"]: row}}
        )
        (read,) = event.event_results.values()
        assert read.result == "ok" and read.handler.handler_registered_at == event.event_created_at
        assert read.handler.handler_timeout_is_set is False


class TestReading:
    def test_known_class_round_trip(self) -> None:
        event = WireAdd(a=1, b=2, event_timeout=3.0, event_path=["WireBus#abcd"])
        back = BaseEvent.from_json(event.to_json())
        assert type(back) is WireAdd and (back.a, back.b) == (1, 2)
        assert back.to_json() == event.to_json()

    def test_nested_structured_payload_round_trip(self) -> None:
        event = WireShapeEvent(
            shape=WireShape(name="t", points=[WirePoint(1, 2.0)], origin=WirePoint(0, 0.5)),
            data=WireDataPoint("d", 3.0),
            totals={"subtotal": 1.0, "currency": "EUR"},
            pair=(2, "b"),
        )
        back = BaseEvent.from_json(event.to_json())
        assert isinstance(back, WireShapeEvent)
        assert back.shape == event.shape and back.data == event.data
        assert back.totals == event.totals and back.pair == (2, "b")

    def test_ints_read_as_floats_where_floats_are_declared(self) -> None:
        back = WireFloaty.from_json({"event_type": "WireFloaty", "value": 30, "event_timeout": 30})
        assert back.value == 30.0 and type(back.value) is float
        assert back.event_timeout == 30.0 and type(back.event_timeout) is float

    def test_missing_keys_are_unset_and_null_overrides_a_class_default(self) -> None:
        event = BaseEvent.from_json({"event_type": "WireTimed"})
        assert isinstance(event, WireTimed) and event.event_timeout == 5.0 and event.who == "x"
        assert UUID_RE.match(event.event_id) and event.event_status == "pending"
        assert BaseEvent.from_json({"event_type": "WireTimed", "event_timeout": None}).event_timeout is None

    def test_a_subclass_reads_a_missing_or_null_event_type_as_its_own(self) -> None:
        """Missing equals null on input, and on a subclass both mean the class's own type (as upstream)."""
        event = WireAdd.from_json({"a": 1, "b": 2})
        assert type(event) is WireAdd and event.event_type == "WireAdd" and (event.a, event.b) == (1, 2)
        assert WireAdd.from_json({"event_type": None, "a": 1, "b": 2}).event_type == "WireAdd"
        renamed = WireRenamed.from_json('{"n": 4}')
        assert renamed.event_type == "WireRenamedOnTheWire" and renamed.n == 4
        assert WireRenamed.from_json(renamed.to_json()).to_json() == renamed.to_json()

    @pytest.mark.anyio
    async def test_a_subclass_read_without_event_type_reaches_its_handlers(self) -> None:
        async with EventBus("WireNoTypeBus") as bus:
            bus.on(WireAdd, lambda e: e.a + e.b)
            event = await bus.emit(WireAdd.from_json({"a": 2, "b": 3}))
        assert await event.event_result() == 5

    def test_base_event_still_needs_an_event_type(self) -> None:
        with pytest.raises(EventValidationError) as info:
            BaseEvent.from_json({"a": 1})
        assert info.value.field == "event_type" and "None" in str(info.value)

    def test_non_canonical_inputs_are_normalised(self) -> None:
        event = BaseEvent.from_json(
            {
                "event_type": "WireNote",
                "text": "x",
                "event_id": "01A21ABE-9AA8-778B-947F-398F2181E059",
                "event_created_at": "2025-01-02T05:04:05.1+02:00",
            }
        )
        assert event.event_id == "01a21abe-9aa8-778b-947f-398f2181e059"
        assert event.event_created_at == "2025-01-02T03:04:05.100000000Z"

    def test_subclass_keeps_its_own_result_type(self) -> None:
        data = WireAdd(a=1, b=2).to_dict() | {"event_result_type": {"type": "string"}}
        back = WireAdd.from_json(data)
        assert back.event_result_type is int

    def test_pending_bus_count_is_a_local_counter(self) -> None:
        data = WireAdd(a=1, b=2).to_dict() | {"event_pending_bus_count": 2}
        assert WireAdd.from_json(data).event_pending_bus_count == 0


class TestGenericEvents:
    def test_unknown_type_keeps_every_field_in_order(self) -> None:
        source = {
            "event_type": "WireNeverDefined",
            "zeta": 1,
            "alpha": {"nested": [1, 2.5, None]},
            "event_id": "01a21abe-9aa8-778b-947f-398f2181e059",
            "mid": "m",
        }
        event = BaseEvent.from_json(source)
        assert type(event).__name__ == "_GenericEvent"
        assert event.zeta == 1 and event.alpha == {"nested": [1, 2.5, None]}  # type: ignore[attr-defined]
        data = event.to_dict()
        assert list(data)[len(META_FIELDS) :] == ["zeta", "alpha", "mid"]
        assert BaseEvent.from_json(event.to_json()).to_json() == event.to_json()

    def test_generic_event_keeps_and_enforces_the_wire_schema(self) -> None:
        schema = {"type": "integer", "$schema": "https://json-schema.org/draft/2020-12/schema"}
        event = BaseEvent.from_json({"event_type": "WireNeverDefined2", "event_result_type": schema})
        assert event.event_result_type == schema and event.to_dict()["event_result_type"] == schema
        check = event._result_check  # pyright: ignore[reportPrivateUsage]
        assert check is not None and check(3) and not check("3")

    @pytest.mark.parametrize(
        "key", ["first", "bus", "toJSON", "model_dump", "_done", "to_json", "event_label"]
    )
    def test_reserved_payload_names_are_refused(self, key: str) -> None:
        with pytest.raises(EventValidationError) as info:
            BaseEvent.from_json({"event_type": "WireNeverDefined3", key: 1})
        assert info.value.field == key


class TestRefusals:
    @pytest.mark.parametrize(
        ("data", "field", "fragment"),
        [
            ({"event_type": "WireAdd", "a": "1", "b": 2}, "a", "'1'"),
            ({"event_type": "WireAdd", "a": True, "b": 2}, "a", "True"),
            ({"event_type": "WireAdd", "a": 1}, "b", "missing"),
            ({"event_type": "WireAdd", "a": 1, "b": 2, "c": 3}, "c", "unknown payload field"),
            (
                {"event_type": "WireAdd", "a": 1, "b": 2, "event_foo": 1},
                "event_foo",
                "unknown event metadata",
            ),
            ({"event_type": "WireAdd", "a": 1, "b": 2, "event_id": "nope"}, "event_id", "'nope'"),
            ({"event_type": "WireAdd", "a": 1, "b": 2, "event_parent_id": 5}, "event_parent_id", "5"),
            (
                {"event_type": "WireAdd", "a": 1, "b": 2, "event_created_at": "2025-01-02 03:04:05Z"},
                "event_created_at",
                "2025-01-02 03:04:05Z",
            ),
            (
                {"event_type": "WireAdd", "a": 1, "b": 2, "event_started_at": "2025-13-02T03:04:05Z"},
                "event_started_at",
                "2025-13-02",
            ),
            ({"event_type": "WireAdd", "a": 1, "b": 2, "event_timeout": "5"}, "event_timeout", "'5'"),
            ({"event_type": "WireAdd", "a": 1, "b": 2, "event_timeout": -1}, "event_timeout", "-1"),
            ({"event_type": "WireAdd", "a": 1, "b": 2, "event_status": "done"}, "event_status", "done"),
            ({"event_type": "WireAdd", "a": 1, "b": 2, "event_path": "A#1234"}, "event_path", "A#1234"),
            (
                {"event_type": "WireNote", "text": "x", "event_result_type": "int"},
                "event_result_type",
                "'int'",
            ),
            ({"event_type": 5}, "event_type", "5"),
            ({"event_type": "not an identifier"}, "event_type", "not an identifier"),
            ({"event_type": "WireNote", "text": "x", "event_schema": "m.X@1"}, "event_schema", "1.x"),
            (
                {"event_type": "WireShapeEvent", "shape": {"name": "t", "points": [{"x": "1", "y": 2}]}},
                "shape",
                "points[0].x",
            ),
            (
                {"event_type": "WireShapeEvent", "shape": {"name": "t", "points": [], "extra": 1}},
                "shape",
                "extra",
            ),
        ],
    )
    def test_bad_fields_name_the_field_and_value(
        self, data: dict[str, Any], field: str, fragment: str
    ) -> None:
        with pytest.raises(EventValidationError) as info:
            BaseEvent.from_json(data)
        assert info.value.field == field
        assert fragment in str(info.value)

    @pytest.mark.parametrize("text", ["{", "[1, 2]", "42", '"event"', b"\xff", "null"])
    def test_not_a_json_object(self, text: str | bytes) -> None:
        with pytest.raises(EventValidationError):
            BaseEvent.from_json(text)

    @pytest.mark.parametrize(
        ("row", "fragment"),
        [
            ({"status": "done"}, "status"),
            ({"handler": {}}, "handler"),
            ({"handler_id": "x"}, "handler_id"),
            ({"started_at": "yesterday"}, "started_at"),
            ({"error": 5}, "error"),
            ({"event_children": ["nope"]}, "event_children"),
            ({"event_id": "01a21abe-9ab1-7649-8839-16ed742df6ec"}, "owning event"),
        ],
    )
    def test_bad_result_rows(self, row: dict[str, Any], fragment: str) -> None:
        base = {
            "id": "01a21abe-9ab2-765a-87a1-7a0998332b98",
            "status": "completed",
            "handler_id": "d2e5fbbc-5304-5940-84b7-5b71c730dd43",
            "handler_name": "h",
            "eventbus_name": "B",
            "eventbus_id": "01a21abe-9ab1-7649-8839-119150cfff05",
        }
        with pytest.raises(EventValidationError) as info:
            BaseEvent.from_json({"event_type": "WireNote", "text": "x", "event_results": [base | row]})
        assert fragment in str(info.value)

    def test_event_results_must_be_a_list_or_map(self) -> None:
        with pytest.raises(EventValidationError, match="event_results"):
            BaseEvent.from_json({"event_type": "WireNote", "text": "x", "event_results": "rows"})


# ---------------------------------------------------------------------------------------- properties
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars | json_floats,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


class WirePropEvent(BaseEvent[None]):
    count: int
    ratio: float
    title: str
    items: list[Any]
    meta: dict[str, Any]
    shape: WireShape | None = None


points = st.builds(WirePoint, x=st.integers(-(2**53), 2**53), y=json_floats)
shapes = st.builds(
    WireShape, name=st.text(max_size=10), points=st.lists(points, max_size=3), origin=st.none() | points
)


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(-(2**63), 2**63 - 1),
    ratio=json_floats,
    title=st.text(),
    items=st.lists(json_values, max_size=5),
    meta=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    shape=st.none() | shapes,
)
def test_payload_round_trip(
    count: int, ratio: float, title: str, items: list[Any], meta: dict[str, Any], shape: WireShape | None
) -> None:
    event = WirePropEvent(count=count, ratio=ratio, title=title, items=items, meta=meta, shape=shape)
    text = event_to_json(event)
    back = event_from_json(BaseEvent, text)
    assert isinstance(back, WirePropEvent)
    assert (back.count, back.ratio, back.title, back.items, back.meta, back.shape) == (
        count,
        ratio,
        title,
        items,
        meta,
        shape,
    )
    assert event_to_json(back) == text


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), json_values, max_size=6))
def test_generic_payload_round_trip(payload: dict[str, Any]) -> None:
    payload = {k: v for k, v in payload.items() if not k.startswith(("event_", "model_"))}
    payload = {k: v for k, v in payload.items() if not hasattr(BaseEvent, k) and k not in {"bus", "first"}}
    text = orjson.dumps({"event_type": "WireGenericProp", **payload}).decode()
    event = BaseEvent.from_json(text)
    assert {k: getattr(event, k) for k in payload} == payload
    assert orjson.loads(event.to_json())["event_type"] == "WireGenericProp"
    assert BaseEvent.from_json(event.to_json()).to_json() == event.to_json()


instants = st.integers(
    int(datetime(1991, 1, 2, tzinfo=UTC).timestamp()) * 10**9,
    int(datetime(2499, 12, 30, tzinfo=UTC).timestamp()) * 10**9,
)
offsets = st.integers(-14 * 60, 14 * 60)


@settings(max_examples=300, deadline=None)
@given(ns=instants, digits=st.integers(0, 9), offset_minutes=offsets)
def test_timestamps_normalise_to_the_canonical_instant(ns: int, digits: int, offset_minutes: int) -> None:
    seconds, fraction = divmod(ns, 10**9)
    kept = fraction // 10 ** (9 - digits) * 10 ** (9 - digits) if digits else 0
    offset = timedelta(minutes=offset_minutes)
    local = datetime.fromtimestamp(seconds, UTC) + offset
    sign = "+" if offset_minutes >= 0 else "-"
    zone = (
        "Z"
        if offset_minutes == 0
        else f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    )
    text = f"{local:%Y-%m-%dT%H:%M:%S}" + (f".{str(kept).zfill(9)[:digits]}" if digits else "") + zone
    expected = f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{kept:09d}Z"
    if not 1990 < local.year < 2500:
        return
    out = normalize_timestamp(text)
    assert out == expected and len(out) == 30
    assert normalize_timestamp(out) == out
    event = BaseEvent.from_json({"event_type": "WireNote", "text": "t", "event_created_at": text})
    assert event.event_created_at == expected


@settings(max_examples=100, deadline=None)
@given(a=instants, b=instants)
def test_canonical_timestamps_sort_like_instants(a: int, b: int) -> None:
    def fmt(ns: int) -> str:
        s, f = divmod(ns, 10**9)
        return normalize_timestamp(f"{datetime.fromtimestamp(s, UTC):%Y-%m-%dT%H:%M:%S}.{f:09d}Z")

    assert (fmt(a) < fmt(b)) == (a < b)


# ---------------------------------------------------------------------------------------- review fixes
class WireEchoId(BaseEvent[str]):
    n: int = 0


class WireOtherEchoId(BaseEvent[None]):
    pass


@dataclasses.dataclass
class WireEnvelope:
    ev: Any
    note: str = ""


@attrs.define
class WireAttrsEnvelope:
    ev: Any
    items: list[Any] = attrs.field(factory=list)


_ROW: dict[str, Any] = {
    "id": "01a21abe-9ab2-765a-87a1-7a0998332b98",
    "status": "completed",
    "handler_id": "d2e5fbbc-5304-5940-84b7-5b71c730dd43",
    "handler_name": "h",
    "eventbus_name": "B",
    "eventbus_id": "01a21abe-9ab1-7649-8839-119150cfff05",
}


class TestHandlerResultsThatLookLikeTheEvent:
    @pytest.mark.anyio
    async def test_a_handler_returning_the_event_id_keeps_the_string(self) -> None:
        async with EventBus("WireEchoBus") as bus:
            bus.on(WireEchoId, lambda e: e.event_id)
            event = await bus.emit(WireEchoId(n=1))
        back = BaseEvent.from_json(event.to_json(include_results=True))
        (row,) = back.event_results.values()
        assert row.result == event.event_id and type(row.result) is str
        assert await back.event_result() == event.event_id

    @pytest.mark.parametrize("name", ["EventBus.emit", "EventBus.dispatch", "app.MyBus.emit"])
    def test_only_a_forwarders_row_reads_the_id_as_the_event(self, name: str) -> None:
        event = WireOtherEchoId()
        data = event.to_dict() | {"event_results": [_ROW | {"handler_name": name, "result": event.event_id}]}
        (row,) = BaseEvent.from_json(data).event_results.values()
        assert isinstance(row.result, WireOtherEchoId) and row.result.event_id == event.event_id
        data["event_results"][0]["handler_name"] = "app.emit_audit"
        (row,) = BaseEvent.from_json(data).event_results.values()
        assert row.result == event.event_id


class TestValuesJsonCannotCarry:
    def test_an_event_inside_a_dataclass_or_attrs_value_is_its_id(self) -> None:
        inner = WireNote(text="inner")
        event = WireAnything(value=[WireEnvelope(ev=inner), WireAttrsEnvelope(ev=inner, items=[inner])])
        assert _dict(event)["value"] == [
            {"ev": inner.event_id, "note": ""},
            {"ev": inner.event_id, "items": [inner.event_id]},
        ]

    def test_a_value_holding_its_own_event_is_written(self) -> None:
        holder = WireAnything()
        holder.value = WireEnvelope(ev=holder)
        assert _dict(holder)["value"] == {"ev": holder.event_id, "note": ""}

    @pytest.mark.anyio
    async def test_a_result_holding_the_event_is_written_with_its_id(self) -> None:
        async with EventBus("WireEnvelopeBus") as bus:
            bus.on(WireNote, lambda e: WireAttrsEnvelope(ev=e))
            event = await bus.emit(WireNote(text="x"))
            assert json.loads(bus.to_json())  # the snapshot is writable too
        (row,) = _dict(event, include_results=True)["event_results"]
        assert row["result"] == {"ev": event.event_id, "items": []}

    def test_a_value_that_contains_itself_is_refused(self) -> None:
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(EventValidationError) as info:
            WireAnything(value=loop).to_json()
        assert info.value.field == "value" and "contains itself" in str(info.value)

    @pytest.mark.parametrize(
        ("value", "field", "fragment"),
        [
            (float("nan"), "value", "nan"),
            (float("inf"), "value", "inf"),
            (float("-inf"), "value", "-inf"),
            ({"items": [1.0, float("nan")]}, "value.items[1]", "nan"),
            (WireEnvelope(ev=[float("inf")]), "value.ev[0]", "inf"),
            (2**64, "value", str(2**64)),
            ([-(2**63) - 1], "value[0]", str(-(2**63) - 1)),
            (b"raw", "value", "b'raw'"),
            ({"blob": bytearray(b"x")}, "value.blob", "bytearray"),
        ],
    )
    def test_unwritable_values_are_refused_naming_the_field(
        self, value: object, field: str, fragment: str
    ) -> None:
        event = WireAnything(value=value)
        for write in (event.to_json, event.to_dict):
            with pytest.raises(EventValidationError) as info:
                write()
            assert info.value.field == field
            assert field in str(info.value) and fragment in str(info.value)

    @pytest.mark.parametrize(("field", "value"), [("value", float("nan")), ("value", -float("inf"))])
    def test_non_finite_declared_floats_are_refused(self, field: str, value: float) -> None:
        with pytest.raises(EventValidationError) as info:
            WireFloaty(value=value).to_json()
        assert info.value.field == field

    def test_a_declared_int_beyond_64_bits_is_refused_not_a_bare_type_error(self) -> None:
        event = WireAdd(a=2**64, b=1)
        for write in (event.to_json, event.to_dict):
            with pytest.raises(EventValidationError) as info:
                write()
            assert info.value.field == "a" and info.value.value == 2**64
        assert WireAdd(a=2**64 - 1, b=-(2**63)).to_json()  # the limits themselves are fine

    @pytest.mark.anyio
    async def test_unwritable_results_are_refused_naming_the_row(self) -> None:
        async with EventBus("WireNanBus") as bus:
            bus.on(WireFloaty, lambda e: e.value / 0 if e.value else float("nan"))
            event = await bus.emit(WireFloaty(value=0.0))
        with pytest.raises(EventValidationError) as info:
            event.to_json(include_results=True)
        assert info.value.field == "result" and "event_results[" in str(info.value)
        assert event.to_json()  # without results there is nothing to refuse

    def test_json_value_names_the_path(self) -> None:
        with pytest.raises(EventValidationError) as info:
            json_value({"a": [0, b"x"]})
        assert info.value.field == "a[1]"


class TestBigIntegersRead:
    @pytest.mark.parametrize("n", [2**64, -(2**63) - 1, 123456789012345678901234567890, -(10**40)])
    def test_integer_literals_beyond_64_bits_stay_exact_ints(self, n: int) -> None:
        text = json.dumps({"event_type": "WireNeverDefinedBig", "n": n, "deep": {"x": [n]}})
        for data in (text, text.encode()):
            event = BaseEvent.from_json(data)
            assert event.n == n and type(event.n) is int  # type: ignore[attr-defined]
            assert event.deep == {"x": [n]}  # type: ignore[attr-defined]
        back = WireAnything.from_json(json.dumps({"event_type": "WireAnything", "value": n}))
        assert back.value == n and type(back.value) is int

    def test_long_digit_strings_and_floats_read_as_before(self) -> None:
        text = json.dumps({"event_type": "WireNeverDefinedBig2", "s": "1" * 30, "f": 1.5e300, "g": 0.1})
        event = BaseEvent.from_json(text)
        assert event.s == "1" * 30 and event.f == 1.5e300 and event.g == 0.1  # type: ignore[attr-defined]

    def test_a_big_int_where_an_int_is_declared_reads_exactly(self) -> None:
        back = WireAdd.from_json(json.dumps({"event_type": "WireAdd", "a": 2**70, "b": 1}))
        assert back.a == 2**70


class TestHostileErrorsAndRows:
    @pytest.mark.parametrize("type_name", ["StopIteration", "StopAsyncIteration", "GeneratorExit"])
    @pytest.mark.anyio
    async def test_iteration_protocol_errors_are_not_rebuilt(self, type_name: str) -> None:
        row = _ROW | {"status": "error", "error": {"type": type_name, "message": "hostile"}}
        data = WireNote(text="x").to_dict()
        done = {"event_status": "completed", "event_completed_at": data["event_created_at"]}
        event = WireNote.from_json(
            data | done | {"event_started_at": data["event_created_at"]} | {"event_results": [row]}
        )
        (read,) = event.event_results.values()
        assert type(read.error) is RemoteHandlerError and read.error.type == type_name
        with pytest.raises(RemoteHandlerError):
            await event.event_result()
        written = _dict(event, include_results=True)["event_results"][0]["error"]
        assert written == {"type": type_name, "message": "hostile"}

    def test_duplicate_handler_rows_are_refused(self) -> None:
        second = _ROW | {"id": "01a21abe-9ab2-765a-87a1-7a099833beef", "result": "second"}
        with pytest.raises(EventValidationError) as info:
            BaseEvent.from_json(
                {"event_type": "WireNote", "text": "x", "event_results": [_ROW | {"result": "first"}, second]}
            )
        assert info.value.field == "event_results" and info.value.value == _ROW["handler_id"]
        assert _ROW["handler_id"] in str(info.value)

    def test_a_subclass_reads_only_its_own_event_type(self) -> None:
        data = WireNote(text="x").to_dict()
        for cls in (WireAdd, WireTimed):
            with pytest.raises(EventValidationError) as info:
                cls.from_json(data)
            assert info.value.field == "event_type" and info.value.value == "WireNote"
        with pytest.raises(EventValidationError) as info:
            WireNote.from_json(data | {"event_type": "WireNeverDefined4"})
        assert info.value.field == "event_type"
        assert type(WireNote.from_json(data)) is WireNote

    @pytest.mark.parametrize("key", [1, ("t",), b"event_x", None])
    def test_non_string_keys_are_refused(self, key: object) -> None:
        for data in (
            {"event_type": "WireNeverDefined5", key: "a"},
            {"event_type": "WireNote", "text": "x", key: 1},
        ):
            with pytest.raises(EventValidationError) as info:
                BaseEvent.from_json(data)  # type: ignore[arg-type]
            assert info.value.field == repr(key) and repr(key) in str(info.value)

    def test_non_string_keys_in_rows_are_refused(self) -> None:
        with pytest.raises(EventValidationError) as info:
            BaseEvent.from_json(
                {"event_type": "WireNote", "text": "x", "event_results": [_ROW | {1: "x", "zz": 2}]}
            )
        assert "unknown result row field" in str(info.value)


@settings(max_examples=100, deadline=None)
@given(n=st.integers())
def test_any_integer_is_written_exactly_or_refused(n: int) -> None:
    event = WireAnything(value=[n])
    if -(2**63) <= n < 2**64:
        assert BaseEvent.from_json(event.to_json()).value == [n]  # type: ignore[attr-defined]
    else:
        with pytest.raises(EventValidationError):
            event.to_json()
    text = json.dumps({"event_type": "WireAnything", "value": [n]})
    assert WireAnything.from_json(text).value == [n]
