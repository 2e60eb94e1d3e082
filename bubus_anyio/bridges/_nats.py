"""NATS bridge: core subjects like upstream (at-most-once), or JetStream with a durable consumer (at-least-once).

Wire (``jetstream=False``, the default, as upstream): a core NATS publish of the compact event JSON (UTF-8
bytes) on ``subject``, and a subscription on it. Durable (``jetstream=True``): the same subject is captured
by the JetStream stream ``stream`` (default: the subject with every character other than letters, digits,
``_`` and ``-`` replaced by ``_``); publishes wait for the stream's acknowledgement and carry the event id as
``Nats-Msg-Id``, so a publish retried after an outage is stored once. Each consuming bridge reads through a
durable pull consumer (default name: the bridge's name) and acknowledges a message only after its inbound
bus finished the event; a message not acknowledged within ``ack_wait`` seconds is delivered again. Because
JetStream captures the core subject, upstream's core publishers and subscribers on that subject still see
(and feed) a JetStream bridge.

nats-py is asyncio-only: on trio the client runs on a private asyncio loop in a thread
(:class:`~._asyncio_host.AsyncioHost`), entered and left with the bridge.

Headers given to ``send`` (trace context) travel as NATS message headers, core and JetStream alike, and
come back as ``Delivery.headers`` (NATS's own ``Nats-*`` headers left out); a message sent without any
is the plain publish upstream makes.
"""

from __future__ import annotations

import asyncio  # the client loop's own queue; runs only on the AsyncioHost loop (see _asyncio_host)
import importlib.util
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import orjson

from ._asyncio_host import AsyncioHost
from ._session import SessionBridge
from ._transport import Backoff, BridgeConnectError, BridgeSendError, Delivery, TracePropagator

__all__ = ["NATSEventBridge", "NATSTransport"]

logger = logging.getLogger("bubus.bridges")


def stream_name_for(subject: str) -> str:
    """The default JetStream stream name for a subject (stream names may not contain ``.``, ``*``, ``>``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", subject)


class NATSTransport:
    """Core NATS or JetStream (see the module docstring).

    :param server: ``nats://host:port`` (or a list of them)
    :param subject: the subject events are published on and read from
    :param jetstream: durable delivery through JetStream instead of core NATS
    :param stream: JetStream stream name (created, capturing ``subject``, if missing)
    :param durable: durable consumer name (default: the bridge's name; give a stable one to resume after a
        restart)
    :param deliver: where a newly created consumer starts: ``'new'`` (from now on) or ``'all'``
    :param ack_wait: seconds JetStream waits for an acknowledgement before it delivers a message again
    :param buffer: messages read ahead of the bridge; core NATS drops (and logs) what arrives while it is
        full, JetStream simply is not asked for more
    :param batch: messages fetched per JetStream pull
    :param send_timeout: how long ``send`` keeps retrying while NATS is unreachable before
        :class:`BridgeSendError`
    """

    def __init__(
        self,
        server: str | list[str],
        subject: str,
        *,
        jetstream: bool = False,
        stream: str | None = None,
        durable: str | None = None,
        deliver: str = "new",
        ack_wait: float = 30.0,
        buffer: int = 8192,
        batch: int = 64,
        send_timeout: float = 10.0,
        fetch_timeout: float = 1.0,
    ) -> None:
        if not isinstance(subject, str) or not subject or any(c.isspace() for c in subject):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"subject must be a non-empty NATS subject without spaces, got {subject!r}")
        if deliver not in ("new", "all"):
            raise ValueError(f"deliver must be 'new' or 'all', got {deliver!r}")
        for field, value in (("buffer", buffer), ("batch", batch)):
            if value < 1:
                raise ValueError(f"{field} must be >= 1, got {value!r}")
        self.server = server
        self.subject = subject
        self.jetstream = jetstream
        self.stream = stream or stream_name_for(subject)
        self.durable_name = durable or f"bubus_{uuid.uuid4().hex[:8]}"
        self.deliver = deliver
        self.ack_wait = ack_wait
        self.buffer = buffer
        self.batch = batch
        self.send_timeout = send_timeout
        self.fetch_timeout = fetch_timeout
        self.dropped = 0
        self._host: AsyncioHost | None = None
        self._nc: Any = None
        self._js: Any = None
        self._psub: Any = None
        self._queue: asyncio.Queue[tuple[bytes, dict[str, str]]] | None = None
        self._closed = False

    @property
    def durable(self) -> bool:
        return self.jetstream

    # ------------------------------------------------------------------ lifetime
    @asynccontextmanager
    async def session(self) -> AsyncGenerator[None]:
        if importlib.util.find_spec("nats") is None:  # pragma: no cover - depends on the install
            raise BridgeConnectError("NATSEventBridge needs nats-py: pip install 'bubus-anyio[bridges]'")
        async with AsyncioHost(f"bubus-nats-{self.subject}") as host:
            self._host = host
            try:
                yield
            finally:
                if self._nc is not None:
                    with anyio.CancelScope(shield=True):
                        await host.run(self._nc.close)
                self._host = self._nc = self._js = self._psub = None

    @property
    def host(self) -> AsyncioHost:
        if self._host is None:
            raise BridgeConnectError("NATSTransport needs its session(); use NATSEventBridge")
        return self._host

    async def connect(self) -> None:
        # nats-py retries an unreachable server forever when reconnecting is allowed: probe first
        if not await self._reachable():
            raise BridgeConnectError(f"cannot reach NATS at server={self.server!r}")
        try:
            with anyio.fail_after(15):
                self._nc = await self.host.run(self._connect)
        except BridgeConnectError:
            raise
        except Exception as exc:
            raise BridgeConnectError(f"cannot reach NATS at server={self.server!r}: {exc!r}") from exc

    async def _reachable(self) -> bool:
        for url in [self.server] if isinstance(self.server, str) else self.server:
            parts = urlsplit(url if "://" in url else f"nats://{url}")
            try:
                with anyio.fail_after(2):
                    stream = await anyio.connect_tcp(parts.hostname or "localhost", parts.port or 4222)
            except (OSError, TimeoutError):
                continue
            await stream.aclose()
            return True
        return False

    async def _connect(self) -> Any:  # runs on the client loop
        import nats
        from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        async def on_error(exc: Exception) -> None:
            logger.debug("nats client error on %r: %r", self.subject, exc)

        async def on_disconnected() -> None:
            if not self._closed:
                logger.warning("nats connection to %r lost; reconnecting", self.server)

        async def on_reconnected() -> None:
            logger.warning("nats connection to %r re-established", self.server)

        client_module: Any = nats  # nats-py's connect(**options) is untyped
        nc: Any = await client_module.connect(
            self.server,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )
        try:
            if not self.jetstream:
                queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue(self.buffer)
                self._queue = queue

                async def on_message(msg: Any) -> None:
                    try:
                        queue.put_nowait((msg.data, _own_headers(msg)))
                    except asyncio.QueueFull:
                        self.dropped += 1
                        logger.warning(
                            "nats %r: reader %d behind; dropped a message", self.subject, self.buffer
                        )

                await nc.subscribe(self.subject, cb=on_message)
                await nc.flush()
                return nc
            js = nc.jetstream()
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                await js.add_stream(
                    StreamConfig(name=self.stream, subjects=[self.subject], storage=StorageType.FILE)
                )
            self._js = js
            self._psub = await js.pull_subscribe(
                self.subject,
                durable=self.durable_name,
                stream=self.stream,
                config=ConsumerConfig(
                    durable_name=self.durable_name,
                    deliver_policy=DeliverPolicy.NEW if self.deliver == "new" else DeliverPolicy.ALL,
                    ack_wait=self.ack_wait,
                    max_ack_pending=max(self.buffer * 4, 1024),
                ),
                pending_msgs_limit=self.buffer * 2,
            )
            return nc
        except BaseException:
            await nc.close()
            raise

    async def aclose(self) -> None:
        self._closed = True

    # ------------------------------------------------------------------ out
    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        if self._nc is None or self._closed:
            raise BridgeSendError("NATSTransport is not connected")
        backoff = Backoff()
        with anyio.move_on_after(self.send_timeout):
            while True:
                try:
                    await self.host.run(self._publish, body, headers)
                    return
                except Exception as exc:
                    if not _is_transient(exc):
                        raise BridgeSendError(f"NATS refused a message on {self.subject!r}: {exc!r}") from exc
                    logger.debug("nats publish on %r failed (%r); retrying", self.subject, exc)
                    await backoff.wait()
        raise BridgeSendError(f"NATS at {self.server!r} unreachable for send_timeout={self.send_timeout}s")

    async def _publish(self, body: bytes, headers: Mapping[str, str] | None) -> None:  # on the client loop
        sent = dict(headers) if headers else None  # no headers: the exact message upstream publishes
        if self._js is None:
            await self._nc.publish(self.subject, body, headers=sent)
            return
        try:
            event_id = orjson.loads(body).get("event_id")
        except (orjson.JSONDecodeError, AttributeError):
            event_id = None
        if isinstance(event_id, str):
            sent = {**(sent or {}), "Nats-Msg-Id": event_id}
        await self._js.publish(self.subject, body, timeout=2.0, stream=self.stream, headers=sent)

    # ------------------------------------------------------------------ in
    async def receive(self) -> AsyncIterator[Delivery]:
        if self._nc is None:
            raise BridgeConnectError("NATSTransport.receive() before connect()")
        if not self.jetstream:
            while not self._closed:
                for body, headers in await self.host.run(self._next_core_batch):
                    yield Delivery(body, headers=headers)
            return
        backoff = Backoff()
        while not self._closed:
            try:
                messages = await self.host.run(self._fetch)
            except Exception as exc:
                if not _is_transient(exc):
                    raise
                logger.debug("nats fetch on %r failed (%r); retrying", self.stream, exc)
                await backoff.wait()
                continue
            backoff.reset()
            for body, msg, redelivered in messages:
                yield Delivery(
                    body, ack=_Acker(self.host, msg), redelivered=redelivered, headers=_own_headers(msg)
                )

    async def _next_core_batch(self) -> list[tuple[bytes, dict[str, str]]]:  # runs on the client loop
        assert self._queue is not None
        batch = [await self._queue.get()]
        while len(batch) < self.batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _fetch(self) -> list[tuple[bytes, Any, bool]]:  # runs on the client loop
        import nats.errors

        try:
            messages = await self._psub.fetch(self.batch, timeout=self.fetch_timeout)
        except nats.errors.TimeoutError:
            return []
        return [(m.data, m, m.metadata.num_delivered > 1) for m in messages]


def _own_headers(msg: Any) -> dict[str, str]:
    """A message's headers minus NATS's own (``Nats-Msg-Id``, ``Nats-Expected-*``...): what a sender's
    ``send(body, headers)`` put there (trace context)."""
    raw = cast("dict[str, str] | None", msg.headers)
    return {k: v for k, v in (raw or {}).items() if not k.lower().startswith("nats-")}


class _Acker:
    """``delivery.ack`` for one JetStream message: acknowledges it on the client loop."""

    __slots__ = ("host", "msg")

    def __init__(self, host: AsyncioHost, msg: Any) -> None:
        self.host, self.msg = host, msg

    async def __call__(self) -> None:
        await self.host.run(self.msg.ack)


def _is_transient(exc: BaseException) -> bool:
    """An outage (reconnecting, no responders while JetStream recovers, a timeout): worth retrying."""
    import nats.errors
    import nats.js.errors

    transient = (
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.NoRespondersError,
        nats.errors.TimeoutError,
        nats.errors.OutboundBufferLimitError,
        nats.js.errors.ServiceUnavailableError,
        TimeoutError,
        OSError,
    )
    if isinstance(exc, nats.js.errors.APIError) and getattr(exc, "code", None) in (503, 408):
        return True
    return isinstance(exc, transient)


class NATSEventBridge(SessionBridge):
    """Bridge over NATS: core subjects as upstream, or JetStream with ``jetstream=True``.

    ``NATSEventBridge(server, subject, *, name=None)`` matches upstream; keyword-only options are
    :class:`NATSTransport`'s (``jetstream``, ``stream``, ``durable``, ``ack_wait``...) plus the
    :class:`EventBridge` ones. With JetStream the durable consumer defaults to the bridge's name, so give a
    stable ``name`` (or ``durable``) to resume after a restart.
    """

    def __init__(
        self,
        server: str | list[str],
        subject: str,
        *,
        name: str | None = None,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
        **options: Any,
    ) -> None:
        name = name if name is not None else self._default_name()
        options.setdefault("durable", name)
        self.nats = NATSTransport(server, subject, **options)
        super().__init__(
            self.nats,
            name=name,
            inbound_buffer=inbound_buffer,
            dedupe_window=dedupe_window,
            propagator=propagator,
        )

    @property
    def subject(self) -> str:
        return self.nats.subject
