"""Benchmarks of the embedded bridges (JSONL, SQLite, Unix socket, TCP socket, HTTP) between two processes.

    .venv/bin/python benchmarks/_bridges_embedded.py            # full: 500 round trips, 5000 events
    .venv/bin/python benchmarks/_bridges_embedded.py --smoke    # a few seconds

Per bridge and backend (asyncio, trio; both processes run the same one): round-trip latency p50/p99 (this
process emits a ``Ping``, a peer process answers with a ``Pong`` over a second channel of the same kind,
the next ``Ping`` goes once the ``Pong`` arrived), and one-way throughput (this process emits N ``Ping`` s
as fast as ``emit`` returns; the peer answers one ``Pong`` once it has all N; events/s = N / time to that
answer). The file bridges poll every ``POLL`` seconds (their latency floor). Upstream bubus 1.5.6 (PyPI)
has no bridges at all, so there is nothing to put side by side; ``benchmarks/bridges.py`` imports
:func:`run_embedded` and prints these rows next to the server bridges'.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.bridges import EventBridge

HERE = Path(__file__).resolve()
POLL = 0.001
KINDS = ("jsonl", "sqlite", "unix", "tcp", "http")


class BenchPing(BaseEvent[None]):
    n: int


class BenchPong(BaseEvent[None]):
    n: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def addresses(kind: str, workdir: Path) -> tuple[str, str]:
    """(requests, replies) addresses for a bridge kind."""
    if kind == "jsonl":
        return str(workdir / "req.jsonl"), str(workdir / "rep.jsonl")
    if kind == "sqlite":
        return f"{workdir / 'bus.db'}#requests", f"{workdir / 'bus.db'}#replies"
    if kind == "unix":
        return str(workdir / "req.sock"), str(workdir / "rep.sock")
    if kind == "tcp":
        return f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    if kind == "http":
        return f"http://127.0.0.1:{_free_port()}/req", f"http://127.0.0.1:{_free_port()}/rep"
    raise ValueError(f"unknown bridge kind {kind!r}")


def make_bridge(kind: str, address: str, *, listen: bool) -> EventBridge:
    from bubus_anyio import bridges

    if kind == "jsonl":
        return bridges.JSONLEventBridge(address, poll_interval=POLL)
    if kind == "sqlite":
        path, _, table = address.partition("#")
        return bridges.SQLiteEventBridge(path, table, poll_interval=POLL)
    if kind in ("unix", "tcp"):
        return bridges.SocketEventBridge(address)
    if kind == "http":
        return (
            bridges.HTTPEventBridge(listen_on=address) if listen else bridges.HTTPEventBridge(send_to=address)
        )
    raise ValueError(f"unknown bridge kind {kind!r}")


# ---------------------------------------------------------------------- the peer process
async def peer(kind: str, requests: str, replies: str, mode: str, count: int) -> None:
    """``echo``: answer every Ping with a Pong. ``count``: answer one Pong(n=count) after count Pings."""
    done = anyio.Event()
    seen = 0
    inbound = make_bridge(kind, requests, listen=True)
    async with (
        EventBus("BenchPeer", max_history_size=0) as bus,
        make_bridge(kind, replies, listen=False) as out,
    ):

        async def on_ping(event: BenchPing) -> None:
            nonlocal seen
            seen += 1
            if mode == "echo":
                await out.emit(BenchPong(n=event.n))
            elif seen == count:
                await out.emit(BenchPong(n=count))
            if seen == count:
                done.set()

        inbound.on("*", bus.emit)
        bus.on(BenchPing, on_ping)
        async with inbound:
            print("ready", flush=True)
            await done.wait()


# ---------------------------------------------------------------------- the measuring process
@asynccontextmanager
async def _spawn(
    backend: str, kind: str, requests: str, replies: str, mode: str, count: int
) -> AsyncIterator[None]:
    argv = [sys.executable, str(HERE), "--peer", backend, kind, requests, replies, mode, str(count)]
    async with await anyio.open_process(argv, stderr=None) as process:
        try:
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            with anyio.fail_after(30):
                assert await lines.receive_until(b"\n", 1024) == b"ready"
            yield
            with anyio.fail_after(30):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()


async def _measure(backend: str, kind: str, round_trips: int, events: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bbb", dir="/tmp"))
    try:
        latencies: list[float] = []
        for mode, count in (("echo", round_trips), ("count", events)):
            requests, replies = addresses(kind, workdir / mode)
            (workdir / mode).mkdir()
            arrived = [anyio.Event()]  # the current round trip's; replaced per Ping

            def on_pong(event: BenchPong, arrived: list[anyio.Event] = arrived) -> None:
                arrived[0].set()

            inbound = make_bridge(kind, replies, listen=True)
            inbound.on(BenchPong, on_pong)
            async with inbound, _spawn(backend, kind, requests, replies, mode, count):
                async with make_bridge(kind, requests, listen=False) as out:
                    with anyio.fail_after(120):
                        if mode == "echo":
                            for n in range(count):
                                arrived[0] = anyio.Event()
                                start = time.perf_counter()
                                await out.emit(BenchPing(n=n))
                                await arrived[0].wait()
                                latencies.append(time.perf_counter() - start)
                        else:
                            start = time.perf_counter()
                            for n in range(count):
                                await out.emit(BenchPing(n=n))
                            await arrived[0].wait()
                            elapsed = time.perf_counter() - start
        latencies.sort()
        return {
            "bridge": kind,
            "backend": backend,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "events_per_s": events / elapsed,
            "round_trips": round_trips,
            "events": events,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_embedded(
    backends: tuple[str, ...] = ("asyncio", "trio"),
    kinds: tuple[str, ...] = KINDS,
    *,
    smoke: bool = False,
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Measure every kind on every backend; one dict per (kind, backend)."""
    round_trips, events = (20, 200) if smoke else (500, 5000)
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        for backend in backends:
            progress(f"[bridges] {kind} on {backend} ...")
            rows.append(anyio.run(_measure, backend, kind, round_trips, events, backend=backend))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| bridge | backend | round trip p50 | p99 | throughput (events/s) | upstream 1.5.6 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['bridge']} | {r['backend']} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms "
            f"| {r['events_per_s']:,.0f} | no bridges |"
        )
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        backend, kind, requests, replies, mode, count = sys.argv[2:8]
        anyio.run(peer, kind, requests, replies, mode, int(count), backend=backend)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny N, a few seconds")
    parser.add_argument("--backend", action="append", choices=("asyncio", "trio"))
    parser.add_argument("--bridge", action="append", choices=KINDS)
    args = parser.parse_args()
    rows = run_embedded(
        tuple(args.backend or ("asyncio", "trio")), tuple(args.bridge or KINDS), smoke=args.smoke
    )
    print(table(rows))


if __name__ == "__main__":
    main()
