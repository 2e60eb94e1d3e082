"""The one small interface every bridge transport implements, and the errors bridges raise.

A transport moves whole messages (one compact JSON event object each) and knows nothing about events:
framing, reconnecting and acknowledging are its job; decoding, dedupe and loop prevention are the
bridge's (:class:`~bubus_anyio.bridges.EventBridge`). That split lets the bridge logic be tested once
against :class:`~bubus_anyio.bridges.MemoryTransport` instead of against every socket and server.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, cast, runtime_checkable

import anyio
import attrs
import orjson
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bubus_anyio import BaseEvent, EventBusError

logger = logging.getLogger("bubus.bridges")

__all__ = [
    "Backoff",
    "BridgeConnectError",
    "BridgeDecodeError",
    "BridgeError",
    "BridgeFrameTooLargeError",
    "BridgeNotRunningError",
    "BridgeSendError",
    "Delivery",
    "Inbox",
    "ServingTransport",
    "TracePropagator",
    "Transport",
]


class BridgeError(EventBusError):
    """Base class of every error a bridge or transport raises."""


class BridgeNotRunningError(BridgeError):
    """The bridge was used outside its ``async with`` block (not entered yet, or already left)."""


class BridgeConnectError(BridgeError):
    """The transport could not open its connection, file or listener (the message names which)."""


class BridgeSendError(BridgeError):
    """A message could not be sent: the peer refused it, or the connection stayed down past the timeout."""


class BridgeDecodeError(BridgeError):
    """An inbound message is not a valid event: it was logged and skipped, the reader kept going.

    :ivar raw: the start of the offending message (at most 200 bytes), for the log
    :ivar reason: why it was refused (``not JSON``, ``not a JSON object``, a validation message...)
    """

    def __init__(self, raw: bytes, reason: str) -> None:
        self.raw = raw[:200]
        self.reason = reason
        super().__init__(f"bad bridge message ({reason}): {self.raw!r}")


class BridgeFrameTooLargeError(BridgeDecodeError):
    """A frame went past the transport's ``max_frame_bytes``: the connection that sent it is dropped."""


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _frozen_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy (the shared empty one when there are none)."""
    return MappingProxyType(dict(headers)) if headers else _NO_HEADERS


@attrs.frozen
class Delivery:
    """One inbound message.

    :ivar body: one compact JSON event object (UTF-8)
    :ivar ack: set by durable transports; the bridge awaits it only after the inbound bus finished the
        event, so a crash before that makes the transport redeliver it (at-least-once)
    :ivar redelivered: the transport knows it delivered this message before (the bridge dedupes anyway)
    :ivar headers: message metadata that came with the body (W3C ``traceparent``/``tracestate``...), read-only;
        empty for transports without a metadata channel. Never part of the event JSON.
    """

    body: bytes
    ack: Callable[[], Awaitable[None]] | None = None
    redelivered: bool = False
    headers: Mapping[str, str] = attrs.field(default=_NO_HEADERS, converter=_frozen_headers)


@runtime_checkable
class Transport(Protocol):
    """What a bridge needs from a transport. All methods are called from the bridge's event loop.

    - ``connect()`` opens files, connections or listeners, or raises :class:`BridgeConnectError`.
    - ``send(body, headers)`` sends one message; a transport that lost its connection reconnects, waiting
      at most its own send timeout, then raises :class:`BridgeSendError`. ``headers`` (may be None) is
      message metadata (trace context) sent next to the body where the transport has a metadata channel
      and ignored where it has none; the body is sent byte for byte either way.
    - ``receive()`` yields messages until ``aclose()``; it reconnects by itself (with :class:`Backoff`)
      and never ends because of a bad message: framing errors are logged and skipped.
    - ``aclose()`` releases everything; idempotent; after it ``receive()`` ends.
    """

    @property
    def durable(self) -> bool:
        """True: deliveries carry ``ack`` and unacked ones come back (at-least-once). False: at-most-once."""
        ...

    async def connect(self) -> None: ...

    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None: ...

    def receive(self) -> AsyncIterator[Delivery]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ServingTransport(Transport, Protocol):
    """A transport with background work (a listener accepting connections, an HTTP server).

    An async generator cannot own a task group across its ``yield`` s, so such a transport puts its
    tasks in ``serve``: the bridge runs it in its own task group, calls ``task_status.started()`` once
    listening (a bind error raised before that reaches ``async with bridge`` when handlers were
    registered before entering) and cancels it when the bridge closes; ``receive()`` then only reads
    what ``serve`` hands it through a bounded memory stream.
    """

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None: ...


def headers_from_json(raw: object) -> dict[str, str]:
    """Headers a transport stored as a compact JSON object of strings (a Redis stream entry's field)
    -> a delivery's headers. Missing: none. Unreadable: none either, logged; the message itself is still
    delivered (its trace context is lost, never the event)."""
    if raw is None:
        return {}
    try:
        value = orjson.loads(cast(bytes, raw))
    except (orjson.JSONDecodeError, TypeError):
        value = None
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in cast(dict[object, object], value).items()
    ):
        return cast(dict[str, str], value)
    logger.warning("unreadable message headers, ignored: %r", raw)
    return {}


@runtime_checkable
class TracePropagator(Protocol):
    """Carries trace context next to bridged events (``EventBridge(..., propagator=...)``), without
    touching the event JSON. ``OtelTracingMiddleware.bridge_propagator()`` gives one.

    - ``inject(event)`` is called by ``emit`` before sending; what it returns goes to
      ``transport.send`` as the message's headers.
    - ``extract(event, headers)`` is called for each inbound message with the new local event (after
      decoding and the reset that gives it its own id) and the delivery's headers (empty when the
      transport carries none), before the event is emitted on the inbound bus.
    """

    def inject(self, event: BaseEvent[Any]) -> Mapping[str, str]: ...

    def extract(self, event: BaseEvent[Any], headers: Mapping[str, str]) -> None: ...


class Inbox:
    """The bounded hand-off from a serving transport's tasks (``serve``) to its ``receive()``.

    Its memory streams exist only between :meth:`open` (in ``connect``) and :meth:`close` (in
    ``aclose``), so a transport that is built and never used leaves nothing unclosed behind.

    :param size: messages waiting before :meth:`put` waits for room (backpressure to the peer)
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"buffer must be >= 1, got {size!r}")
        self.size = size
        self._streams: tuple[MemoryObjectSendStream[Delivery], MemoryObjectReceiveStream[Delivery]] | None = (
            None
        )
        self._closed = False

    def open(self) -> None:
        if self._streams is None and not self._closed:
            self._streams = anyio.create_memory_object_stream[Delivery](self.size)

    async def put(self, message: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Hand one message (and the headers it came with) over, waiting for room.

        :raises anyio.ClosedResourceError: not open, or closed
        """
        if self._streams is None:
            raise anyio.ClosedResourceError
        await self._streams[0].send(Delivery(message, headers=headers))

    def messages(self) -> AsyncIterator[Delivery]:
        """Every message put, as a :class:`Delivery`, until :meth:`close` (the receiving stream itself:
        nothing to finalise).

        :raises anyio.ClosedResourceError: not open, or closed
        """
        if self._streams is None:
            raise anyio.ClosedResourceError
        return self._streams[1]

    def close(self) -> None:
        self._closed = True
        if self._streams is not None:
            self._streams[0].close()
            self._streams[1].close()


@attrs.define
class Backoff:
    """Capped exponential backoff with jitter for reconnect loops: ``await backoff.wait()`` after each
    failure, ``backoff.reset()`` after a success. Delays grow from ``initial`` by ``factor`` up to ``cap``.
    """

    initial: float = 0.05
    cap: float = 2.0
    factor: float = 2.0
    attempts: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return delay * (0.5 + random.random() / 2)

    async def wait(self) -> None:
        """Sleep the next delay (cancellable as any sleep)."""
        await anyio.sleep(self.next_delay())

    def reset(self) -> None:
        self.attempts = 0
