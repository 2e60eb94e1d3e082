"""NATSEventBridge against a real nats-server: core subjects as upstream, JetStream for durable delivery.

nats-py is asyncio-only; on trio the bridge hosts it on its own loop in a thread, and so do these tests'
raw clients (through the same AsyncioHost)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import nats
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

from bubus_anyio.bridges import BridgeConnectError, NATSEventBridge
from bubus_anyio.bridges._asyncio_host import AsyncioHost
from bubus_anyio.bridges._nats import stream_name_for

pytestmark = pytest.mark.anyio


class Raw:
    """A plain nats-py client on whatever loop hosts it (for wire checks)."""

    def __init__(self, host: AsyncioHost, nc: Any) -> None:
        self.host, self.nc = host, nc

    async def publish(self, subject: str, data: bytes) -> None:
        await self.host.run(self.nc.publish, subject, data)
        await self.host.run(self.nc.flush)

    async def subscribe(self, subject: str) -> Any:
        sub = await self.host.run(self.nc.subscribe, subject)
        await self.host.run(self.nc.flush)
        return sub

    async def next_msg(self, sub: Any) -> Any:
        return await self.host.run(sub.next_msg, 5)


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[Raw]:
    async with AsyncioHost() as host:
        nc = await host.run(nats.connect, url)
        try:
            yield Raw(host, nc)
        finally:
            await host.run(nc.close)


class TestOptions:
    def test_stream_name_and_validation(self) -> None:
        assert stream_name_for("app.events.>") == "app_events__"
        with pytest.raises(ValueError, match="subject"):
            NATSEventBridge("nats://127.0.0.1:1", "has space")
        assert NATSEventBridge("nats://127.0.0.1:1", "s").name.startswith("NATSEventBridge_")


class TestCore:
    async def test_round_trip_between_two_buses(self, nats_url: str) -> None:
        subject = unique("rt")
        await round_trip(lambda **o: NATSEventBridge(nats_url, subject, **o), "Nats")

    async def test_wire_is_upstream_shape(self, nats_url: str) -> None:
        subject = unique("wire")
        async with raw_client(nats_url) as raw:
            sub = await raw.subscribe(subject)
            async with NATSEventBridge(nats_url, subject) as bridge:
                sent = LivePing(n=1)
                await bridge.emit(sent)
            msg = await raw.next_msg(sub)
            assert msg.data == sent.to_json().encode()

    @pytest.mark.parametrize("runtime", ["ts-2.3.2", "py-2.3.2"])
    async def test_reads_what_upstream_writes(self, nats_url: str, runtime: str) -> None:
        upstream = json.loads((INTEROP / runtime / "fresh_str_result.json").read_text())
        subject, got = unique("ts"), Counted()
        async with NATSEventBridge(nats_url, subject) as bridge, raw_client(nats_url) as raw:
            bridge.on("*", got)
            await raw.publish(subject, json.dumps(upstream).encode())
            await got.wait_for({-1})
        assert got.events[0].event_type == upstream["event_type"]
        assert getattr(got.events[0], "text") == upstream["text"]  # noqa: B009 - a payload extra

    async def test_loop_safe_both_ways(self, nats_url: str) -> None:
        subject = unique("loop")
        await loop_safe(lambda **o: NATSEventBridge(nats_url, subject, **o), "NLoop")

    async def test_malformed_messages_are_logged_and_skipped(
        self, nats_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        subject, got = unique("bad"), Counted()
        caplog.set_level(logging.WARNING, logger="bubus.bridges")
        async with NATSEventBridge(nats_url, subject) as bridge, raw_client(nats_url) as raw:
            bridge.on(LivePing, got)
            for junk in (b"not json", b"[1,2]", b"\xff\xfe"):
                await raw.publish(subject, junk)
            await raw.publish(subject, LivePing(n=3).to_json().encode())
            await got.wait_for({3})
            assert bridge.statistics().decode_errors == 3
        assert sum("BridgeDecodeError" in r.getMessage() for r in caplog.records) == 3

    async def test_unreachable_server_is_a_connect_error(self) -> None:
        with pytest.raises(BridgeConnectError, match="server"):
            async with NATSEventBridge(f"nats://127.0.0.1:{servers.free_port()}", "x"):
                pass  # pragma: no cover

    async def test_reconnects_by_itself_after_broker_restart(
        self, private_server: Callable[[str], servers.Server]
    ) -> None:
        server, subject = private_server("nats"), unique("re")
        await reconnects_after_restart(server, lambda **o: NATSEventBridge(server.url, subject, **o))


class TestJetStream:
    async def test_acknowledged_only_after_the_handler_finished(self, nats_url: str) -> None:
        subject, durable = unique("ack"), unique("d")
        release, started, got = anyio.Event(), anyio.Event(), Counted()

        async def slow(event: LivePing) -> None:
            started.set()
            await release.wait()
            got(event)

        options: dict[str, Any] = {"jetstream": True, "fetch_timeout": 0.2}
        async with (
            NATSEventBridge(nats_url, subject, name=durable, **options) as consumer,
            NATSEventBridge(nats_url, subject, **options) as producer,
            raw_client(nats_url) as raw,
        ):
            js = raw.nc.jetstream()
            consumer.on(LivePing, slow)
            await producer.emit(LivePing(n=1))
            with anyio.fail_after(10):
                await started.wait()
            info = await raw.host.run(js.consumer_info, stream_name_for(subject), durable)
            assert info.num_ack_pending == 1
            release.set()
            await got.wait_for({1})

            async def acked() -> bool:
                info = await raw.host.run(js.consumer_info, stream_name_for(subject), durable)
                return info.num_ack_pending == 0 and info.num_pending == 0

            await eventually(acked)
            stored = await raw.host.run(js.get_msg, stream_name_for(subject), 1)
            assert json.loads(stored.data)["n"] == 1

    async def test_slow_consumer_leaves_the_rest_in_jetstream(self, nats_url: str) -> None:
        subject, durable = unique("slow"), unique("d")
        options: dict[str, Any] = {"jetstream": True, "fetch_timeout": 0.1, "batch": 4, "buffer": 4}
        async with raw_client(nats_url) as raw:
            js = raw.nc.jetstream()

            async def delivered_unacked() -> int:
                info = await raw.host.run(js.consumer_info, stream_name_for(subject), durable)
                return int(info.num_ack_pending)

            highest = await pushes_back(
                lambda: NATSEventBridge(nats_url, subject, name=durable, inbound_buffer=2, **options),
                lambda: NATSEventBridge(nats_url, subject, **options),
                delivered_unacked,
            )
        assert 0 < highest <= 2 + 2 * 4  # in flight + the batch being handed over + one fetched ahead

    async def test_unfinished_event_is_redelivered_to_the_next_consumer(self, nats_url: str) -> None:
        subject, durable = unique("crash"), unique("d")
        options: dict[str, Any] = {"jetstream": True, "fetch_timeout": 0.2, "ack_wait": 1.0}
        await redelivered_after_crash(
            lambda: NATSEventBridge(nats_url, subject, name=durable, **options),
            lambda: NATSEventBridge(nats_url, subject, **options),
        )

    async def test_broker_restart_mid_stream_loses_nothing_and_repeats_nothing(
        self, private_server: Callable[[str], servers.Server]
    ) -> None:
        server, subject, durable = private_server("nats"), unique("durable"), unique("d")
        options: dict[str, Any] = {
            "jetstream": True,
            "fetch_timeout": 0.2,
            "ack_wait": 2.0,
            "send_timeout": 20.0,
        }
        await restart_mid_stream(
            server,
            lambda: NATSEventBridge(server.url, subject, name=durable, **options),
            lambda: NATSEventBridge(server.url, subject, **options),
        )
