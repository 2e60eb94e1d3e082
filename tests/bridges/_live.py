"""Helpers for the tests against live brokers (Redis, NATS, PostgreSQL)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from bubus_anyio import BaseEvent


class LivePing(BaseEvent[None]):
    n: int


def unique(prefix: str) -> str:
    """A channel/subject/table/bridge name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


class Counted:
    """A handler that counts the `n` of every event it handles and lets a test wait for a set of them."""

    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()
        self.events: list[BaseEvent[Any]] = []
        self._changed = anyio.Event()

    def __call__(self, event: BaseEvent[Any]) -> None:
        self.events.append(event)
        self.seen[int(getattr(event, "n", -1))] += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, wanted: set[int] | int, timeout: float = 15.0) -> None:
        want = set(range(wanted)) if isinstance(wanted, int) else wanted
        with anyio.fail_after(timeout):
            while not want <= set(self.seen):
                await self._changed.wait()

    def duplicates(self) -> dict[int, int]:
        return {n: c for n, c in self.seen.items() if c > 1}


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, every: float = 0.05
) -> None:
    """Poll a cross-process condition with a bound (the brokers live in other processes)."""
    with anyio.fail_after(timeout):
        while not await check():  # noqa: ASYNC110 - the condition lives in another process
            await anyio.sleep(every)
