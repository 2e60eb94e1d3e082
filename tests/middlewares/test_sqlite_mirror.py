"""SQLite history mirror: upstream's tables and columns, one row per transition, written off the loop,
queryable by type, status, parent and time; a locked or full database is logged and retried."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.middlewares import MiddlewareWriteError, SQLiteHistoryMirrorMiddleware

pytestmark = pytest.mark.anyio

EVENT_COLUMNS = [
    "id",
    "event_id",
    "event_type",
    "event_status",
    "eventbus_id",
    "eventbus_name",
    "phase",
    "event_json",
    "inserted_at",
]
RESULT_COLUMNS = [
    "id",
    "event_result_id",
    "event_id",
    "handler_id",
    "handler_name",
    "eventbus_id",
    "eventbus_name",
    "event_type",
    "status",
    "phase",
    "result_repr",
    "error_repr",
    "event_result_json",
    "inserted_at",
]


class SqlOrder(BaseEvent[str]):
    order_id: str = ""


class SqlShip(BaseEvent[None]):
    order_id: str = ""


def sql_fail(event: SqlShip) -> None:
    raise ValueError(f"cannot ship {event.order_id}")


def columns(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def select(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class TestTables:
    async def test_tables_have_upstreams_columns_and_one_row_per_transition(self, tmp_path: Path) -> None:
        db = tmp_path / "sub" / "history.db"
        with SQLiteHistoryMirrorMiddleware(db) as mirror:
            async with EventBus("SqlBus", middlewares=[mirror]) as bus:
                bus.on(SqlOrder, lambda e: f"ok:{e.order_id}")
                event = await bus.emit(SqlOrder(order_id="o1"))
        assert columns(db, "events_log") == EVENT_COLUMNS
        assert columns(db, "event_results_log") == RESULT_COLUMNS
        rows = select(db, "SELECT event_id, event_type, event_status, eventbus_name, phase FROM events_log")
        assert rows == [
            (event.event_id, "SqlOrder", "pending", bus.label, "pending"),
            (event.event_id, "SqlOrder", "started", bus.label, "started"),
            (event.event_id, "SqlOrder", "completed", bus.label, "completed"),
        ]
        (last_json,) = select(db, "SELECT event_json FROM events_log ORDER BY id DESC LIMIT 1")[0]
        assert json.loads(last_json) == event.to_dict()
        results = select(
            db, "SELECT status, phase, result_repr, error_repr, event_result_json FROM event_results_log"
        )
        assert [r[:4] for r in results] == [
            ("pending", "pending", None, None),
            ("started", "started", None, None),
            ("completed", "completed", "'ok:o1'", None),
        ]
        assert json.loads(results[-1][4])["result"] == "ok:o1"
        assert select(db, "PRAGMA journal_mode") == [("wal",)]

    async def test_errors_are_kept_as_repr_and_wire_json(self, tmp_path: Path) -> None:
        db = tmp_path / "errors.db"
        with SQLiteHistoryMirrorMiddleware(db) as mirror:
            async with EventBus("SqlErr", middlewares=[mirror]) as bus:
                bus.on(SqlShip, sql_fail)
                await bus.emit(SqlShip(order_id="o9"))
            (row,) = await mirror.query_results(status="error")
        assert row["error_repr"] == "ValueError('cannot ship o9')"
        assert json.loads(row["event_result_json"])["error"] == {
            "type": "ValueError",
            "message": "cannot ship o9",
        }

    async def test_rows_are_written_off_the_event_loop_thread(self, tmp_path: Path) -> None:
        threads: set[int] = set()

        class Watching(SQLiteHistoryMirrorMiddleware):
            def _write(self, batch: list[Any]) -> None:
                threads.add(threading.get_ident())
                super()._write(batch)

        with Watching(tmp_path / "t.db") as mirror:
            async with EventBus("SqlThreads", middlewares=[mirror]) as bus:
                await bus.emit(SqlOrder())
        assert threads and threading.get_ident() not in threads


class TestQueries:
    async def test_query_by_type_status_parent_and_time(self, tmp_path: Path) -> None:
        db = tmp_path / "query.db"
        with SQLiteHistoryMirrorMiddleware(db) as mirror:
            async with EventBus("SqlQuery", middlewares=[mirror]) as bus:

                async def place(event: SqlOrder) -> str:
                    await bus.emit(SqlShip(order_id=event.order_id))
                    return "placed"

                bus.on(SqlOrder, place)
                bus.on(SqlShip, sql_fail)
                first = await bus.emit(SqlOrder(order_id="a"))
                second = await bus.emit(SqlOrder(order_id="b"))
                await bus.wait_until_idle()

                orders = await mirror.query_events(event_type="SqlOrder")
                assert [r["event_id"] for r in orders] == [first.event_id, second.event_id]
                assert {r["phase"] for r in orders} == {"completed"}
                children = await mirror.query_events(event_parent_id=first.event_id)
                assert [json.loads(r["event_json"])["order_id"] for r in children] == ["a"]
                assert await mirror.query_events(event_status="started") == []
                all_rows = await mirror.query_events(event_type="SqlOrder", latest=False)
                assert [r["phase"] for r in all_rows].count("pending") == 2
                window = await mirror.query_events(since=second.event_created_at)
                assert {r["event_id"] for r in window} >= {second.event_id}
                assert first.event_id not in {r["event_id"] for r in window}
                early = await mirror.query_events(until=first.event_created_at)
                assert [r["event_id"] for r in early] == [first.event_id]
                failed = await mirror.query_results(status="error")
                assert [r["handler_name"].rsplit(".", 1)[-1] for r in failed] == ["sql_fail", "sql_fail"]
                rebuilt = BaseEvent.from_json(orders[0]["event_json"])
                assert isinstance(rebuilt, SqlOrder) and rebuilt.order_id == "a"

    async def test_what_is_running_shows_up_while_it_runs(self, tmp_path: Path) -> None:
        release = anyio.Event()
        entered = anyio.Event()

        async def slow(event: SqlOrder) -> str:
            entered.set()
            await release.wait()
            return "done"

        with SQLiteHistoryMirrorMiddleware(tmp_path / "live.db") as mirror:
            async with EventBus("SqlLive", middlewares=[mirror]) as bus:
                bus.on(SqlOrder, slow)
                event = bus.emit(SqlOrder())
                await entered.wait()
                running: list[dict[str, Any]] = []
                for _ in range(500):  # the hook reports a moment later, from its own task: poll, bounded
                    running = await mirror.query_events(event_status="started")
                    if running:
                        break
                    await anyio.sleep(0.005)
                assert [r["event_id"] for r in running] == [event.event_id]
                release.set()
            assert (await mirror.query_events())[0]["event_status"] == "completed"

    async def test_two_buses_share_one_database(self, tmp_path: Path) -> None:
        db = tmp_path / "shared.db"
        with SQLiteHistoryMirrorMiddleware(db) as mirror:
            async with (
                EventBus("SqlShareA", middlewares=[mirror]) as a,
                EventBus("SqlShareB", middlewares=[mirror]) as b,
            ):
                a.on("*", b.emit)
                b.on(SqlOrder, lambda e: "b")
                await a.emit(SqlOrder())
                await a.wait_until_idle()
                await b.wait_until_idle()
            rows = await mirror.query_events()
        assert sorted(r["eventbus_name"] for r in rows) == sorted([a.label, b.label])


class TestFaults:
    async def test_a_locked_database_is_logged_and_its_rows_go_out_later(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        db = tmp_path / "locked.db"
        with SQLiteHistoryMirrorMiddleware(db, busy_timeout=0.05) as mirror:
            async with EventBus("SqlLocked", middlewares=[mirror]) as bus:
                bus.on(SqlOrder, lambda e: "ok")
                await bus.emit(SqlOrder(order_id="before"))
                await bus.wait_until_idle()
                blocker = sqlite3.connect(db, isolation_level=None)
                try:
                    blocker.execute("BEGIN EXCLUSIVE")
                    with caplog.at_level(logging.ERROR, logger="bubus_anyio.middlewares"):
                        during = await bus.emit(SqlOrder(order_id="during"))
                        await bus.wait_until_idle()
                    assert await during.event_result() == "ok"  # the bus kept processing
                finally:
                    blocker.execute("ROLLBACK")
                    blocker.close()
                await bus.emit(SqlOrder(order_id="after"))
                await bus.wait_until_idle()
                rows = await mirror.query_events(event_type="SqlOrder")
        assert [json.loads(r["event_json"])["order_id"] for r in rows] == ["before", "during", "after"]
        errors = [r for r in caplog.records if isinstance(r.exc_info and r.exc_info[1], MiddlewareWriteError)]
        assert errors and "database is locked" in errors[0].getMessage()
        assert "SQLiteHistoryMirrorMiddleware: could not write" in errors[0].getMessage()
        assert mirror.write_errors == len(errors)

    async def test_a_full_disk_is_logged_and_the_bus_goes_on(
        self, tiny_fs: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        mount_point = tiny_fs
        with caplog.at_level(logging.ERROR, logger="bubus_anyio.middlewares"):
            with SQLiteHistoryMirrorMiddleware(mount_point / "full.db", max_buffered_rows=50) as mirror:
                async with EventBus("SqlFull", middlewares=[mirror]) as bus:
                    bus.on(SqlOrder, lambda e: "ok")
                    for _ in range(60):
                        bus.emit(SqlOrder(order_id="z" * 2000))
                    last = await bus.emit(SqlOrder(order_id="last"))
            assert await last.event_result() == "ok"
        assert mirror.write_errors > 0 and mirror.rows_dropped > 0
        errors = [r for r in caplog.records if isinstance(r.exc_info and r.exc_info[1], MiddlewareWriteError)]
        assert errors and any("full" in r.getMessage() for r in errors)

    def test_bad_options_name_the_value(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"batch_size must be an int >= 1, got 0"):
            SQLiteHistoryMirrorMiddleware(tmp_path / "x.db", batch_size=0)
        with pytest.raises(ValueError, match=r"busy_timeout must be a number >= 0, got -1"):
            SQLiteHistoryMirrorMiddleware(tmp_path / "x.db", busy_timeout=-1)
        with pytest.raises(ValueError, match=r"synchronous must be .*, got 'SOMETIMES'"):
            SQLiteHistoryMirrorMiddleware(tmp_path / "x.db", synchronous="SOMETIMES")  # type: ignore[arg-type]

    def test_close_is_idempotent(self, tmp_path: Path) -> None:
        mirror = SQLiteHistoryMirrorMiddleware(tmp_path / "c.db")
        mirror.close()
        mirror.close()


class TestWriterTask:
    async def test_inside_async_with_rows_are_batched_and_all_written(self, tmp_path: Path) -> None:
        db = tmp_path / "writer.db"
        batches: list[int] = []

        class Counting(SQLiteHistoryMirrorMiddleware):
            def _write(self, batch: list[Any]) -> None:
                batches.append(len(batch))
                super()._write(batch)

        with Counting(db) as mirror:
            async with mirror, EventBus("SqlWriter", middlewares=[mirror]) as bus:
                bus.on(SqlOrder, lambda e: "ok")
                for n in range(200):
                    bus.emit(SqlOrder(order_id=str(n)))
            # the writer drained on exit: every transition is in the file
            assert select(db, "SELECT COUNT(*) FROM events_log") == [(600,)]
            assert select(db, "SELECT COUNT(*) FROM event_results_log") == [(600,)]
        assert sum(batches) == 1200
        assert len(batches) < 200  # far fewer transactions than events

    async def test_a_query_catches_up_with_the_writer(self, tmp_path: Path) -> None:
        with SQLiteHistoryMirrorMiddleware(tmp_path / "catchup.db") as mirror:
            async with mirror, EventBus("SqlCatchUp", middlewares=[mirror]) as bus:
                event = await bus.emit(SqlOrder())
                await bus.wait_until_idle()
                rows = await mirror.query_events()
                assert [(r["event_id"], r["event_status"]) for r in rows] == [(event.event_id, "completed")]

    async def test_a_locked_file_in_writer_mode_is_retried_with_later_rows(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        db = tmp_path / "writer_locked.db"
        with SQLiteHistoryMirrorMiddleware(db, busy_timeout=0.05) as mirror:
            async with mirror, EventBus("SqlWriterLocked", middlewares=[mirror]) as bus:
                await bus.emit(SqlOrder(order_id="first"))
                await mirror.flush()
                blocker = sqlite3.connect(db, isolation_level=None)
                try:
                    blocker.execute("BEGIN EXCLUSIVE")
                    with caplog.at_level(logging.ERROR, logger="bubus_anyio.middlewares"):
                        await bus.emit(SqlOrder(order_id="locked"))
                        await bus.wait_until_idle()
                        assert not await mirror.flush()
                finally:
                    blocker.execute("ROLLBACK")
                    blocker.close()
                await bus.emit(SqlOrder(order_id="later"))
                await bus.wait_until_idle()
            rows = await mirror.query_events()
        assert [json.loads(r["event_json"])["order_id"] for r in rows] == ["first", "locked", "later"]
        assert any(isinstance(r.exc_info and r.exc_info[1], MiddlewareWriteError) for r in caplog.records)
