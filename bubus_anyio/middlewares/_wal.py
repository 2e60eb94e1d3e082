"""Write-ahead log: every completed event as one JSON line, readable back and replayable.

Each line is exactly ``event.to_json()`` (the wire JSON every bubus runtime reads; result rows are not
part of it, as upstream). The line is serialised on the event loop when the completion hook runs, so it
shows the event as it completed, then written by a worker thread (:class:`OrderedWorker`), so the loop
never blocks on the disk. Lines are written whole with one ``write`` and flushed to the OS before the hook
returns: a killed process loses no line whose hook returned. ``fsync`` decides what survives a power cut.
Inside ``async with wal`` a writer task batches the lines instead (cheaper per event; a line reaches the
file a moment after its hook returned, and every queued line before the ``async with`` ends).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import anyio
import anyio.to_thread
import attrs

from bubus_anyio import BaseEvent, EventBus, EventBusError, EventValidationError

from ._protocol import (
    BatchingWriter,
    EventBusMiddleware,
    MiddlewareWriteError,
    OrderedWorker,
    check_number,
    report_write_error,
)

__all__ = ["WALEventBusMiddleware", "WALLineError", "WALReadResult", "read_wal", "replay_wal"]

logger = logging.getLogger("bubus_anyio.middlewares")

FsyncPolicy = Literal["always", "batch", "never"]
_FSYNC_POLICIES = ("always", "batch", "never")
_RECENT_IDS = 10_000


class WALEventBusMiddleware(BatchingWriter, EventBusMiddleware):
    """Append every completed event to ``wal_path`` as one JSON line.

    :param wal_path: the log file; parent directories are created
    :param fsync: ``'always'``: fsync after every line (a line whose hook returned survives a power cut);
        ``'batch'`` (default): fsync at most every ``fsync_interval`` seconds and on :meth:`close` (a crash
        of the process loses nothing, a power cut at most that interval); ``'never'``: leave it to the OS
    :param fsync_interval: seconds between fsyncs for ``'batch'``
    :param max_bytes: rotate before a line would make the file larger than this (None: never rotate); the
        current file is renamed ``<name>.1``, older ones shift to ``.2`` ... ``.<backup_count>``
    :param backup_count: rotated files kept; 0 with ``max_bytes`` is a size cap (the full file is dropped)

    An event forwarded across several buses that share this middleware is written once.
    A failed write (disk full, permission, ...) is logged as :class:`MiddlewareWriteError` and the bus
    carries on; the next event tries again. Call :meth:`close` (or use ``with``) when done.

    Inside ``async with wal`` a writer task batches the lines (see :class:`BatchingWriter`): one
    worker-thread call and at most one fsync per batch; a line then reaches the file a moment after its
    hook returned (``await wal.flush()`` waits for it) and every queued line before the block ends.
    """

    def __init__(
        self,
        wal_path: str | os.PathLike[str],
        *,
        fsync: FsyncPolicy = "batch",
        fsync_interval: float = 1.0,
        max_bytes: int | None = None,
        backup_count: int = 0,
    ) -> None:
        if fsync not in _FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {_FSYNC_POLICIES}, got {fsync!r}")
        if max_bytes is not None:
            check_number("max_bytes", max_bytes, minimum=1, integer=True)
        check_number("backup_count", backup_count, minimum=0, integer=True)
        check_number("fsync_interval", fsync_interval, minimum=0)
        self.wal_path = Path(wal_path)
        self.fsync: FsyncPolicy = fsync
        self.fsync_interval = float(fsync_interval)
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        #: lines written, and writes that failed (each logged)
        self.lines_written = 0
        self.write_errors = 0
        self._file: IO[bytes] | None = None
        self._size = 0
        self._last_fsync = 0.0
        self._unsynced = False
        self._worker = OrderedWorker()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._lines: list[bytes] = []
        self._flush_lock: anyio.Lock | None = None

    async def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        if status != "completed":
            return
        # A forwarded event completes once but is reported by every bus it visited: with one middleware
        # shared by those buses, it is still one line.
        recent = self._recent
        if event.event_id in recent:
            return
        recent[event.event_id] = None
        if len(recent) > _RECENT_IDS:
            recent.popitem(last=False)
        line = (event.to_json() + "\n").encode()
        self._lines.append(line)
        if self.writer_running:
            self._kick()
        else:
            await self.flush()

    async def flush(self) -> bool:
        """Write every line queued so far (in the worker thread) before returning.

        :return: False when a write failed (logged; the lines from the failing one on are lost)
        """
        if self._flush_lock is None:
            self._flush_lock = anyio.Lock()
        async with self._flush_lock:  # batches go out whole and in order
            if not self._lines:
                return True
            batch, self._lines = self._lines, []
            try:
                await self._worker.run(self._append_all, batch)
            except _BatchError as failed:
                self.write_errors += 1
                what = "an event" if failed.lost == 1 else f"{failed.lost} events"
                report_write_error(
                    MiddlewareWriteError(type(self).__name__, str(self.wal_path), what, failed.cause)
                )
                return False
        return True

    def _has_queued(self) -> bool:
        return bool(self._lines)

    # ------------------------------------------------------------------ worker-thread side
    def _open(self) -> IO[bytes]:
        self.wal_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.wal_path, "ab", buffering=0)
        self._size = handle.seek(0, os.SEEK_END)
        return handle

    def _append(self, line: bytes, sync: bool = True) -> None:
        handle = self._file
        if handle is None:
            handle = self._file = self._open()
        if self.max_bytes is not None and self._size and self._size + len(line) > self.max_bytes:
            handle = self._rotate(handle)
        start = self._size
        written = 0
        try:
            while written < len(line):  # unbuffered: one write() normally takes it all
                written += handle.write(line[written:]) or 0
        except OSError:
            if written:  # a partial line (disk full mid-line): cut it off so the next line starts clean
                os.ftruncate(handle.fileno(), start)
            raise
        self._size = start + written
        self.lines_written += 1
        self._unsynced = True
        if not sync:
            return  # more lines of the same batch follow: one fsync after the last
        if self.fsync == "always":
            os.fsync(handle.fileno())
            self._unsynced = False
        elif self.fsync == "batch":
            now = time.monotonic()
            if now - self._last_fsync >= self.fsync_interval:
                os.fsync(handle.fileno())
                self._last_fsync = now
                self._unsynced = False

    def _append_all(self, lines: list[bytes]) -> None:
        for index, line in enumerate(lines):
            try:
                self._append(line, sync=index == len(lines) - 1)
            except OSError as exc:
                handle = self._file
                if index and handle is not None and self.fsync == "always":
                    # the lines before the failing one are written: still make them durable, as promised
                    # (if this fails too, the device is gone; the batch error below reports it)
                    with contextlib.suppress(OSError):
                        os.fsync(handle.fileno())
                        self._unsynced = False
                raise _BatchError(len(lines) - index, exc) from exc

    def _rotate(self, handle: IO[bytes]) -> IO[bytes]:
        if self._unsynced and self.fsync != "never":
            os.fsync(handle.fileno())
        handle.close()
        self._file = None
        if self.backup_count == 0:
            self.wal_path.unlink()
        else:
            for index in range(self.backup_count - 1, 0, -1):
                older = _backup(self.wal_path, index)
                if older.exists():
                    older.replace(_backup(self.wal_path, index + 1))
            self.wal_path.replace(_backup(self.wal_path, 1))
        handle = self._file = self._open()
        return handle

    def close(self) -> None:
        """Flush (fsync unless ``fsync='never'``) and close the file. Idempotent; a later event reopens it."""
        with self._worker.lock:
            handle, self._file = self._file, None
            if handle is None:
                return
            try:
                if self._unsynced and self.fsync != "never":
                    os.fsync(handle.fileno())
            finally:
                self._unsynced = False
                handle.close()


class _BatchError(Exception):
    """A batch write failed after some lines: ``lost`` lines (from the failing one on) were not written."""

    def __init__(self, lost: int, cause: OSError) -> None:
        super().__init__(str(cause))
        self.lost = lost
        self.cause = cause


def _backup(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def wal_files(wal_path: str | os.PathLike[str]) -> list[Path]:
    """The log's files, oldest first: rotated backups ``.N`` ... ``.1`` then the current file."""
    path = Path(wal_path)
    backups: list[tuple[int, Path]] = []
    for candidate in path.parent.glob(f"{path.name}.*"):
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit():
            backups.append((int(suffix), candidate))
    files = [p for _, p in sorted(backups, reverse=True)]
    if path.exists():
        files.append(path)
    return files


# ---------------------------------------------------------------------------------------- reading back
@attrs.frozen
class WALLineError:
    """A line that could not be read back: which file, which line (1-based), why, and its start."""

    path: str
    line_number: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_number}: {self.reason} (line starts {self.text[:60]!r})"


@attrs.frozen
class WALReadResult:
    """What :func:`read_wal` found: the events in log order and every line it had to skip."""

    events: list[BaseEvent[Any]]
    errors: list[WALLineError]


class WALCorruptError(EventBusError, ValueError):
    """``read_wal(strict=True)`` met a line it cannot read; ``error`` says where and why."""

    def __init__(self, error: WALLineError) -> None:
        super().__init__(str(error))
        self.error = error


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without the newline, whether the line ended with a newline)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            ended = raw.endswith(b"\n")
            yield number, raw.rstrip(b"\r\n") if ended else raw, ended


def read_wal(
    wal_path: str | os.PathLike[str], *, include_rotated: bool = True, strict: bool = False
) -> WALReadResult:
    """Read the events of a write-ahead log back, oldest first (rotated files too, unless told not to).

    A line that is truncated (a crash mid-write: no final newline, or JSON cut short), not JSON, or not a
    valid event is skipped and reported: logged at WARNING with its file and line number, and listed in
    ``errors``. Blank lines are ignored. Blocking; from async code use ``anyio.to_thread.run_sync``.

    :param strict: raise :class:`WALCorruptError` at the first bad line instead of skipping it
    :raises FileNotFoundError: the log does not exist
    """
    files = wal_files(wal_path) if include_rotated else [Path(wal_path)]
    if not files:
        raise FileNotFoundError(f"no write-ahead log at {os.fspath(wal_path)}")
    events: list[BaseEvent[Any]] = []
    errors: list[WALLineError] = []
    for path in files:
        for number, raw, ended in _iter_lines(path):
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="replace")
            reason: str | None = None
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    reason = f"not a JSON object ({type(data).__name__})"  # pyright: ignore[reportUnknownArgumentType]
                else:
                    events.append(BaseEvent.from_json(data))  # pyright: ignore[reportUnknownArgumentType]
            except ValueError as exc:  # JSONDecodeError and EventValidationError are ValueErrors
                kind = "invalid event" if isinstance(exc, EventValidationError) else "invalid JSON"
                reason = f"{kind}: {exc}"
            if reason is not None:
                if not ended:
                    reason = f"truncated last line (no newline; a crash mid-write?): {reason}"
                error = WALLineError(str(path), number, reason, text)
                if strict:
                    raise WALCorruptError(error)
                logger.warning("write-ahead log: skipping %s", error)
                errors.append(error)
    return WALReadResult(events, errors)


def _as_pending(event: BaseEvent[Any]) -> BaseEvent[Any]:
    data = event.to_dict()
    data.update(event_status="pending", event_started_at=None, event_completed_at=None)
    data["event_pending_bus_count"] = 0
    fresh: BaseEvent[Any] = BaseEvent[Any].from_json(data)
    return fresh


async def replay_wal(
    wal_path: str | os.PathLike[str], bus: EventBus, *, reprocess: bool = True, include_rotated: bool = True
) -> WALReadResult:
    """Emit the log's events onto a running ``bus``, in log order, and return what was read.

    With ``reprocess=True`` each event is emitted as a pending event with its original id and payload, so
    the bus's handlers run again (rebuild state after a restart); with ``False`` the completed events only
    go into the bus's history (``find`` sees them, nothing runs). Bad lines are skipped and reported as by
    :func:`read_wal`. The file is read in a worker thread; returns once every event is emitted (await
    ``bus.wait_until_idle()`` to wait for their processing).
    """
    read = await anyio.to_thread.run_sync(lambda: read_wal(wal_path, include_rotated=include_rotated))
    for event in read.events:
        bus.emit(_as_pending(event) if reprocess else event)
    return read
