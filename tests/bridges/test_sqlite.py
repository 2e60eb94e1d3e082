"""SQLiteEventBridge against real database files: upstream's table layout, reading upstream-style rows,
its rowid cursor, bad rows, a dropped table (what it shares with JSONLEventBridge is in
test_shared_store.py)."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import anyio
import pytest
from _interop import INTEROP
from peer import Collector, Ping, until

from bubus_anyio.bridges import SQLiteEventBridge

pytestmark = pytest.mark.anyio

FAST = 0.01
INTEROP_EVENT = json.loads((INTEROP / "py-2.3.2/fresh_int_result.json").read_text())


def query(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def upstream_insert(path: Path, table: str, event: dict[str, object]) -> None:
    """Write a row the way upstream's bridge does: event_* values JSON-encoded in their own columns."""
    fields = {k: v for k, v in event.items() if k.startswith("event_")}
    payload = {k: v for k, v in event.items() if not k.startswith("event_")}
    with sqlite3.connect(path) as db:
        have = {r[1] for r in db.execute(f'PRAGMA table_info("{table}")')}
        for key in fields:
            if key not in have:
                db.execute(f'ALTER TABLE "{table}" ADD COLUMN "{key}" TEXT')
        keys = sorted(fields)
        db.execute(
            f'INSERT INTO "{table}" ({", ".join(keys)}, event_payload) VALUES ({", ".join("?" * len(keys))}, json(?))',
            [None if fields[k] is None else json.dumps(fields[k]) for k in keys] + [json.dumps(payload)],
        )


async def test_table_layout_is_upstreams(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    async with SQLiteEventBridge(db, poll_interval=FAST) as out:
        sent = Ping(n=4)
        await out.emit(sent)
    info = {r[1]: (r[2], r[5]) for r in query(db, 'PRAGMA table_info("bubus_events")')}
    assert info["event_id"] == ("TEXT", 1)  # the primary key
    assert info["event_created_at"] == ("TEXT", 0)
    assert info["event_type"] == ("TEXT", 0)
    assert info["event_payload"] == ("JSON", 0)
    assert all(kind == "TEXT" for name, (kind, _) in info.items() if name != "event_payload")
    assert set(info) == {k for k in json.loads(sent.to_json()) if k.startswith("event_")} | {"event_payload"}
    indexes = {r[1] for r in query(db, 'PRAGMA index_list("bubus_events")')}
    assert {"bubus_events_event_created_at_idx", "bubus_events_event_type_idx"} <= indexes
    [(event_id, event_type, payload, path, timeout)] = query(
        db, "SELECT event_id, event_type, event_payload, event_path, event_timeout FROM bubus_events"
    )
    assert event_id == json.dumps(sent.event_id)  # JSON text, quotes included, as upstream writes it
    assert event_type == '"Ping"'
    assert json.loads(str(payload)) == {"n": 4}
    assert json.loads(str(path)) == []
    assert timeout is None  # null stays NULL
    assert query(db, "PRAGMA journal_mode") == [("wal",)]


async def test_same_event_twice_is_one_row(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    async with SQLiteEventBridge(db, poll_interval=FAST) as out:
        event = Ping(n=1)
        await out.emit(event)
        await out.emit(event)
    assert query(db, "SELECT COUNT(*) FROM bubus_events") == [(1,)]


async def test_reads_rows_upstream_writes_and_custom_tables(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    got = Collector()
    interop = INTEROP_EVENT
    async with SQLiteEventBridge(db, "shared_events", poll_interval=FAST) as bridge:
        bridge.on("*", got)
        await anyio.to_thread.run_sync(upstream_insert, db, "shared_events", interop)
        [event] = await got.wait_for(1)
    assert event.event_type == interop["event_type"]
    payload = {k: v for k, v in interop.items() if not k.startswith("event_")}
    assert payload
    for key, value in payload.items():
        assert getattr(event, key) == value


async def test_row_with_an_older_timestamp_is_still_delivered(tmp_path: Path) -> None:
    """Upstream's (created_at, id) cursor would skip it; ours follows insertion order."""
    db = tmp_path / "events.db"
    got = Collector()
    async with (
        SQLiteEventBridge(db, poll_interval=FAST) as out,
        SQLiteEventBridge(db, poll_interval=FAST) as bridge,
    ):
        bridge.on(Ping, got)
        newer, older = Ping(n=1), Ping(n=2, event_created_at="2001-01-01T00:00:00.000000000Z")
        await out.emit(newer)
        await got.wait_for(1)
        await out.emit(older)
        await got.wait_for(2)
    assert got.ns == [1, 2]


async def test_bad_rows_are_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "events.db"
    got = Collector()
    caplog.set_level(logging.WARNING, logger="bubus.bridges")
    async with (
        SQLiteEventBridge(db, poll_interval=FAST) as out,
        SQLiteEventBridge(db, poll_interval=FAST) as bridge,
    ):
        bridge.on(Ping, got)

        def bad_rows() -> None:
            with sqlite3.connect(db) as conn:
                conn.execute(
                    "INSERT INTO bubus_events (event_id, event_type, event_payload) VALUES ('\"x1\"', '\"Ping\"', '[1]')"
                )
                conn.execute(
                    "INSERT INTO bubus_events (event_id, event_type, event_payload) VALUES ('\"x2\"', '7', '{}')"
                )

        await anyio.to_thread.run_sync(bad_rows)
        await out.emit(Ping(n=5))
        await got.wait_for(1)
    assert got.ns == [5]
    assert bridge.statistics().decode_errors == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("event_payload is not a JSON object" in m and "BridgeDecodeError" in m for m in messages)


async def test_invalid_table_name() -> None:
    with pytest.raises(ValueError, match="table"):
        SQLiteEventBridge("/tmp/x.db", "bad-name; DROP")


async def test_reader_survives_the_table_being_dropped_and_recreated(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    got = Collector()
    async with (
        SQLiteEventBridge(db, poll_interval=FAST) as out,
        SQLiteEventBridge(db, poll_interval=FAST) as bridge,
    ):
        bridge.on(Ping, got)
        for n in range(3):
            await out.emit(Ping(n=n))
        await got.wait_for(3)

        def drop() -> None:
            with sqlite3.connect(db) as conn:
                conn.execute("DROP TABLE bubus_events")

        await anyio.to_thread.run_sync(drop)
        polls = bridge.transport.polls  # type: ignore[attr-defined]
        await until(lambda: bridge.transport.polls > polls + 2)  # type: ignore[attr-defined]  # failing, retried
        async with SQLiteEventBridge(db, poll_interval=FAST) as again:  # creates the table anew
            await again.emit(Ping(n=9))
        await got.wait_for(4)
    assert got.ns == [0, 1, 2, 9]
    assert bridge.transport.resets == 1  # type: ignore[attr-defined]
