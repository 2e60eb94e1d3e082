"""OpenTelemetry tracing: a span per event, a child span per handler run, across buses and processes.

Span names and ``bubus.*`` attributes are upstream's (``bubus.event.{event_type}``, ``bubus.handler.{handler_name}``);
the OpenTelemetry messaging semantic conventions are added on top (``messaging.system='bubus'``,
``messaging.destination.name`` = the bus name, ``messaging.message.id`` = the event id,
``messaging.operation.type``/``.name``). An event span is a PRODUCER span (the event being sent to its
handlers), a handler span a CONSUMER span (``process``).

Hooks reach this middleware after the fact (they run off the hot path), so span times come from the
event's and row's own timestamps, not from when the hook ran. Spans are made on demand, parents first:
a child event's span is the child of the span of the handler that emitted it, even when that handler's
bus has not delivered its own hook yet; a forwarded event is one event, so it has one span, with the
handler spans of every bus it visited under it. Root events start a new trace unless a remote parent was
adopted for them (:meth:`OtelTracingMiddleware.adopt`, the receiving half of :meth:`carrier`).

``opentelemetry-api`` is imported only when the middleware is made; without it the constructor raises
:class:`OtelNotInstalledError` naming the ``bubus-anyio[otel]`` extra.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bubus_anyio import BaseEvent, EventBus, EventBusError, EventHandlerTimeoutError, EventResult

from ._protocol import EventBusMiddleware

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext, Tracer

__all__ = ["OtelBridgePropagator", "OtelNotInstalledError", "OtelTracingMiddleware"]


class OtelNotInstalledError(EventBusError, ImportError):
    """``opentelemetry-api`` is not installed: ``pip install 'bubus-anyio[otel]'``."""


def _load_trace_api() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise OtelNotInstalledError(
            "OtelTracingMiddleware needs opentelemetry-api, which is not installed; "
            "install the extra: pip install 'bubus-anyio[otel]'"
        ) from exc
    return trace


def _ns(stamp: str | None) -> int | None:
    """Nanoseconds since the epoch of a wire timestamp (``2026-01-02T03:04:05.123456789Z``)."""
    if not stamp:
        return None
    whole = dt.datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    fraction = stamp[20:-1] if len(stamp) > 20 else ""
    return int(whole.timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)


def _event_start(event: BaseEvent[Any]) -> int | None:
    """The event span's start: when it started, or when its first handler did if that was earlier (the
    engine may stamp the first row a moment before the event), so no handler span starts before it."""
    stamps = [row.started_at for row in event.event_results.values() if row.started_at]
    if event.event_started_at:
        stamps.append(event.event_started_at)
    return _ns(min(stamps)) if stamps else _ns(event.event_created_at)


class OtelTracingMiddleware(EventBusMiddleware):
    """Trace events and handler runs as OpenTelemetry spans.

    :param tracer: the tracer to use (default: ``trace.get_tracer("bubus_anyio")`` from ``tracer_provider``
        or the global provider)
    :param trace_api: the ``opentelemetry.trace`` module (upstream's parameter; for tests and shims)
    :param tracer_provider: where the default tracer comes from
    :param max_remembered: ended spans remembered (by event and handler) as parents for late children
    :raises OtelNotInstalledError: opentelemetry-api is missing
    """

    def __init__(
        self,
        tracer: Tracer | None = None,
        trace_api: Any = None,
        *,
        tracer_provider: Any = None,
        max_remembered: int = 10_000,
    ) -> None:
        trace = trace_api if trace_api is not None else _load_trace_api()
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace: Any = trace
        self._propagator = TraceContextTextMapPropagator()
        self.tracer: Tracer = tracer or trace.get_tracer("bubus_anyio", tracer_provider=tracer_provider)
        self.max_remembered = max_remembered
        self._open: dict[Any, Span] = {}
        self._ended: OrderedDict[Any, SpanContext] = OrderedDict()
        self._remote: OrderedDict[str, Context] = OrderedDict()

    # ------------------------------------------------------------------ span bookkeeping
    def _context_of(self, key: Any) -> Context | None:
        span = self._open.get(key)
        if span is not None:
            return self._trace.set_span_in_context(span)
        ended = self._ended.get(key)
        if ended is not None:
            return self._trace.set_span_in_context(self._trace.NonRecordingSpan(ended))
        return None

    def _end(self, key: Any, end_time: int | None) -> None:
        span = self._open.pop(key, None)
        if span is None:
            return
        span.end(end_time=end_time)
        self._ended[key] = span.get_span_context()
        while len(self._ended) > self.max_remembered:
            self._ended.popitem(last=False)

    def _event_context(self, bus: EventBus | None, event: BaseEvent[Any]) -> Context:
        key = event.event_id
        found = self._context_of(key)
        if found is not None:
            return found
        parent: Context | None = self._remote.pop(key, None)
        if parent is None and event.event_parent_id is not None:
            parent_event = event.event_parent
            handler_id = event.event_emitted_by_handler_id
            if parent_event is not None and handler_id is not None:
                row = next(
                    (r for r in parent_event.event_results.values() if r.handler_id == handler_id), None
                )
                if row is not None:
                    parent = self._handler_context(None, parent_event, row)
            if parent is None and handler_id is not None:
                parent = self._context_of((event.event_parent_id, handler_id))
            if parent is None:
                parent = self._context_of(event.event_parent_id)
        name = (
            bus.name if bus is not None else (event.event_path[0].split("#")[0] if event.event_path else "")
        )
        attributes: dict[str, Any] = {
            "bubus.kind": "event",
            "bubus.event_id": event.event_id,
            "bubus.event_type": event.event_type,
            "bubus.bus_id": bus.id if bus is not None else "",
            "bubus.bus_name": bus.label if bus is not None else name,
            "messaging.system": "bubus",
            "messaging.operation.type": "send",
            "messaging.operation.name": "emit",
            "messaging.destination.name": name,
            "messaging.message.id": event.event_id,
        }
        if event.event_parent_id is not None:
            attributes["bubus.event_parent_id"] = event.event_parent_id
        span = self.tracer.start_span(
            f"bubus.event.{event.event_type}",
            context=parent if parent is not None else _empty_context(),
            kind=self._trace.SpanKind.PRODUCER,
            attributes=attributes,
            start_time=_event_start(event),
        )
        self._open[key] = span
        return self._trace.set_span_in_context(span)

    def _handler_context(self, bus: EventBus | None, event: BaseEvent[Any], row: EventResult[Any]) -> Context:
        key = (event.event_id, row.handler_id)
        found = self._context_of(key)
        if found is not None:
            return found
        parent = self._event_context(bus, event)
        span = self.tracer.start_span(
            f"bubus.handler.{row.handler_name}",
            context=parent,
            kind=self._trace.SpanKind.CONSUMER,
            attributes={
                "bubus.kind": "handler",
                "bubus.event_id": event.event_id,
                "bubus.event_type": event.event_type,
                "bubus.bus_id": row.eventbus_id,
                "bubus.bus_name": row.eventbus_label,
                "bubus.handler_id": row.handler_id,
                "bubus.handler_name": row.handler_name,
                "messaging.system": "bubus",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": row.eventbus_name,
                "messaging.message.id": event.event_id,
            },
            start_time=_ns(row.started_at or row.completed_at),
        )
        self._open[key] = span
        return self._trace.set_span_in_context(span)

    # ------------------------------------------------------------------ hooks
    def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        if status == "started":
            self._event_context(bus, event)
        elif status == "completed" and event.event_status == "completed":
            key = event.event_id
            if key not in self._open and key in self._ended:
                return  # another bus of a forwarded event closed it already
            self._event_context(bus, event)
            span = self._open[key]
            failed = [row for row in event.event_results.values() if row.error is not None]
            if failed:
                first = failed[0].error
                span.set_status(
                    self._trace.Status(self._trace.StatusCode.ERROR, f"{len(failed)} handler(s) failed")
                )
                span.set_attribute("error.type", type(first).__name__)
            self._end(key, _ns(event.event_completed_at))

    def on_event_result_change(
        self, bus: EventBus, event: BaseEvent[Any], result: EventResult[Any], status: str
    ) -> None:
        if status == "started":
            self._handler_context(bus, event, result)
        elif status == "completed":
            key = (event.event_id, result.handler_id)
            if key not in self._open and key in self._ended:
                return
            self._handler_context(bus, event, result)
            span = self._open[key]
            error = result.error
            if error is not None:
                span.record_exception(error)
                span.set_attribute("error.type", type(error).__name__)
                if isinstance(error, EventHandlerTimeoutError):
                    span.set_attribute("bubus.timeout", True)
                span.set_status(
                    self._trace.Status(self._trace.StatusCode.ERROR, f"{type(error).__name__}: {error}")
                )
            self._end(key, _ns(result.completed_at))

    # ------------------------------------------------------------------ across processes
    def carrier(self, event: BaseEvent[Any]) -> dict[str, str]:
        """W3C trace context (``traceparent``/``tracestate``) of ``event``'s span, for whatever carries the
        event to another process (a bridge's envelope, a message header). The span is made if needed."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._event_context(None, event))
        return carrier

    def adopt(self, event_id: str, carrier: dict[str, str]) -> None:
        """Parent the span this process makes for ``event_id`` to the remote span in ``carrier``.

        At most ``max_remembered`` adopted parents wait for their event (the oldest go first), so ids
        that never reach a traced bus here cost nothing lasting."""
        self._remote[event_id] = self._propagator.extract(carrier)
        while len(self._remote) > self.max_remembered:
            self._remote.popitem(last=False)

    def bridge_propagator(self) -> OtelBridgePropagator:
        """What ``EventBridge(..., propagator=...)`` takes to carry this tracer's context across a bridge.

        Out, the bridge sends :meth:`carrier` of the event as message headers; in, an inbound event whose
        headers hold a ``traceparent`` is :meth:`adopt` ed under its new id, so its span here is the child
        of the sender's event span, in the sender's trace. Over a transport that carries no headers the
        inbound event simply starts a trace of its own. (Bridges are typed structurally: this module does
        not import them.)
        """
        return OtelBridgePropagator(self)

    def close(self) -> None:
        """End spans still open (their events never completed here), at the current time."""
        for key in list(self._open):
            self._end(key, None)


class OtelBridgePropagator:
    """A bridge's ``TracePropagator`` backed by an :class:`OtelTracingMiddleware` (see
    :meth:`OtelTracingMiddleware.bridge_propagator`)."""

    __slots__ = ("tracing",)

    def __init__(self, tracing: OtelTracingMiddleware) -> None:
        self.tracing = tracing

    def inject(self, event: BaseEvent[Any]) -> Mapping[str, str]:
        """The W3C trace context of ``event``'s span, as message headers."""
        return self.tracing.carrier(event)

    def extract(self, event: BaseEvent[Any], headers: Mapping[str, str]) -> None:
        """Adopt the remote span named in ``headers`` for ``event`` (the new local copy); no
        ``traceparent``: nothing to adopt, the event starts its own trace."""
        if "traceparent" in headers:
            self.tracing.adopt(event.event_id, dict(headers))


def _empty_context() -> Context:
    from opentelemetry.context import Context

    return Context()
