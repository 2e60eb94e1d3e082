"""SQLite bridge: processes on one machine share a table in one database file, in upstream's layout.

Table ``(event_id TEXT PRIMARY KEY, event_created_at TEXT, event_type TEXT, event_payload JSON)``, plus
one TEXT column per other ``event_*`` key, added when first written. Every column value is JSON text
(``event_id`` too, quotes included, as upstream writes it); ``event_payload`` holds the non-``event_*``
fields. A write is an upsert on ``event_id``. Indexes ``{table}_event_created_at_idx`` and
``{table}_event_type_idx``. The database runs in WAL mode with a busy timeout, so many processes write
at once, and ``synchronous=NORMAL`` (a committed row survives a process crash; a power cut may lose the
newest commits).

Readers poll for rows past a cursor. Upstream's cursor is ``(event_created_at, event_id)``, which skips
a row whose timestamp is older than the newest one seen (clock skew between processes, an old event
re-sent). Ours is SQLite's ``rowid``, which grows with every insert whatever the timestamps say, and
starts, as upstream's does, at the newest row. With ``consumer=`` the cursor of that consumer is saved
in a side table ``{table}_cursors`` after each finished event, and a restart resumes there.
All sqlite3 calls run in a worker thread, one at a time per bridge.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import anyio
import orjson

from ._bridge import EventBridge
from ._transport import (
    Backoff,
    BridgeConnectError,
    BridgeDecodeError,
    BridgeSendError,
    Delivery,
    TracePropagator,
)

__all__ = ["SQLiteEventBridge", "SQLiteTransport"]

logger = logging.getLogger("bubus.bridges")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BASE_COLUMNS = ("event_id", "event_created_at", "event_type", "event_payload")
_BATCH = 1000


def _identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.fullmatch(value) or len(value) > 64:
        raise ValueError(f"{what} must match [A-Za-z_][A-Za-z0-9_]* (at most 64 chars), got {value!r}")
    return value


def row_to_body(row: dict[str, Any], where: str = "row") -> bytes:
    """A table row -> the event's JSON object: ``event_payload`` overlaid with the decoded ``event_*``
    columns (a column that is not valid JSON is taken as the plain string, as upstream does).

    An ``event_payload`` that is not a JSON object is logged as :class:`BridgeDecodeError` and left out;
    the bridge then decides whether the ``event_*`` columns alone still make a valid event.
    """
    raw = row.get("event_payload")
    payload: dict[str, Any] = {}
    if raw is not None:
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict):
            payload.update(cast(dict[str, Any], decoded))
        else:
            error = BridgeDecodeError(str(raw).encode(), f"{where}: event_payload is not a JSON object")
            logger.warning("payload left out: %s: %s", type(error).__name__, error)
    for key, value in row.items():
        if key == "event_payload" or value is None or not key.startswith("event_"):
            continue
        if isinstance(value, str):
            try:
                payload[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                payload[key] = value
        else:
            payload[key] = value
    return orjson.dumps(payload)


def body_to_columns(body: bytes) -> dict[str, str | None]:
    """The event's JSON object -> column values (JSON text each; ``None`` stays NULL)."""
    data: dict[str, Any] = orjson.loads(body)
    columns: dict[str, str | None] = {}
    payload: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("event_"):
            columns[_identifier(key, "event field name")] = (
                None if value is None else orjson.dumps(value).decode()
            )
        else:
            payload[key] = value
    columns["event_payload"] = orjson.dumps(payload).decode()
    return columns


class SQLiteTransport:
    """One table in one SQLite file (see the module docstring). Implements ``Transport``.

    :param path: the database file (created, with its directory, when missing)
    :param table: table name (an identifier)
    :param poll_interval: seconds between polls when nothing new arrived
    :param consumer: durable mode: this reader's cursor is saved under that name (at-least-once)
    :param busy_timeout: seconds a write waits for other writers' locks before :class:`BridgeSendError`
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        table: str = "bubus_events",
        *,
        poll_interval: float = 0.25,
        consumer: str | None = None,
        busy_timeout: float = 30.0,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval!r}")
        self.path = Path(path)
        self.table = _identifier(table, "table")
        self.poll_interval = poll_interval
        self.consumer = consumer
        self.busy_timeout = busy_timeout
        self._limiter = anyio.CapacityLimiter(1)
        self._db: sqlite3.Connection | None = None
        self._columns: set[str] = set(_BASE_COLUMNS)
        self._cursor = 0
        self._acked: int | None = None
        self._saved: int | None = None
        self._closed = False
        self.polls = 0
        """How many times the reader looked for new rows (for tests and monitoring)."""
        self.resets = 0
        """How many times the table was found emptied or recreated below the cursor."""

    @property
    def durable(self) -> bool:
        return self.consumer is not None

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    # ------------------------------------------------------------------ connect
    async def connect(self) -> None:
        try:
            await self._run(self._connect)
        except (sqlite3.Error, OSError) as exc:
            raise BridgeConnectError(
                f"cannot open SQLite table {self.table!r} in {str(self.path)!r}: {exc}"
            ) from exc

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the process crashing; only a power cut can lose the newest ones
        db.execute("PRAGMA synchronous=NORMAL")
        t = self.table
        db.execute(
            f'CREATE TABLE IF NOT EXISTS "{t}" ("event_id" TEXT PRIMARY KEY, "event_created_at" TEXT, '
            '"event_type" TEXT, "event_payload" JSON)'
        )
        db.execute(f'CREATE INDEX IF NOT EXISTS "{t}_event_created_at_idx" ON "{t}" ("event_created_at")')
        db.execute(f'CREATE INDEX IF NOT EXISTS "{t}_event_type_idx" ON "{t}" ("event_type")')
        self._refresh_columns()
        saved = None
        if self.consumer is not None:
            db.execute(
                f'CREATE TABLE IF NOT EXISTS "{t}_cursors" ("consumer" TEXT PRIMARY KEY, "last_rowid" INTEGER)'
            )
            row = db.execute(
                f'SELECT "last_rowid" FROM "{t}_cursors" WHERE "consumer" = ?', (self.consumer,)
            ).fetchone()
            saved = None if row is None else int(row[0])
        if saved is None:
            (latest,) = db.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{t}"').fetchone()
            self._cursor = int(latest)  # as upstream: only rows written from now on
        else:
            self._cursor = self._saved = saved

    def _refresh_columns(self) -> None:
        assert self._db is not None
        self._columns = {str(r[1]) for r in self._db.execute(f'PRAGMA table_info("{self.table}")')}

    # ------------------------------------------------------------------ send
    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Upsert the event's row. Waits for other writers at most ``busy_timeout``.
        ``headers`` are ignored: upstream's table has no column for them.

        :raises BridgeSendError: the database refused the write (locked too long, read-only, full...)
        """
        if self._closed or self._db is None:
            raise BridgeSendError(f"SQLite transport for {str(self.path)!r} is not connected")
        columns = body_to_columns(body)
        try:
            await self._run(self._upsert, columns)
        except sqlite3.Error as exc:
            raise BridgeSendError(
                f"cannot write to SQLite table {self.table!r} in {str(self.path)!r}: {exc}"
            ) from exc

    def _upsert(self, columns: dict[str, str | None]) -> None:
        db = self._db
        assert db is not None
        missing = [key for key in columns if key not in self._columns]
        if missing:
            self._refresh_columns()  # another process may have added them already
            for key in missing:
                if key not in self._columns:
                    try:
                        db.execute(f'ALTER TABLE "{self.table}" ADD COLUMN "{key}" TEXT')
                    except sqlite3.OperationalError as exc:
                        if "duplicate column" not in str(exc):
                            raise
                    self._columns.add(key)
        keys = sorted(columns)
        names = ", ".join(f'"{k}"' for k in keys)
        marks = ", ".join("json(?)" if k == "event_payload" else "?" for k in keys)
        updates = ", ".join(f'"{k}" = excluded."{k}"' for k in keys if k != "event_id")
        db.execute(
            f'INSERT INTO "{self.table}" ({names}) VALUES ({marks}) ON CONFLICT("event_id") DO UPDATE SET {updates}',
            [columns[k] for k in keys],
        )

    # ------------------------------------------------------------------ receive
    async def receive(self) -> AsyncIterator[Delivery]:
        """Rows past the cursor, forever. A failing poll (locked past ``busy_timeout``, the table dropped,
        an I/O error) is logged and retried with backoff: the reader never dies of it."""
        backoff = Backoff(initial=self.poll_interval, cap=max(2.0, self.poll_interval))
        while not self._closed:
            try:
                rows: list[tuple[int, dict[str, Any]]] = await self._run(self._poll)
            except sqlite3.Error as exc:
                logger.warning("%s: polling table %r failed (retrying): %r", self.path, self.table, exc)
                await backoff.wait()
                continue
            backoff.reset()
            for rowid, row in rows:
                self._cursor = rowid
                body = row_to_body(row, f"{self.table} rowid {rowid}")
                yield Delivery(body, ack=self._acker(rowid))
            if len(rows) < _BATCH:
                await anyio.sleep(self.poll_interval)

    def _poll(self) -> list[tuple[int, dict[str, Any]]]:
        db = self._db
        assert db is not None
        self.polls += 1
        self._save_cursor()
        found = db.execute(
            f'SELECT rowid AS "__rowid", * FROM "{self.table}" WHERE rowid > ? ORDER BY rowid LIMIT {_BATCH}',
            (self._cursor,),
        )
        names = [d[0] for d in found.description]
        out: list[tuple[int, dict[str, Any]]] = []
        for values in found.fetchall():
            row = dict(zip(names, values, strict=True))
            out.append((int(row.pop("__rowid")), row))
        if not out and self._cursor:
            (latest,) = db.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{self.table}"').fetchone()
            if latest < self._cursor:  # emptied or recreated: its rowids start over
                logger.warning(
                    "%s: table %r restarted below rowid %d: reading it from the start",
                    self.path,
                    self.table,
                    self._cursor,
                )
                self._cursor = 0
                self.resets += 1
        return out

    def _acker(self, rowid: int) -> Callable[[], Awaitable[None]] | None:
        if self.consumer is None:
            return None

        async def ack() -> None:  # acks come in row order: the newest is the resume point
            self._acked = rowid

        return ack

    def _save_cursor(self) -> None:
        acked = self._acked
        if self.consumer is None or acked is None or acked == self._saved or self._db is None:
            return
        self._db.execute(
            f'INSERT INTO "{self.table}_cursors" ("consumer", "last_rowid") VALUES (?, ?) '
            'ON CONFLICT("consumer") DO UPDATE SET "last_rowid" = excluded."last_rowid"',
            (self.consumer, acked),
        )
        self._saved = acked

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._run(self._close)

    def _close(self) -> None:
        if self._db is not None:
            try:
                self._save_cursor()
            finally:
                self._db.close()
                self._db = None


class SQLiteEventBridge(EventBridge):
    """Events through a table in a shared SQLite file (upstream ``SQLiteEventBridge``; same table).

    Fire-and-forget by default: a reader gets the rows written while it runs (at-most-once; rows written
    while no reader runs stay in the table, undelivered). Give ``consumer=`` for at-least-once: the
    reader resumes after the last row its bus finished.

    :param path: the database file
    :param table: table name (default ``bubus_events``)
    :param poll_interval: seconds between polls when nothing new arrived (latency floor)
    :param name: the inbound bus's name (default ``SQLiteEventBridge_{8 hex}``)
    :param consumer: durable mode (see :class:`SQLiteTransport`)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        table: str = "bubus_events",
        *,
        poll_interval: float = 0.25,
        name: str | None = None,
        consumer: str | None = None,
        busy_timeout: float = 30.0,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
    ) -> None:
        self.path = Path(path)
        self.table = table
        super().__init__(
            SQLiteTransport(
                path, table, poll_interval=poll_interval, consumer=consumer, busy_timeout=busy_timeout
            ),
            name=name,
            inbound_buffer=inbound_buffer,
            dedupe_window=dedupe_window,
            propagator=propagator,
        )
