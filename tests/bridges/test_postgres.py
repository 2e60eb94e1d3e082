"""PostgresEventBridge against a real PostgreSQL: upstream's table + LISTEN/NOTIFY, and the durable cursor.

asyncpg is asyncio-only; on trio the bridge hosts it on its own loop in a thread, and so do these tests'
raw connections (through the same AsyncioHost)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import pytest
import servers
from _live import (
    Counted,
    LivePing,
    eventually,
    loop_safe,
    reconnects_after_restart,
    redelivered_after_crash,
    restart_mid_stream,
    round_trip,
    unique,
)

from bubus_anyio.bridges import BridgeConnectError, PostgresEventBridge
from bubus_anyio.bridges._asyncio_host import AsyncioHost
from bubus_anyio.bridges._postgres import parse_table_url

pytestmark = pytest.mark.anyio


class Raw:
    def __init__(self, host: AsyncioHost, conn: Any) -> None:
        self.host, self.conn = host, conn

    async def execute(self, sql: str, *args: Any) -> Any:
        return await self.host.run(self.conn.execute, sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.host.run(self.conn.fetch, sql, *args))

    async def notify(self, channel: str, payload: str) -> None:
        await self.execute("SELECT pg_notify($1, $2)", channel, payload)


@asynccontextmanager
async def raw_conn(url: str) -> AsyncIterator[Raw]:
    async with AsyncioHost() as host:
        conn = await host.run(asyncpg.connect, url)
        try:
            yield Raw(host, conn)
        finally:
            await host.run(conn.close)


class TestUrl:
    def test_table_from_url_and_defaults(self) -> None:
        assert parse_table_url("postgresql://u:p@h:5432/db/tbl?sslmode=disable") == (
            "postgresql://u:p@h:5432/db?sslmode=disable",
            "tbl",
        )
        assert parse_table_url("postgresql://h/db")[1] == "bubus_events"
        bridge = PostgresEventBridge("postgresql://h/db")
        assert (bridge.table, bridge.channel) == ("bubus_events", "bubus_events")
        assert bridge.name.startswith("PostgresEventBridge_")

    @pytest.mark.parametrize(
        ("url", "channel", "field"),
        [
            ("http://h/db", None, "table_url"),
            ("postgresql://h/", None, "table_url"),
            ("postgresql://h/db/bad-name", None, "table name"),
            ("postgresql://h/db/" + "t" * 64, None, "table name"),
            ("postgresql://h/db", "no spaces", "channel"),
        ],
    )
    def test_bad_names_say_which(self, url: str, channel: str | None, field: str) -> None:
        with pytest.raises(ValueError, match=field):
            PostgresEventBridge(url, channel)


class TestListenNotify:
    async def test_round_trip_between_two_buses(self, postgres_url: str) -> None:
        url = f"{postgres_url}/{unique('rt')}"
        await round_trip(lambda **o: PostgresEventBridge(url, **o), "Pg")

    async def test_row_and_notification_are_upstream_shape(self, postgres_url: str) -> None:
        table, channel = unique("wire"), unique("ch")
        async with raw_conn(postgres_url) as raw:
            heard: list[str] = []
            await raw.host.run(raw.conn.add_listener, channel, lambda *a: heard.append(a[3]))
            async with PostgresEventBridge(f"{postgres_url}/{table}", channel) as bridge:
                sent = LivePing(n=1)
                await bridge.emit(sent)
            rows = await raw.fetch(f'SELECT * FROM "{table}"')
            await eventually(lambda: _now(bool(heard)))
        row = dict(rows[0])
        wire = json.loads(sent.to_json())
        assert row["event_id"] == json.dumps(wire["event_id"])
        assert json.loads(row["event_type"]) == "LivePing"
        assert json.loads(row["event_payload"]) == {"n": 1}
        assert json.loads(row["event_created_at"]) == wire["event_created_at"]
        assert json.loads(heard[0]) == wire["event_id"]

    async def test_reads_a_row_written_the_upstream_way(self, postgres_url: str) -> None:
        table, got = unique("up"), Counted()
        async with PostgresEventBridge(f"{postgres_url}/{table}") as bridge, raw_conn(postgres_url) as raw:
            bridge.on("*", got)
            upstream = json.loads(LivePing(n=9).to_json())
            await raw.execute(
                f'INSERT INTO "{table}" ("event_id", "event_created_at", "event_type", "event_payload") '
                "VALUES ($1, $2, $3, $4)",
                json.dumps(upstream["event_id"]),
                json.dumps(upstream["event_created_at"]),
                json.dumps(upstream["event_type"]),
                json.dumps({"n": 9}),
            )
            await raw.notify("bubus_events", json.dumps(upstream["event_id"]))
            await got.wait_for({9})

    async def test_loop_safe_both_ways(self, postgres_url: str) -> None:
        url = f"{postgres_url}/{unique('loop')}"
        await loop_safe(lambda **o: PostgresEventBridge(url, **o), "PLoop")

    async def test_malformed_rows_are_logged_and_skipped(
        self, postgres_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        table, got = unique("bad"), Counted()
        caplog.set_level(logging.WARNING, logger="bubus.bridges")
        async with PostgresEventBridge(f"{postgres_url}/{table}") as bridge, raw_conn(postgres_url) as raw:
            bridge.on(LivePing, got)
            await raw.execute(
                f'INSERT INTO "{table}" ("event_id", "event_type", "event_payload") VALUES ($1, $2, $3)',
                '"not-a-uuid"',
                '"LivePing"',
                "[1, 2]",
            )
            await raw.notify("bubus_events", '"not-a-uuid"')
            await raw.notify("bubus_events", '"no-such-row"')
            await bridge.emit(LivePing(n=3))
            await got.wait_for({3})
            assert bridge.statistics().decode_errors == 1
        assert any("BridgeDecodeError" in r.getMessage() for r in caplog.records)

    async def test_unreachable_server_is_a_connect_error(self) -> None:
        with pytest.raises(BridgeConnectError, match="table_url"):
            async with PostgresEventBridge(f"postgresql://postgres@127.0.0.1:{servers.free_port()}/bubus"):
                pass  # pragma: no cover

    async def test_reconnects_by_itself_after_server_restart(
        self, private_server: Callable[[str], servers.Server]
    ) -> None:
        server = private_server("postgres")
        url = f"{server.url}/{unique('re')}"
        await reconnects_after_restart(server, lambda **o: PostgresEventBridge(url, send_timeout=30, **o))


class TestDurable:
    async def test_cursor_moves_only_after_the_handler_finished(self, postgres_url: str) -> None:
        table, consumer = unique("ack"), unique("c")
        url = f"{postgres_url}/{table}"
        release, started, got = anyio.Event(), anyio.Event(), Counted()

        async def slow(event: LivePing) -> None:
            started.set()
            await release.wait()
            got(event)

        async with (
            PostgresEventBridge(url, durable=True, name=consumer, poll_interval=0.2) as reader,
            PostgresEventBridge(url) as writer,
            raw_conn(postgres_url) as raw,
        ):
            reader.on(LivePing, slow)
            (before,) = await raw.fetch(
                f'SELECT last_seq FROM "{table}_cursors" WHERE consumer = $1', consumer
            )
            await writer.emit(LivePing(n=1))
            with anyio.fail_after(10):
                await started.wait()
            (during,) = await raw.fetch(
                f'SELECT last_seq FROM "{table}_cursors" WHERE consumer = $1', consumer
            )
            assert during["last_seq"] == before["last_seq"]
            release.set()
            await got.wait_for({1})

            async def moved() -> bool:
                (row,) = await raw.fetch(
                    f'SELECT last_seq FROM "{table}_cursors" WHERE consumer = $1', consumer
                )
                return bool(row["last_seq"] > before["last_seq"])

            await eventually(moved)

    async def test_unfinished_event_is_read_again_by_the_next_consumer(self, postgres_url: str) -> None:
        url, consumer = f"{postgres_url}/{unique('crash')}", unique("c")
        await redelivered_after_crash(
            lambda: PostgresEventBridge(url, durable=True, name=consumer, poll_interval=0.2),
            lambda: PostgresEventBridge(url),
        )

    async def test_server_restart_mid_stream_loses_nothing_and_repeats_nothing(
        self, private_server: Callable[[str], servers.Server]
    ) -> None:
        server = private_server("postgres")
        url, consumer = f"{server.url}/{unique('durable')}", unique("c")
        await restart_mid_stream(
            server,
            lambda: PostgresEventBridge(url, durable=True, name=consumer, poll_interval=0.2),
            lambda: PostgresEventBridge(url, send_timeout=30),
        )


async def _now(value: bool) -> bool:
    return value
