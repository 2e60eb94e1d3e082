"""The logic every bridge shares, written once over the :class:`~._transport.Transport` interface.

Out: :meth:`EventBridge.emit` writes ``event.to_json()`` to the transport. In: a reader task takes each
:class:`~._transport.Delivery`, decodes it (a bad one is logged as :class:`BridgeDecodeError` and
skipped), drops a redelivered ``event_id`` it already handled, resets the event (new id, pending, no
results, ``event_path`` kept so forwarding cycles end) and emits it on the bridge's private inbound bus.
Other copies of an event it already handled (a redelivery, or an echo from a third process) are
dropped. A second task waits for each inbound event to finish and only then acknowledges durable deliveries, in
order. At most ``inbound_buffer`` inbound events are unfinished at any time: past that the reader stops
taking messages, so a slow consumer pushes back on the transport instead of growing memory.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import anyio
import attrs
import orjson
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bubus_anyio import BaseEvent, BusNotRunningError, EventBus, EventHandler, in_handler

from ._transport import BridgeDecodeError, BridgeNotRunningError, Delivery, TracePropagator, Transport

__all__ = ["BridgeStatistics", "EventBridge"]

logger = logging.getLogger("bubus.bridges")

E = TypeVar("E", bound=BaseEvent[Any])
_Pattern = type[BaseEvent[Any]] | str
ServeCallable = Callable[..., Coroutine[Any, Any, None]]
_Pending = tuple[BaseEvent[Any] | None, Delivery, str | None, bool]  # event, delivery, identity, first copy


@attrs.frozen
class BridgeStatistics:
    """A snapshot of one bridge's counters (see :meth:`EventBridge.statistics`).

    :ivar sent: messages handed to the transport by :meth:`EventBridge.emit`
    :ivar received: messages the transport delivered (good, bad and duplicate)
    :ivar emitted: inbound events emitted on the inbound bus
    :ivar duplicates: other copies of an event this bridge already emitted (redeliveries, echoes), dropped
    :ivar decode_errors: messages skipped as :class:`BridgeDecodeError`
    :ivar acked: durable deliveries acknowledged
    :ivar unfinished: inbound events emitted and not finished yet
    """

    sent: int
    received: int
    emitted: int
    duplicates: int
    decode_errors: int
    acked: int
    unfinished: int


# what upstream's event_reset() gives an inbound event: a new id, pending, no results (path and parent kept)
_RESET_KEYS = (
    "event_id",
    "event_status",
    "event_started_at",
    "event_completed_at",
    "event_pending_bus_count",
    "event_results",
)


def decode_inbound(body: bytes) -> tuple[dict[str, Any], str | None]:
    """One wire message -> (its fields minus those a reset replaces, its wire ``event_id``).

    Dropping those keys before decoding gives the same event as decoding then ``event_reset()``, with
    one event built instead of two.

    :raises BridgeDecodeError: not JSON, not a JSON object, or an ``event_id`` that is not a string
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BridgeDecodeError(body, f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BridgeDecodeError(body, f"not a JSON object but {type(data).__name__}")
    fields = cast(dict[str, Any], data)
    wire_id = fields.get("event_id")
    if wire_id is not None and (not isinstance(wire_id, str) or not wire_id):
        raise BridgeDecodeError(body, f"event_id: expected a non-empty string, got {wire_id!r:.80}")
    for key in _RESET_KEYS:
        fields.pop(key, None)
    return fields, wire_id.lower() if wire_id else None


def identity(event: BaseEvent[Any]) -> str:
    """What makes two inbound messages the same event, whatever hops they took.

    Every hop resets the id (as upstream), so ``event_id`` only identifies one message: a redelivery of
    it. The event itself keeps its type, its creation time (strictly increasing per process) and the bus
    it started on (``event_path[0]``) across every hop, so on a channel three or more processes share, the
    copies echoed back by the others are recognised too and each bus handles the event once.
    """
    origin = event.event_path[0] if event.event_path else ""
    return f"{event.event_type}\x1f{event.event_created_at}\x1f{origin}"


def build_event(body: bytes, fields: dict[str, Any]) -> BaseEvent[Any]:
    """The fresh inbound event: registered subclass for its ``event_type``, or a generic event.

    :raises BridgeDecodeError: the fields are not a valid event (the validation message says why)
    """
    try:
        return BaseEvent[Any].from_json(fields)
    except Exception as exc:  # any refusal of the decoder is this message's fault, never the reader's
        raise BridgeDecodeError(body, f"{type(exc).__name__}: {exc}") from exc


def _sole_error(exc: BaseException) -> BaseException:
    """A group holding one plain error (however deeply nested by task groups) -> that error, so a bind
    error reaches the caller as the named error it is; anything else unchanged."""
    leaf: BaseException = exc
    while isinstance(leaf, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", leaf)
        if len(group.exceptions) != 1:
            return exc
        leaf = group.exceptions[0]
    return leaf if isinstance(leaf, Exception) else exc


class EventBridge:
    """Carries events between buses in different processes over one :class:`~._transport.Transport`.

    Use it as an async context manager; inside the block the reader runs in the bridge's own task group::

        async with EventBus("App") as bus, JSONLEventBridge("/tmp/events.jsonl") as bridge:
            bus.on("*", bridge.emit)   # out
            bridge.on("*", bus.emit)   # in

    Wiring both directions on both sides is loop-safe: an event keeps its ``event_path`` across the wire,
    so a bus never forwards an event it has already seen.

    :param transport: moves the messages (see the concrete bridges, or :class:`MemoryTransport`)
    :param name: the inbound bus's name (default ``{Class}_{8 hex}``)
    :param inbound_buffer: inbound events allowed to be unfinished before the reader stops taking more
    :param dedupe_window: how many recent events are remembered to drop other copies of them (0: off; see
        :func:`identity`)
    :param propagator: carries trace context as message headers (see :class:`TracePropagator`; e.g.
        ``OtelTracingMiddleware.bridge_propagator()``); over a transport without headers it gets none
    """

    @classmethod
    def _default_name(cls) -> str:
        """``{Class}_{8 hex chars}``, upstream's default bridge name (subclasses that need their name before
        building their transport, to default a consumer group to it, call this too)."""
        return f"{cls.__name__}_{uuid.uuid4().hex[:8]}"

    def __init__(
        self,
        transport: Transport,
        *,
        name: str | None = None,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
    ) -> None:
        if inbound_buffer < 1:
            raise ValueError(f"inbound_buffer must be >= 1, got {inbound_buffer!r}")
        if dedupe_window < 0:
            raise ValueError(f"dedupe_window must be >= 0, got {dedupe_window!r}")
        self.name = name if name is not None else self._default_name()
        self.transport = transport
        self.inbound_buffer = inbound_buffer
        self.dedupe_window = dedupe_window
        self.propagator = propagator
        self.inbound_bus = EventBus(self.name, max_history_size=0)
        self._state = "new"
        self._tg: TaskGroup | None = None
        self._read_scope: anyio.CancelScope | None = None
        self._send: MemoryObjectSendStream[_Pending] | None = None
        self._receive: MemoryObjectReceiveStream[_Pending] | None = None
        self._reader_done = anyio.Event()
        self._slots: anyio.Semaphore | None = None
        # wire event_id -> the inbound event while unfinished, None once finished (LRU order)
        self._seen: OrderedDict[str, BaseEvent[Any] | None] = OrderedDict()
        self._sent = self._received = self._emitted = self._duplicates = 0
        self._decode_errors = self._acked = self._unfinished = 0

    # ------------------------------------------------------------------ public API
    @property
    def is_running(self) -> bool:
        return self._state == "running"

    def on(self, pattern: _Pattern, handler: Callable[[Any], Any], **options: Any) -> EventHandler:
        """Register ``handler`` for inbound events matching ``pattern`` (same options as ``EventBus.on``).
        ``bridge.on('*', bus.emit)`` forwards everything that arrives into ``bus``.

        As upstream, a bridge listens only once it has an inbound handler: the first ``on()`` inside the
        ``async with`` block (or entering with handlers already registered) starts the reader. A bridge
        used only to ``emit`` never binds a socket, port or listener.
        """
        entry = self.inbound_bus.on(pattern, handler, **options)
        self._listen()
        return entry

    def off(
        self, pattern: _Pattern, handler: Callable[[Any], Any] | EventHandler | str | None = None
    ) -> None:
        """Remove inbound handlers, as ``EventBus.off``."""
        self.inbound_bus.off(pattern, handler)

    async def emit(self, event: E) -> E | None:
        """Send ``event`` to the other side.

        Returns the event, or None when called from a handler (so ``bus.on('*', bridge.emit)`` does not
        record the event as its own result). Waits as the transport does (see its docs) when the peer or
        connection is slow; cancelling the wait may or may not have sent the message.

        :raises BridgeNotRunningError: outside the bridge's ``async with`` block
        :raises BridgeSendError: the transport could not send it
        """
        if self._state != "running":
            raise BridgeNotRunningError(
                f"{self.name} is {self._state}; emit() works only inside `async with bridge:`"
            )
        body = event.to_json().encode()
        if self.propagator is None:
            await self.transport.send(body)
        else:
            await self.transport.send(body, self.propagator.inject(event))
        self._sent += 1
        return None if in_handler() else event

    dispatch = emit

    def statistics(self) -> BridgeStatistics:
        return BridgeStatistics(
            sent=self._sent,
            received=self._received,
            emitted=self._emitted,
            duplicates=self._duplicates,
            decode_errors=self._decode_errors,
            acked=self._acked,
            unfinished=self._unfinished,
        )

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"{self.name} is {self._state}; a bridge runs once")
        self._state = "starting"
        try:
            await self.transport.connect()
        except BaseException:
            self._state = "closed"
            with anyio.CancelScope(shield=True):
                await self.transport.aclose()
            raise
        tg = self._tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await tg.start(self.inbound_bus.run)
            # bounded by the slots, not by the stream: a slot is taken before an event is emitted and given
            # back when it finished, so at most inbound_buffer inbound events are ever unfinished
            self._slots = anyio.Semaphore(self.inbound_buffer)
            self._send, self._receive = anyio.create_memory_object_stream[_Pending](math.inf)
            tg.start_soon(self._finish, self._receive)
            if self.inbound_bus.handlers:  # listen now, so a bind error is raised by `async with`
                self._read_scope = anyio.CancelScope()
                await tg.start(self._read, self._send, self._read_scope)
        except BaseException as exc:
            tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await self.transport.aclose()
            self._state = "closed"
            try:
                await tg.__aexit__(type(exc), exc, exc.__traceback__)
            except BaseExceptionGroup as group:
                raise _sole_error(group) from None
            finally:
                self._close_streams()
            raise _sole_error(exc) from None
        self._state = "running"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        """Stop reading, let the inbound events already taken finish (and be acknowledged), then close the
        transport. Leaving with an exception (or cancelled) aborts the inbound work instead of waiting."""
        tg = self._tg
        assert tg is not None
        self._state = "closing"
        error: BaseException | None = None
        try:
            if self._read_scope is not None:
                self._read_scope.cancel()
            elif self._send is not None:  # never listened: nothing more will come
                self._send.close()
                self._reader_done.set()
            if exc_type is None:
                await self._reader_done.wait()
                # the finisher ends once the reader's stream is drained; then nothing new reaches the bus
                await self.inbound_bus.wait_until_idle()
            await self.inbound_bus.stop()
        except BaseException as drain_error:  # cancelled while draining: abort, then re-raise below
            error = drain_error
        if error is not None or exc_type is not None:
            tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self.transport.aclose()
        self._state = "closed"
        try:
            if error is not None:
                await tg.__aexit__(type(error), error, error.__traceback__)
                raise error
            try:
                return await tg.__aexit__(exc_type, exc, tb)
            except BaseExceptionGroup as group:
                # only the body's own exception, wrapped by the task group: let it propagate unchanged
                if exc is not None and len(group.exceptions) == 1 and group.exceptions[0] is exc:
                    return False
                raise
        finally:
            self._close_streams()

    def _close_streams(self) -> None:
        """Both ends of the inbound pipeline, in case a task that owned one never got to run."""
        for stream in (self._send, self._receive):
            if stream is not None:
                stream.close()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run inside a task group you own: ``await tg.start(bridge.run)``; cancel the group to stop."""
        async with self:
            task_status.started()
            await anyio.sleep_forever()

    # ------------------------------------------------------------------ inbound
    def _listen(self) -> bool:
        """Start the reader once, in the bridge's task group. False when it is not the time (before
        entering, already reading, closing)."""
        tg, send = self._tg, self._send
        if (
            self._read_scope is not None
            or tg is None
            or send is None
            or self._state not in ("starting", "running")
        ):
            return False
        # made here, not in the task, so leaving the block can cancel a reader that has not started yet
        self._read_scope = anyio.CancelScope()
        tg.start_soon(self._read, send, self._read_scope)
        return True

    async def _read(
        self,
        send: MemoryObjectSendStream[_Pending],
        scope: anyio.CancelScope,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the transport's ``serve`` (when it has one: listeners, connection handlers) next to the
        loop over ``receive()``; ``task_status`` is set once the transport is listening."""
        try:
            async with send:
                with scope:
                    serve = cast("ServeCallable | None", getattr(self.transport, "serve", None))
                    if serve is None:
                        task_status.started()
                        await self._pump(send)
                    else:
                        async with anyio.create_task_group() as serving:
                            await serving.start(serve)
                            task_status.started()
                            await self._pump(send)
                            serving.cancel_scope.cancel()
        finally:
            self._reader_done.set()

    async def _pump(self, send: MemoryObjectSendStream[_Pending]) -> None:
        deliveries = self.transport.receive()
        try:
            async for delivery in deliveries:
                await self._accept(delivery, send)
        finally:
            close = getattr(deliveries, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()

    async def _accept(self, delivery: Delivery, send: MemoryObjectSendStream[_Pending]) -> None:
        self._received += 1
        try:
            fields, wire_id = decode_inbound(delivery.body)
            stamped = fields.get("event_created_at") is not None
            fresh = build_event(delivery.body, fields)
        except BridgeDecodeError as exc:
            self._decode_errors += 1
            logger.warning("%s skipped a message: %s: %s", self.name, type(exc).__name__, exc)
            if delivery.ack is not None:  # a poison message is handled by skipping it, never redelivered
                await self._ack_in_order(None, delivery, send)
            return
        key = identity(fresh) if stamped else wire_id
        if not self.dedupe_window:
            key = None
        elif key is not None and key in self._seen:
            self._duplicates += 1
            self._seen.move_to_end(key)
            earlier = self._seen[key]
            logger.debug(
                "%s dropped another copy of %s (wire event_id %s)", self.name, fresh.event_type, wire_id
            )
            if delivery.ack is not None:  # acknowledged once the first copy has finished
                await self._ack_in_order(earlier, delivery, send)
            return
        assert self._slots is not None
        await self._slots.acquire()
        if key is not None:
            self._seen[key] = fresh
            while len(self._seen) > self.dedupe_window:
                self._seen.popitem(last=False)
        if self.propagator is not None:
            try:
                self.propagator.extract(fresh, delivery.headers)
            except Exception as exc:  # tracing must not cost the event: it goes on, without its context
                logger.warning("%s: propagator.extract failed for %s: %r", self.name, fresh.event_label, exc)
        self.inbound_bus.emit(fresh)
        self._emitted += 1
        self._unfinished += 1
        send.send_nowait((fresh, delivery, key, True))

    async def _ack_in_order(
        self, event: BaseEvent[Any] | None, delivery: Delivery, send: MemoryObjectSendStream[_Pending]
    ) -> None:
        """Queue an acknowledgement behind the deliveries before it: offset-style transports resume after
        the newest ack, so an early one would skip unfinished events after a crash."""
        assert self._slots is not None
        await self._slots.acquire()
        send.send_nowait((event, delivery, None, False))

    async def _finish(self, receive: MemoryObjectReceiveStream[_Pending]) -> None:
        """Wait for each inbound event in arrival order, then acknowledge it (durable transports)."""
        unfinished_seen = False
        async with receive:
            async for event, delivery, key, first in receive:
                try:
                    if event is not None:
                        await event.event_completed()
                except BusNotRunningError:
                    # every bus it reached stopped before finishing it: leave it and everything after it
                    # unacknowledged, so a durable transport redelivers them to whoever consumes next
                    assert event is not None
                    logger.info(
                        "%s: %s was not finished before its buses stopped", self.name, event.event_label
                    )
                    unfinished_seen = True
                    continue
                finally:
                    assert self._slots is not None
                    self._slots.release()
                    if first:
                        self._unfinished -= 1
                if key is not None and key in self._seen:
                    self._seen[key] = None
                if delivery.ack is not None and not unfinished_seen:
                    await self._ack(delivery)

    async def _ack(self, delivery: Delivery) -> None:
        assert delivery.ack is not None
        try:
            await delivery.ack()
        except Exception as exc:  # the transport will redeliver it; the bridge keeps serving
            logger.warning("%s could not acknowledge a message (it may come again): %r", self.name, exc)
            return
        self._acked += 1
