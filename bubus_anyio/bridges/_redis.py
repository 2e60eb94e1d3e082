"""Redis bridge: pub/sub like upstream (at-most-once), or Redis Streams with a consumer group (at-least-once).

Wire (``mode='pubsub'``, the default, as upstream): ``PUBLISH <channel> <compact event JSON>`` and a
``SUBSCRIBE <channel>`` reader; on connect the key ``__bubus:bridge_init__`` is set (60 s, NX) as upstream does.
Durable (``mode='stream'``): ``XADD <stream> * event <compact event JSON>``; each consuming bridge reads
through the consumer group ``group`` (default: the bridge's name) as consumer ``consumer`` (default: the
group name) with ``XREADGROUP`` and acknowledges with ``XACK`` only after its inbound bus finished the event.
After a reconnect it first re-reads its own pending entries, and it takes over entries another consumer of
the group left pending for ``claim_idle`` seconds (``XAUTOCLAIM``). Headers given to ``send`` (trace
context) go in a second entry field, ``headers`` (a compact JSON object), next to ``event``; a pub/sub
message is the body alone, so in that mode headers are not carried.

Commands go through coredis (anyio-native: asyncio and trio). The subscriber is a small RESP2 reader of our
own over an anyio socket, so the only buffer between Redis and the bridge is a bounded memory stream: a slow
consumer stops reading the socket, and Redis' own pub/sub output-buffer limit then drops the connection (we
log it and resubscribe) instead of anything here growing without bound.
"""

from __future__ import annotations

import functools
import logging
import ssl
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import anyio
import orjson
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._resp import RespError, Subscriber
from ._session import SessionBridge
from ._transport import (
    Backoff,
    BridgeConnectError,
    BridgeSendError,
    Delivery,
    TracePropagator,
    headers_from_json,
)

__all__ = ["RedisEventBridge", "RedisTransport", "parse_redis_url"]

logger = logging.getLogger("bubus.bridges")

DEFAULT_CHANNEL = "bubus_events"
INIT_KEY = "__bubus:bridge_init__"
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    anyio.BrokenResourceError,
    anyio.IncompleteRead,
    anyio.DelimiterNotFound,
    TimeoutError,
)


def _redis_errors() -> tuple[type[BaseException], ...]:
    from coredis.exceptions import ConnectionError as RedisConnectionError

    return (*_CONNECTION_ERRORS, RedisConnectionError, anyio.EndOfStream)


def parse_redis_url(redis_url: str, channel: str | None = None) -> tuple[dict[str, Any], str]:
    """``redis[s]://user:password@host:port/<db>[/<channel>]`` -> (connection options, channel).

    An explicit ``channel`` wins over the one in the URL; the default is ``bubus_events``.

    :raises ValueError: the scheme, db or channel is not valid (the message names the field and value)
    """
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"redis_url must start with redis:// or rediss://, got {redis_url!r}")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 2:
        raise ValueError(f"redis_url path must be /<db>[/<channel>], got {parts.path!r}")
    db = 0
    if segments:
        if not segments[0].isdigit():
            raise ValueError(f"redis_url db must be a number, got {segments[0]!r}")
        db = int(segments[0])
    chosen = (
        channel if channel is not None else (unquote(segments[1]) if len(segments) == 2 else DEFAULT_CHANNEL)
    )
    if not chosen:
        raise ValueError(f"channel must be a non-empty string, got {chosen!r}")
    options: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 6379,
        "db": db,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "ssl": parts.scheme == "rediss",
    }
    return options, chosen


class RedisTransport:
    """Redis pub/sub (``mode='pubsub'``) or Redis Streams with a consumer group (``mode='stream'``).

    :param redis_url: ``redis[s]://user:password@host:port/<db>[/<channel>]``
    :param channel: pub/sub channel (default from the URL, else ``bubus_events``)
    :param mode: ``'pubsub'`` (upstream's wire, at-most-once) or ``'stream'`` (at-least-once)
    :param stream: stream key in stream mode (default: the channel name; keys and channels are separate
        namespaces in Redis, so this never collides with the pub/sub channel)
    :param group: consumer group in stream mode (default: the bridge's name; give a stable name to resume
        after a restart)
    :param consumer: consumer name inside the group (default: the group name)
    :param start_id: where a newly created group starts: ``'$'`` (only entries added from now on) or ``'0'``
    :param maxlen: trim the stream to about this many entries on each XADD (None: never trim; trimming can
        drop entries a slow group has not read yet)
    :param claim_idle: seconds an entry may sit unacknowledged with another consumer before this one takes it
    :param buffer: deliveries read ahead of the bridge (the bound that gives backpressure)
    :param batch: entries fetched per XREADGROUP
    :param send_timeout: how long ``send`` keeps retrying while Redis is unreachable before it raises
        :class:`BridgeSendError`
    """

    def __init__(
        self,
        redis_url: str,
        channel: str | None = None,
        *,
        mode: Literal["pubsub", "stream"] = "pubsub",
        stream: str | None = None,
        group: str | None = None,
        consumer: str | None = None,
        start_id: str = "$",
        maxlen: int | None = None,
        claim_idle: float = 30.0,
        buffer: int = 256,
        batch: int = 64,
        send_timeout: float = 10.0,
        block: float = 1.0,
    ) -> None:
        if mode not in ("pubsub", "stream"):
            raise ValueError(f"mode must be 'pubsub' or 'stream', got {mode!r}")
        for field, value in (("buffer", buffer), ("batch", batch)):
            if value < 1:
                raise ValueError(f"{field} must be >= 1, got {value!r}")
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be >= 1 or None, got {maxlen!r}")
        self.options, self.channel = parse_redis_url(redis_url, channel)
        self.redis_url = redis_url
        self.mode = mode
        self.stream = stream or self.channel
        self.group = group or f"bubus_{uuid.uuid4().hex[:8]}"
        self.consumer = consumer or self.group
        self.start_id = start_id
        self.maxlen = maxlen
        self.claim_idle = claim_idle
        self.batch = batch
        self.buffer = buffer
        self.send_timeout = send_timeout
        self.block = block
        self._client: Any = None
        self._tg: TaskGroup | None = None
        self._inbox: MemoryObjectSendStream[Delivery] | None = None
        self._outbox: MemoryObjectReceiveStream[Delivery] | None = None
        self._closed = False
        self._receiving = False
        self._pump_scope: anyio.CancelScope | None = None

    @property
    def durable(self) -> bool:
        return self.mode == "stream"

    # ------------------------------------------------------------------ lifetime
    @asynccontextmanager
    async def session(self) -> AsyncGenerator[None]:
        try:
            from coredis import Redis
            from coredis.retry import NoRetryPolicy
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BridgeConnectError(
                "RedisEventBridge needs coredis: pip install 'bubus-anyio[bridges]'"
            ) from exc
        client: Any = Redis(
            **self.options,
            decode_responses=False,
            retry_policy=NoRetryPolicy(),
            connect_timeout=2.0,
            verify_version=False,
        )
        async with client, anyio.create_task_group() as tg:
            self._client, self._tg = client, tg
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                self._client = self._tg = None

    async def connect(self) -> None:
        if self._client is None or self._tg is None:
            raise BridgeConnectError("RedisTransport.connect() needs its session(); use RedisEventBridge")
        from coredis.tokens import PureToken

        if not await self._reachable():
            raise BridgeConnectError(f"cannot reach Redis at redis_url={self.redis_url!r}")
        try:
            with anyio.fail_after(5):
                await self._client.set(INIT_KEY, b"1", ex=60, condition=PureToken.NX)
        except Exception as exc:
            raise BridgeConnectError(f"cannot reach Redis at redis_url={self.redis_url!r}: {exc!r}") from exc
        self._inbox, self._outbox = anyio.create_memory_object_stream[Delivery](self.buffer)
        self._pump_scope = anyio.CancelScope()
        if self.mode == "stream":
            # the group exists from now on, so nothing sent after entering is missed, even before on()
            await self._ensure_group()
        else:
            # subscribed before entering returns; until the bridge reads, messages wait in the bounded
            # buffer and the overflow is dropped, as upstream drops what arrives before its listener starts
            await self._tg.start(self._pump, self._inbox)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pump_scope is not None:
            self._pump_scope.cancel()
        for stream in (self._inbox, self._outbox):
            if stream is not None:
                stream.close()

    async def _reachable(self) -> bool:
        """Does Redis accept TCP connections? Probed before coredis is asked to reconnect, because a
        coredis 6.9 connection that fails to connect leaks two memory streams (ResourceWarnings)."""
        try:
            with anyio.fail_after(2):
                stream = await anyio.connect_tcp(self.options["host"], self.options["port"])
        except (OSError, TimeoutError):
            return False
        await stream.aclose()
        return True

    async def _wait_reachable(self, backoff: Backoff) -> None:
        await backoff.wait()
        while not await self._reachable():
            await backoff.wait()

    # ------------------------------------------------------------------ out
    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Publish (pub/sub: ``headers`` ignored, the message is the body alone) or XADD (stream:
        ``headers`` as a compact JSON ``headers`` field next to ``event``)."""
        client = self._client
        if client is None or self._closed:
            raise BridgeSendError("RedisTransport is not connected")
        if self.mode == "pubsub":  # a pub/sub message is the body alone: headers cannot go along
            await self._retrying("send", client.publish, self.channel, body)
            return
        entry = {b"event": body}
        if headers:  # a field next to the body, which stays byte for byte what upstream writes
            entry[b"headers"] = orjson.dumps(dict(headers))
        if self.maxlen is None:
            await self._retrying("send", client.xadd, self.stream, entry)
        else:
            from coredis.tokens import PureToken

            await self._retrying(
                "send", functools.partial(client.xadd, trim_strategy=PureToken.MAXLEN,
                trim_operator=PureToken.APPROXIMATELY, threshold=self.maxlen), self.stream, entry,
            )  # fmt: skip

    async def _retrying(self, what: str, command: Any, *args: Any) -> None:
        """Run one Redis command, retrying (capped backoff, waiting until Redis accepts connections again)
        for at most ``send_timeout`` seconds, then :class:`BridgeSendError`."""
        backoff = Backoff()
        with anyio.move_on_after(self.send_timeout):
            while True:
                try:
                    await command(*args)
                    return
                except _redis_errors() as exc:
                    logger.debug("redis %s to %s failed (%r); retrying", what, self.redis_url, exc)
                    await self._wait_reachable(backoff)
        raise BridgeSendError(
            f"Redis at {self.redis_url!r} unreachable for send_timeout={self.send_timeout}s ({what})"
        )

    # ------------------------------------------------------------------ in
    async def receive(self) -> AsyncIterator[Delivery]:
        if self._outbox is None or self._tg is None or self._inbox is None:
            raise BridgeConnectError("RedisTransport.receive() before connect()")
        self._receiving = True
        if self.mode == "stream":
            await self._tg.start(self._pump, self._inbox)
        async with self._outbox:
            async for delivery in self._outbox:
                yield delivery

    async def _pump(
        self,
        inbox: MemoryObjectSendStream[Delivery],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """The one reader task (in the session's task group); ``aclose()`` cancels only it."""
        assert self._pump_scope is not None
        with self._pump_scope:
            if self.mode == "pubsub":
                await self._pump_pubsub(inbox, task_status=task_status)
            else:
                await self._pump_stream(inbox, task_status=task_status)

    async def _pump_pubsub(
        self,
        inbox: MemoryObjectSendStream[Delivery],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        backoff, started = Backoff(), False
        async with inbox:
            while True:
                try:
                    async with await self._open_subscriber() as subscriber:
                        if not started:
                            task_status.started()
                            started = True
                        elif backoff.attempts:
                            logger.warning("redis subscriber on %r reconnected", self.channel)
                        backoff.reset()
                        async for body in subscriber:
                            if self._receiving:
                                await inbox.send(Delivery(body))
                            else:
                                try:
                                    inbox.send_nowait(Delivery(body))
                                except anyio.WouldBlock:
                                    logger.debug(
                                        "redis %r: nobody reads yet; dropped a message", self.channel
                                    )
                except (*_CONNECTION_ERRORS, anyio.EndOfStream, RespError) as exc:
                    if not started:
                        raise BridgeConnectError(f"cannot subscribe at {self.redis_url!r}: {exc!r}") from exc
                    logger.warning(
                        "redis subscriber on %r lost its connection (%r); messages published meanwhile are lost",
                        self.channel,
                        exc,
                    )
                    await backoff.wait()

    async def _open_subscriber(self) -> Subscriber:
        o = self.options
        tls = ssl.create_default_context() if o["ssl"] else None
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp(o["host"], o["port"], ssl_context=tls, tls=tls is not None)
            subscriber = Subscriber(stream)
            try:
                if o["password"] is not None:
                    auth = [
                        b"AUTH",
                        *([o["username"].encode()] if o["username"] else []),
                        o["password"].encode(),
                    ]
                    await subscriber.command(*auth)
                await subscriber.subscribe(self.channel.encode())
            except BaseException:
                await stream.aclose()
                raise
        return subscriber

    async def _ensure_group(self) -> None:
        from coredis.exceptions import StreamDuplicateConsumerGroupError

        try:
            await self._client.xgroup_create(self.stream, self.group, self.start_id, mkstream=True)
        except StreamDuplicateConsumerGroupError:
            pass  # BUSYGROUP: resuming an existing group

    async def _pump_stream(
        self,
        inbox: MemoryObjectSendStream[Delivery],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        backoff = Backoff()
        status: TaskStatus[None] | None = task_status
        async with inbox:
            while True:
                try:
                    if status is None:
                        await self._ensure_group()  # a restarted Redis without persistence lost it
                    # our own entries delivered before and never acknowledged (a crash, a reconnect)
                    await self._deliver(inbox, await self._pending_entries(), redelivered=True)
                    if status is not None:
                        status.started()
                        status = None
                    elif backoff.attempts:
                        logger.warning("redis stream reader on %r reconnected", self.stream)
                    backoff.reset()
                    await self._read_stream(inbox)
                except _redis_errors() as exc:
                    if status is not None:
                        raise BridgeConnectError(
                            f"cannot read stream {self.stream!r} at {self.redis_url!r}"
                        ) from exc
                    logger.warning(
                        "redis stream reader on %r lost its connection (%r); retrying", self.stream, exc
                    )
                    await self._wait_reachable(backoff)

    async def _read_stream(self, inbox: MemoryObjectSendStream[Delivery]) -> None:
        client = self._client
        last_claim = anyio.current_time()
        while True:
            # entries other consumers of the group left pending too long
            if anyio.current_time() - last_claim >= self.claim_idle / 2:
                last_claim = anyio.current_time()
                claimed = await client.xautoclaim(
                    self.stream,
                    self.group,
                    self.consumer,
                    int(self.claim_idle * 1000),
                    "0-0",
                    count=self.batch,
                )
                await self._deliver(inbox, claimed[1] if len(claimed) > 1 else (), redelivered=True)
            # new entries
            response: dict[Any, Any] | None = await client.xreadgroup(
                self.group,
                self.consumer,
                streams={self.stream: ">"},
                count=self.batch,
                block=int(self.block * 1000),
            )
            for entries in (response or {}).values():
                await self._deliver(inbox, entries, redelivered=False)

    async def _pending_entries(self) -> tuple[Any, ...]:
        response: dict[Any, Any] | None = await self._client.xreadgroup(
            self.group, self.consumer, streams={self.stream: "0"}, count=10_000
        )
        return tuple(e for entries in (response or {}).values() for e in entries)

    async def _deliver(
        self, inbox: MemoryObjectSendStream[Delivery], entries: Any, *, redelivered: bool
    ) -> None:
        for entry in entries:
            fields = entry.field_values
            if fields is None:  # trimmed away while pending: nothing to deliver, clear it
                await self._ack(entry.identifier)
                continue
            body = fields.get(b"event")
            if not isinstance(body, bytes):
                body = b"<stream entry without an 'event' field: " + repr(dict(fields)).encode()[:150] + b">"
            ack = functools.partial(self._ack, entry.identifier)
            headers = headers_from_json(fields.get(b"headers"))
            await inbox.send(Delivery(body, ack=ack, redelivered=redelivered, headers=headers))

    async def _ack(self, entry_id: bytes) -> None:
        """XACK, retried through an outage like a send (XACK is idempotent)."""
        await self._retrying("ack", self._client.xack, self.stream, self.group, [entry_id])


class RedisEventBridge(SessionBridge):
    """Bridge over Redis: pub/sub as upstream (default) or Redis Streams with ``mode='stream'``.

    ``RedisEventBridge(redis_url, channel=None, *, name=None)`` matches upstream; keyword-only options are
    :class:`RedisTransport`'s (``mode``, ``stream``, ``group``, ``consumer``, ``claim_idle``...) plus the
    :class:`EventBridge` ones (``inbound_buffer``, ``dedupe_window``). In stream mode the consumer group
    defaults to the bridge's name, so give a stable ``name`` (or ``group``) to resume after a restart.
    """

    def __init__(
        self,
        redis_url: str,
        channel: str | None = None,
        *,
        name: str | None = None,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
        **options: Any,
    ) -> None:
        name = name if name is not None else self._default_name()
        options.setdefault("group", name)
        self.redis = RedisTransport(redis_url, channel, **options)
        super().__init__(
            self.redis,
            name=name,
            inbound_buffer=inbound_buffer,
            dedupe_window=dedupe_window,
            propagator=propagator,
        )

    @property
    def channel(self) -> str:
        return self.redis.channel
