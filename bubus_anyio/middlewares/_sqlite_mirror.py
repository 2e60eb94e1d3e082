"""SQLite history mirror: every event and result-row transition as an append-only row, queryable.

The tables and columns are upstream's (``events_log`` and ``event_results_log``, one row per hook call,
``phase`` = the hook's status), so tools written against upstream's database read ours. Rows are built on
the event loop when a hook runs and written by a worker thread
(:class:`OrderedWorker`) in one transaction per batch: a batch is written when an event starts or
completes, or when ``batch_size`` rows are waiting. So after ``await bus.wait_until_idle()`` every
transition so far is in the database.

Hooks run after the transition they report (off the hot path), so ``event_status``/``status`` are the
transition's own status, while ``event_json``/``event_result_json`` are the event as it was when the hook
ran (possibly further along); the ``completed`` rows are final.
"""

from __future__ import annotations

import os
import sqlite3
from collections import deque
from pathlib import Path
from typing import Any, Literal

import anyio
import orjson

from bubus_anyio import BaseEvent, EventBus, EventResult, monotonic_datetime

from ._protocol import (
    BatchingWriter,
    EventBusMiddleware,
    MiddlewareWriteError,
    OrderedWorker,
    check_number,
    logger,
    report_write_error,
)

__all__ = ["SQLiteHistoryMirrorMiddleware"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_status TEXT NOT NULL,
    eventbus_id TEXT NOT NULL,
    eventbus_name TEXT NOT NULL,
    phase TEXT NOT NULL,
    event_json TEXT NOT NULL,
    inserted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_results_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_result_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    handler_id TEXT NOT NULL,
    handler_name TEXT NOT NULL,
    eventbus_id TEXT NOT NULL,
    eventbus_name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    phase TEXT NOT NULL,
    result_repr TEXT,
    error_repr TEXT,
    event_result_json TEXT NOT NULL,
    inserted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_log_event_id ON events_log (event_id);
CREATE INDEX IF NOT EXISTS events_log_event_type ON events_log (event_type);
CREATE INDEX IF NOT EXISTS event_results_log_event_id ON event_results_log (event_id);
"""

_EVENT_INSERT = (
    "INSERT INTO events_log (event_id, event_type, event_status, eventbus_id, eventbus_name, phase, "
    "event_json, inserted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_RESULT_INSERT = (
    "INSERT INTO event_results_log (event_result_id, event_id, handler_id, handler_name, eventbus_id, "
    "eventbus_name, event_type, status, phase, result_repr, error_repr, event_result_json, inserted_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

Row = tuple[str, tuple[Any, ...]]


def _row_json(event: BaseEvent[Any], result: EventResult[Any], status: str) -> dict[str, Any]:
    """A finished row's wire JSON, exactly as the event's own encoder writes it (result value included)."""
    try:
        rows: list[dict[str, Any]] = event.to_dict(include_results=True).get("event_results") or []
        found = next((r for r in rows if r.get("id") == result.id), None)
    except ValueError as exc:  # a value with no JSON form: keep the row, say why it has no JSON
        return {"id": result.id, "status": result.status, "unwritable": str(exc)}
    return found if found is not None else _unfinished_row_json(result, status)


def _unfinished_row_json(result: EventResult[Any], status: str) -> dict[str, Any]:
    """A pending or started row's wire JSON (no value yet: cheap to build from its fields)."""
    return {
        "id": result.id,
        "status": status,
        "event_id": result.event_id,
        "handler_id": result.handler_id,
        "handler_name": result.handler_name,
        "handler_file_path": result.handler_file_path,
        "handler_timeout": result.handler_timeout,
        "handler_slow_timeout": result.handler_slow_timeout,
        "handler_registered_at": result.handler_registered_at,
        "handler_event_pattern": result.handler_event_pattern,
        "eventbus_id": result.eventbus_id,
        "eventbus_name": result.eventbus_name,
        "started_at": result.started_at if status == "started" else None,
        "completed_at": None,
        "result": None,
        "error": None,
        "event_children": [],
    }


class SQLiteHistoryMirrorMiddleware(BatchingWriter, EventBusMiddleware):
    """Mirror every event and result transition into the SQLite database at ``db_path``.

    :param db_path: the database file (created with its parent directories); several buses, and several
        processes, may share one file (WAL journal mode)
    :param busy_timeout: seconds to wait for another connection's lock before a batch fails
    :param batch_size: write as soon as this many rows wait, even mid-event
    :param synchronous: SQLite's ``PRAGMA synchronous``: ``'NORMAL'`` (default) loses nothing when the
        process dies, ``'FULL'`` also survives a power cut (an fsync per batch), ``'OFF'`` neither
    :param max_buffered_rows: rows kept for a retry while writes fail; beyond it the oldest are dropped
        (and the count logged)

    A failed write (the file locked past ``busy_timeout``, disk full, ...) is logged as
    :class:`MiddlewareWriteError`; its rows stay queued and go out with the next batch, and the bus keeps
    processing. Query with :meth:`query_events` / :meth:`query_results`, or open the file with any SQLite
    client. Call :meth:`close` (or use ``with``) when done.

    Inside ``async with mirror`` a writer task batches the rows (see :class:`BatchingWriter`): hooks only
    queue, each transaction takes all that accumulated; rows may trail the bus by one write
    (``await mirror.flush()`` or any query catches up) and are all written before the block ends.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        batch_size: int = 500,
        max_buffered_rows: int = 100_000,
        synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        check_number("busy_timeout", busy_timeout, minimum=0)
        check_number("batch_size", batch_size, minimum=1, integer=True)
        check_number("max_buffered_rows", max_buffered_rows, minimum=1, integer=True)
        if synchronous not in ("OFF", "NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'OFF', 'NORMAL' or 'FULL', got {synchronous!r}")
        self.synchronous = synchronous
        self.db_path = Path(db_path) if os.fspath(db_path) != ":memory:" else None
        self._target = os.fspath(db_path)
        self.busy_timeout = float(busy_timeout)
        self.batch_size = batch_size
        self.max_buffered_rows = max_buffered_rows
        #: rows written, and batches that failed (each logged)
        self.rows_written = 0
        self.write_errors = 0
        self.rows_dropped = 0
        self._rows: deque[Row] = deque()
        self._conn: sqlite3.Connection | None = None
        self._worker = OrderedWorker()
        self._flush_lock: anyio.Lock | None = None

    # ------------------------------------------------------------------ hooks (event loop side)
    async def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        self._rows.append(
            (
                _EVENT_INSERT,
                (
                    event.event_id,
                    event.event_type,
                    status,  # the transition's status: the event may be further along by now
                    bus.id,
                    bus.label,
                    status,
                    event.to_json(),
                    monotonic_datetime(),
                ),
            )
        )
        if self.writer_running:
            self._kick()
        elif status != "pending" or len(self._rows) >= self.batch_size:
            await self.flush()

    async def on_event_result_change(
        self, bus: EventBus, event: BaseEvent[Any], result: EventResult[Any], status: str
    ) -> None:
        finished = status == "completed"
        row_json = _row_json(event, result, status) if finished else _unfinished_row_json(result, status)
        self._rows.append(
            (
                _RESULT_INSERT,
                (
                    result.id,
                    event.event_id,
                    result.handler_id,
                    result.handler_name,
                    result.eventbus_id,
                    result.eventbus_label,
                    event.event_type,
                    result.status if finished else status,
                    status,
                    None if not finished or result.result is None else repr(result.result),
                    None if not finished or result.error is None else repr(result.error),
                    orjson.dumps(row_json).decode(),
                    monotonic_datetime(),
                ),
            )
        )
        if self.writer_running:
            self._kick()
        elif len(self._rows) >= self.batch_size:
            await self.flush()

    def _has_queued(self) -> bool:
        return bool(self._rows)

    async def flush(self) -> bool:
        """Write every queued row now (in a worker thread); a failure is logged and the rows kept.

        :return: False when the write failed (the rows stay queued for the next attempt)
        """
        if self._flush_lock is None:
            self._flush_lock = anyio.Lock()
        async with self._flush_lock:  # one batch at a time, so a failed batch goes back in order
            if not self._rows:
                return True
            batch = list(self._rows)
            self._rows.clear()
            try:
                await self._worker.run(self._write, batch)
            except (sqlite3.Error, OSError) as exc:
                self.write_errors += 1
                self._rows.extendleft(reversed(batch))
                overflow = len(self._rows) - self.max_buffered_rows
                if overflow > 0:
                    for _ in range(overflow):
                        self._rows.popleft()
                    self.rows_dropped += overflow
                    logger.error(
                        "%s: dropped %d rows that could not be written", type(self).__name__, overflow
                    )
                report_write_error(
                    MiddlewareWriteError(type(self).__name__, self._target, f"{len(batch)} rows", exc)
                )
                return False
            return True

    # ------------------------------------------------------------------ worker-thread side
    def _connect(self) -> sqlite3.Connection:
        if self.db_path is not None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._target, timeout=self.busy_timeout, check_same_thread=False, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if self.db_path is not None:
                conn.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL survives a crash of the process (not of the machine) without an fsync
                # per commit; ``synchronous='FULL'`` restores one.
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _write(self, batch: list[Row]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # runs of the same statement go in one executemany (row order within a table is kept)
            start = 0
            while start < len(batch):
                sql = batch[start][0]
                end = start + 1
                while end < len(batch) and batch[end][0] is sql:
                    end += 1
                conn.executemany(sql, [values for _, values in batch[start:end]])
                start = end
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.rows_written += len(batch)

    def _select(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self._connection().execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # ------------------------------------------------------------------ queries
    async def query_events(
        self,
        *,
        event_type: str | None = None,
        event_status: str | None = None,
        event_parent_id: str | None = None,
        eventbus_name: str | None = None,
        since: str | None = None,
        until: str | None = None,
        latest: bool = True,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of ``events_log`` (as dicts of its columns), oldest first, after flushing queued rows.

        With ``latest=True`` only each event's newest row per bus counts (its current state), so
        ``event_status='started'`` finds what is running now. ``since``/``until`` bound
        ``event_created_at`` (wire timestamps compare as text). ``BaseEvent.from_json(row['event_json'])``
        rebuilds the event.
        """
        await self.flush()
        where: list[str] = []
        params: list[Any] = []
        if latest:
            where.append("id IN (SELECT MAX(id) FROM events_log GROUP BY event_id, eventbus_id)")
        for column, value in (
            ("event_type", event_type),
            ("event_status", event_status),
            ("eventbus_name", eventbus_name),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if event_parent_id is not None:
            where.append("json_extract(event_json, '$.event_parent_id') = ?")
            params.append(event_parent_id)
        if since is not None:
            where.append("json_extract(event_json, '$.event_created_at') >= ?")
            params.append(since)
        if until is not None:
            where.append("json_extract(event_json, '$.event_created_at') <= ?")
            params.append(until)
        sql = "SELECT * FROM events_log" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return await self._worker.run(self._select, sql, params)

    async def query_results(
        self,
        *,
        event_id: str | None = None,
        handler_name: str | None = None,
        status: str | None = None,
        latest: bool = True,
    ) -> list[dict[str, Any]]:
        """Rows of ``event_results_log``, oldest first; ``latest=True`` keeps each row's newest state."""
        await self.flush()
        where: list[str] = []
        params: list[Any] = []
        if latest:
            where.append("id IN (SELECT MAX(id) FROM event_results_log GROUP BY event_result_id)")
        for column, value in (("event_id", event_id), ("handler_name", handler_name), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM event_results_log" + (" WHERE " + " AND ".join(where) if where else "")
        return await self._worker.run(self._select, sql + " ORDER BY id", params)

    def close(self) -> None:
        """Write what is still queued (blocking; call it once the bus stopped) and close. Idempotent."""
        with self._worker.lock:
            try:
                if self._rows:
                    batch = list(self._rows)
                    self._rows.clear()
                    try:
                        self._write(batch)
                    except (sqlite3.Error, OSError) as exc:
                        self.write_errors += 1
                        report_write_error(
                            MiddlewareWriteError(type(self).__name__, self._target, f"{len(batch)} rows", exc)
                        )
            finally:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
