"""Trace context across bridges: OtelTracingMiddleware on both sides, EventBridge(propagator=...), a real
OpenTelemetry SDK on each side (two tracer providers, as two processes would have), no mocks.

The sender's span for the bridged event is the parent of the receiver's span for its copy, in one trace,
over every transport with a metadata channel (memory twin, HTTP, NATS core and JetStream, Redis Streams);
over one without (JSONL) the copy starts a trace of its own and nothing else changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from _live import unique
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.bridges import (
    Delivery,
    EventBridge,
    HTTPEventBridge,
    JSONLEventBridge,
    MemoryHub,
    MemoryTransport,
    NATSEventBridge,
    RedisEventBridge,
    TracePropagator,
)
from bubus_anyio.bridges._transport import headers_from_json
from bubus_anyio.middlewares import OtelTracingMiddleware

pytestmark = pytest.mark.anyio

Propagator = TracePropagator | None
# propagator of the sending side, of the receiving side -> (sending bridge, receiving bridge), entered
Hop = Callable[[Propagator, Propagator], AbstractAsyncContextManager[tuple[EventBridge, EventBridge]]]


class TraceCheckout(BaseEvent[None]):
    order_id: str = ""


class TraceShip(BaseEvent[str]):
    order_id: str = ""


class Side:
    """One process's tracing: its own provider and exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = OtelTracingMiddleware(tracer_provider=provider)

    def only(self, name: str) -> ReadableSpan:
        spans = [s for s in self.exporter.get_finished_spans() if s.name == name]
        assert len(spans) == 1, (name, [s.name for s in self.exporter.get_finished_spans()])
        (span,) = spans
        return span


@pytest.fixture
def sides() -> Iterator[tuple[Side, Side]]:
    here, there = Side(), Side()
    yield here, there
    here.exporter.shutdown()
    there.exporter.shutdown()


async def traced_hop(hop: Hop, here: Side, there: Side, *, propagate: bool = True) -> None:
    """Bus A's handler for TraceCheckout emits TraceShip, which A's bridge sends; B gets it from its bridge."""
    shipped = anyio.Event()

    def ship_handler(event: TraceShip) -> str:
        shipped.set()
        return f"shipped:{event.order_id}"

    async def checkout(event: TraceCheckout) -> None:
        await bus_a.emit(TraceShip(order_id=event.order_id))

    out_propagator = here.tracing.bridge_propagator() if propagate else None
    in_propagator = there.tracing.bridge_propagator() if propagate else None
    async with (
        EventBus("TraceA", middlewares=[here.tracing]) as bus_a,
        EventBus("TraceB", middlewares=[there.tracing]) as bus_b,
        hop(out_propagator, in_propagator) as (out, into),
    ):
        bus_a.on(TraceCheckout, checkout)
        bus_a.on(TraceShip, out.emit)
        into.on("*", bus_b.emit)
        bus_b.on(TraceShip, ship_handler)
        await bus_a.emit(TraceCheckout(order_id="o-1"))
        with anyio.fail_after(15):
            await shipped.wait()
        await bus_b.wait_until_idle()


def assert_one_trace(here: Side, there: Side) -> None:
    """B's span for the copy is the child of A's span for the event (what carrier() injects), same trace."""
    sent = here.only("bubus.event.TraceShip")
    emitting_handler = here.only("bubus.handler.test_trace_context.checkout")
    got = there.only("bubus.event.TraceShip")
    assert sent.context is not None and got.context is not None and emitting_handler.context is not None
    assert sent.parent is not None and sent.parent.span_id == emitting_handler.context.span_id
    assert got.context.trace_id == sent.context.trace_id
    assert got.parent is not None and got.parent.is_remote
    assert got.parent.span_id == sent.context.span_id
    assert got.parent.trace_id == sent.context.trace_id
    # and B's handler span hangs under B's event span, in the same trace
    handled = there.only("bubus.handler.test_trace_context.ship_handler")
    assert handled.parent is not None and handled.parent.span_id == got.context.span_id
    assert handled.context is not None and handled.context.trace_id == sent.context.trace_id


def assert_new_trace(here: Side, there: Side) -> None:
    sent = here.only("bubus.event.TraceShip")
    got = there.only("bubus.event.TraceShip")
    assert sent.context is not None and got.context is not None
    assert got.parent is None
    assert got.context.trace_id != sent.context.trace_id


# ------------------------------------------------------------------------------------------------ hops
def memory_hop(hub: MemoryHub | None = None) -> Hop:
    @asynccontextmanager
    async def hop(out_p: Propagator, in_p: Propagator) -> AsyncIterator[tuple[EventBridge, EventBridge]]:
        left, right = MemoryTransport.pair() if hub is None else (hub.transport(), hub.transport())
        async with EventBridge(left, propagator=out_p) as out, EventBridge(right, propagator=in_p) as into:
            yield out, into

    return hop


@asynccontextmanager
async def http_hop(out_p: Propagator, in_p: Propagator) -> AsyncIterator[tuple[EventBridge, EventBridge]]:
    receiver = HTTPEventBridge(listen_on="http://127.0.0.1:0/trace", propagator=in_p)
    receiver.on("*", lambda event: None)  # listening once `async with` returns, so its URL is known
    async with receiver:
        assert receiver.http.listening_url is not None
        async with HTTPEventBridge(send_to=receiver.http.listening_url, propagator=out_p) as sender:
            yield sender, receiver


def server_hop(make: Callable[..., EventBridge]) -> Hop:
    @asynccontextmanager
    async def hop(out_p: Propagator, in_p: Propagator) -> AsyncIterator[tuple[EventBridge, EventBridge]]:
        async with make(propagator=in_p) as into, make(propagator=out_p) as out:
            yield out, into

    return hop


# ------------------------------------------------------------------------------------------------ tests
class TestMemoryTwin:
    async def test_the_receivers_span_is_the_child_of_the_senders(self, sides: tuple[Side, Side]) -> None:
        await traced_hop(memory_hop(), *sides)
        assert_one_trace(*sides)

    async def test_without_a_propagator_the_copy_starts_its_own_trace(self, sides: tuple[Side, Side]) -> None:
        await traced_hop(memory_hop(), *sides, propagate=False)
        assert_new_trace(*sides)

    async def test_a_durable_redelivery_keeps_its_headers(self) -> None:
        hub = MemoryHub(durable=True)
        first = hub.transport("c")
        await first.connect()
        await hub.transport("sender").send(b'{"event_type":"X"}', {"traceparent": "tp", "tracestate": "ts"})
        seen: list[Delivery] = []
        async with aclosing(first.receive()) as deliveries:
            seen.append(await anext(deliveries))
        await first.aclose()  # never acknowledged: the next holder of "c" gets it again
        second = hub.transport("c")
        await second.connect()
        async with aclosing(second.receive()) as deliveries:
            seen.append(await anext(deliveries))
        await second.aclose()
        assert [(d.redelivered, dict(d.headers)) for d in seen] == [
            (False, {"traceparent": "tp", "tracestate": "ts"}),
            (True, {"traceparent": "tp", "tracestate": "ts"}),
        ]
        with pytest.raises(TypeError):
            seen[0].headers["traceparent"] = "changed"  # type: ignore[index]

    async def test_the_propagator_sees_the_new_local_event_before_the_inbound_bus(self) -> None:
        class Recorder:
            def __init__(self) -> None:
                self.extracted: list[tuple[str, str, dict[str, str]]] = []

            def inject(self, event: BaseEvent[Any]) -> Mapping[str, str]:
                return {"traceparent": f"for-{event.event_id}"}

            def extract(self, event: BaseEvent[Any], headers: Mapping[str, str]) -> None:
                self.extracted.append((event.event_id, event.event_status, dict(headers)))

        recorder = Recorder()
        assert isinstance(recorder, TracePropagator)
        got: list[BaseEvent[Any]] = []
        left, right = MemoryTransport.pair()
        async with (
            EventBridge(left, propagator=recorder) as out,
            EventBridge(right, propagator=recorder) as into,
        ):
            arrived = anyio.Event()
            into.on("*", lambda event: (got.append(event), arrived.set()))
            sent = await out.emit(TraceShip(order_id="o-2"))
            with anyio.fail_after(5):
                await arrived.wait()
        assert sent is not None
        ((local_id, status, headers),) = recorder.extracted
        assert local_id == got[0].event_id != sent.event_id  # the reset copy, not the wire id
        assert status == "pending"  # not emitted yet
        assert headers == {"traceparent": f"for-{sent.event_id}"}


class TestHTTP:
    async def test_request_headers_carry_the_trace(self, sides: tuple[Side, Side]) -> None:
        await traced_hop(http_hop, *sides)
        assert_one_trace(*sides)


class TestWithoutHeaders:
    async def test_jsonl_carries_no_headers_so_the_copy_starts_a_new_trace(
        self, sides: tuple[Side, Side], tmp_path: Path
    ) -> None:
        path = tmp_path / "trace.jsonl"
        hop = server_hop(lambda **o: JSONLEventBridge(path, poll_interval=0.01, **o))
        await traced_hop(hop, *sides)
        assert_new_trace(*sides)
        assert b"traceparent" not in path.read_bytes()  # the event JSON never gains a key


class TestServers:
    async def test_nats_core_message_headers(self, sides: tuple[Side, Side], nats_url: str) -> None:
        subject = unique("trace")
        await traced_hop(server_hop(lambda **o: NATSEventBridge(nats_url, subject, **o)), *sides)
        assert_one_trace(*sides)

    async def test_nats_jetstream_message_headers(self, sides: tuple[Side, Side], nats_url: str) -> None:
        subject = unique("trace_js")
        await traced_hop(
            server_hop(lambda **o: NATSEventBridge(nats_url, subject, jetstream=True, ack_wait=5, **o)),
            *sides,
        )
        assert_one_trace(*sides)

    async def test_redis_stream_entry_field(self, sides: tuple[Side, Side], redis_url: str) -> None:
        channel = unique("trace")
        await traced_hop(
            server_hop(lambda **o: RedisEventBridge(redis_url, channel, mode="stream", block=0.1, **o)),
            *sides,
        )
        assert_one_trace(*sides)

    async def test_redis_pubsub_carries_no_headers_so_the_copy_starts_a_new_trace(
        self, sides: tuple[Side, Side], redis_url: str
    ) -> None:
        channel = unique("trace_ps")
        await traced_hop(server_hop(lambda **o: RedisEventBridge(redis_url, channel, **o)), *sides)
        assert_new_trace(*sides)


class TestBadTraceContext:
    def test_an_unreadable_headers_field_is_logged_and_ignored(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        assert headers_from_json(None) == {}
        assert headers_from_json(b'{"traceparent":"00-ab-cd-01"}') == {"traceparent": "00-ab-cd-01"}
        for bad in (b"not json", b"[1]", b'{"traceparent":1}'):
            with caplog.at_level("WARNING", logger="bubus.bridges"):
                caplog.clear()
                assert headers_from_json(bad) == {}
            assert "unreadable message headers" in caplog.text and repr(bad) in caplog.text

    async def test_a_failing_extract_is_logged_and_the_event_still_arrives(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Broken:
            def inject(self, event: BaseEvent[Any]) -> Mapping[str, str]:
                return {"traceparent": "x"}

            def extract(self, event: BaseEvent[Any], headers: Mapping[str, str]) -> None:
                raise RuntimeError("bad tracer")

        left, right = MemoryTransport.pair()
        arrived = anyio.Event()
        with caplog.at_level("WARNING", logger="bubus.bridges"):
            async with (
                EventBridge(left, propagator=Broken()) as out,
                EventBridge(right, propagator=Broken()) as into,
            ):
                into.on(TraceShip, lambda event: arrived.set())
                await out.emit(TraceShip(order_id="o-3"))
                with anyio.fail_after(5):
                    await arrived.wait()
        assert "propagator.extract failed" in caplog.text and "bad tracer" in caplog.text
