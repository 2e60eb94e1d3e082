"""JSONL file bridge: every process appends one JSON event per line to a shared file and tails it.

No server, nothing to install: the default to start with. Writers append whole lines (the file is opened
``O_APPEND``, each line is one ``write`` under an exclusive ``portalocker`` lock, so lines from many
processes never interleave). Readers keep a byte offset and poll; they buffer a partial last line until
its newline arrives, start over when the file is truncated, and follow rotation (the path now names a
different inode): they finish the old file, then read the new one from its start. All file I/O runs in a
worker thread, one at a time per bridge, so the event loop never blocks on the disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO, Any

import anyio
import attrs
import orjson
import portalocker

from ._bridge import EventBridge
from ._transport import (
    Backoff,
    BridgeConnectError,
    BridgeFrameTooLargeError,
    BridgeSendError,
    Delivery,
    TracePropagator,
)

__all__ = ["JSONLEventBridge", "JSONLTransport"]

logger = logging.getLogger("bubus.bridges")

_CHUNK = 1 << 20


@attrs.define
class _Tail:
    """The reader's position in the file (used from one worker thread at a time)."""

    path: Path
    max_line_bytes: int
    offset: int = 0
    inode: int | None = None
    partial: bytearray = attrs.field(factory=bytearray)
    skipping: bool = False  # inside an oversize line: drop bytes until its newline
    handle: IO[bytes] | None = None
    rotations: int = 0
    truncations: int = 0

    def open_at(self, offset: int | None, inode: int | None = None) -> None:
        """Open the file; ``offset=None`` starts at its current end. A saved ``(inode, offset)`` applies
        only to the same file (after a rotation the new file is read from its start)."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        st = os.fstat(handle.fileno())
        self.handle, self.inode = handle, st.st_ino
        if offset is None:
            self.offset = st.st_size
        elif inode is not None and inode != st.st_ino:
            self.offset = 0
        else:
            self.offset = min(offset, st.st_size)

    def poll(self) -> list[tuple[bytes, int, int]]:
        """Whole new lines as ``(line, inode, end offset)``; checks for truncation and rotation."""
        out: list[tuple[bytes, int, int]] = []
        if self.handle is None:
            self.open_at(0)
            if self.handle is None:
                return out
        self._drain(out)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return out  # rotated away and not recreated yet: keep the old handle
        if st.st_ino != self.inode:
            self._drain(out)  # whatever the old file got after our last read
            self.close()
            self.partial.clear()
            self.skipping = False
            self.rotations += 1
            self.open_at(0)
            self._drain(out)
        elif st.st_size < self.offset:
            logger.warning(
                "%s was truncated (size %d < offset %d): reading from 0", self.path, st.st_size, self.offset
            )
            self.truncations += 1
            self.offset = 0
            self.partial.clear()
            self.skipping = False
            self._drain(out)
        return out

    def _drain(self, out: list[tuple[bytes, int, int]]) -> None:
        handle, inode = self.handle, self.inode
        if handle is None or inode is None:  # the new file vanished between stat and open
            return
        handle.seek(self.offset)
        while True:
            data = handle.read(_CHUNK)
            if not data:
                return
            start = self.offset
            self.offset += len(data)
            pos = 0
            while True:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    self._keep(data[pos:], start + pos)
                    break
                if self.skipping:
                    self.skipping = False
                else:
                    self.partial += data[pos:newline]
                    line = bytes(self.partial).strip()
                    self.partial.clear()
                    if len(line) > self.max_line_bytes:
                        self._too_large(line, start + newline)
                    elif line:
                        out.append((line, inode, start + newline + 1))
                pos = newline + 1

    def _keep(self, rest: bytes, at: int) -> None:
        if self.skipping:
            return
        self.partial += rest
        if len(self.partial) > self.max_line_bytes:
            self._too_large(bytes(self.partial), at)
            self.partial.clear()
            self.skipping = True

    def _too_large(self, line: bytes, at: int) -> None:
        error = BridgeFrameTooLargeError(
            line, f"line longer than max_line_bytes={self.max_line_bytes} near offset {at}"
        )
        logger.warning("%s: skipping a line: %s: %s", self.path, type(error).__name__, error)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class JSONLTransport:
    """Appends to and tails one JSONL file (see the module docstring). Implements ``Transport``.

    :param path: the shared file (created, with its directory, when missing)
    :param poll_interval: seconds between looks at the file when there was nothing new
    :param max_line_bytes: longer lines are skipped as :class:`BridgeFrameTooLargeError`
    :param offset_path: turns on durable mode: the offset of the last acknowledged line is kept in this
        file, and a restarted reader resumes there (at-least-once) instead of at the end of the file
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_interval: float = 0.25,
        max_line_bytes: int = 16 << 20,
        offset_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval!r}")
        self.path = Path(path)
        self.poll_interval = poll_interval
        self.offset_path = Path(offset_path) if offset_path is not None else None
        self._tail = _Tail(self.path, max_line_bytes)
        self._limiter = anyio.CapacityLimiter(1)
        self._writer: IO[bytes] | None = None
        self._acked: tuple[int, int] | None = None
        self._saved: tuple[int, int] | None = None
        self._closed = False
        self.polls = 0
        """How many times the reader looked at the file (for tests and monitoring)."""

    @property
    def durable(self) -> bool:
        return self.offset_path is not None

    @property
    def rotations(self) -> int:
        """How many times the reader followed the path to a new file."""
        return self._tail.rotations

    @property
    def truncations(self) -> int:
        return self._tail.truncations

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    async def connect(self) -> None:
        try:
            await self._run(self._connect)
        except OSError as exc:
            raise BridgeConnectError(f"cannot open JSONL file {str(self.path)!r}: {exc}") from exc

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        saved = self._load_offset()
        if saved is None:
            self._tail.open_at(None)  # as upstream: only what is written from now on
        else:
            self._tail.open_at(saved[1], saved[0])
            self._saved = saved

    def _load_offset(self) -> tuple[int, int] | None:
        if self.offset_path is None:
            return None
        try:
            data = orjson.loads(self.offset_path.read_bytes())
            return int(data["inode"]), int(data["offset"])
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BridgeConnectError(
                f"offset file {str(self.offset_path)!r} is not {{'inode': int, 'offset': int}}: {exc}"
            ) from exc

    def _save_offset(self) -> None:
        acked = self._acked
        if self.offset_path is None or acked is None or acked == self._saved:
            return
        tmp = self.offset_path.with_name(self.offset_path.name + ".tmp")
        tmp.write_bytes(orjson.dumps({"inode": acked[0], "offset": acked[1]}))
        tmp.replace(self.offset_path)
        self._saved = acked

    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Append ``body`` as one line. Waits only for the disk and the lock other writers hold.
        ``headers`` are ignored: a line is the event's JSON alone (upstream's format).

        :raises BridgeSendError: the file cannot be written (the OS error is attached)
        """
        if self._closed:
            raise BridgeSendError(f"JSONL transport for {str(self.path)!r} is closed")
        try:
            await self._run(self._append, body + b"\n")
        except OSError as exc:
            raise BridgeSendError(f"cannot append to JSONL file {str(self.path)!r}: {exc}") from exc

    def _append(self, line: bytes) -> None:
        writer = self._writer
        if writer is not None:
            try:
                rotated = os.stat(self.path).st_ino != os.fstat(writer.fileno()).st_ino
            except FileNotFoundError:
                rotated = True
            if rotated:  # follow the path to the new file, as the readers do
                writer.close()
                writer = self._writer = None
        if writer is None:
            writer = self._writer = open(self.path, "ab", buffering=0)  # kept open across writes
        portalocker.lock(writer, portalocker.LOCK_EX)
        try:
            view = memoryview(line)
            while view:
                view = view[writer.write(view) or 0 :]
        finally:
            portalocker.unlock(writer)

    async def receive(self) -> AsyncIterator[Delivery]:
        """New lines, forever. A failing read (an I/O or permission error) is logged and retried with
        backoff: the reader never dies of it."""
        backoff = Backoff(initial=self.poll_interval, cap=max(2.0, self.poll_interval))
        while not self._closed:
            try:
                lines: list[tuple[bytes, int, int]] = await self._run(self._poll)
            except OSError as exc:
                logger.warning("%s: reading failed (retrying): %r", self.path, exc)
                await backoff.wait()
                continue
            backoff.reset()
            for line, inode, end in lines:
                yield Delivery(line, ack=self._acker(inode, end))
            if not lines:
                await anyio.sleep(self.poll_interval)

    def _poll(self) -> list[tuple[bytes, int, int]]:
        self.polls += 1
        self._save_offset()
        return self._tail.poll()

    def _acker(self, inode: int, end: int) -> Callable[[], Awaitable[None]] | None:
        if self.offset_path is None:
            return None

        async def ack() -> None:  # acks come in line order: the newest one is the resume point
            self._acked = (inode, end)

        return ack

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._run(self._close)

    def _close(self) -> None:
        self._save_offset()
        self._tail.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class JSONLEventBridge(EventBridge):
    """Events through a shared JSONL file (upstream ``JSONLEventBridge``; same line format).

    Fire-and-forget by default: a reader sees the lines appended while it runs, from the moment it
    entered (at-most-once: what is written while no reader runs is kept in the file but not delivered).
    Give ``offset_path`` for at-least-once: the reader resumes after the last line its bus finished.

    :param path: the shared file
    :param poll_interval: seconds between polls when nothing new arrived (latency floor)
    :param name: the inbound bus's name (default ``JSONLEventBridge_{8 hex}``)
    :param offset_path: durable mode (see :class:`JSONLTransport`)
    :param max_line_bytes: longer lines are skipped with :class:`BridgeFrameTooLargeError`
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_interval: float = 0.25,
        name: str | None = None,
        offset_path: str | os.PathLike[str] | None = None,
        max_line_bytes: int = 16 << 20,
        inbound_buffer: int = 1024,
        dedupe_window: int = 10_000,
        propagator: TracePropagator | None = None,
    ) -> None:
        self.path = Path(path)
        super().__init__(
            JSONLTransport(
                path, poll_interval=poll_interval, offset_path=offset_path, max_line_bytes=max_line_bytes
            ),
            name=name,
            inbound_buffer=inbound_buffer,
            dedupe_window=dedupe_window,
            propagator=propagator,
        )
