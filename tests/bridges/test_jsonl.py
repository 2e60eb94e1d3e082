"""JSONLEventBridge against real files: the line format, partial, bad and oversize lines, truncation,
rotation, offset files, failing reads, upstream-written lines (what it shares with SQLiteEventBridge is in
test_shared_store.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from _interop import INTEROP
from peer import Collector, Ping, until

from bubus_anyio.bridges import BridgeConnectError, JSONLEventBridge

pytestmark = pytest.mark.anyio

FAST = 0.01
UPSTREAM_LINES = {
    runtime: [
        json.dumps(json.loads(f.read_bytes()), separators=(",", ":")).encode() + b"\n"
        for f in sorted((INTEROP / runtime).glob("fresh_*.json"))
    ]
    for runtime in ("py-2.3.2", "ts-2.3.2")
}


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def line(n: int) -> bytes:
    return Ping(n=n).to_json().encode() + b"\n"


async def test_emitted_event_reaches_another_bridge_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    got = Collector()
    async with (
        JSONLEventBridge(path, poll_interval=FAST) as out,
        JSONLEventBridge(path, poll_interval=FAST) as bridge,
    ):
        bridge.on(Ping, got)
        await out.emit(Ping(n=1))
        [event] = await got.wait_for(1)
    assert isinstance(event, Ping)
    assert event.n == 1
    [written] = path.read_bytes().splitlines()
    assert written.startswith(b'{"event_type":"Ping"')  # one compact JSON object per line


async def test_missing_file_and_directory_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.jsonl"
    async with JSONLEventBridge(path, poll_interval=FAST):
        assert path.exists()


async def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    got = Collector()
    whole = line(5)
    async with JSONLEventBridge(path, poll_interval=FAST) as bridge:
        bridge.on(Ping, got)
        await anyio.to_thread.run_sync(append, path, whole[:20])
        polls = bridge.transport.polls + 3  # type: ignore[attr-defined]
        await until(lambda: bridge.transport.polls >= polls)  # type: ignore[attr-defined]  # they see half
        assert got.events == []
        await anyio.to_thread.run_sync(append, path, whole[20:])
        await got.wait_for(1)
    assert got.ns == [5]


async def test_bad_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    got = Collector()
    async with JSONLEventBridge(path, poll_interval=FAST) as bridge:
        bridge.on(Ping, got)
        await anyio.to_thread.run_sync(append, path, b"garbage\n[1]\n\n   \n" + line(1))
        await got.wait_for(1)
    assert got.ns == [1]
    assert bridge.statistics().decode_errors == 2


async def test_oversize_line_is_skipped_and_the_next_one_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    got = Collector()
    async with JSONLEventBridge(path, poll_interval=FAST, max_line_bytes=2000) as bridge:
        bridge.on(Ping, got)
        await anyio.to_thread.run_sync(append, path, b'{"x": "' + b"y" * 5000 + b'"}\n' + line(2))
        await got.wait_for(1)
    assert got.ns == [2]
    assert any("BridgeFrameTooLargeError" in r.getMessage() for r in caplog.records)


async def test_truncation_restarts_from_the_top(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    got = Collector()
    async with (
        JSONLEventBridge(path, poll_interval=FAST) as out,
        JSONLEventBridge(path, poll_interval=FAST) as bridge,
    ):
        bridge.on(Ping, got)
        for n in range(3):
            await out.emit(Ping(n=n))
        await got.wait_for(3)
        await anyio.to_thread.run_sync(path.write_bytes, b"")
        await until(lambda: bridge.transport.truncations > 0)  # type: ignore[attr-defined]
        await out.emit(Ping(n=9))
        await got.wait_for(4)
    assert got.ns == [0, 1, 2, 9]


async def test_rotation_finishes_the_old_file_then_reads_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rotated = tmp_path / "events.jsonl.1"
    got = Collector()
    async with JSONLEventBridge(path, poll_interval=FAST) as bridge:
        bridge.on(Ping, got)
        await anyio.to_thread.run_sync(append, path, line(1))
        await got.wait_for(1)
        await anyio.to_thread.run_sync(os.rename, path, rotated)
        await anyio.to_thread.run_sync(append, rotated, line(2))  # a writer still holding the old file
        await anyio.to_thread.run_sync(append, path, line(3))  # the new file
        await got.wait_for(3)
        assert bridge.transport.rotations == 1  # type: ignore[attr-defined]
    assert got.ns == [1, 2, 3]


async def test_writer_follows_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    async with JSONLEventBridge(path, poll_interval=FAST) as out:
        await out.emit(Ping(n=1))
        await anyio.to_thread.run_sync(os.rename, path, tmp_path / "old.jsonl")
        await out.emit(Ping(n=2))
    assert len((tmp_path / "old.jsonl").read_bytes().splitlines()) == 1
    assert len(path.read_bytes().splitlines()) == 1


async def test_corrupt_offset_file_is_a_named_connect_error(tmp_path: Path) -> None:
    offsets = tmp_path / "reader.offset"
    offsets.write_text("nope")
    with pytest.raises(BridgeConnectError, match=r"reader\.offset"):
        async with JSONLEventBridge(tmp_path / "e.jsonl", offset_path=offsets):
            pass


async def test_invalid_poll_interval() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        JSONLEventBridge("/tmp/x.jsonl", poll_interval=0)


async def test_reader_survives_a_failing_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.jsonl"
    got = Collector()
    async with JSONLEventBridge(path, poll_interval=FAST) as bridge:
        tail_class = type(bridge.transport._tail)  # type: ignore[attr-defined]
        real_poll = tail_class.poll
        failures = [PermissionError(13, "Permission denied")]

        def flaky_poll(self: object) -> list[tuple[bytes, int, int]]:
            if failures:
                raise failures.pop()
            return real_poll(self)

        monkeypatch.setattr(tail_class, "poll", flaky_poll)
        bridge.on(Ping, got)
        await anyio.to_thread.run_sync(append, path, line(1))
        await got.wait_for(1)
    assert got.ns == [1]
    assert any("reading failed (retrying)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("runtime", ["py-2.3.2", "ts-2.3.2"])
async def test_reads_lines_upstream_writes(tmp_path: Path, runtime: str) -> None:
    """Upstream appends json.dumps(model_dump) / JSON.stringify(event) lines: real output of both."""
    path = tmp_path / "events.jsonl"
    fixtures = UPSTREAM_LINES[runtime]
    lines = b"".join(fixtures)
    got = Collector()
    async with JSONLEventBridge(path, poll_interval=FAST) as bridge:
        bridge.on("*", got)
        await anyio.to_thread.run_sync(append, path, lines)
        await got.wait_for(len(fixtures))
    assert bridge.statistics().decode_errors == 0
