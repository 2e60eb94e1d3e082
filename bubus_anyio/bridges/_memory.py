"""An in-process transport: the twin the bridge logic is tested against, and a handy test double.

A :class:`MemoryHub` is a channel several :class:`MemoryTransport` s attach to. It behaves like the real
transports in the ways a bridge can observe: bounded buffers (a sender waits for room), lost messages
while a fire-and-forget subscriber is disconnected, and, in durable mode, unacknowledged messages that
come back (flagged ``redelivered``) after a reconnect or after a new transport takes over the same
``consumer`` name, as a restarted process would with a Redis Streams group or a JetStream consumer.
Faults are injected by hand: :meth:`MemoryTransport.disconnect`, :attr:`MemoryHub.down`,
:meth:`MemoryHub.inject`. Headers given to ``send`` travel with their message (and come back with a
redelivery) as a broker's message headers would.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

import anyio
import attrs

from ._transport import Backoff, BridgeConnectError, BridgeSendError, Delivery

__all__ = ["MemoryHub", "MemoryTransport"]


class _Signal:
    """Wake every waiter whenever the hub's state changes (messages, acks, attach, outage)."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


_Headers = Mapping[str, str]


@attrs.define(eq=False)
class _Subscription:
    name: str
    queue: deque[tuple[int, bytes, _Headers, bool]] = attrs.field(
        factory=lambda: deque[tuple[int, bytes, _Headers, bool]]()
    )  # (seq, body, headers, redelivered)
    unacked: dict[int, tuple[bytes, _Headers]] = attrs.field(
        factory=lambda: dict[int, tuple[bytes, _Headers]]()
    )
    attached: MemoryTransport | None = None


class MemoryHub:
    """A channel in memory.

    :param durable: keep each consumer's undelivered and unacknowledged messages while it is away and
        redeliver unacknowledged ones after a reconnect (at-least-once); otherwise a subscriber gets only
        what is sent while it is connected and nothing is redelivered (at-most-once)
    :param echo: a sender also receives its own messages (as with a shared file or a pub/sub channel);
        ``False`` gives point-to-point delivery to the other transports only (as with a socket)
    :param buffer: messages waiting per subscriber before a sender has to wait for room
    :param send_timeout: how long ``send`` waits for room or for the hub to come back before it raises
        :class:`BridgeSendError`
    """

    def __init__(
        self, *, durable: bool = False, echo: bool = True, buffer: int = 1024, send_timeout: float = 5.0
    ) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be >= 1, got {buffer!r}")
        self.durable = durable
        self.echo = echo
        self.buffer = buffer
        self.send_timeout = send_timeout
        self.sent = 0
        self._down = False
        self._subs: dict[str, _Subscription] = {}
        self._seq = itertools.count()
        self._signal: _Signal | None = None

    @property
    def down(self) -> bool:
        """While True, ``connect`` and reconnects fail (a simulated outage); sends still go to the
        subscribers that are attached, or kept for durable ones."""
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value
        self._notify()

    def transport(self, consumer: str | None = None) -> MemoryTransport:
        """A new transport on this hub. ``consumer`` names its durable subscription (default: unique)."""
        return MemoryTransport(self, consumer=consumer)

    def waiting(self, consumer: str) -> int:
        """Messages queued or unacknowledged for ``consumer`` (0 for an unknown name)."""
        sub = self._subs.get(consumer)
        return 0 if sub is None else len(sub.queue) + len(sub.unacked)

    async def inject(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Deliver ``body`` (with ``headers``) to every subscriber as if a foreign process had sent it."""
        await self._publish(None, body, headers)

    # ------------------------------------------------------------------ internals
    def _notify(self) -> None:
        if self._signal is not None:
            self._signal.notify()

    async def _changed(self) -> None:
        if self._signal is None:
            self._signal = _Signal()
        await self._signal.wait()

    def _targets(self, sender: MemoryTransport | None) -> list[_Subscription]:
        return [
            sub
            for sub in self._subs.values()
            if (sub.attached is not None or self.durable)
            and (self.echo or sender is None or sub.name != sender.consumer)
        ]

    async def _publish(
        self, sender: MemoryTransport | None, body: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        with anyio.move_on_after(self.send_timeout) as scope:
            while any(len(sub.queue) >= self.buffer for sub in self._targets(sender)):
                await self._changed()
        if scope.cancelled_caught:
            raise BridgeSendError(
                f"memory hub: a subscriber stayed full ({self.buffer} messages waiting) "
                f"for send_timeout={self.send_timeout}s"
            )
        seq = next(self._seq)
        kept = dict(headers) if headers else {}  # a copy: the sender may reuse its mapping
        for sub in self._targets(sender):
            sub.queue.append((seq, body, kept, False))
        self.sent += 1
        self._notify()


class MemoryTransport:
    """One end on a :class:`MemoryHub` (see there for the semantics). Implements ``Transport``.

    :ivar reconnects: how many times :meth:`receive` reconnected after a :meth:`disconnect`
    """

    _names: ClassVar[itertools.count[int]] = itertools.count()

    def __init__(self, hub: MemoryHub, *, consumer: str | None = None) -> None:
        self.hub = hub
        self.consumer = consumer if consumer is not None else f"memory-{next(self._names)}"
        self.reconnects = 0
        self.backoff = Backoff(initial=0.001, cap=0.02)
        self._connected = False
        self._closed = False
        self._lost = False

    @classmethod
    def pair(
        cls, *, durable: bool = False, buffer: int = 1024, send_timeout: float = 5.0
    ) -> tuple[MemoryTransport, MemoryTransport]:
        """Two transports wired point to point: what one sends, only the other receives."""
        hub = MemoryHub(durable=durable, echo=False, buffer=buffer, send_timeout=send_timeout)
        return hub.transport(), hub.transport()

    @property
    def durable(self) -> bool:
        return self.hub.durable

    async def connect(self) -> None:
        """Attach to the hub (taking over a durable subscription of the same ``consumer`` name)."""
        if self.hub.down:
            raise BridgeConnectError(f"memory hub is down; cannot connect consumer {self.consumer!r}")
        self._attach()

    def _attach(self) -> None:
        sub = self.hub._subs.get(self.consumer)
        if sub is None:
            sub = self.hub._subs[self.consumer] = _Subscription(self.consumer)
        # whatever the previous holder took but never acknowledged comes back first, flagged
        sub.queue.extendleft(
            (seq, body, headers, True) for seq, (body, headers) in sorted(sub.unacked.items(), reverse=True)
        )
        sub.unacked.clear()
        sub.attached = self
        self._connected = True
        self._lost = False
        self.hub._notify()

    def _detach(self) -> None:
        sub = self.hub._subs.get(self.consumer)
        if sub is not None and sub.attached is self:
            sub.attached = None
            if not self.hub.durable:
                del self.hub._subs[self.consumer]
        self._connected = False
        self.hub._notify()

    def disconnect(self) -> None:
        """Simulate a dropped connection: :meth:`receive` reconnects by itself (once the hub is up)."""
        self._lost = True
        self._detach()

    async def wait_connected(self) -> None:
        """Return once this transport is attached to the hub (after :meth:`connect` or a reconnect)."""
        while not self._connected:
            await self.hub._changed()

    async def send(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        if self._closed:
            raise BridgeSendError(f"memory transport {self.consumer!r} is closed")
        await self.hub._publish(self, body, headers)

    async def receive(self) -> AsyncIterator[Delivery]:
        while not self._closed:
            if self._lost:
                if self.hub.down:
                    await self.backoff.wait()
                    continue
                self._attach()
                self.backoff.reset()
                self.reconnects += 1
            sub = self.hub._subs.get(self.consumer)
            if sub is None or sub.attached is not self or not sub.queue:
                await self.hub._changed()
                continue
            seq, body, headers, redelivered = sub.queue.popleft()
            ack = None
            if self.hub.durable:
                sub.unacked[seq] = (body, headers)
                ack = self._acker(sub, seq)
            self.hub._notify()
            yield Delivery(body, ack=ack, redelivered=redelivered, headers=headers)

    def _acker(self, sub: _Subscription, seq: int) -> _Ack:
        return _Ack(self.hub, sub, seq)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._detach()


@attrs.frozen
class _Ack:
    hub: MemoryHub
    sub: _Subscription
    seq: int

    async def __call__(self) -> None:
        self.sub.unacked.pop(self.seq, None)
        self.hub._notify()
