"""Wire compatibility with the real bubus 2.3.2 runtimes, against the fixtures they wrote
(``shared/interop``, beside the project): we read everything they write, and we write what they write."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import anyio
import attrs
import pytest
from _interop import INTEROP

from bubus_anyio import BaseEvent, EventBus, EventHandlerResultSchemaError, EventValidationError
from bubus_anyio._events._definition import EVENT_TYPES
from bubus_anyio._validation._schema_checks import compile_schema_check

RUNTIMES = ("py-2.3.2", "ts-2.3.2")
NOT_EVENTS = {"vectors.json", "bus_snapshot.json"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*#[0-9A-Za-z]{4}$")
#: Keys TypeScript leaves out when their value is undefined (our rows and events always carry them).
TS_OMITTED_EVENT_KEYS = {
    "event_slow_timeout",
    "event_concurrency",
    "event_handler_timeout",
    "event_handler_slow_timeout",
    "event_handler_concurrency",
    "event_handler_completion",
    "event_result_type",
    "event_results",
}
TS_OMITTED_ROW_KEYS = {"handler_timeout", "handler_slow_timeout", "result", "error"}

if not INTEROP.exists():  # pragma: no cover
    pytest.skip(f"interop fixtures not available: {INTEROP}", allow_module_level=True)


# ---------------------------------------------------------------------------------------- fixture access
def _parts(path: Path) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """``(label, event, rows)`` for each event in a fixture file, whatever its wrapping."""
    data = json.loads(path.read_text())
    wrapped = [("parent", data["parent"]), ("child", data["child"])] if "parent" in data else [("", data)]
    parts: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    for label, part in wrapped:
        if "event" in part:
            event, rows = dict(part["event"]), list(part.get("event_results") or [])
        else:
            event = dict(part)
            rows = list(event.pop("event_results", None) or [])
        parts.append((f"{path.parent.name}/{path.name}{':' + label if label else ''}", event, rows))
    return parts


def _fixture_files(*runtimes: str) -> list[Path]:
    return sorted(p for r in runtimes for p in (INTEROP / r).glob("*.json") if p.name not in NOT_EVENTS)


ALL_PARTS = [part for path in _fixture_files(*RUNTIMES) for part in _parts(path)]
#: Sample values for comparing JSON Schemas by decision: basics plus every handler value in the fixtures.
#: Objects with unknown keys and integers beyond 2**53 are left out: there the runtimes already disagree
#: among themselves (pydantic ignores extra keys, zod rejects them; zod bounds integers to 2**53).
SAMPLES: list[Any] = [
    None,
    True,
    False,
    0,
    42,
    -7,
    1.5,
    20.0,
    "",
    "x",
    [],
    ["a", "b"],
    [1, 2],
    [1, "a"],
    {},
    {"x": 1},
    {"x": "1"},
    {"even": [0, 2]},
    {"even": ["0"]},
    {"subtotal": 1, "tax": 2.5},
    {"subtotal": 1, "tax": 2.5, "currency": 3},
    *[row["result"] for _, _, rows in ALL_PARTS for row in rows if "result" in row],
]


@pytest.fixture
def isolated_registry() -> Iterator[None]:
    """Fixture events read as generic events whatever other test modules define."""
    saved = dict(EVENT_TYPES)
    EVENT_TYPES.clear()
    try:
        yield
    finally:
        EVENT_TYPES.clear()
        EVENT_TYPES.update(saved)


def _decides_alike(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    check_a, check_b = compile_schema_check(a), compile_schema_check(b)
    return all(check_a(v) == check_b(v) for v in SAMPLES)


def _with_rows(event: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {**event, "event_results": rows} if rows else event


# ---------------------------------------------------------------------------------------- reading
@pytest.mark.parametrize(("label", "event", "rows"), ALL_PARTS, ids=[p[0] for p in ALL_PARTS])
def test_every_fixture_event_reads_and_rewrites_every_key(
    isolated_registry: None, label: str, event: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    read = BaseEvent.from_json(json.dumps(_with_rows(event, rows)))
    ours = read.to_dict(include_results=True)
    for key, value in event.items():
        assert key in ours, key
        if key == "event_result_type":
            assert _decides_alike(value, ours[key])
        else:
            assert ours[key] == value, key
    assert len(ours["event_results"]) == len(rows)
    for src, row in zip(rows, ours["event_results"], strict=True):
        for key, value in src.items():
            assert key in row, key
            if key == "error" and value == {}:
                assert row[key] == {"type": "Error", "message": ""}  # a TS Error serialises as {}
            elif key == "result" and isinstance(value, dict) and value.get("event_id") == event["event_id"]:
                assert row[key] == event["event_id"]  # Python 2.x inlines a forwarded event; we write its id
            else:
                assert row[key] == value, key


@pytest.mark.parametrize(("label", "event", "rows"), ALL_PARTS, ids=[p[0] for p in ALL_PARTS])
def test_fixture_payload_is_readable_as_attributes(
    isolated_registry: None, label: str, event: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    read = BaseEvent.from_json(event)
    for key, value in event.items():
        if not key.startswith("event_"):
            assert getattr(read, key) == value
    assert read.event_pending_bus_count == 0


# Typed classes mirroring the fixtures' events (our names; their event_type is kept from the wire).
class WireTotals(TypedDict):
    subtotal: float
    tax: float
    currency: str


@attrs.define
class WireCustomer:
    name: str
    email: str


@attrs.define
class WireLineItem:
    sku: str
    qty: int
    unit_price: float


@attrs.define
class WireOrderResult:
    order_id: str
    customer: WireCustomer
    items: list[WireLineItem]
    total: float
    notes: str | None


class WireIntResultEvent(BaseEvent[int]):
    a: int
    b: int


class WireFloatResultEvent(BaseEvent[float]):
    value: float


class WireStrResultEvent(BaseEvent[str]):
    text: str


class WireBoolResultEvent(BaseEvent[bool]):
    flag: bool


class WireNullResultEvent(BaseEvent[None]):
    event_result_type = type(None)  # BaseEvent[type(None)] means "no result type" here: see docs
    note: str | None = None


class WireNoneGenericArgEvent(BaseEvent[None]):
    note: str | None = None


class WireListStrResultEvent(BaseEvent[list[str]]):
    words: list[str]


class WireDictStrIntResultEvent(BaseEvent[dict[str, int]]):
    keys: list[str]


class WireDictStrListIntResultEvent(BaseEvent[dict[str, list[int]]]):
    groups: dict[str, int]


class WireFlatObjectResultEvent(BaseEvent[WireTotals]):
    amount: float


class WireOrderPlacedEvent(BaseEvent[WireOrderResult]):
    order_id: str
    customer: WireCustomer
    items: list[WireLineItem]
    coupon: str | None = None


class WireNoResultTypeEvent(BaseEvent[None]):
    message: str
    count: int


class WireErrorEvent(BaseEvent[int]):
    x: int


class WireTimeoutEvent(BaseEvent[int]):
    x: int


class WireSchemaViolationEvent(BaseEvent[int]):
    x: int


class WireParentEvent(BaseEvent[int]):
    n: int


class WireChildEvent(BaseEvent[int]):
    n: int


class WireForwardedEvent(BaseEvent[str]):
    payload: str


class WireConfiguredEvent(BaseEvent[str]):
    name: str


TYPED: dict[str, type[BaseEvent[Any]]] = {
    cls.__name__.removeprefix("Wire"): cls
    for cls in (
        WireIntResultEvent,
        WireFloatResultEvent,
        WireStrResultEvent,
        WireBoolResultEvent,
        WireNullResultEvent,
        WireNoneGenericArgEvent,
        WireListStrResultEvent,
        WireDictStrIntResultEvent,
        WireDictStrListIntResultEvent,
        WireFlatObjectResultEvent,
        WireOrderPlacedEvent,
        WireNoResultTypeEvent,
        WireErrorEvent,
        WireTimeoutEvent,
        WireSchemaViolationEvent,
        WireParentEvent,
        WireChildEvent,
        WireForwardedEvent,
        WireConfiguredEvent,
    )
}


@pytest.mark.parametrize(("label", "event", "rows"), ALL_PARTS, ids=[p[0] for p in ALL_PARTS])
def test_fixture_events_read_into_typed_classes(
    label: str, event: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    cls = TYPED[event["event_type"]]
    with pytest.raises(EventValidationError) as info:  # a subclass reads only its own event_type
        cls.from_json(_with_rows(event, rows))
    assert info.value.field == "event_type" and info.value.value == event["event_type"]
    read = cls.from_json({**_with_rows(event, rows), "event_type": cls.__name__})  # renamed at the boundary
    assert type(read) is cls and read.event_type == cls.__name__
    ours = read.to_dict()
    for key, value in event.items():
        if key == "event_type":
            assert ours[key] == cls.__name__
        elif key == "event_result_type":
            assert _decides_alike(value, ours[key]), "the class's result type decides like the wire's"
        else:
            assert ours[key] == value, key
    if isinstance(read, WireOrderPlacedEvent):
        assert isinstance(read.customer, WireCustomer) and isinstance(read.items[0], WireLineItem)
        for row in read.event_results.values():
            assert isinstance(row.result, WireOrderResult)
    if isinstance(read, WireFloatResultEvent):
        assert type(read.value) is float


def test_typed_classes_refuse_wrongly_typed_fixture_payloads() -> None:
    (_, event, _), *_ = _parts(INTEROP / "ts-2.3.2" / "fresh_int_result.json")
    with pytest.raises(EventValidationError) as info:
        WireIntResultEvent.from_json({**event, "event_type": "WireIntResultEvent", "a": "2"})
    assert info.value.field == "a" and "'2'" in str(info.value)


@pytest.mark.parametrize(
    "path", _fixture_files("pypi-1.5.6", "pypi-1.6.0"), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_bubus_1x_events_are_rejected_clearly(path: Path) -> None:
    for _, event, _ in _parts(path):
        with pytest.raises(EventValidationError, match=r"bubus 1\.x") as info:
            BaseEvent.from_json(event)
        assert info.value.field == "event_schema"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_created_at_vectors(runtime: str) -> None:
    vectors = json.loads((INTEROP / runtime / "vectors.json").read_text())["timestamp_via_event_created_at"]
    for vector in vectors:
        if vector["input"].startswith("datetime"):
            continue
        event = BaseEvent.from_json({"event_type": "WireVectorEvent", "event_created_at": vector["input"]})
        assert event.event_created_at == vector["output"]


# ---------------------------------------------------------------------------------------- running fixture events
RUNNABLE = [
    part
    for part in ALL_PARTS
    if "completed_" in part[0]
    and part[1].get("event_result_type") is not None
    and part[2]
    and "result" in part[2][0]
]


def _fresh_copy(event: dict[str, Any]) -> BaseEvent[Any]:
    runtime_keys = {"event_id", "event_status", "event_started_at", "event_completed_at", "event_path"}
    return BaseEvent.from_json({k: v for k, v in event.items() if k not in runtime_keys})


@pytest.mark.anyio
@pytest.mark.parametrize(("label", "event", "rows"), RUNNABLE, ids=[p[0] for p in RUNNABLE])
async def test_fixture_events_run_with_their_wire_schema(
    isolated_registry: None, label: str, event: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    check = compile_schema_check(event["event_result_type"])
    valid = rows[0]["result"]
    invalid = next(v for v in ("not-valid", 12345, {"unexpected": True}, None) if not check(v))
    good, bad = _fresh_copy(event), _fresh_copy(event)
    values = {good.event_id: valid, bad.event_id: invalid}
    async with EventBus("WireFixtureRunBus") as bus:
        bus.on(event["event_type"], lambda e: values[e.event_id])
        await bus.emit(good)
        await bus.emit(bad)
    (good_row,) = good.event_results.values()
    (bad_row,) = bad.event_results.values()
    assert good_row.status == "completed" and good_row.result == valid
    if invalid is None:  # a null-only schema: None means "no value" and is never checked
        assert bad_row.status == "completed"
    else:
        assert bad_row.status == "error" and isinstance(bad_row.error, EventHandlerResultSchemaError)
    assert await good.event_result(raise_if_none=False) == valid


# ---------------------------------------------------------------------------------------- writing like Python 2.x
def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def _py(name: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    return _parts(INTEROP / "py-2.3.2" / name)


def _ts(name: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    return _parts(INTEROP / "ts-2.3.2" / name)


def _assert_like_python(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Same keys in the same order, same JSON kinds, same formats."""
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert _kind(ours[key]) == _kind(value), key
    for key in ("event_id", "event_parent_id", "event_emitted_by_handler_id"):
        if ours[key] is not None:
            assert UUID_RE.match(ours[key]), key
    for key in ("event_created_at", "event_started_at", "event_completed_at"):
        if ours[key] is not None:
            assert TS_RE.match(ours[key]) and len(ours[key]) == 30, key
    assert all(LABEL_RE.match(label) for label in ours["event_path"])


def _assert_rows_like_python(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], forwarded: bool
) -> None:
    assert len(ours) == len(theirs)
    for row, src in zip(ours, theirs, strict=True):
        assert list(row) == list(src)
        for key, value in src.items():
            if key == "result" and forwarded and isinstance(value, dict):
                assert isinstance(row[key], str) and UUID_RE.match(row[key])  # an event: its id, not inlined
            else:
                assert _kind(row[key]) == _kind(value), key
        if src["error"] is not None:
            assert row["error"]["type"] == src["error"]["type"]
        for key in ("id", "event_id", "handler_id", "eventbus_id"):
            assert UUID_RE.match(row[key])
        for key in ("handler_registered_at", "started_at", "completed_at"):
            assert TS_RE.match(row[key])


def _assert_rows_like_typescript(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    for row, src in zip(ours, theirs, strict=True):
        assert set(src) <= set(row)
        assert set(row) - set(src) <= TS_OMITTED_ROW_KEYS


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("event_")}


def _build(cls: type[BaseEvent[Any]], source: dict[str, Any]) -> BaseEvent[Any]:
    """Our event with the fixture's payload, built the ordinary way (structured values, not raw JSON)."""
    payload = _payload(source)
    if cls is WireOrderPlacedEvent:
        payload["customer"] = WireCustomer(**payload["customer"])
        payload["items"] = [WireLineItem(**item) for item in payload["items"]]
    return cls(**payload)


def _result_value(cls: type[BaseEvent[Any]], value: Any) -> Any:
    if cls is WireOrderPlacedEvent:
        return WireOrderResult(
            order_id=value["order_id"],
            customer=WireCustomer(**value["customer"]),
            items=[WireLineItem(**item) for item in value["items"]],
            total=value["total"],
            notes=value["notes"],
        )
    return value


KINDS = [
    "bool_result",
    "dict_str_int_result",
    "dict_str_list_int_result",
    "flat_object_result",
    "float_result",
    "int_result",
    "list_str_result",
    "nested_object",
    "no_result_type",
    "null_result",
    "str_result",
]


@pytest.mark.parametrize("kind", [*KINDS, "none_generic_arg", "all_options_set"])
def test_fresh_events_are_written_like_python(kind: str) -> None:
    ((_, theirs, _),) = _py(f"fresh_{kind}.json")
    cls = TYPED[theirs["event_type"]]
    if kind == "all_options_set":
        ours = cls(
            name="cfg",
            event_version="1.2.0",
            event_timeout=30.0,
            event_slow_timeout=10.0,
            event_concurrency="parallel",
            event_handler_timeout=5.0,
            event_handler_slow_timeout=2.0,
            event_handler_concurrency="parallel",
            event_handler_completion="first",
            event_created_at="2025-01-02T05:04:05.678901+02:00",
        ).to_dict()
        assert {k: v for k, v in ours.items() if k not in ("event_id", "event_type")} == {
            k: v for k, v in theirs.items() if k not in ("event_id", "event_type")
        }
    else:
        ours = _build(cls, theirs).to_dict()
        assert _payload(ours) == _payload(theirs)
    _assert_like_python(ours, theirs)
    assert _decides_alike(ours["event_result_type"], theirs["event_result_type"])


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_completed_events_are_written_like_python_and_typescript(kind: str) -> None:
    ((_, theirs, their_rows),) = _py(f"completed_{kind}.json")
    ((_, ts_event, ts_rows),) = _ts(f"completed_{kind}.json")
    cls = TYPED[theirs["event_type"]]
    value = _result_value(cls, their_rows[0]["result"])
    async with EventBus("WireLikePyBus") as bus:
        bus.on(cls, lambda e: value)
        event = await bus.emit(_build(cls, theirs))
    ours = event.to_dict(include_results=True)
    rows = ours.pop("event_results")
    _assert_like_python(ours, theirs)
    _assert_rows_like_python(rows, their_rows, forwarded=False)
    assert rows[0]["result"] == their_rows[0]["result"]
    assert set(ts_event) - {"event_results"} <= set(ours)
    assert set(ours) - set(ts_event) <= TS_OMITTED_EVENT_KEYS
    _assert_rows_like_typescript(rows, ts_rows)


@pytest.mark.anyio
async def test_error_rows_are_written_like_python() -> None:
    async with EventBus("WireLikePyErrBus") as bus:

        def raising(event: WireErrorEvent) -> int:
            raise ValueError("boom: handler failed")

        async def slow(event: WireTimeoutEvent) -> int:
            await anyio.sleep(1)
            return 1

        bus.on(WireErrorEvent, raising)
        bus.on(WireTimeoutEvent, slow, handler_timeout=0.05)
        bus.on(WireSchemaViolationEvent, lambda e: "not-an-int")
        events = {
            "error_exception": await bus.emit(WireErrorEvent(x=1)),
            "error_timeout": await bus.emit(WireTimeoutEvent(x=2)),
            "error_result_schema": await bus.emit(WireSchemaViolationEvent(x=3)),
        }
    for name, event in events.items():
        ((_, theirs, their_rows),) = _py(f"{name}.json")
        ours = event.to_dict(include_results=True)
        rows = ours.pop("event_results")
        _assert_like_python(ours, theirs)
        _assert_rows_like_python(rows, their_rows, forwarded=False)
        assert rows[0]["status"] == "error" and rows[0]["result"] is None
    ((_, _, ts_rows),) = _ts("error_exception.json")
    _assert_rows_like_typescript(
        events["error_exception"].to_dict(include_results=True)["event_results"], ts_rows
    )
    assert (
        events["error_timeout"].to_dict(include_results=True)["event_results"][0]["handler_timeout"] == 0.05
    )


@pytest.mark.anyio
async def test_parent_and_child_are_written_like_python() -> None:
    async with EventBus("WireLikePyTreeBus") as bus:

        async def parent_handler(event: WireParentEvent) -> int:
            child = await bus.emit(WireChildEvent(n=event.n + 1))
            return await child.event_result() + 1

        bus.on(WireParentEvent, parent_handler)
        bus.on(WireChildEvent, lambda e: e.n * 10)
        parent = await bus.emit(WireParentEvent(n=4))
    child = parent.event_children[0]
    (py_parent, py_child) = _py("parent_child.json")
    (ts_parent, ts_child) = _ts("parent_child.json")
    for ours_event, (_, theirs, their_rows), (_, _, ts_rows) in (
        (parent, py_parent, ts_parent),
        (child, py_child, ts_child),
    ):
        ours = ours_event.to_dict(include_results=True)
        rows = ours.pop("event_results")
        _assert_like_python(ours, theirs)
        _assert_rows_like_python(rows, their_rows, forwarded=False)
        _assert_rows_like_typescript(rows, ts_rows)
    ours_parent = parent.to_dict(include_results=True)
    assert ours_parent["event_results"][0]["event_children"] == [child.event_id]
    assert child.event_parent_id == parent.event_id
    assert child.event_emitted_by_handler_id == ours_parent["event_results"][0]["handler_id"]


@pytest.mark.anyio
@pytest.mark.parametrize("void", [False, True])
async def test_forwarded_events_are_written_like_python(void: bool) -> None:
    name = "forwarded_two_buses_void_forwarder.json" if void else "forwarded_two_buses.json"
    ((_, theirs, their_rows),) = _py(name)
    async with EventBus("WirePyBusA") as bus_a, EventBus("WirePyBusB") as bus_b:
        if void:

            def forward(event: BaseEvent[Any]) -> None:
                bus_b.emit(event)

            bus_a.on("*", forward)
        else:
            bus_a.on("*", bus_b.emit)
        bus_b.on(WireForwardedEvent, lambda e: f"handled {e.payload} on B")
        event = await bus_a.emit(WireForwardedEvent(payload=theirs["payload"]))
    ours = event.to_dict(include_results=True)
    rows = ours.pop("event_results")
    _assert_like_python(ours, theirs)
    _assert_rows_like_python(rows, their_rows, forwarded=True)
    assert [r["result"] for r in rows] == [
        None if void else event.event_id,
        f"handled {theirs['payload']} on B",
    ]
    assert len(ours["event_path"]) == 2
    if void:
        ((_, _, ts_rows),) = _ts(name)
        _assert_rows_like_typescript(rows, ts_rows)
