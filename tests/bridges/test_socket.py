"""SocketEventBridge over real Unix and TCP sockets: upstream's framing, bad and oversize frames, stale
socket files, reconnecting senders, length framing, two processes."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from _interop import INTEROP
from peer import OTHER_BACKEND, Collector, Ping, Pong, spawn, until

from bubus_anyio.bridges import BridgeConnectError, BridgeSendError, SocketEventBridge

pytestmark = pytest.mark.anyio

INTEROP_EVENT = json.loads((INTEROP / "ts-2.3.2/fresh_str_result.json").read_text())


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory: Unix socket paths are limited to 90 bytes."""
    path = Path(tempfile.mkdtemp(prefix="bb", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def listening(path: str) -> tuple[SocketEventBridge, Collector]:
    got = Collector()
    bridge = SocketEventBridge(path)
    bridge.on("*", got)  # before entering: it listens as soon as `async with` returns
    return bridge, got


async def raw_send(path: Path, *chunks: bytes) -> None:
    async with await anyio.connect_unix(path) as stream:
        for chunk in chunks:
            await stream.send(chunk)


async def test_unix_round_trip(sock_dir: Path) -> None:
    path = str(sock_dir / "a.sock")
    receiver, got = listening(path)
    async with receiver, SocketEventBridge(path) as sender:
        await sender.emit(Ping(n=1))
        await sender.emit(Ping(n=2))
        await got.wait_for(2)
        assert await anyio.Path(path).is_socket()
    assert got.ns == [1, 2]
    assert not await anyio.Path(path).exists()  # removed on close


async def test_unix_prefix_is_accepted(sock_dir: Path) -> None:
    path = sock_dir / "p.sock"
    receiver, got = listening(f"unix://{path}")
    async with receiver, SocketEventBridge(str(path)) as sender:
        await sender.emit(Ping(n=1))
        await got.wait_for(1)


async def test_tcp_round_trip_on_a_picked_port() -> None:
    receiver, got = listening("tcp://127.0.0.1:0")
    async with receiver:
        address = receiver.socket.listening_address
        assert address is not None and address.startswith("tcp://127.0.0.1:")
        assert not address.endswith(":0")
        async with SocketEventBridge(address) as sender:
            await sender.emit(Ping(n=7))
            await got.wait_for(1)
    assert got.ns == [7]


async def test_reads_what_an_upstream_sender_writes(sock_dir: Path) -> None:
    """Upstream opens a connection per event and writes one compact JSON line; frames may also be split
    or batched by the network, and a last line may lack its newline."""
    path = sock_dir / "u.sock"
    receiver, got = listening(str(path))
    line = json.dumps(INTEROP_EVENT, separators=(",", ":")).encode()
    async with receiver:
        await raw_send(path, line + b"\n")
        await raw_send(path, line[:10], line[10:] + b"\n" + Ping(n=1).to_json().encode() + b"\n")
        await raw_send(path, Ping(n=2).to_json().encode())  # no newline, then EOF
        events = await got.wait_for(3)
        await until(lambda: receiver.statistics().received == 4)
    assert [e.event_type for e in events] == [INTEROP_EVENT["event_type"], "Ping", "Ping"]
    assert receiver.statistics().duplicates == 1  # the same event_id twice: handled once


async def test_bad_frame_is_skipped_and_the_connection_kept(sock_dir: Path) -> None:
    path = sock_dir / "b.sock"
    receiver, got = listening(str(path))
    async with receiver:
        await raw_send(path, b"not json\n", b"[1]\n", b"\n", Ping(n=3).to_json().encode() + b"\n")
        await got.wait_for(1)
    assert got.ns == [3]
    assert receiver.statistics().decode_errors == 2


async def test_oversize_frame_drops_only_that_connection(
    sock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = sock_dir / "o.sock"
    caplog.set_level(logging.WARNING, logger="bubus.bridges")
    got = Collector()
    receiver = SocketEventBridge(str(path), max_frame_bytes=4096)
    receiver.on("*", got)
    async with receiver:
        async with await anyio.connect_unix(path) as big:
            await big.send(b"x" * 10_000)
            with anyio.fail_after(10):  # the listener hangs up on it
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError)):
                    while True:
                        await big.receive()
        await raw_send(path, Ping(n=4).to_json().encode() + b"\n")
        await got.wait_for(1)
    assert got.ns == [4]
    assert any("BridgeFrameTooLargeError" in r.getMessage() for r in caplog.records)


async def test_length_prefixed_framing() -> None:
    got = Collector()
    receiver = SocketEventBridge("tcp://127.0.0.1:0", framing="length", max_frame_bytes=4096)
    receiver.on("*", got)
    async with receiver:
        address = receiver.socket.listening_address
        assert address is not None
        async with SocketEventBridge(address, framing="length") as sender:
            await sender.emit(Ping(n=1))
            await got.wait_for(1)
        host, port = address.removeprefix("tcp://").split(":")
        async with await anyio.connect_tcp(host, int(port)) as big:  # declares 1 MB: dropped
            await big.send((1 << 20).to_bytes(4, "big"))
            with anyio.fail_after(10), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                while True:
                    await big.receive()
    assert got.ns == [1]


async def test_stale_socket_file_is_replaced_but_a_live_listener_is_not(sock_dir: Path) -> None:
    path = sock_dir / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a crashed process leaves behind
    receiver, got = listening(str(path))
    async with receiver:
        second = SocketEventBridge(str(path))
        second.on("*", Collector())
        with pytest.raises(BridgeConnectError, match="another process listens there"):
            async with second:
                pass
        async with SocketEventBridge(str(path)) as sender:
            await sender.emit(Ping(n=1))
            await got.wait_for(1)


async def test_sender_reconnects_after_the_listener_restarts(sock_dir: Path) -> None:
    path = str(sock_dir / "r.sock")
    async with SocketEventBridge(path) as sender:
        first, got = listening(path)
        async with first:
            await sender.emit(Ping(n=1))
            await got.wait_for(1)
        second, again = listening(path)
        async with second:
            # at-most-once: a frame written into the dead connection may be lost; later ones arrive
            n = 2
            with anyio.fail_after(10):
                while not again.events:
                    await sender.emit(Ping(n=n))
                    n += 1
                    await anyio.sleep(0.01)
    assert again.ns[0] >= 2


async def test_send_with_nobody_listening_is_a_named_error(sock_dir: Path) -> None:
    bridge = SocketEventBridge(str(sock_dir / "none.sock"), send_timeout=0.2)
    async with bridge:
        with pytest.raises(BridgeSendError, match=r"send_timeout=0\.2"):
            await bridge.emit(Ping(n=1))


async def test_addresses_are_checked() -> None:
    with pytest.raises(ValueError, match="max 90"):
        SocketEventBridge("/tmp/" + "x" * 100)
    with pytest.raises(ValueError, match="tcp://"):
        SocketEventBridge("tcp://nohost")
    with pytest.raises(ValueError, match="expected"):
        SocketEventBridge("http://example.com")
    relative = SocketEventBridge("relative.sock")
    relative.on("*", Collector())
    with pytest.raises(BridgeConnectError, match="absolute"):
        async with relative:
            pass


async def test_slow_consumer_pushes_back_on_the_sender(sock_dir: Path) -> None:
    path = str(sock_dir / "bp.sock")
    release = anyio.Event()
    got = Collector()

    async def slow(event: Ping) -> None:
        await release.wait()
        got(event)

    receiver = SocketEventBridge(path, inbound_buffer=2)
    receiver.on(Ping, slow)
    sent = 0
    async with receiver, SocketEventBridge(path) as sender:

        async def produce() -> None:
            nonlocal sent
            for n in range(2000):
                await sender.emit(Ping(n=n))
                sent += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            await until(lambda: receiver.statistics().unfinished == 2)
            before = sent
            await until(lambda: sent == before, timeout=5)  # the kernel buffers fill, then the sender waits
            assert receiver.statistics().unfinished == 2
            assert sent < 2000
            release.set()
        await got.wait_for(2000, timeout=30)
    assert got.ns == list(range(2000))


async def test_two_processes_on_different_backends_round_trip(sock_dir: Path, anyio_backend: str) -> None:
    requests, replies = str(sock_dir / "req.sock"), str(sock_dir / "rep.sock")
    got = Collector()
    inbound = SocketEventBridge(replies)
    inbound.on(Pong, got)
    async with inbound:
        async with (
            spawn(OTHER_BACKEND[anyio_backend], "socket", requests, "echo", 5, replies) as peer,
            SocketEventBridge(requests) as out,
        ):
            for n in range(5):
                await out.emit(Ping(n=n))
            await got.wait_for(5, timeout=30)
            assert await peer.wait() == 0
    assert got.ns == [0, 1, 2, 3, 4]
