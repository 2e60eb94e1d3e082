"""Child process for the WAL kill test: emit events forever on a bus with the WAL middleware and print
each event's id once its WAL hook has returned (a reporter middleware placed after the WAL sees the
same notification only after the WAL's hook finished)."""

from __future__ import annotations

import sys
from typing import Any

import anyio

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.middlewares import WALEventBusMiddleware


class KillPing(BaseEvent[int]):
    n: int = 0
    blob: str = ""


class Reporter:
    def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        if status == "completed":
            sys.stdout.write(event.event_id + "\n")
            sys.stdout.flush()


async def main(path: str) -> None:
    wal = WALEventBusMiddleware(path, fsync="always")
    async with EventBus("KillWriter", middlewares=[wal, Reporter()]) as bus:
        bus.on(KillPing, lambda e: e.n)
        n = 0
        while True:
            for _ in range(20):
                bus.emit(KillPing(n=n, blob="x" * 200))
                n += 1
            await bus.wait_until_idle()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], backend=sys.argv[2])
