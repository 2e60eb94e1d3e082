"""PostgreSQL bridge: a flat table plus LISTEN/NOTIFY like upstream (at-most-once), or a durable cursor.

Wire (as upstream): table ``(event_id TEXT PRIMARY KEY, event_created_at TEXT, event_type TEXT,
event_payload TEXT)`` plus one TEXT column per other ``event_*`` key, added when first written; every value
is JSON text and ``event_payload`` holds the non-``event_*`` fields (the SQLite bridge's layout). A send is
an upsert on ``event_id`` followed by ``pg_notify(channel, <event_id as a JSON string>)``; a reader
LISTENs on the channel and fetches each notified row by id. Table and channel default to ``bubus_events``.
Notifications sent while a reader is disconnected are lost (at-most-once), as upstream.

Durable (``durable=True``): the bridge also installs a trigger that appends every insert or update of the
table, by any writer (upstream's included), to ``{table}_log (seq BIGSERIAL, event_id)``; writers take a
transaction advisory lock there, so sequence order is commit order. A durable reader reads the log past its
cursor, which lives in ``{table}_cursors (consumer, last_seq)`` and moves only after its inbound bus
finished an event. Notifications only wake it (it also polls every ``poll_interval``), so an outage or a
crash delays delivery but loses nothing; unfinished events are read again after a reconnect or restart.
A new consumer starts at the end of the log.

asyncpg is asyncio-only: on trio it runs on a private asyncio loop in a thread
(:class:`~._asyncio_host.AsyncioHost`), entered and left with the bridge.
"""

from __future__ import annotations

import asyncio  # the client loop's own queue; runs only on the AsyncioHost loop (see _asyncio_host)
import importlib
import importlib.util
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import orjson

from ._asyncio_host import AsyncioHost
from ._session import SessionBridge
from ._sqlite import body_to_columns, row_to_body
from ._transport import Backoff, BridgeConnectError, BridgeSendError, Delivery, TracePropagator

__all__ = ["PostgresEventBridge", "PostgresTransport", "parse_table_url"]

logger = logging.getLogger("bubus.bridges")

DEFAULT_TABLE = "bubus_events"
DEFAULT_CHANNEL = "bubus_events"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BASE_COLUMNS = ("event_id", "event_created_at", "event_type", "event_payload")


def _identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.fullmatch(value) or len(value) > 63:
        raise ValueError(f"{what} must match [A-Za-z_][A-Za-z0-9_]* (at most 63 chars), got {value!r}")
    return value


def parse_table_url(table_url: str) -> tuple[str, str]:
    """``postgresql://user:pass@host:5432/db[/table][?query]`` -> (DSN without the table, table).

    :raises ValueError: no database in the path, or a table name that is not a plain identifier
    """
    parts = urlsplit(table_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"table_url must start with postgresql://, got {table_url!r}")
    segments = [s for s in parts.path.split("/") if s]
    if not segments or len(segments) > 2:
        raise ValueError(f"table_url path must be /<database>[/<table>], got {parts.path!r}")
    table = _identifier(segments[1], "table name") if len(segments) == 2 else DEFAULT_TABLE
    dsn = urlunsplit((parts.scheme, parts.netloc, f"/{segments[0]}", parts.query, parts.fragment))
    return dsn, table


def _asyncpg() -> Any:
    """asyncpg, imported on first use (it is an optional dependency and ships no type information)."""
    return importlib.import_module("asyncpg")


def _transient_errors() -> tuple[type[BaseException], ...]:
    asyncpg = _asyncpg()

    return (
        OSError,
        TimeoutError,
        asyncio.TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.InvalidCachedStatementError,  # another writer added a column: asyncpg re-prepares on retry
        asyncpg.InternalClientError,  # a connection left mid-operation by an outage: use a fresh one
    )


class PostgresTransport:
    """A flat table with LISTEN/NOTIFY, or a durable log cursor (see the module docstring).

    :param table_url: ``postgresql://user:pass@host:5432/db[/table]``
    :param channel: NOTIFY channel (default ``bubus_events``)
    :param durable: read through the log with a saved cursor (at-least-once)
    :param consumer: the cursor's name in durable mode (default: the bridge's name)
    :param poll_interval: durable readers also look at the log this often (seconds)
    :param buffer: notifications waiting for the reader; beyond it they are dropped (and logged); in
        durable mode that only delays reading
    :param batch: rows read per query
    :param send_timeout: how long ``send`` keeps retrying while PostgreSQL is unreachable before
        :class:`BridgeSendError`
    """

    def __init__(
        self,
        table_url: str,
        channel: str | None = None,
        *,
        durable: bool = False,
        consumer: str | None = None,
        poll_interval: float = 1.0,
        buffer: int = 1024,
        batch: int = 256,
        send_timeout: float = 10.0,
    ) -> None:
        self.dsn, self.table = parse_table_url(table_url)
        self.table_url = table_url
        self.channel = _identifier(channel if channel is not None else DEFAULT_CHANNEL, "channel")
        self._durable = durable
        self.consumer = consumer or f"bubus_{uuid.uuid4().hex[:8]}"
        self.poll_interval = poll_interval
        self.buffer = buffer
        self.batch = batch
        self.send_timeout = send_timeout
        self.dropped = 0
        self._host: AsyncioHost | None = None
        self._pool: Any = None
        self._listen: Any = None
        self._queue: asyncio.Queue[str] | None = None
        self._columns: set[str] = set(_BASE_COLUMNS)
        self._read_seq = 0
        self._closed = False
        _identifier(f"{self.table}_cursors", "table name")  # the side tables must fit too

    @property
    def durable(self) -> bool:
        return self._durable

    @property
    def host(self) -> AsyncioHost:
        if self._host is None:
            raise BridgeConnectError("PostgresTransport needs its session(); use PostgresEventBridge")
        return self._host

    # ------------------------------------------------------------------ lifetime
    @asynccontextmanager
    async def session(self) -> AsyncGenerator[None]:
        if importlib.util.find_spec("asyncpg") is None:  # pragma: no cover - depends on the install
            raise BridgeConnectError("PostgresEventBridge needs asyncpg: pip install 'bubus-anyio[bridges]'")
        async with AsyncioHost(f"bubus-postgres-{self.table}") as host:
            self._host = host
            try:
                yield
            finally:
                with anyio.CancelScope(shield=True):
                    await host.run(self._disconnect)
                self._host = None

    async def connect(self) -> None:
        if not await self._reachable():
            raise BridgeConnectError(f"cannot reach PostgreSQL at table_url={self.table_url!r}")
        try:
            with anyio.fail_after(15):
                await self.host.run(self._connect)
        except Exception as exc:
            raise BridgeConnectError(f"cannot open table_url={self.table_url!r}: {exc!r}") from exc

    async def _reachable(self) -> bool:
        parts = urlsplit(self.dsn)
        try:
            with anyio.fail_after(2):
                stream = await anyio.connect_tcp(parts.hostname or "localhost", parts.port or 5432)
        except (OSError, TimeoutError):
            return False
        await stream.aclose()
        return True

    async def _connect(self) -> None:  # runs on the client loop
        asyncpg = _asyncpg()

        if self._pool is None:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)
        async with self._pool.acquire() as conn:
            await self._ensure_schema(conn)
        if self._queue is None:
            self._queue = asyncio.Queue(self.buffer)
        # no statement cache: SELECT * must follow columns other writers add
        listen = await asyncpg.connect(self.dsn, statement_cache_size=0)
        try:
            listen.add_termination_listener(self._on_terminated)
            await listen.add_listener(self.channel, self._on_notify)
        except BaseException:
            await listen.close()
            raise
        self._listen = listen
        if self._durable:
            self._read_seq = await self._saved_cursor(listen)
            self._wake()  # read what came while we were away

    async def _ensure_schema(self, conn: Any) -> None:
        t = self.table
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{t}" ("event_id" TEXT PRIMARY KEY, "event_created_at" TEXT, '
            '"event_type" TEXT, "event_payload" TEXT)'
        )
        await conn.execute(
            f'CREATE INDEX IF NOT EXISTS "{t}_event_created_at_idx" ON "{t}" ("event_created_at")'
        )
        await conn.execute(f'CREATE INDEX IF NOT EXISTS "{t}_event_type_idx" ON "{t}" ("event_type")')
        rows = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = $1",
            t,
        )
        self._columns = {str(r["column_name"]) for r in rows}
        if not self._durable:
            return
        # one transaction and a lock, so concurrent bridges installing the trigger do not collide
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"bubus_log_{t}")
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{t}_log" ("seq" BIGSERIAL PRIMARY KEY, "event_id" TEXT NOT NULL)'
            )
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{t}_cursors" ("consumer" TEXT PRIMARY KEY, "last_seq" BIGINT NOT NULL)'
            )
            await conn.execute(
                f'CREATE OR REPLACE FUNCTION "{t}_log_append"() RETURNS trigger AS $$ BEGIN '
                f"PERFORM pg_advisory_xact_lock(hashtext('bubus_log_append_{t}')); "
                f'INSERT INTO "{t}_log" ("event_id") VALUES (NEW."event_id"); RETURN NEW; END $$ LANGUAGE plpgsql'
            )
            exists = await conn.fetchval("SELECT 1 FROM pg_trigger WHERE tgname = $1", f"{t}_log_trigger")
            if not exists:
                await conn.execute(
                    f'CREATE TRIGGER "{t}_log_trigger" AFTER INSERT OR UPDATE ON "{t}" '
                    f'FOR EACH ROW EXECUTE FUNCTION "{t}_log_append"()'
                )

    async def _saved_cursor(self, conn: Any) -> int:
        seq = await conn.fetchval(
            f'SELECT "last_seq" FROM "{self.table}_cursors" WHERE "consumer" = $1', self.consumer
        )
        if seq is not None:
            return int(seq)
        latest = int(await conn.fetchval(f'SELECT COALESCE(MAX("seq"), 0) FROM "{self.table}_log"'))
        await conn.execute(
            f'INSERT INTO "{self.table}_cursors" ("consumer", "last_seq") VALUES ($1, $2) ON CONFLICT DO NOTHING',
            self.consumer,
            latest,
        )
        return latest

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:  # client loop
        try:
            decoded = orjson.loads(payload)
        except orjson.JSONDecodeError:
            decoded = payload  # an older writer sent the bare id
        event_id = decoded if isinstance(decoded, str) else payload
        assert self._queue is not None
        try:
            self._queue.put_nowait(event_id)
        except asyncio.QueueFull:
            self.dropped += 1
            logger.warning(
                "postgres %r: reader %d notifications behind; dropped one", self.channel, self.buffer
            )

    def _on_terminated(self, _conn: Any) -> None:  # client loop: the listener's connection is gone
        if not self._closed:
            self._wake()

    def _wake(self) -> None:
        if self._queue is not None and self._queue.empty():
            self._queue.put_nowait("")

    async def _disconnect(self) -> None:  # client loop
        listen, pool = self._listen, self._pool
        self._listen = self._pool = None
        if listen is not None:
            await _quietly(listen.close())
        if pool is not None:
            await _quietly(pool.close())

    async def aclose(self) -> None:
        self._closed = True

    # ------------------------------------------------------------------ out
    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Upsert the event's row. ``headers`` are ignored: upstream's table has no column for them."""
        if self._pool is None or self._closed:
            raise BridgeSendError("PostgresTransport is not connected")
        columns = body_to_columns(body)
        await self._retrying("send", self._upsert, columns)

    async def _retrying(self, what: str, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        backoff = Backoff()
        transient = _transient_errors()
        with anyio.move_on_after(self.send_timeout):
            while True:
                try:
                    return await self.host.run(fn, *args)
                except transient as exc:
                    logger.debug("postgres %s on %r failed (%r); retrying", what, self.table, exc)
                    await backoff.wait()
        raise BridgeSendError(f"PostgreSQL unreachable for send_timeout={self.send_timeout}s ({what})")

    async def _upsert(self, columns: dict[str, str | None]) -> None:  # client loop
        keys = sorted(columns)
        async with self._pool.acquire() as conn:
            for key in keys:
                if key not in self._columns:
                    await conn.execute(f'ALTER TABLE "{self.table}" ADD COLUMN IF NOT EXISTS "{key}" TEXT')
                    self._columns.add(key)
            names = ", ".join(f'"{k}"' for k in keys)
            marks = ", ".join(f"${i}" for i in range(1, len(keys) + 1))
            updates = ", ".join(f'"{k}" = EXCLUDED."{k}"' for k in keys if k != "event_id")
            event_id = orjson.loads(columns["event_id"] or '""')
            async with conn.transaction():
                await conn.execute(
                    f'INSERT INTO "{self.table}" ({names}) VALUES ({marks}) ON CONFLICT ("event_id") DO UPDATE SET {updates}',
                    *[columns[k] for k in keys],
                )
                await conn.execute("SELECT pg_notify($1, $2)", self.channel, orjson.dumps(event_id).decode())

    # ------------------------------------------------------------------ in
    async def receive(self) -> AsyncIterator[Delivery]:
        backoff = Backoff()
        transient = _transient_errors()
        while not self._closed:
            try:
                rows = await self.host.run(self._next_rows)
            except transient as exc:
                logger.warning(
                    "postgres reader on %r lost its connection (%r); reconnecting", self.table, exc
                )
                await self._reconnect(backoff)
                continue
            backoff.reset()
            for seq, row in rows:
                body = row_to_body(row, f"{self.table} event_id {row.get('event_id')!r}")
                yield Delivery(body, ack=self._acker(seq) if self._durable else None)

    async def _reconnect(self, backoff: Backoff) -> None:
        while not self._closed:
            await backoff.wait()
            if not await self._reachable():
                continue
            try:
                await self.host.run(self._reopen_listener)
            except _transient_errors() as exc:
                logger.debug("postgres reconnect to %r failed (%r)", self.table, exc)
                continue
            logger.warning("postgres reader on %r reconnected", self.table)
            return

    async def _reopen_listener(self) -> None:  # client loop
        old, self._listen = self._listen, None
        if old is not None:
            old.terminate()
        await self._connect()

    async def _next_rows(self) -> list[tuple[int, dict[str, Any]]]:  # client loop
        queue, listen = self._queue, self._listen
        assert queue is not None
        if listen is None or listen.is_closed():
            asyncpg = _asyncpg()

            raise asyncpg.ConnectionDoesNotExistError("listener connection closed")
        if not self._durable:
            ids = [await queue.get()]
            while not queue.empty() and len(ids) < self.batch:
                ids.append(queue.get_nowait())
            if listen.is_closed():
                asyncpg = _asyncpg()

                raise asyncpg.ConnectionDoesNotExistError("listener connection closed")
            # the column holds JSON text, quotes included, as upstream writes it
            keys = [orjson.dumps(i).decode() for i in ids if i]
            found = await listen.fetch(
                f'SELECT * FROM "{self.table}" WHERE "event_id" = ANY($1::text[])', keys
            )
            by_id = {str(r["event_id"]): dict(r) for r in found}
            missing = [k for k in keys if k not in by_id]
            if missing:
                logger.debug("postgres %r: notified rows not found: %r", self.table, missing[:5])
            return [(0, by_id[k]) for k in keys if k in by_id]
        try:
            await asyncio.wait_for(queue.get(), self.poll_interval)
        except TimeoutError:
            pass
        while not queue.empty():
            queue.get_nowait()
        found = await listen.fetch(
            f'SELECT l."seq" AS "__seq", t.* FROM "{self.table}_log" l JOIN "{self.table}" t USING ("event_id") '
            f'WHERE l."seq" > $1 ORDER BY l."seq" LIMIT {int(self.batch)}',
            self._read_seq,
        )
        out: list[tuple[int, dict[str, Any]]] = []
        for record in found:
            row = dict(record)
            seq = int(row.pop("__seq"))
            self._read_seq = max(self._read_seq, seq)
            out.append((seq, row))
        if len(out) == self.batch:
            self._wake()
        return out

    def _acker(self, seq: int) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            await self._retrying("ack", self._save_cursor, seq)

        return ack

    async def _save_cursor(self, seq: int) -> None:  # client loop
        async with self._pool.acquire() as conn:
            await conn.execute(
                f'INSERT INTO "{self.table}_cursors" ("consumer", "last_seq") VALUES ($1, $2) '
                'ON CONFLICT ("consumer") DO UPDATE SET "last_seq" = GREATEST('
                f'"{self.table}_cursors"."last_seq", EXCLUDED."last_seq")',
                self.consumer,
                seq,
            )


async def _quietly(closing: Awaitable[Any]) -> None:
    """Close a connection that may already be dead; a failure to say goodbye is only logged."""
    try:
        await closing
    except Exception as exc:
        logger.debug("postgres connection close failed: %r", exc)


class PostgresEventBridge(SessionBridge):
    """Bridge over PostgreSQL: upstream's table + LISTEN/NOTIFY, or a durable cursor with ``durable=True``.

    ``PostgresEventBridge(table_url, channel=None, *, name=None)`` matches upstream; keyword-only options are
    :class:`PostgresTransport`'s (``durable``, ``consumer``, ``poll_interval``...) plus the
    :class:`EventBridge` ones. The durable cursor defaults to the bridge's name, so give a stable ``name``
    (or ``consumer``) to resume after a restart.
    """

    def __init__(
        self,
        table_url: str,
        channel: str | None = None,
        *,
        name: str | None = None,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
        **options: Any,
    ) -> None:
        name = name if name is not None else self._default_name()
        options.setdefault("consumer", name)
        self.postgres = PostgresTransport(table_url, channel, **options)
        super().__init__(
            self.postgres,
            name=name,
            inbound_buffer=inbound_buffer,
            dedupe_window=dedupe_window,
            propagator=propagator,
        )

    @property
    def table(self) -> str:
        return self.postgres.table

    @property
    def channel(self) -> str:
        return self.postgres.channel
