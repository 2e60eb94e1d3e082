"""A minimal RESP2 pub/sub client over an anyio byte stream, for the Redis bridge's subscriber.

Ours rather than coredis' pub/sub because coredis buffers pushed messages in an unbounded stream; here the
only buffer is the socket, so a slow reader pushes back on Redis (whose output-buffer limit then drops
the connection) instead of growing memory.
"""

from __future__ import annotations

from typing import Any

from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = ["RespError", "Subscriber"]


class RespError(Exception):
    """Redis answered a subscriber command with an error reply."""


class Subscriber:
    """A minimal RESP2 pub/sub connection: send commands, iterate ``message`` payloads as bytes."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def _write(self, *args: bytes) -> None:
        frame = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        await self.stream.send(frame)

    async def command(self, *args: bytes) -> Any:
        await self._write(*args)
        return await self._read()

    async def subscribe(self, channel: bytes) -> None:
        reply = await self.command(b"SUBSCRIBE", channel)
        if not (isinstance(reply, list) and reply and reply[0] == b"subscribe"):
            raise RespError(f"unexpected SUBSCRIBE reply {reply!r}")

    async def _read(self) -> Any:
        line = await self.reader.receive_until(b"\r\n", 1 << 20)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = await self.reader.receive_exactly(size + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [await self._read() for _ in range(count)]
        raise RespError(f"unexpected RESP frame {line[:50]!r}")

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> bytes:
        while True:
            frame = await self._read()
            if isinstance(frame, list) and len(frame) == 3 and frame[0] == b"message":  # pyright: ignore
                body = frame[2]  # pyright: ignore[reportUnknownVariableType]
                if isinstance(body, bytes):
                    return body
