"""Socket bridge: a Unix domain socket (upstream's ``SocketEventBridge``) or a TCP port, one JSON event
per frame.

One address, two roles, as upstream: a bridge with inbound handlers *listens* on the address; ``emit``
*connects* to it and writes a frame. Frames are newline-delimited compact JSON by default, which is what
upstream reads and writes; ``framing="length"`` uses a 4-byte big-endian length prefix instead (both
ends must agree). Each inbound connection is read by its own task; a frame larger than
``max_frame_bytes`` drops that connection (logged as :class:`BridgeFrameTooLargeError`) while the
listener keeps serving the others.

Delivery is at-most-once. The sender keeps one connection open and reconnects with backoff when it
breaks, for at most ``send_timeout`` before :class:`BridgeSendError`; a frame written just before the
peer went away can be lost without an error (the kernel had accepted it). Nothing is redelivered.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteStream, Listener, SocketAttribute, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from ._bridge import EventBridge
from ._transport import (
    Backoff,
    BridgeConnectError,
    BridgeFrameTooLargeError,
    BridgeSendError,
    Delivery,
    Inbox,
    TracePropagator,
)

__all__ = ["SocketEventBridge", "SocketTransport"]

logger = logging.getLogger("bubus.bridges")

UNIX_PATH_MAX_BYTES = 90
"""Upstream's limit for socket paths (the OS limit is 104-108 bytes, minus room for a prefix)."""

Framing = Literal["newline", "length"]
_LENGTH = struct.Struct(">I")


def parse_address(address: str) -> tuple[Literal["unix"], str, None] | tuple[Literal["tcp"], str, int]:
    """``/path``, ``unix:///path`` or ``tcp://host:port`` -> ``("unix", path, None)`` / ``("tcp", host, port)``.

    :raises ValueError: naming the address, for an empty or too long path, a bad scheme or port
    """
    if address.startswith("tcp://"):
        parts = urlsplit(address)
        if not parts.hostname or parts.port is None:
            raise ValueError(f"socket address {address!r}: tcp:// needs host and port (tcp://127.0.0.1:9000)")
        return "tcp", parts.hostname, parts.port
    path = address[len("unix://") :] if address.startswith("unix://") else address
    if "://" in path or not path:
        raise ValueError(f"socket address {address!r}: expected /path, unix:///path or tcp://host:port")
    size = len(path.encode())
    if size > UNIX_PATH_MAX_BYTES:
        raise ValueError(
            f"socket address {address!r}: Unix socket path is {size} bytes, max {UNIX_PATH_MAX_BYTES}"
        )
    return "unix", path, None


class SocketTransport:
    """Frames over a Unix or TCP socket (see the module docstring). Implements ``ServingTransport``.

    :param address: ``/abs/path.sock``, ``unix:///abs/path.sock`` or ``tcp://host:port`` (port 0 picks a
        free port when listening; see :attr:`listening_address`)
    :param framing: ``"newline"`` (upstream's) or ``"length"`` (4-byte big-endian prefix)
    :param max_frame_bytes: larger inbound frames drop their connection
    :param send_timeout: how long ``send`` keeps reconnecting before :class:`BridgeSendError`
    :param buffer: frames read but not yet taken by the bridge before connections stop being read
    """

    durable = False

    def __init__(
        self,
        address: str,
        *,
        framing: Framing = "newline",
        max_frame_bytes: int = 16 << 20,
        send_timeout: float = 10.0,
        buffer: int = 256,
    ) -> None:
        if framing not in ("newline", "length"):
            raise ValueError(f"framing must be 'newline' or 'length', got {framing!r}")
        self.address = address
        self.kind, self.host, self.port = parse_address(address)
        self.framing: Framing = framing
        self.max_frame_bytes = max_frame_bytes
        self.send_timeout = send_timeout
        self.listening_address: str | None = None
        """The address actually bound once listening (``tcp://host:port`` with the real port)."""
        self.connections = 0
        """Inbound connections accepted so far."""
        self._inbox = Inbox(buffer)
        self._stream: ByteStream | None = None
        self._send_lock = anyio.Lock()
        self._bound_path: Path | None = None
        self._closed = False

    def frame(self, body: bytes) -> bytes:
        if self.framing == "newline":
            if b"\n" in body:
                raise BridgeSendError(
                    "a newline-framed message must not contain a newline (compact JSON has none)"
                )
            return body + b"\n"
        return _LENGTH.pack(len(body)) + body

    async def connect(self) -> None:
        """Nothing to connect yet: the sender connects on first ``send``, the listener in ``serve``."""
        self._inbox.open()

    # ------------------------------------------------------------------ sending
    async def _open(self) -> ByteStream:
        if self.kind == "unix":
            return await anyio.connect_unix(self.host)
        assert self.port is not None
        return await anyio.connect_tcp(self.host, self.port)

    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Write one frame, (re)connecting as needed for at most ``send_timeout`` seconds.
        ``headers`` are ignored: a frame is the event's JSON alone (upstream's framing).

        :raises BridgeSendError: nobody listens on the address for that long, or the transport is closed
        """
        frame = self.frame(body)
        async with self._send_lock:
            backoff = Backoff()
            last: Exception | None = None
            with anyio.move_on_after(self.send_timeout):
                while not self._closed:
                    try:
                        if self._stream is None:
                            self._stream = await self._open()
                        try:
                            await self._stream.send(frame)
                        except BaseException:
                            # cancelled or failed mid-frame: the next frame must not follow half of this one
                            await self._drop_stream()
                            raise
                        return
                    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                        last = exc
                        await self._drop_stream()
                        await backoff.wait()
            if self._closed:
                raise BridgeSendError(f"socket transport for {self.address!r} is closed")
            raise BridgeSendError(
                f"cannot send to socket {self.address!r} within send_timeout={self.send_timeout}s: {last!r}"
            )

    async def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    # ------------------------------------------------------------------ listening
    async def _listen(self) -> Listener[ByteStream]:
        try:
            if self.kind == "unix":
                path = Path(self.host)
                if not path.is_absolute():
                    raise BridgeConnectError(
                        f"socket address {self.address!r}: a listening path must be absolute"
                    )
                await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
                if await anyio.Path(path).is_socket():
                    try:  # somebody live answers there: do not steal their address
                        await (await anyio.connect_unix(path)).aclose()
                    except OSError:  # stale, from a process that died: take it over
                        await anyio.Path(path).unlink(missing_ok=True)
                    else:
                        raise BridgeConnectError(
                            f"socket address {self.address!r}: another process listens there"
                        )
                listener = await anyio.create_unix_listener(path)
                self._bound_path = path
                self.listening_address = f"unix://{path}"
                return listener  # type: ignore[return-value]
            assert self.port is not None
            tcp = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
            host, port = tcp.extra(SocketAttribute.local_address)[:2]  # type: ignore[misc]
            self.listening_address = f"tcp://{host}:{port}"
            return tcp  # type: ignore[return-value]
        except OSError as exc:
            raise BridgeConnectError(f"cannot listen on socket {self.address!r}: {exc}") from exc

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Accept connections and read their frames until cancelled (each connection in its own task)."""
        listener = await self._listen()
        try:
            async with listener, anyio.create_task_group() as tg:
                task_status.started()
                await listener.serve(self._read_connection, task_group=tg)
        finally:
            await self._unlink()

    async def _read_connection(self, stream: ByteStream) -> None:
        self.connections += 1
        buffered = BufferedByteReceiveStream(stream)
        try:
            async with stream:
                last = False
                while not last:
                    frame, last = await self._read_frame(buffered)
                    if frame.strip():
                        await self._inbox.put(frame)
        except BridgeFrameTooLargeError as exc:
            logger.warning("%s: dropping a connection: %s: %s", self.address, type(exc).__name__, exc)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            logger.debug("%s: connection lost: %r", self.address, exc)

    async def _read_frame(self, stream: BufferedByteReceiveStream) -> tuple[bytes, bool]:
        """The next frame, and whether the connection has ended (then the frame may be empty)."""
        try:
            if self.framing == "newline":
                try:
                    return await stream.receive_until(b"\n", self.max_frame_bytes), False
                except anyio.DelimiterNotFound as exc:
                    raise BridgeFrameTooLargeError(
                        bytes(stream.buffer), f"no newline within max_frame_bytes={self.max_frame_bytes}"
                    ) from exc
            header = await stream.receive_exactly(_LENGTH.size)
            (size,) = _LENGTH.unpack(header)
            if size > self.max_frame_bytes:
                raise BridgeFrameTooLargeError(
                    header, f"frame of {size} bytes > max_frame_bytes={self.max_frame_bytes}"
                )
            return await stream.receive_exactly(size), False
        except anyio.IncompleteRead:
            # as upstream's readline: a last line without its newline still counts
            return (bytes(stream.buffer) if self.framing == "newline" else b""), True

    async def receive(self) -> AsyncIterator[Delivery]:
        async for delivery in self._inbox.messages():
            yield delivery

    async def _unlink(self) -> None:
        path, self._bound_path = self._bound_path, None
        if path is not None:
            with anyio.CancelScope(shield=True):
                await anyio.Path(path).unlink(missing_ok=True)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._drop_stream()
        self._inbox.close()
        await self._unlink()


class SocketEventBridge(EventBridge):
    """Events over a Unix domain socket (upstream ``SocketEventBridge``) or TCP, one JSON object a frame.

    With inbound handlers it listens on ``path``; ``emit`` sends to whoever listens there. At-most-once
    (see :mod:`the module docs <bubus_anyio.bridges._socket>`).

    :param path: ``/abs/path.sock``, ``unix:///abs/path.sock`` (<= 90 bytes) or ``tcp://host:port``
    :param name: the inbound bus's name (default ``SocketEventBridge_{8 hex}``)
    :param framing: ``"newline"`` (default, upstream's) or ``"length"``
    :param max_frame_bytes: larger inbound frames drop their connection
    :param send_timeout: seconds ``emit`` keeps reconnecting before :class:`BridgeSendError`
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        framing: Framing = "newline",
        max_frame_bytes: int = 16 << 20,
        send_timeout: float = 10.0,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.socket: SocketTransport = SocketTransport(
            self.path, framing=framing, max_frame_bytes=max_frame_bytes, send_timeout=send_timeout
        )
        super().__init__(
            self.socket,
            name=name,
            inbound_buffer=inbound_buffer,
            dedupe_window=dedupe_window,
            propagator=propagator,
        )
