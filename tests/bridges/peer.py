"""A second process for the bridge tests: ``python peer.py BACKEND KIND TARGET MODE COUNT``.

``recv`` listens, prints ``ready``, then one line per ``Ping`` received (its ``n``) and exits after COUNT.
``send`` emits COUNT ``Ping`` s (n = BASE..BASE+COUNT-1, BASE given as a sixth argument, default 0). ``echo`` listens on TARGET and answers each
``Ping`` with a ``Pong`` (same ``n``) sent to the REPLY target given as a sixth argument.
KIND is jsonl, sqlite, socket or http (for http, TARGET is ``listen_url`` in recv/echo and ``send_url``
in send mode; REPLY is a send URL). The helpers below start it from a test and read its lines.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.bridges import EventBridge

HERE = Path(__file__).resolve()
OTHER_BACKEND = {"asyncio": "trio", "trio": "asyncio"}
"""Two-process tests run the peer on the other backend: ours on asyncio and ours on trio talk to each other."""


class Ping(BaseEvent[None]):
    n: int


class Pong(BaseEvent[None]):
    n: int


def make_bridge(kind: str, target: str, *, listen: bool, poll_interval: float = 0.01) -> EventBridge:
    from bubus_anyio import bridges

    if kind == "jsonl":
        return bridges.JSONLEventBridge(target, poll_interval=poll_interval)
    if kind == "sqlite":  # path or path#table
        path, _, table = target.partition("#")
        return bridges.SQLiteEventBridge(path, table or "bubus_events", poll_interval=poll_interval)
    if kind == "socket":
        return bridges.SocketEventBridge(target)
    if kind == "http":
        if listen:
            return bridges.HTTPEventBridge(listen_on=target)
        return bridges.HTTPEventBridge(send_to=target)
    raise SystemExit(f"unknown kind {kind!r}")


async def main(kind: str, target: str, mode: str, count: int, reply: str | None) -> None:
    if mode == "send":  # REPLY is then the first n (default 0)
        base = int(reply or 0)
        async with make_bridge(kind, target, listen=False) as bridge:
            for n in range(base, base + count):
                await bridge.emit(Ping(n=n))
        return
    done = anyio.Event()
    seen = 0
    async with EventBus("Peer") as bus, make_bridge(kind, target, listen=True) as inbound:
        out = make_bridge(kind, reply, listen=False) if reply is not None else None
        async with out if out is not None else _nothing():

            async def on_ping(event: Ping) -> None:
                nonlocal seen
                seen += 1
                if out is not None:
                    await out.emit(Pong(n=event.n))
                else:
                    print(event.n, flush=True)
                if count and seen >= count:
                    done.set()

            inbound.on("*", bus.emit)
            bus.on(Ping, on_ping)
            print("ready", flush=True)
            await done.wait()


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


class Collector:
    """A handler that records events and lets a test wait for the n-th one."""

    def __init__(self) -> None:
        self.events: list[BaseEvent[Any]] = []
        self._changed = anyio.Event()

    def __call__(self, event: BaseEvent[Any]) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, count: int, timeout: float = 10) -> list[BaseEvent[Any]]:
        with anyio.fail_after(timeout):
            while len(self.events) < count:
                await self._changed.wait()
        return self.events

    @property
    def ns(self) -> list[int]:
        return [e.n for e in self.events]  # type: ignore[attr-defined]


async def until(condition: Callable[[], bool], timeout: float = 10, interval: float = 0.005) -> None:
    """Poll a condition another process or a worker thread makes true, with a bound (files, sockets)."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110  (state outside this event loop: nothing to wait on)
            await anyio.sleep(interval)


class Peer:
    """A running peer process and its stdout lines."""

    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdout is not None
        self._lines = BufferedByteReceiveStream(process.stdout)

    async def line(self, timeout: float = 20) -> str:
        with anyio.fail_after(timeout):
            return (await self._lines.receive_until(b"\n", 1 << 16)).decode()

    async def wait(self, timeout: float = 30) -> int:
        with anyio.fail_after(timeout):
            return await self.process.wait()


async def run_writers(backend: str, kind: str, target: str, writers: int, count: int) -> None:
    """``writers`` processes at once, writer w sending Ping n = w*1000 .. w*1000+count-1."""
    async with anyio.create_task_group() as tg:
        for w in range(writers):
            args = [sys.executable, str(HERE), backend, kind, target, "send", str(count), str(w * 1000)]
            tg.start_soon(lambda a=args: anyio.run_process(a, stdout=None))


@asynccontextmanager
async def spawn(
    backend: str, kind: str, target: str, mode: str, count: int, *extra: str
) -> AsyncIterator[Peer]:
    args: list[Any] = [sys.executable, str(HERE), backend, kind, target, mode, str(count), *extra]
    async with await anyio.open_process(args, stderr=None) as process:
        peer = Peer(process)
        try:
            if mode != "send":
                assert await peer.line() == "ready"
            yield peer
        finally:
            if process.returncode is None:
                process.kill()
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await process.wait()


if __name__ == "__main__":
    _backend, _kind, _target, _mode, _count, *_reply = sys.argv[1:]
    anyio.run(main, _kind, _target, _mode, int(_count), _reply[0] if _reply else None, backend=_backend)
