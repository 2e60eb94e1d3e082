"""OpenTelemetry tracing, asserted on a real SDK with an in-memory exporter: the span tree across handlers,
children and buses, upstream's and the messaging conventions' attributes, errors and timeouts, and the
trace context carried to another "process"."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.middlewares import OtelNotInstalledError, OtelTracingMiddleware

pytestmark = pytest.mark.anyio


class OtelCheckout(BaseEvent[str]):
    order_id: str = ""


class OtelReserve(BaseEvent[str]):
    order_id: str = ""


def otel_reserve(event: OtelReserve) -> str:
    return f"reserved:{event.order_id}"


def otel_fail(event: OtelCheckout) -> str:
    raise ValueError("card declined")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


def make_tracing(exporter: InMemorySpanExporter) -> OtelTracingMiddleware:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTracingMiddleware(tracer_provider=provider)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


class TestSpanTree:
    async def test_event_handler_child_and_its_handler_form_one_tree(
        self, exporter: InMemorySpanExporter
    ) -> None:
        tracing = make_tracing(exporter)
        async with EventBus("OtelTree", middlewares=[tracing]) as bus:

            async def otel_checkout(event: OtelCheckout) -> str:
                return await (await bus.emit(OtelReserve(order_id=event.order_id))).event_result() or ""

            bus.on(OtelCheckout, otel_checkout)
            bus.on(OtelReserve, otel_reserve)
            root = await bus.emit(OtelCheckout(order_id="o1"))
        spans = exporter.get_finished_spans()
        assert len(spans) == 4
        (checkout,) = by_name(spans, "bubus.event.OtelCheckout")
        (handler,) = [
            s for s in spans if s.name.startswith("bubus.handler.") and s.name.endswith("otel_checkout")
        ]
        (reserve,) = by_name(spans, "bubus.event.OtelReserve")
        (reserve_handler,) = [s for s in spans if s.name.endswith("otel_reserve")]
        assert parent_of(checkout) is None
        assert parent_of(handler) == span_id(checkout)
        assert parent_of(reserve) == span_id(handler)  # the child hangs under the handler that emitted it
        assert parent_of(reserve_handler) == span_id(reserve)
        assert len({s.context.trace_id for s in spans if s.context is not None}) == 1
        assert checkout.kind is SpanKind.PRODUCER and handler.kind is SpanKind.CONSUMER
        attrs = dict(checkout.attributes or {})
        assert attrs["bubus.kind"] == "event" and attrs["bubus.event_id"] == root.event_id
        assert attrs["bubus.event_type"] == "OtelCheckout"
        assert attrs["bubus.bus_id"] == bus.id and attrs["bubus.bus_name"] == bus.label
        assert attrs["messaging.system"] == "bubus"
        assert attrs["messaging.destination.name"] == bus.name
        assert attrs["messaging.message.id"] == root.event_id
        assert attrs["messaging.operation.type"] == "send"
        hattrs = dict(handler.attributes or {})
        assert hattrs["bubus.kind"] == "handler" and hattrs["messaging.operation.type"] == "process"
        assert hattrs["bubus.handler_name"].endswith("otel_checkout")
        assert dict(reserve.attributes or {})["bubus.event_parent_id"] == root.event_id

    async def test_span_times_are_the_events_own_timestamps(self, exporter: InMemorySpanExporter) -> None:
        tracing = make_tracing(exporter)
        async with EventBus("OtelTimes", middlewares=[tracing]) as bus:
            bus.on(OtelReserve, otel_reserve)
            event = await bus.emit(OtelReserve())
        (span,) = by_name(exporter.get_finished_spans(), "bubus.event.OtelReserve")
        assert event.event_started_at is not None and event.event_completed_at is not None
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time % 1_000_000_000 == int(event.event_started_at[20:29])
        assert span.end_time % 1_000_000_000 == int(event.event_completed_at[20:29])

    async def test_a_forwarded_event_is_one_span_with_each_buses_handlers(
        self, exporter: InMemorySpanExporter
    ) -> None:
        tracing = make_tracing(exporter)
        async with (
            EventBus("OtelFwdA", middlewares=[tracing]) as a,
            EventBus("OtelFwdB", middlewares=[tracing]) as b,
        ):
            a.on("*", b.emit)
            b.on(OtelReserve, otel_reserve)
            await a.emit(OtelReserve())
            await a.wait_until_idle()
            await b.wait_until_idle()
        spans = exporter.get_finished_spans()
        (event_span,) = by_name(spans, "bubus.event.OtelReserve")
        handlers = [s for s in spans if s.name.startswith("bubus.handler.")]
        assert len(handlers) == 2
        assert {parent_of(s) for s in handlers} == {span_id(event_span)}
        assert {dict(s.attributes or {})["bubus.bus_name"] for s in handlers} == {a.label, b.label}

    async def test_a_child_emitted_on_another_bus_hangs_under_the_emitting_handler(
        self, exporter: InMemorySpanExporter
    ) -> None:
        tracing = make_tracing(exporter)
        async with (
            EventBus("OtelFront", middlewares=[tracing]) as front,
            EventBus("OtelStock", middlewares=[tracing]) as stock,
        ):

            async def otel_front(event: OtelCheckout) -> str:
                reserved = await stock.emit(OtelReserve(order_id=event.order_id))
                return await reserved.event_result() or ""

            front.on(OtelCheckout, otel_front)
            stock.on(OtelReserve, otel_reserve)
            await front.emit(OtelCheckout(order_id="o2"))
            await stock.wait_until_idle()
        spans = exporter.get_finished_spans()
        (front_handler,) = [s for s in spans if s.name.endswith("otel_front")]
        (reserve,) = by_name(spans, "bubus.event.OtelReserve")
        assert parent_of(reserve) == span_id(front_handler)
        assert dict(reserve.attributes or {})["messaging.destination.name"] == stock.name
        assert len({s.context.trace_id for s in spans if s.context is not None}) == 1


class TestErrors:
    async def test_a_handler_error_is_recorded_on_both_spans(self, exporter: InMemorySpanExporter) -> None:
        tracing = make_tracing(exporter)
        async with EventBus("OtelErr", middlewares=[tracing]) as bus:
            bus.on(OtelCheckout, otel_fail)
            await bus.emit(OtelCheckout())
        spans = exporter.get_finished_spans()
        (handler,) = [s for s in spans if s.name.endswith("otel_fail")]
        (event_span,) = by_name(spans, "bubus.event.OtelCheckout")
        assert handler.status.status_code is StatusCode.ERROR
        assert "card declined" in (handler.status.description or "")
        assert [e.name for e in handler.events] == ["exception"]
        assert dict(handler.events[0].attributes or {})["exception.type"] == "ValueError"
        assert dict(handler.attributes or {})["error.type"] == "ValueError"
        assert event_span.status.status_code is StatusCode.ERROR

    async def test_a_timeout_is_recorded_as_such(self, exporter: InMemorySpanExporter) -> None:
        tracing = make_tracing(exporter)

        async def stuck(event: OtelCheckout) -> str:
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        async with EventBus("OtelTimeout", middlewares=[tracing]) as bus:
            bus.on(OtelCheckout, stuck)
            await bus.emit(OtelCheckout(event_handler_timeout=0.01))
        (handler,) = [s for s in exporter.get_finished_spans() if s.name.endswith("stuck")]
        attrs = dict(handler.attributes or {})
        assert attrs["bubus.timeout"] is True and attrs["error.type"] == "EventHandlerTimeoutError"
        assert handler.status.status_code is StatusCode.ERROR


class TestAcrossProcesses:
    async def test_the_trace_context_carries_over_with_the_events_json(self) -> None:
        here_spans, there_spans = InMemorySpanExporter(), InMemorySpanExporter()
        here, there = make_tracing(here_spans), make_tracing(there_spans)
        async with EventBus("OtelHere", middlewares=[here]) as bus:
            bus.on(OtelReserve, otel_reserve)
            sent = await bus.emit(OtelReserve(order_id="x"))
        carrier = here.carrier(sent)
        assert set(carrier) >= {"traceparent"}
        # The other process gets the event's JSON plus the carrier (a bridge's envelope would hold it).
        wire: dict[str, Any] = sent.to_dict()
        wire.update(event_status="pending", event_started_at=None, event_completed_at=None, event_path=[])
        copy = OtelReserve.from_json(wire)
        there.adopt(copy.event_id, carrier)
        async with EventBus("OtelThere", middlewares=[there]) as remote:
            remote.on(OtelReserve, otel_reserve)
            await remote.emit(copy)
        (local,) = by_name(here_spans.get_finished_spans(), "bubus.event.OtelReserve")
        (far,) = by_name(there_spans.get_finished_spans(), "bubus.event.OtelReserve")
        assert far.context is not None and local.context is not None
        assert far.context.trace_id == local.context.trace_id
        assert parent_of(far) == span_id(local)
        here_spans.shutdown()
        there_spans.shutdown()


def test_without_opentelemetry_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(OtelNotInstalledError, match=r"bubus-anyio\[otel\]"):
        OtelTracingMiddleware()
    assert issubclass(OtelNotInstalledError, ImportError)


def test_the_package_imports_without_opentelemetry() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import bubus_anyio.middlewares as mw\n"
        "assert 'opentelemetry' not in {m.split('.')[0] for m in sys.modules if sys.modules[m] is not None}\n"
        "try:\n    mw.OtelTracingMiddleware()\nexcept mw.OtelNotInstalledError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'bubus-anyio[otel]'" in done.stdout
