"""Bus snapshots: restoring the ones bubus 2.3.2 wrote, resuming their queue in FIFO order, round-tripping ours."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _interop import INTEROP

from bubus_anyio import BaseEvent, EventBus, EventValidationError
from bubus_anyio._events._definition import EVENT_TYPES

SNAPSHOTS = [INTEROP / "py-2.3.2" / "bus_snapshot.json", INTEROP / "ts-2.3.2" / "bus_snapshot.json"]
SNAPSHOT_TEXT = {path: path.read_text() for path in SNAPSHOTS if path.exists()}
TS_OMITTED_HANDLER_KEYS = {"handler_timeout", "handler_slow_timeout"}
TS_OMITTED_ROW_KEYS = {"handler_timeout", "handler_slow_timeout", "result", "error"}

if not INTEROP.exists():  # pragma: no cover
    pytest.skip(f"interop fixtures not available: {INTEROP}", allow_module_level=True)


class WireSnapEvent(BaseEvent[str]):
    i: int


@pytest.fixture
def isolated_registry() -> Iterator[None]:
    """The fixtures' ``SnapshotEvent`` is read as a generic event whatever other modules define."""
    saved = dict(EVENT_TYPES)
    EVENT_TYPES.clear()
    try:
        yield
    finally:
        EVENT_TYPES.clear()
        EVENT_TYPES.update(saved)


def _close(bus: EventBus) -> None:
    """Nothing to release: a bus that never runs holds no open streams (kept so call sites read as intent)."""
    assert bus._send_stream is None  # pyright: ignore[reportPrivateUsage]


def _recorder(order: list[str], tag: str) -> Callable[[Any], str]:
    def handler(event: Any) -> str:
        order.append(f"{tag}:{event.i}")
        return f"{tag}:{event.i}"

    return handler


def _attach(bus: EventBus, order: list[str], typed_key: str) -> None:
    by_key = bus.handlers_by_key
    bus.handlers[by_key[typed_key][0]].handler = _recorder(order, "h1")
    bus.handlers[by_key["*"][0]].handler = _recorder(order, "h2")


@pytest.mark.parametrize("path", SNAPSHOTS, ids=lambda p: p.parent.name)
class TestUpstreamSnapshots:
    def test_restores_every_part(self, isolated_registry: None, path: Path) -> None:
        source = json.loads(path.read_text())
        bus = EventBus.from_json(path.read_text())
        ours = bus.to_dict()
        assert (bus.name, bus.id) == (source["name"], source["id"])
        for key in ("max_history_size", "max_history_drop", "event_concurrency", "event_timeout"):
            assert ours[key] == source[key]
        assert ours["handlers_by_key"] == source["handlers_by_key"]
        assert ours["pending_event_queue"] == source["pending_event_queue"]
        assert list(ours["event_history"]) == list(source["event_history"])
        for handler_id, entry in source["handlers"].items():
            assert {k: v for k, v in ours["handlers"][handler_id].items() if k in entry} == entry
            assert set(ours["handlers"][handler_id]) - set(entry) <= TS_OMITTED_HANDLER_KEYS
            assert bus.handlers[handler_id].handler is None
        for event_id, event in source["event_history"].items():
            mine = ours["event_history"][event_id]
            for key, value in event.items():
                if key == "event_results":
                    for src_row, row in zip(value, mine[key], strict=True):
                        assert {k: v for k, v in row.items() if k in src_row} == src_row
                        assert set(row) - set(src_row) <= TS_OMITTED_ROW_KEYS
                elif key != "event_pending_bus_count":  # a live counter: 1 per bus still holding the event
                    assert mine[key] == value, key
            queued = event_id in source["pending_event_queue"]
            assert mine["event_pending_bus_count"] == (1 if queued else 0)
        _close(bus)

    @pytest.mark.anyio
    async def test_resumes_the_queue_first_in_fifo_order(self, isolated_registry: None, path: Path) -> None:
        source = json.loads(SNAPSHOT_TEXT[path])
        bus = EventBus.from_json(source)
        before = {eid: e.to_dict(include_results=True) for eid, e in bus.event_history.items()}
        order: list[str] = []
        _attach(bus, order, "SnapshotEvent")
        async with bus:
            newest = await bus.emit(BaseEvent.from_json({"event_type": "SnapshotEvent", "i": 4}))
        assert order == ["h1:3", "h2:3", "h1:4", "h2:4"]
        assert [row.result for row in newest.event_results.values()] == ["h1:4", "h2:4"]
        for event_id, event in bus.event_history.items():
            assert event.event_status == "completed"
            if event_id in before and before[event_id]["event_status"] == "completed":
                assert event.to_dict(include_results=True) == before[event_id]  # finished rows never re-run
        queued = bus.event_history[source["pending_event_queue"][0]]
        assert queued.event_path == source["event_history"][queued.event_id]["event_path"]
        assert all(row.status == "completed" for row in queued.event_results.values())

    @pytest.mark.anyio
    async def test_restored_schema_is_enforced(self, isolated_registry: None, path: Path) -> None:
        bus = EventBus.from_json(SNAPSHOT_TEXT[path].encode())
        pending_id = json.loads(SNAPSHOT_TEXT[path])["pending_event_queue"][0]
        by_key = bus.handlers_by_key
        bus.handlers[by_key["SnapshotEvent"][0]].handler = lambda e: 123  # the schema says string
        bus.handlers[by_key["*"][0]].handler = lambda e: "fine"
        async with bus:
            pass
        queued = bus.event_history[pending_id]
        statuses = [row.status for row in queued.event_results.values()]
        assert statuses == ["error", "completed"]


class TestOwnSnapshots:
    @pytest.mark.anyio
    async def test_round_trip_keeps_a_seeded_row_and_resumes_fifo(self) -> None:
        original = EventBus("WireSnapOwnBus", max_history_size=20, event_timeout=7.5)
        h1 = original.on(WireSnapEvent, _recorder([], "h1"))
        original.on("*", _recorder([], "h2"), handler_timeout=5.0)
        e1 = original.emit(WireSnapEvent(i=1))
        original.emit(WireSnapEvent(i=2))
        seeded = e1.event_result_update(h1, result="seeded")
        text = original.to_json()
        snapshot = json.loads(text)
        assert snapshot["pending_event_queue"] == list(snapshot["event_history"])

        restored = EventBus.from_json(text)
        assert restored.to_json() == text
        assert type(restored.event_history[e1.event_id]) is WireSnapEvent
        order: list[str] = []
        _attach(restored, order, "WireSnapEvent")
        async with restored:
            await restored.emit(WireSnapEvent(i=3))
        assert order == ["h2:1", "h1:2", "h2:2", "h1:3", "h2:3"]
        row = restored.event_history[e1.event_id].event_results[h1.id]
        assert (row.id, row.status, row.result, row.completed_at) == (
            seeded.id,
            "completed",
            "seeded",
            seeded.completed_at,
        )
        assert restored.event_timeout == 7.5 and restored.max_history_size == 20
        assert restored.handlers[restored.handlers_by_key["*"][0]].handler_timeout == 5.0
        _close(original)

    @pytest.mark.anyio
    async def test_snapshot_of_a_running_bus_lists_what_is_still_queued(self) -> None:
        started, release = anyio.Event(), anyio.Event()

        async def blocking(event: WireSnapEvent) -> str:
            if event.i == 1:
                started.set()
                await release.wait()
            return f"done {event.i}"

        async with EventBus("WireSnapRunBus") as bus:
            bus.on(WireSnapEvent, blocking)
            events = [bus.emit(WireSnapEvent(i=i)) for i in (1, 2, 3)]
            await started.wait()
            snapshot = bus.to_dict()
            release.set()
        assert snapshot["pending_event_queue"] == [events[1].event_id, events[2].event_id]
        history = snapshot["event_history"]
        assert history[events[0].event_id]["event_status"] == "started"
        assert history[events[0].event_id]["event_results"][0]["status"] == "started"
        assert history[events[1].event_id]["event_results"] == []

    @pytest.mark.anyio
    async def test_children_and_forwarded_results_are_relinked(self) -> None:
        async with EventBus("WireSnapTreeBus") as bus:

            async def parent(event: WireSnapEvent) -> str:
                if event.i == 1:
                    await bus.emit(WireSnapEvent(i=2))
                return "ok"

            bus.on(WireSnapEvent, parent)
            first = await bus.emit(WireSnapEvent(i=1))
        text = bus.to_json()
        restored = EventBus.from_json(text)
        (row,) = restored.event_history[first.event_id].event_results.values()
        assert [c.event_id for c in row.event_children] == [first.event_children[0].event_id]
        assert row.event_children[0] is restored.event_history[first.event_children[0].event_id]
        assert restored.to_json() == text
        _close(restored)


class TestHandlersOnlyInRows:
    @pytest.mark.anyio
    async def test_a_removed_handler_named_by_rows_is_registered_as_a_stub(self) -> None:
        async with EventBus("WireSnapGoneBus") as bus:
            gone = bus.on(WireSnapEvent, _recorder([], "gone"))
            first = await bus.emit(WireSnapEvent(i=1))
            second = await bus.emit(WireSnapEvent(i=2))
            bus.off(WireSnapEvent, gone)
        snapshot = bus.to_dict()
        assert snapshot["handlers"] == {} and snapshot["handlers_by_key"] == {}

        restored = EventBus.from_json(snapshot)
        stub = restored.handlers[gone.id]
        assert stub.event_pattern == "WireSnapEvent" and not stub.is_async
        assert stub.handler is not None and stub.handler(WireSnapEvent(i=0)) is None  # a no-op, as upstream
        assert restored.handlers_by_key == {"WireSnapEvent": [gone.id]}
        rows = [restored.event_history[e.event_id].event_results[gone.id] for e in (first, second)]
        assert all(row.handler is stub for row in rows)
        assert [row.result for row in rows] == ["gone:1", "gone:2"]

        order: list[str] = []
        stub.handler = _recorder(order, "back")  # re-attached by id, as for any restored handler
        async with restored:
            await restored.emit(WireSnapEvent(i=3))
        assert order == ["back:3"]

    @pytest.mark.anyio
    async def test_a_removed_handler_restored_from_rows_does_not_fail_new_events(self) -> None:
        async with EventBus("WireSnapOnceBus") as bus:
            once = bus.on(WireSnapEvent, _recorder([], "once"))
            await bus.emit(WireSnapEvent(i=1))
            bus.off(WireSnapEvent, once)
            main = bus.on(WireSnapEvent, _recorder([], "main"))
        restored = EventBus.from_json(bus.to_json())
        restored.handlers[main.id].handler = _recorder([], "main")  # every handler the snapshot lists
        async with restored:
            values = await restored.emit(WireSnapEvent(i=2)).event_results_list()
        assert values == ["main:2"]  # the restored `once` completed its row with None

    def test_restoring_a_restored_snapshot_is_stable(self) -> None:
        async def make() -> dict[str, Any]:
            async with EventBus("WireSnapTwiceBus") as bus:
                gone = bus.on(WireSnapEvent, _recorder([], "gone"))
                await bus.emit(WireSnapEvent(i=1))
                bus.off(WireSnapEvent, gone)
            return bus.to_dict()

        once = EventBus.from_json(anyio.run(make)).to_dict()  # the row-only handler is registered now
        twice = EventBus.from_json(once).to_dict()
        assert twice["handlers"] == once["handlers"]
        assert twice["handlers_by_key"] == once["handlers_by_key"]

    @pytest.mark.anyio
    async def test_a_handler_of_another_bus_stays_on_its_rows_only(self) -> None:
        other = EventBus("WireSnapOtherBus")
        foreign = other.on(WireSnapEvent, _recorder([], "foreign"))
        async with EventBus("WireSnapHomeBus") as bus:
            event = await bus.emit(WireSnapEvent(i=1))
        event.event_result_update(foreign, result="from elsewhere")
        restored = EventBus.from_json(bus.to_json())
        assert restored.handlers == {} and restored.handlers_by_key == {}
        row = restored.event_history[event.event_id].event_results[foreign.id]
        assert row.handler.eventbus_id == other.id and row.result == "from elsewhere"
        _close(restored)


class TestBadSnapshots:
    def _valid(self) -> dict[str, Any]:
        return json.loads(SNAPSHOTS[0].read_text())

    @pytest.mark.parametrize(
        ("mutate", "field"),
        [
            (lambda d: d.update(surprise=1), "surprise"),
            (lambda d: d.update(event_concurrency="sideways"), "event_concurrency"),
            (lambda d: d.update(name="not a name"), "name"),
            (lambda d: d["handlers_by_key"]["*"].append("nope"), "handlers_by_key"),
            (
                lambda d: d.update(pending_event_queue=["01a21abe-9d7f-7240-aebb-95299b808c0b"]),
                "pending_event_queue",
            ),
            (
                lambda d: next(iter(d["handlers"].values())).update(
                    id="06b08e50-5dec-77b2-8000-a40a5e4da999"
                ),
                "handlers",
            ),
            (
                lambda d: next(iter(d["handlers"].values())).update(handler_registered_at="now"),
                "handler_registered_at",
            ),
            (lambda d: next(iter(d["event_history"].values())).update(event_id=5), "event_id"),
        ],
    )
    def test_bad_parts_name_the_field(self, mutate: Callable[[dict[str, Any]], Any], field: str) -> None:
        data = self._valid()
        mutate(data)
        with pytest.raises(EventValidationError) as info:
            EventBus.from_json(data)
        assert info.value.field == field

    @pytest.mark.parametrize("text", ["{", "[]", "3"])
    def test_not_a_snapshot(self, text: str) -> None:
        with pytest.raises(EventValidationError):
            EventBus.from_json(text)


class WireSnapJob(BaseEvent[int]):
    n: int


class TestSnapshotsOfBusyBuses:
    @pytest.mark.anyio
    async def test_queued_events_trimmed_from_history_are_still_written(self) -> None:
        gate = anyio.Event()
        async with EventBus("WireSnapTrim", max_history_size=2, max_history_drop=True) as bus:

            async def blocking(event: WireSnapJob) -> int:
                await gate.wait()
                return event.n

            bus.on(WireSnapJob, blocking)
            for n in range(5):
                bus.emit(WireSnapJob(n=n))
            await anyio.wait_all_tasks_blocked()
            data = json.loads(bus.to_json())
            gate.set()
        pending = [data["event_history"][event_id]["n"] for event_id in data["pending_event_queue"]]
        assert pending == [1, 2, 3, 4]

    @pytest.mark.anyio
    async def test_an_event_running_at_snapshot_time_is_closed_and_completes_after_restore(self) -> None:
        gate = anyio.Event()
        async with EventBus("WireSnapMidRun") as bus:

            async def first_blocks(event: WireSnapJob) -> int:
                if event.n == 0:
                    await gate.wait()
                return event.n

            bus.on(WireSnapJob, first_blocks)
            for n in range(3):
                bus.emit(WireSnapJob(n=n))
            await anyio.wait_all_tasks_blocked()
            snapshot = bus.to_json()
            gate.set()
        restored = EventBus.from_json(snapshot)
        ran: list[int] = []
        for entry in restored.handlers.values():
            entry.handler = lambda event: ran.append(event.n) or event.n
        with anyio.fail_after(5):
            async with restored:
                await restored.wait_until_idle()
        interrupted = next(e for e in restored.event_history.values() if getattr(e, "n", None) == 0)
        assert interrupted.event_status == "completed"
        (row,) = interrupted.event_results.values()
        assert row.status == "error" and "snapshot was taken" in str(row.error)
        assert ran == [1, 2]  # the queued ones, in order; the interrupted handler is not run again

    def test_bool_options_must_be_booleans(self) -> None:
        with pytest.raises(EventValidationError, match="max_history_drop"):
            EventBus.from_json({"max_history_drop": "no"})
