"""The bridge logic, tested once over the in-memory transport: wiring, decoding, loop prevention, dedupe,
acknowledge-after-finish, redelivery, reconnect and backpressure."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from typing import Any

import anyio
import pytest
from _interop import INTEROP
from peer import Collector, Ping

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.bridges import (
    BridgeConnectError,
    BridgeNotRunningError,
    BridgeSendError,
    Delivery,
    EventBridge,
    MemoryHub,
    MemoryTransport,
    Transport,
)

pytestmark = pytest.mark.anyio


class Greeting(BaseEvent[str]):
    text: str


def ping_json(n: int, **extra: Any) -> bytes:
    return Ping(n=n, **extra).to_json().encode()


class TestWiring:
    async def test_memory_transport_satisfies_the_protocol(self) -> None:
        a, _ = MemoryTransport.pair()
        assert isinstance(a, Transport)

    async def test_event_crosses_with_payload_and_path(self) -> None:
        ta, tb = MemoryTransport.pair()
        got = Collector()
        async with (
            EventBus("A") as bus_a,
            EventBus("B") as bus_b,
            EventBridge(ta) as ba,
            EventBridge(tb) as bb,
        ):
            bus_a.on("*", ba.emit)
            bb.on("*", bus_b.emit)
            bus_b.on(Ping, got)
            bus_a.emit(Ping(n=7))
            [event] = await got.wait_for(1)
        assert isinstance(event, Ping)
        assert event.n == 7
        assert event.event_path[0] == bus_a.label
        assert event.event_path[-1] == bus_b.label

    async def test_inbound_event_is_reset_new_id_pending(self) -> None:
        ta, tb = MemoryTransport.pair()
        got = Collector()
        async with EventBridge(ta) as ba, EventBridge(tb) as bb:
            bb.on("*", got)
            original = Ping(n=1)
            await ba.emit(original)
            [event] = await got.wait_for(1)
        assert event.event_id != original.event_id
        assert event.event_results and all(
            r.handler.eventbus_name == bb.name for r in event.event_results.values()
        )

    async def test_emit_returns_event_outside_handler_and_none_inside(self) -> None:
        ta, tb = MemoryTransport.pair()
        inside: list[object] = []
        async with EventBus("Src") as bus, EventBridge(ta) as ba, EventBridge(tb) as bb:
            got = Collector()
            bb.on("*", got)
            event = Ping(n=1)
            assert await ba.emit(event) is event

            async def forward(e: BaseEvent[Any]) -> None:
                inside.append(await ba.emit(e))

            bus.on(Ping, forward)
            await bus.emit(Ping(n=2))
            await got.wait_for(2)
        assert inside == [None]

    async def test_emit_outside_the_block_raises_named_error(self) -> None:
        ta, _ = MemoryTransport.pair()
        bridge = EventBridge(ta)
        with pytest.raises(BridgeNotRunningError, match="new"):
            await bridge.emit(Ping(n=1))
        async with bridge:
            pass
        with pytest.raises(BridgeNotRunningError, match="closed"):
            await bridge.emit(Ping(n=1))
        with pytest.raises(RuntimeError, match="runs once"):
            async with bridge:
                pass

    async def test_default_name_and_inbound_bus(self) -> None:
        bridge = EventBridge(MemoryTransport.pair()[0])
        assert re.fullmatch(r"EventBridge_[0-9a-f]{8}", bridge.name)
        assert bridge.inbound_bus.name == bridge.name
        assert bridge.inbound_bus.max_history_size == 0

    async def test_registered_subclass_decodes_to_it(self) -> None:
        ta, tb = MemoryTransport.pair()
        got = Collector()
        async with EventBridge(ta) as ba, EventBridge(tb) as bb:
            bb.on(Greeting, got)
            await ba.emit(Greeting(text="hi"))
            [event] = await got.wait_for(1)
        assert type(event) is Greeting
        assert event.text == "hi"

    async def test_unknown_type_arrives_as_generic_event(self) -> None:
        hub = MemoryHub()
        got = Collector()
        async with EventBridge(hub.transport()) as bridge:
            bridge.on("Unheard", got)
            await hub.inject(b'{"event_type": "Unheard", "colour": "teal"}')
            [event] = await got.wait_for(1)
        assert event.event_type == "Unheard"
        assert event.colour == "teal"  # type: ignore[attr-defined]

    @pytest.mark.parametrize("runtime", ["py-2.3.2", "ts-2.3.2"])
    async def test_upstream_written_events_are_accepted(self, runtime: str) -> None:
        bodies = [json.loads(p.read_text()) for p in sorted((INTEROP / runtime).glob("fresh_*.json"))]
        assert bodies
        hub = MemoryHub()
        got = Collector()
        async with EventBridge(hub.transport()) as bridge:
            bridge.on("*", got)
            for body in bodies:
                await hub.inject(json.dumps(body, separators=(",", ":")).encode())
            events = await got.wait_for(len(bodies))
        # (one of them sets its own concurrency options, so arrival order is not handling order)
        assert sorted(e.event_type for e in events) == sorted(b["event_type"] for b in bodies)
        assert bridge.statistics().decode_errors == 0


class TestLoops:
    async def test_both_directions_wired_on_a_shared_channel_ends(self) -> None:
        """A shared channel (like one JSONL file) echoes every message to its sender too; the original and
        one echo from the other side is all that is ever sent."""
        hub = MemoryHub(echo=True)
        on_a, on_b = Collector(), Collector()
        async with (
            EventBus("A") as bus_a,
            EventBus("B") as bus_b,
            EventBridge(hub.transport()) as ba,
            EventBridge(hub.transport()) as bb,
        ):
            for bus, bridge in ((bus_a, ba), (bus_b, bb)):
                bus.on("*", bridge.emit)
                bridge.on("*", bus.emit)
            bus_a.on(Ping, on_a)
            bus_b.on(Ping, on_b)
            bus_a.emit(Ping(n=1))
            await on_b.wait_for(1)
            for _ in range(3):  # every queued echo has been read and handled
                await anyio.wait_all_tasks_blocked()
                await bus_a.wait_until_idle()
                await bus_b.wait_until_idle()
        assert len(on_a.events) == 1
        assert len(on_b.events) == 1
        assert hub.sent == 2

    async def test_three_processes_on_a_shared_channel_handle_each_event_once(self) -> None:
        """Every hop resets the id, so the echoes B and C send back are new messages; the event's own
        identity (type, creation time, first bus) still shows they are copies."""
        hub = MemoryHub(echo=True)
        buses = [EventBus(name) for name in "ABC"]
        bridges = [EventBridge(hub.transport()) for _ in buses]
        got = {bus.name: Collector() for bus in buses}
        async with buses[0], buses[1], buses[2], bridges[0], bridges[1], bridges[2]:
            for bus, bridge in zip(buses, bridges, strict=True):
                bus.on("*", bridge.emit)
                bridge.on("*", bus.emit)
                bus.on(Ping, got[bus.name])
            buses[0].emit(Ping(n=1))
            await got["B"].wait_for(1)
            await got["C"].wait_for(1)
            for _ in range(3):
                await anyio.wait_all_tasks_blocked()
                for bus in buses:
                    await bus.wait_until_idle()
        assert {name: len(c.events) for name, c in got.items()} == {"A": 1, "B": 1, "C": 1}
        assert hub.sent == 3  # the original, and one echo each from B and C
        # each bridge reads all 3 messages: the first is the event, the other two are copies of it
        assert [b.statistics().duplicates for b in bridges] == [2, 2, 2]


class TestBadInput:
    async def test_bad_messages_are_logged_named_and_skipped(self, caplog: pytest.LogCaptureFixture) -> None:
        hub = MemoryHub()
        got = Collector()
        caplog.set_level(logging.WARNING, logger="bubus.bridges")
        async with EventBridge(hub.transport()) as bridge:
            bridge.on("*", got)
            for bad in (
                b"not json",
                b"[1, 2]",
                b'{"event_type": 5}',
                b'{"event_type": "Ping", "n": "3"}',
                b"",
                b'{"event_type": "Ping", "n": 1, "event_id": 5}',
            ):
                await hub.inject(bad)
            await hub.inject(ping_json(9))
            [event] = await got.wait_for(1)
        assert isinstance(event, Ping)
        assert event.n == 9
        assert bridge.statistics().decode_errors == 6
        messages = [r.getMessage() for r in caplog.records if r.name == "bubus.bridges"]
        assert len(messages) == 6
        assert all("BridgeDecodeError" in m for m in messages)
        assert "not JSON" in messages[0]
        assert "not a JSON object but list" in messages[1]
        assert "Ping.n" in messages[3]
        assert "event_id: expected a non-empty string, got 5" in messages[5]

    async def test_handler_error_does_not_stop_the_reader(self) -> None:
        hub = MemoryHub()
        got = Collector()

        def boom(event: BaseEvent[Any]) -> None:
            raise ValueError("handler failed")

        async with EventBridge(hub.transport()) as bridge:
            bridge.on(Ping, boom)
            bridge.on(Ping, got)
            await hub.inject(ping_json(1))
            await hub.inject(ping_json(2))
            events = await got.wait_for(2)
        assert [e.n for e in events] == [1, 2]  # type: ignore[attr-defined]


class TestDedupe:
    async def test_same_event_id_twice_is_handled_once(self) -> None:
        hub = MemoryHub()
        got = Collector()
        body = ping_json(1)
        async with EventBridge(hub.transport()) as bridge:
            bridge.on("*", got)
            await hub.inject(body)
            await hub.inject(body)
            await hub.inject(ping_json(2))
            await got.wait_for(2)
            await anyio.wait_all_tasks_blocked()
        assert [e.n for e in got.events] == [1, 2]  # type: ignore[attr-defined]
        assert bridge.statistics().duplicates == 1

    async def test_window_is_bounded(self) -> None:
        hub = MemoryHub()
        got = Collector()
        first = ping_json(0)
        async with EventBridge(hub.transport(), dedupe_window=2) as bridge:
            bridge.on("*", got)
            await hub.inject(first)
            await hub.inject(ping_json(1))
            await hub.inject(ping_json(2))  # pushes the first id out of the window
            await hub.inject(first)
            await got.wait_for(4)
        assert bridge.statistics().duplicates == 0

    async def test_zero_window_turns_dedupe_off(self) -> None:
        hub = MemoryHub()
        got = Collector()
        async with EventBridge(hub.transport(), dedupe_window=0) as bridge:
            bridge.on("*", got)
            await hub.inject(ping_json(1))
            await hub.inject(hub_body := ping_json(2))
            await hub.inject(hub_body)
            await got.wait_for(3)

    async def test_invalid_options(self) -> None:
        t = MemoryTransport.pair()[0]
        with pytest.raises(ValueError, match="inbound_buffer"):
            EventBridge(t, inbound_buffer=0)
        with pytest.raises(ValueError, match="dedupe_window"):
            EventBridge(t, dedupe_window=-1)


class TestDurable:
    async def test_ack_only_after_the_inbound_event_finished(self) -> None:
        hub = MemoryHub(durable=True)
        release = anyio.Event()
        started = anyio.Event()

        async def slow(event: BaseEvent[Any]) -> None:
            started.set()
            await release.wait()

        async with EventBus("Target") as target, EventBridge(hub.transport("c")) as bridge:
            bridge.on("*", target.emit)
            target.on(Ping, slow)  # the forwarded event finishes only when the target's handler has
            await hub.inject(ping_json(1))
            await started.wait()
            await anyio.wait_all_tasks_blocked()
            assert hub.waiting("c") == 1
            assert bridge.statistics().acked == 0
            release.set()
            await target.wait_until_idle()
            await anyio.wait_all_tasks_blocked()
            assert hub.waiting("c") == 0
            assert bridge.statistics().acked == 1

    async def test_unacked_message_is_redelivered_after_a_crash(self) -> None:
        hub = MemoryHub(durable=True)
        started = anyio.Event()

        async def stuck(event: BaseEvent[Any]) -> None:
            started.set()
            await anyio.sleep_forever()

        with anyio.CancelScope() as crash:
            async with EventBridge(hub.transport("worker")) as first:
                first.on(Ping, stuck)
                await hub.inject(ping_json(5))
                await started.wait()
                crash.cancel()
        assert hub.waiting("worker") == 1

        got = Collector()
        second_transport = hub.transport("worker")
        redelivered: list[bool] = []
        receive = second_transport.receive

        async def spy() -> Any:
            async for delivery in receive():
                redelivered.append(delivery.redelivered)
                yield delivery

        second_transport.receive = spy  # type: ignore[method-assign]
        async with EventBridge(second_transport) as second:
            second.on(Ping, got)
            [event] = await got.wait_for(1)
            await anyio.wait_all_tasks_blocked()
        assert event.n == 5  # type: ignore[attr-defined]
        assert redelivered == [True]
        assert hub.waiting("worker") == 0

    async def test_redelivery_after_reconnect_is_deduped_and_acked_once_finished(self) -> None:
        hub = MemoryHub(durable=True)
        release = anyio.Event()
        got = Collector()

        async def gate(event: BaseEvent[Any]) -> None:
            await release.wait()

        transport = hub.transport("c")
        async with EventBridge(transport) as bridge:
            bridge.on(Ping, got)
            bridge.on(Ping, gate)
            await hub.inject(ping_json(1))
            await got.wait_for(1)
            transport.disconnect()  # the unacked message comes back on reconnect
            await transport.wait_connected()
            await anyio.wait_all_tasks_blocked()
            assert bridge.statistics().duplicates == 1
            assert hub.waiting("c") == 1
            release.set()
            await anyio.wait_all_tasks_blocked()
            assert hub.waiting("c") == 0
        assert len(got.events) == 1
        assert transport.reconnects == 1

    async def test_bad_message_on_a_durable_channel_is_acked(self) -> None:
        hub = MemoryHub(durable=True)
        async with EventBridge(hub.transport("c")) as bridge:
            bridge.on("*", Collector())
            await hub.inject(b"{broken")
            await anyio.wait_all_tasks_blocked()
            assert bridge.statistics().decode_errors == 1
            assert hub.waiting("c") == 0


class TestReconnect:
    @pytest.mark.parametrize("durable", [False, True])
    async def test_receiver_reconnects_by_itself(self, durable: bool) -> None:
        hub = MemoryHub(durable=durable)
        got = Collector()
        sender, receiver = hub.transport("s"), hub.transport("r")
        async with EventBridge(sender) as out, EventBridge(receiver) as bridge:
            bridge.on(Ping, got)
            hub.down = True
            receiver.disconnect()
            await out.emit(Ping(n=1))  # sent during the outage
            hub.down = False
            await receiver.wait_connected()
            await out.emit(Ping(n=2))
            await got.wait_for(2 if durable else 1)
            await anyio.wait_all_tasks_blocked()
        expected = [1, 2] if durable else [2]  # at-most-once loses what was sent while away
        assert [e.n for e in got.events] == expected  # type: ignore[attr-defined]
        assert receiver.reconnects == 1


class TestBackpressure:
    async def test_slow_consumer_bounds_memory_and_blocks_the_sender(self) -> None:
        ta, tb = MemoryTransport.pair(buffer=2)
        release = anyio.Event()
        got = Collector()
        sent: list[int] = []

        async def slow(event: BaseEvent[Any]) -> None:
            await release.wait()
            got(event)

        async def produce(out: EventBridge) -> None:
            for n in range(20):
                await out.emit(Ping(n=n))
                sent.append(n)

        async with EventBridge(ta) as out, EventBridge(tb, inbound_buffer=3) as bridge:
            bridge.on(Ping, slow)
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce, out)
                await anyio.wait_all_tasks_blocked()
                stats = bridge.statistics()
                # at most inbound_buffer unfinished inbound events, plus what the transport buffers
                assert stats.unfinished == 3
                assert len(sent) <= 3 + 2 + 1
                assert len(sent) < 20
                release.set()
            await got.wait_for(20)
        assert [e.n for e in got.events] == list(range(20))  # type: ignore[attr-defined]

    async def test_send_times_out_with_named_error_when_peer_never_reads(self) -> None:
        hub = MemoryHub(echo=False, buffer=1, send_timeout=0.05)
        stalled = hub.transport("stalled")
        await stalled.connect()  # attached, but nobody reads
        async with EventBridge(hub.transport("s")) as out:
            await out.emit(Ping(n=1))
            with pytest.raises(BridgeSendError, match=r"send_timeout=0\.05"):
                await out.emit(Ping(n=2))
        await stalled.aclose()


class TestLifecycle:
    async def test_reads_only_once_it_has_an_inbound_handler(self) -> None:
        hub = MemoryHub()
        got = Collector()
        async with EventBridge(hub.transport()) as bridge:
            await hub.inject(ping_json(1))
            await anyio.wait_all_tasks_blocked()
            assert bridge.statistics().received == 0
            bridge.on(Ping, got)
            await got.wait_for(1)

    async def test_handlers_registered_before_entering_start_the_reader(self) -> None:
        hub = MemoryHub()
        got = Collector()
        bridge = EventBridge(hub.transport())
        bridge.on(Ping, got)
        async with bridge:
            await hub.inject(ping_json(1))
            await got.wait_for(1)

    async def test_run_in_a_task_group(self) -> None:
        ta, tb = MemoryTransport.pair()
        got = Collector()
        async with anyio.create_task_group() as tg, EventBridge(tb) as bb:
            bb.on("*", got)
            out = EventBridge(ta)
            await tg.start(out.run)
            assert out.is_running
            await out.emit(Ping(n=1))
            await got.wait_for(1)
            tg.cancel_scope.cancel()
        assert not out.is_running

    async def test_body_exception_propagates_unchanged_and_closes(self) -> None:
        ta, _ = MemoryTransport.pair()
        bridge = EventBridge(ta)
        with pytest.raises(KeyError):
            async with bridge:
                raise KeyError("body")
        assert not bridge.is_running

    async def test_connect_error_leaves_the_bridge_closed(self) -> None:
        hub = MemoryHub()
        hub.down = True
        bridge = EventBridge(hub.transport())
        with pytest.raises(BridgeConnectError, match="down"):
            async with bridge:
                pass
        with pytest.raises(BridgeNotRunningError, match="closed"):
            await bridge.emit(Ping(n=1))

    async def test_deliveries_are_plain_values(self) -> None:
        d = Delivery(b"{}")
        assert d.ack is None
        assert d.redelivered is False


def test_importing_bridges_does_not_import_optional_clients() -> None:
    code = (
        "import sys, bubus_anyio.bridges as b\n"
        "heavy = {'httpx', 'hypercorn', 'coredis', 'redis', 'nats', 'asyncpg'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert 'JSONLEventBridge' in dir(b)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unknown_attribute_is_an_attribute_error() -> None:
    import bubus_anyio.bridges as bridges

    with pytest.raises(AttributeError, match="NoSuchBridge"):
        bridges.NoSuchBridge  # type: ignore[attr-defined]  # noqa: B018
