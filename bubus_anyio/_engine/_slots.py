"""The serial slot: what ``bus-serial`` and ``global-serial`` events hold while they are processed.

A capacity-one, FIFO-fair lock held on behalf of a token, with the part of ``anyio.CapacityLimiter``'s
interface the bus uses (``acquire_on_behalf_of[_nowait]``, ``release_on_behalf_of``). It exists because
taking and giving back the slot happens once per event on every bus, and a capacity limiter is a general
tool: on trio anyio wraps trio's limiter (a parking lot and a generator per release), so a take and give
back cost about 11k instructions there, against under 2k here, on both backends. Only a task that has to
wait for the slot pays for an ``anyio.Event``.

A slot released while tasks wait is handed straight to the first of them, so no other task can take it in
between (``acquire_on_behalf_of_nowait`` also refuses while anyone waits). A waiter cancelled after the
slot was handed to it passes it on before the cancellation propagates: nothing is ever left holding a slot
nobody will release.
"""

from __future__ import annotations

from collections import deque

import anyio
from anyio import WouldBlock

__all__ = ["SerialSlot"]


class SerialSlot:
    """One slot, held by at most one token at a time; waiters get it in arrival order."""

    __slots__ = ("_holder", "_waiters")

    def __init__(self) -> None:
        self._holder: object | None = None
        self._waiters: deque[tuple[object, anyio.Event]] = deque()

    def __repr__(self) -> str:
        state = "free" if self._holder is None else "held"
        return f"<SerialSlot {state}, {len(self._waiters)} waiting>"

    @property
    def borrowed_tokens(self) -> int:
        """1 while held, else 0 (the name ``CapacityLimiter.statistics()`` uses)."""
        return 0 if self._holder is None else 1

    @property
    def tasks_waiting(self) -> int:
        return len(self._waiters)

    def holds(self, token: object) -> bool:
        return self._holder is token

    def acquire_on_behalf_of_nowait(self, token: object) -> None:
        """Take the slot now.

        :raises anyio.WouldBlock: it is held, or others are already waiting for it
        """
        if self._holder is not None or self._waiters:
            raise WouldBlock
        self._holder = token

    async def acquire_on_behalf_of(self, token: object) -> None:
        """Take the slot, waiting in line if it is held (no checkpoint when it is free: callers try
        :meth:`acquire_on_behalf_of_nowait` first and come here to wait)."""
        if self._holder is None and not self._waiters:
            self._holder = token
            return
        entry = (token, anyio.Event())
        self._waiters.append(entry)
        try:
            await entry[1].wait()
        except BaseException:
            if self._holder is token:  # handed over while being cancelled: pass it on
                self.release_on_behalf_of(token)
            else:
                self._waiters.remove(entry)
            raise

    def release_on_behalf_of(self, token: object) -> None:
        """Give the slot back; the first waiter, if any, holds it from now on.

        :raises RuntimeError: ``token`` does not hold the slot
        """
        if self._holder is not token:
            raise RuntimeError(f"{token!r} does not hold this serial slot")
        waiters = self._waiters
        if waiters:
            self._holder, event = waiters.popleft()
            event.set()
        else:
            self._holder = None
