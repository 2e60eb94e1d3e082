"""Write-ahead log: one wire-JSON line per completed event, read back and replayed; bad lines are reported
with their line numbers and skipped; write failures are logged and the bus goes on; a killed writer loses
nothing it reported as written."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from _mw_helpers import file_names, file_sizes

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.middlewares import (
    MiddlewareWriteError,
    WALCorruptError,
    WALEventBusMiddleware,
    read_wal,
    replay_wal,
)

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
HAVE_DEV_FULL = os.path.exists("/dev/full")


class WalPing(BaseEvent[int]):
    n: int = 0
    note: str = ""


def wal_double(event: WalPing) -> int:
    return event.n * 2


class TestWriting:
    async def test_each_completed_event_is_one_line_of_its_wire_json(self, tmp_path: Path) -> None:
        path = tmp_path / "nested" / "events.jsonl"
        with WALEventBusMiddleware(path, fsync="always") as wal:
            async with EventBus("WalWrite", middlewares=[wal]) as bus:
                bus.on(WalPing, wal_double)
                events = [await bus.emit(WalPing(n=n, note="é\n")) for n in range(3)]
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines == [event.to_json() for event in events]
        assert [json.loads(line)["event_status"] for line in lines] == ["completed"] * 3
        assert wal.lines_written == 3 and wal.write_errors == 0

    async def test_the_log_reads_back_into_the_same_events(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        with WALEventBusMiddleware(path, fsync="never") as wal:
            async with EventBus("WalRead", middlewares=[wal]) as bus:
                bus.on(WalPing, wal_double)
                sent = [await bus.emit(WalPing(n=n)) for n in range(4)]
        read = read_wal(path)
        assert read.errors == []
        assert [type(e) for e in read.events] == [WalPing] * 4
        assert [e.to_dict() for e in read.events] == [e.to_dict() for e in sent]

    async def test_several_buses_share_one_log_without_tearing_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "shared.jsonl"
        with WALEventBusMiddleware(path, fsync="batch") as wal:
            async with (
                EventBus("WalShareA", middlewares=[wal]) as a,
                EventBus("WalShareB", middlewares=[wal]) as b,
            ):
                for n in range(50):
                    a.emit(WalPing(n=n))
                    b.emit(WalPing(n=n))
        read = read_wal(path)
        assert read.errors == [] and len(read.events) == 100

    def test_bad_options_name_the_value(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"fsync.*'sometimes'"):
            WALEventBusMiddleware(tmp_path / "x", fsync="sometimes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"max_bytes must be an int >= 1, got 0"):
            WALEventBusMiddleware(tmp_path / "x", max_bytes=0)
        with pytest.raises(ValueError, match=r"backup_count must be an int >= 0, got -1"):
            WALEventBusMiddleware(tmp_path / "x", backup_count=-1)
        with pytest.raises(ValueError, match=r"fsync_interval must be a number >= 0, got '1s'"):
            WALEventBusMiddleware(tmp_path / "x", fsync_interval="1s")  # type: ignore[arg-type]


class TestRotation:
    async def test_rotation_keeps_backup_count_files_and_reads_them_in_order(self, tmp_path: Path) -> None:
        path = tmp_path / "rot.jsonl"
        one_line = len(WalPing(n=0).to_json()) + 200  # completed lines are a little longer than pending ones
        with WALEventBusMiddleware(path, max_bytes=3 * one_line, backup_count=2) as wal:
            async with EventBus("WalRotate", middlewares=[wal]) as bus:
                for n in range(30):
                    bus.emit(WalPing(n=n))
        files = file_names(tmp_path)
        assert files == ["rot.jsonl", "rot.jsonl.1", "rot.jsonl.2"]
        assert all(size <= 3 * one_line for size in file_sizes(tmp_path))
        numbers = [e.n for e in read_wal(path).events if isinstance(e, WalPing)]
        assert numbers == list(range(30 - len(numbers), 30))  # the newest ones, oldest first, no gaps
        assert len(read_wal(path, include_rotated=False).events) < len(numbers)

    async def test_backup_count_zero_is_a_size_cap(self, tmp_path: Path) -> None:
        path = tmp_path / "cap.jsonl"
        cap = 2000
        with WALEventBusMiddleware(path, max_bytes=cap) as wal:
            async with EventBus("WalCap", middlewares=[wal]) as bus:
                for n in range(40):
                    bus.emit(WalPing(n=n))
        assert file_names(tmp_path) == ["cap.jsonl"]
        assert 0 < path.stat().st_size <= cap
        assert read_wal(path).events[-1].to_dict()["n"] == 39


class TestBadLines:
    async def _write_three(self, path: Path) -> None:
        with WALEventBusMiddleware(path) as wal:
            async with EventBus("WalBad", middlewares=[wal]) as bus:
                for n in range(3):
                    bus.emit(WalPing(n=n))

    async def test_corrupt_and_truncated_lines_are_reported_with_line_numbers_and_skipped(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "bad.jsonl"
        await self._write_three(path)
        good = path.read_text().splitlines()
        bad_event = json.loads(good[0]) | {"n": "not an int"}
        path.write_text(
            "\n".join([good[0], "{not json", good[1], json.dumps(bad_event), "[1, 2]", good[2]])
            + "\n"
            + good[2][: len(good[2]) // 2]  # a crash mid-write: half a line, no newline
        )
        with caplog.at_level(logging.WARNING, logger="bubus_anyio.middlewares"):
            read = read_wal(path)
        assert [e.to_dict()["n"] for e in read.events] == [0, 1, 2]
        assert [(err.line_number, err.reason.split(":")[0]) for err in read.errors] == [
            (2, "invalid JSON"),
            (4, "invalid event"),
            (5, "not a JSON object (list)"),
            (7, "truncated last line (no newline; a crash mid-write?)"),
        ]
        assert "n" in read.errors[1].reason and "not an int" in read.errors[1].reason
        logged = [r.getMessage() for r in caplog.records]
        assert sum(f"{path}:" in m for m in logged) == 4

    async def test_strict_reading_raises_at_the_first_bad_line(self, tmp_path: Path) -> None:
        path = tmp_path / "strict.jsonl"
        await self._write_three(path)
        with path.open("a") as handle:
            handle.write('{"event_type": "WalPing", "n": ')
        with pytest.raises(WALCorruptError, match=r"strict\.jsonl:4: truncated") as info:
            read_wal(path, strict=True)
        assert info.value.error.line_number == 4

    def test_a_missing_log_is_a_file_not_found_error(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="no write-ahead log"):
            read_wal(tmp_path / "absent.jsonl")


class TestReplay:
    async def test_replay_reprocesses_the_events_with_their_ids(self, tmp_path: Path) -> None:
        path = tmp_path / "replay.jsonl"
        with WALEventBusMiddleware(path) as wal:
            async with EventBus("WalSource", middlewares=[wal]) as bus:
                bus.on(WalPing, wal_double)
                sent = [await bus.emit(WalPing(n=n)) for n in range(3)]
        with path.open("a") as handle:
            handle.write("garbage\n")
        seen: list[tuple[str, int]] = []
        async with EventBus("WalTarget") as target:
            target.on(WalPing, lambda e: seen.append((e.event_id, e.n)))
            read = await replay_wal(path, target)
            await target.wait_until_idle()
        assert seen == [(e.event_id, e.n) for e in sent]
        assert [err.line_number for err in read.errors] == [4]

    async def test_replay_without_reprocessing_restores_history_only(self, tmp_path: Path) -> None:
        path = tmp_path / "history.jsonl"
        with WALEventBusMiddleware(path) as wal:
            async with EventBus("WalHistSource", middlewares=[wal]) as bus:
                first = await bus.emit(WalPing(n=9))
        calls: list[int] = []
        async with EventBus("WalHistTarget") as target:
            target.on(WalPing, lambda e: calls.append(e.n))
            await replay_wal(path, target, reprocess=False)
            found = await target.find(WalPing, past=True, future=False)
        assert calls == []
        assert found is not None and found.event_id == first.event_id and found.event_status == "completed"


@contextlib.contextmanager
def full_device_wal(caplog: pytest.LogCaptureFixture) -> Iterator[WALEventBusMiddleware]:
    """A WAL on /dev/full (every write fails with ENOSPC), with ERROR records captured."""
    if not HAVE_DEV_FULL:
        pytest.skip("no /dev/full on this system")
    with caplog.at_level(logging.ERROR, logger="bubus_anyio.middlewares"):
        with WALEventBusMiddleware("/dev/full", fsync="never") as wal:
            yield wal


class TestWriteFailures:
    async def test_a_full_device_is_logged_as_a_named_error_and_the_bus_goes_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with full_device_wal(caplog) as wal:
            async with EventBus("WalFull", middlewares=[wal]) as bus:
                bus.on(WalPing, wal_double)
                results = [await (await bus.emit(WalPing(n=n))).event_result() for n in range(3)]
        assert results == [0, 2, 4]
        assert wal.write_errors == 3 and wal.lines_written == 0
        errors = [r for r in caplog.records if isinstance(r.exc_info and r.exc_info[1], MiddlewareWriteError)]
        assert len(errors) == 3
        assert "WALEventBusMiddleware: could not write an event to /dev/full" in errors[0].getMessage()
        assert "No space left on device" in errors[0].getMessage()

    async def test_a_small_filesystem_filling_up_leaves_only_whole_lines(
        self, tiny_fs: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tiny_fs / "full.jsonl"
        with caplog.at_level(logging.ERROR, logger="bubus_anyio.middlewares"):
            with WALEventBusMiddleware(path, fsync="never") as wal:
                async with EventBus("WalTiny", middlewares=[wal]) as bus:
                    bus.on(WalPing, wal_double)
                    for n in range(200):
                        bus.emit(WalPing(n=n, note="y" * 700))
                    await bus.wait_until_idle()
                    last = await bus.emit(WalPing(n=1000))
            assert await last.event_result() == 2000
            assert wal.write_errors > 0 and wal.lines_written > 0
            read = read_wal(path)
            assert read.errors == []  # a line cut short by the full disk was cut off again
            assert len(read.events) == wal.lines_written
            assert any(isinstance(r.exc_info and r.exc_info[1], MiddlewareWriteError) for r in caplog.records)


class TestKilledWriter:
    @pytest.mark.slow
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_a_killed_writer_loses_no_reported_event(self, tmp_path: Path, backend: str) -> None:
        path = tmp_path / "killed.jsonl"
        child = subprocess.Popen(
            [sys.executable, str(HERE / "_wal_writer.py"), str(path), backend],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        reported: list[str] = []
        try:
            assert child.stdout is not None
            deadline = time.monotonic() + 60
            while len(reported) < 200 and time.monotonic() < deadline:
                line = child.stdout.readline()
                if not line:
                    break
                reported.append(line.decode().strip())
            assert len(reported) >= 200, child.stderr.read().decode() if child.stderr else ""
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert child.stdout is not None and child.stderr is not None
        reported += [line.strip() for line in child.stdout.read().decode().splitlines() if line.strip()]
        child.stdout.close()
        child.stderr.close()
        # Emulate the unlucky case the kill rarely hits on its own: half a line written when it died.
        with path.open("ab") as handle:
            handle.write(b'{"event_type":"KillPing","event_id":"0')
        read = read_wal(path)
        logged = {e.event_id for e in read.events}
        assert set(reported) <= logged
        assert len(read.errors) == 1
        assert read.errors[0].line_number == len(path.read_bytes().splitlines())
        assert read.errors[0].reason.startswith("truncated last line")


async def test_writes_do_not_block_the_event_loop(tmp_path: Path) -> None:
    """The file is written from a worker thread, never from the loop's thread."""
    import threading

    threads: set[int] = set()

    class Watching(WALEventBusMiddleware):
        def _append(self, line: bytes, sync: bool = True) -> None:
            threads.add(threading.get_ident())
            super()._append(line, sync)

    with Watching(tmp_path / "t.jsonl") as wal:
        async with EventBus("WalThreads", middlewares=[wal]) as bus:
            await bus.emit(WalPing())
            await anyio.lowlevel.checkpoint()
    assert threads and threading.get_ident() not in threads


async def test_a_forwarded_event_is_one_line_even_when_the_buses_share_the_log(tmp_path: Path) -> None:
    path = tmp_path / "forwarded.jsonl"
    with WALEventBusMiddleware(path) as wal:
        async with (
            EventBus("WalFwdA", middlewares=[wal]) as a,
            EventBus("WalFwdB", middlewares=[wal]) as b,
        ):
            a.on("*", b.emit)
            b.on(WalPing, wal_double)
            event = await a.emit(WalPing(n=1))
            await b.wait_until_idle()
    read = read_wal(path)
    assert [e.event_id for e in read.events] == [event.event_id]
    assert read.events[0].event_path == [a.label, b.label]


class TestWriterTask:
    async def test_inside_async_with_lines_are_batched_and_all_written_on_exit(self, tmp_path: Path) -> None:
        path = tmp_path / "batched.jsonl"
        calls: list[int] = []

        class Counting(WALEventBusMiddleware):
            def _append_all(self, lines: list[bytes]) -> None:
                calls.append(len(lines))
                super()._append_all(lines)

        with Counting(path, fsync="always") as wal:
            async with wal, EventBus("WalBatched", middlewares=[wal]) as bus:
                bus.on(WalPing, wal_double)
                sent = [bus.emit(WalPing(n=n)) for n in range(300)]
        read = read_wal(path)
        assert [e.event_id for e in read.events] == [e.event_id for e in sent]
        assert sum(calls) == 300 and len(calls) < 300

    async def test_flush_waits_for_the_queued_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "flushed.jsonl"
        with WALEventBusMiddleware(path) as wal:
            async with wal, EventBus("WalFlush", middlewares=[wal]) as bus:
                event = await bus.emit(WalPing(n=5))
                await bus.wait_until_idle()
                await wal.flush()
                assert [e.event_id for e in read_wal(path).events] == [event.event_id]

    async def test_a_failing_batch_is_reported_with_the_number_of_lines_lost(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with full_device_wal(caplog) as wal:
            async with wal, EventBus("WalBatchFull", middlewares=[wal]) as bus:
                for n in range(20):
                    bus.emit(WalPing(n=n))
        messages = [r.getMessage() for r in caplog.records if r.exc_info]
        assert messages and all("could not write" in m and "/dev/full" in m for m in messages)
        assert wal.lines_written == 0 and wal.write_errors == len(messages)
