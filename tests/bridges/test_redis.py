"""RedisEventBridge against a real redis-server: pub/sub as upstream, Redis Streams for durable delivery."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import coredis
import pytest
import servers
from _interop import INTEROP
from _live import (
    Counted,
    LivePing,
    eventually,
    loop_safe,
    pushes_back,
    reconnects_after_restart,
    redelivered_after_crash,
    restart_mid_stream,
    round_trip,
    unique,
)

from bubus_anyio.bridges import BridgeConnectError, RedisEventBridge
from bubus_anyio.bridges._redis import INIT_KEY, parse_redis_url

pytestmark = [
    pytest.mark.anyio,
    # coredis 6.9 leaks a failed connection's two memory streams (a ResourceWarning when collected); a
    # connection attempt racing a broker kill can still hit that, so only that warning is let through here
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <function MemoryObject(Send|Receive)Stream.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture(autouse=True)
def _flag_coredis_leaks() -> Iterator[None]:
    """Every test here may leave coredis' unclosed streams behind: conftest collects them (silently)
    before the next test."""
    yield
    servers.LEAKS_PENDING = True


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[Any]:
    options, _ = parse_redis_url(url)
    client: Any = coredis.Redis(**options, decode_responses=False)
    async with client:
        yield client


class TestUrl:
    def test_channel_from_url_argument_and_default(self) -> None:
        assert parse_redis_url("redis://h:1/2/chan")[1] == "chan"
        assert parse_redis_url("redis://h:1/2/chan", "other")[1] == "other"
        options, channel = parse_redis_url("rediss://u:p%40ss@h:6380/3")
        assert channel == "bubus_events"
        assert options == {
            "host": "h",
            "port": 6380,
            "db": 3,
            "username": "u",
            "password": "p@ss",
            "ssl": True,
        }

    @pytest.mark.parametrize("url", ["http://h/0", "redis://h/x", "redis://h/0/a/b"])
    def test_bad_url_names_the_field(self, url: str) -> None:
        with pytest.raises(ValueError, match="redis_url"):
            RedisEventBridge(url)

    def test_default_name(self) -> None:
        bridge = RedisEventBridge("redis://127.0.0.1:1/0")
        assert (
            bridge.name.startswith("RedisEventBridge_") and len(bridge.name) == len("RedisEventBridge_") + 8
        )


class TestPubSub:
    async def test_round_trip_between_two_buses(self, redis_url: str) -> None:
        channel = unique("rt")
        await round_trip(lambda **o: RedisEventBridge(redis_url, channel, **o), "Redis")

    async def test_wire_is_upstream_shape(self, redis_url: str) -> None:
        channel = unique("wire")
        async with raw_client(redis_url) as client, client.pubsub(channels=[channel]) as pubsub:
            async with RedisEventBridge(f"{redis_url}/{channel}") as bridge:
                assert bridge.channel == channel
                assert await client.get(INIT_KEY) is not None
                sent = LivePing(n=1)
                await bridge.emit(sent)
            with anyio.fail_after(5):
                async for message in pubsub:
                    if message["type"] == "message":
                        assert message["data"] == sent.to_json().encode()
                        assert json.loads(message["data"]) == json.loads(sent.to_json())
                        break

    @pytest.mark.parametrize("runtime", ["ts-2.3.2", "py-2.3.2"])
    async def test_reads_what_upstream_writes(self, redis_url: str, runtime: str) -> None:
        upstream = json.loads((INTEROP / runtime / "fresh_str_result.json").read_text())
        channel, got = unique("ts"), Counted()
        async with RedisEventBridge(redis_url, channel) as bridge, raw_client(redis_url) as client:
            bridge.on("*", got)
            await client.publish(channel, json.dumps(upstream, separators=(",", ":")))
            await got.wait_for({-1})
        event = got.events[0]
        assert event.event_type == upstream["event_type"]
        assert getattr(event, "text") == upstream["text"]  # noqa: B009 - a payload extra

    async def test_loop_safe_both_ways(self, redis_url: str) -> None:
        channel = unique("loop")
        await loop_safe(lambda **o: RedisEventBridge(redis_url, channel, **o), "RLoop")

    async def test_malformed_messages_are_logged_and_skipped(
        self, redis_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        channel, got = unique("bad"), Counted()
        caplog.set_level(logging.WARNING, logger="bubus.bridges")
        async with RedisEventBridge(redis_url, channel) as bridge, raw_client(redis_url) as client:
            bridge.on(LivePing, got)
            for junk in (b"not json", b"[1,2]", b'{"event_type": 5}'):
                await client.publish(channel, junk)
            await client.publish(channel, LivePing(n=3).to_json())
            await got.wait_for({3})
            assert bridge.statistics().decode_errors == 3
        assert sum("BridgeDecodeError" in r.getMessage() for r in caplog.records) == 3

    async def test_unreachable_server_is_a_connect_error(self) -> None:
        with pytest.raises(BridgeConnectError, match="redis_url"):
            async with RedisEventBridge(f"redis://127.0.0.1:{servers.free_port()}/0"):
                pass  # pragma: no cover

    async def test_subscriber_reconnects_after_broker_restart(
        self, private_server: Callable[[str], servers.Server]
    ) -> None:
        server, channel = private_server("redis"), unique("re")
        await reconnects_after_restart(server, lambda **o: RedisEventBridge(server.url, channel, **o))


class TestStreams:
    async def test_acknowledged_only_after_the_handler_finished(self, redis_url: str) -> None:
        channel, group = unique("ack"), unique("g")
        release, started, got = anyio.Event(), anyio.Event(), Counted()

        async def slow(event: LivePing) -> None:
            started.set()
            await release.wait()
            got(event)

        async with (
            raw_client(redis_url) as client,
            RedisEventBridge(redis_url, channel, mode="stream", name=group, block=0.1) as consumer,
            RedisEventBridge(redis_url, channel, mode="stream", block=0.1) as producer,
        ):
            consumer.on(LivePing, slow)
            await producer.emit(LivePing(n=1))
            with anyio.fail_after(10):
                await started.wait()
            pending = await client.xpending(channel, group)
            assert pending.pending == 1  # handed to the handler, not acknowledged yet
            release.set()
            await got.wait_for({1})

            async def acked() -> bool:
                return (await client.xpending(channel, group)).pending == 0

            await eventually(acked)
            stored = await client.xrange(channel)
            assert [e.field_values[b"event"] for e in stored] != []
            assert json.loads(stored[0].field_values[b"event"])["n"] == 1

    async def test_slow_consumer_leaves_the_rest_in_redis(self, redis_url: str) -> None:
        channel, group = unique("slow"), unique("g")
        options: dict[str, Any] = {"mode": "stream", "block": 0.1, "batch": 4, "buffer": 4}
        async with raw_client(redis_url) as client:

            async def delivered_unacked() -> int:
                return int((await client.xpending(channel, group)).pending)

            highest = await pushes_back(
                lambda: RedisEventBridge(redis_url, channel, name=group, inbound_buffer=2, **options),
                lambda: RedisEventBridge(redis_url, channel, **options),
                delivered_unacked,
            )
        assert 0 < highest <= 2 + 4 + 2 * 4  # in flight + read-ahead + one batch being handed over

    async def test_unfinished_event_is_redelivered_to_the_next_consumer(self, redis_url: str) -> None:
        channel, group = unique("crash"), unique("g")
        options: dict[str, Any] = {"mode": "stream", "block": 0.1}
        await redelivered_after_crash(
            lambda: RedisEventBridge(redis_url, channel, name=group, **options),
            lambda: RedisEventBridge(redis_url, channel, **options),
        )

    async def test_broker_restart_mid_stream_loses_nothing_and_repeats_nothing(
        self, private_server: Callable[[str], servers.Server]
    ) -> None:
        server, channel, group = private_server("redis"), unique("durable"), unique("g")
        options: dict[str, Any] = {"mode": "stream", "block": 0.1, "send_timeout": 20.0}
        await restart_mid_stream(
            server,
            lambda: RedisEventBridge(server.url, channel, name=group, **options),
            lambda: RedisEventBridge(server.url, channel, **options),
        )
        async with raw_client(server.url) as client:
            assert (await client.xpending(channel, group)).pending == 0
