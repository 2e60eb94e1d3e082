"""HTTP bridge: ``emit`` POSTs the event's compact JSON to ``send_to``; with inbound handlers, an ASGI
endpoint served by hypercorn on ``listen_on`` takes them in. Upstream's ``HTTPEventBridge`` wire
behaviour: only ``POST`` on the exact path (query included) is accepted, with ``202 accepted``; another
method gets ``405``, another path ``404``, a body that is not a JSON object ``400``, a failure to take it
in ``500``; every response says ``connection: close``. The sender waits at most ``timeout`` (10 s) and
treats any non-2xx answer as :class:`BridgeHTTPStatusError`.

At-most-once. ``202`` means the event was queued for the receiving bus, not that a handler ran. A sender
whose connection is refused retries with backoff within ``timeout`` (nothing was sent yet); any other
failure is raised, never retried (the peer might have the event already).
Needs the ``bridges`` extra (httpx, hypercorn).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import orjson
from anyio.abc import TaskStatus

from ._bridge import EventBridge
from ._transport import (
    Backoff,
    BridgeConnectError,
    BridgeDecodeError,
    BridgeSendError,
    Delivery,
    Inbox,
    TracePropagator,
)

try:
    import httpx
    from hypercorn.config import Config
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"HTTPEventBridge needs httpx and hypercorn: pip install 'bubus-anyio[bridges]' ({_missing})"
    ) from _missing

__all__ = ["BridgeHTTPStatusError", "HTTPEventBridge", "HTTPTransport"]

logger = logging.getLogger("bubus.bridges")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BridgeHTTPStatusError(BridgeSendError):
    """The receiving endpoint answered with a non-2xx status.

    :ivar status_code: the HTTP status it answered
    """

    def __init__(self, url: str, status_code: int, body: str) -> None:
        self.status_code = status_code
        super().__init__(f"POST {url} answered {status_code}: {body[:200]!r}")


def _request_target(url: str) -> tuple[str, int, str]:
    """``http://host:port/path?query`` -> (host, port, ``/path?query``)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"listen_on must be http://host[:port][/path], got {url!r}")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return parts.hostname, parts.port if parts.port is not None else 80, target


class HTTPTransport:
    """POST out, ASGI endpoint in (see the module docstring). Implements ``ServingTransport``.

    :param send_to: ``http(s)://...`` URL ``send`` POSTs to (None: this side only listens)
    :param listen_on: ``http://host:port/path`` to serve (None: this side only sends); port 0 picks a
        free port, see :attr:`listening_url`
    :param timeout: seconds per POST (upstream: 10)
    :param max_body_bytes: larger request bodies get ``400``
    :param buffer: requests queued for the bridge before new ones wait (and so their senders)
    """

    durable = False

    def __init__(
        self,
        send_to: str | None = None,
        listen_on: str | None = None,
        *,
        timeout: float = 10.0,
        max_body_bytes: int = 16 << 20,
        buffer: int = 256,
    ) -> None:
        if send_to is not None and urlsplit(send_to).scheme not in ("http", "https"):
            raise ValueError(f"send_to must be an http:// or https:// URL, got {send_to!r}")
        self.send_to = send_to
        self.listen_on = listen_on
        self._bind = _request_target(listen_on) if listen_on is not None else None
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.listening_url: str | None = None
        """The URL actually served once listening (with the real port)."""
        self._inbox = Inbox(buffer)
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    async def connect(self) -> None:
        self._inbox.open()
        if self.send_to is not None:
            self._client = httpx.AsyncClient(timeout=self.timeout)

    # ------------------------------------------------------------------ sending
    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """POST ``body`` to ``send_to``, ``headers`` as request headers (trace context).

        :raises BridgeSendError: no ``send_to``, the peer could not be reached within ``timeout``
        :raises BridgeHTTPStatusError: the peer answered non-2xx
        """
        client, url = self._client, self.send_to
        if client is None or url is None or self._closed:
            raise BridgeSendError("this HTTPEventBridge has no send_to URL (or is closed); it only listens")
        request_headers = {**(headers or {}), "content-type": "application/json"}
        backoff = Backoff()
        last: Exception | None = None
        with anyio.move_on_after(self.timeout):
            while True:
                try:
                    response = await client.post(url, content=body, headers=request_headers)
                except httpx.ConnectError as exc:  # nothing sent yet: safe to try again
                    last = exc
                    await backoff.wait()
                    continue
                except httpx.HTTPError as exc:
                    raise BridgeSendError(f"POST {url} failed: {exc!r}") from exc
                if not 200 <= response.status_code < 300:
                    raise BridgeHTTPStatusError(url, response.status_code, response.text)
                return
        raise BridgeSendError(f"POST {url}: cannot connect within timeout={self.timeout}s: {last!r}")

    # ------------------------------------------------------------------ the endpoint
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application: hypercorn runs it, and any ASGI server could."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        assert self._bind is not None
        target = scope.get("raw_path") or scope["path"].encode()
        if isinstance(target, bytes):
            target = target.decode("latin-1")
        if scope.get("query_string"):
            target = f"{target}?{scope['query_string'].decode('latin-1')}"
        if scope["method"] != "POST":
            await _respond(send, 405, "method not allowed")
            return
        if target != self._bind[2]:
            await _respond(send, 404, "not found")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _respond(send, 400, f"body larger than {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            if not isinstance(orjson.loads(body), dict):
                raise BridgeDecodeError(body, "not a JSON object")
        except (orjson.JSONDecodeError, BridgeDecodeError) as exc:
            error = exc if isinstance(exc, BridgeDecodeError) else BridgeDecodeError(body, f"not JSON: {exc}")
            logger.warning("%s refused a request: %s: %s", self.listening_url, type(error).__name__, error)
            await _respond(send, 400, f"bad request: {error.reason}")
            return
        try:
            await self._inbox.put(
                body, _trace_headers(scope)
            )  # waits while the bridge is busy: backpressure to the sender
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            await _respond(send, 500, "failed to process event")
            return
        await _respond(send, 202, "accepted")

    def _bind_socket(self) -> socket.socket:
        assert self._bind is not None
        host, port, target = self._bind
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise BridgeConnectError(f"cannot listen on {self.listen_on!r}: {exc}") from exc
        bound_host, bound_port = sock.getsockname()[:2]
        self.listening_url = f"http://{bound_host}:{bound_port}{target}"
        return sock

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind ``listen_on`` and serve :meth:`app` with hypercorn until cancelled."""
        if self._bind is None:
            task_status.started()
            await anyio.sleep_forever()
        sock = self._bind_socket()  # here, not in hypercorn: a bind error becomes BridgeConnectError
        config = Config()
        config.bind = [f"fd://{os.dup(sock.fileno())}"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        config.errorlog = logger
        stop, done = anyio.Event(), anyio.Event()
        hypercorn_scope = anyio.CancelScope(shield=True)

        async def run_hypercorn() -> None:
            # shielded: on our cancellation hypercorn gets a graceful shutdown (it then closes its
            # sockets and connections) instead of a cancellation in the middle of its own tasks
            try:
                with hypercorn_scope:
                    await _serve(self.app, config, stop.wait)
            finally:
                done.set()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_hypercorn)
                task_status.started()
                try:
                    await anyio.sleep_forever()
                finally:
                    stop.set()
                    with anyio.CancelScope(shield=True), anyio.move_on_after(config.graceful_timeout + 1):
                        await done.wait()
                    hypercorn_scope.cancel()  # still running past its grace period: stop it the hard way
        finally:
            sock.close()

    async def receive(self) -> AsyncIterator[Delivery]:
        async for delivery in self._inbox.messages():
            yield delivery

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.close()
        if self._client is not None:
            with anyio.CancelScope(shield=True):
                await self._client.aclose()


_TRACE_HEADERS = (b"traceparent", b"tracestate")


def _trace_headers(scope: Scope) -> dict[str, str]:
    """The W3C trace context request headers (``traceparent``, ``tracestate``), the only ones a
    :class:`~bubus_anyio.bridges.Delivery` carries: the rest is HTTP's own business."""
    found: dict[str, str] = {}
    for name, value in cast(list[tuple[bytes, bytes]], scope.get("headers", [])):
        if name.lower() in _TRACE_HEADERS:
            found[name.lower().decode("latin-1")] = value.decode("latin-1")
    return found


async def _respond(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _serve(
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
    config: Config,
    shutdown: Callable[[], Awaitable[Any]],
) -> None:
    """Run hypercorn on the running anyio backend until ``shutdown()`` returns.

    BACKEND-SPECIFIC SPOT: hypercorn has one ``serve`` per event loop, so this picks
    ``hypercorn.trio.serve`` or ``hypercorn.asyncio.serve`` by the backend anyio runs on.
    """
    import asyncio

    try:  # a running asyncio loop means the asyncio backend (sniffio is only there with trio installed)
        asyncio.get_running_loop()
        module = "hypercorn.asyncio"
    except RuntimeError:
        module = "hypercorn.trio"
    serve = cast(Callable[..., Awaitable[None]], importlib.import_module(module).serve)
    await serve(app, config, shutdown_trigger=shutdown, mode="asgi")


class HTTPEventBridge(EventBridge):
    """Events over HTTP (upstream ``HTTPEventBridge``; same requests and answers).

    ``send_to`` is where ``emit`` POSTs; ``listen_on`` is served once the bridge has inbound handlers.
    At-most-once (see the module docs).

    :param send_to: ``http(s)://host:port/path`` of the other side's ``listen_on``
    :param listen_on: ``http://host:port/path`` to serve (port 0: pick one, see ``bridge.http.listening_url``)
    :param name: the inbound bus's name (default ``HTTPEventBridge_{8 hex}``)
    :param timeout: seconds per POST (default 10, as upstream)
    :param max_body_bytes: larger request bodies get ``400``
    :param request_buffer: accepted requests queued for the bridge; past that a request waits for room
        (and so does its sender)
    """

    def __init__(
        self,
        send_to: str | None = None,
        listen_on: str | None = None,
        *,
        name: str | None = None,
        timeout: float = 10.0,
        max_body_bytes: int = 16 << 20,
        request_buffer: int = 256,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
    ) -> None:
        self.send_to = send_to
        self.listen_on = listen_on
        self.http: HTTPTransport = HTTPTransport(
            send_to, listen_on, timeout=timeout, max_body_bytes=max_body_bytes, buffer=request_buffer
        )
        super().__init__(
            self.http,
            name=name,
            inbound_buffer=inbound_buffer,
            dedupe_window=dedupe_window,
            propagator=propagator,
        )
