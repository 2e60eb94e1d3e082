"""Middleware scenarios for ``_ours.py``: the same workload (1 bus, one sync handler, history 100, N events
emitted and awaited one at a time) with one middleware installed, to read the cost per event of each
against ``middleware-none``. One at a time, because upstream 1.5.x only takes bursts with an unbounded
history, which makes its own per-event cost grow with N and says nothing about its WAL.

The clock covers emitting, ``wait_until_idle()`` (every hook delivered, every write done) and closing the
middleware (the last fsync / commit), so a row is what the middleware costs end to end. Files go to a
fresh temporary directory on the local disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _harness import Clock

from bubus_anyio import BaseEvent, EventBus

HISTORY = 100


class MwSimple(BaseEvent[int]):
    value: int = 0


class NoOp:
    """A middleware with all three hooks doing nothing: the price of hook delivery itself."""

    def on_event_change(self, bus: Any, event: Any, status: str) -> None:
        pass

    def on_event_result_change(self, bus: Any, event: Any, result: Any, status: str) -> None:
        pass

    def on_bus_handlers_change(self, bus: Any, handler: Any, registered: bool) -> None:
        pass


def _make(kind: str, directory: Path) -> Any:
    from bubus_anyio import middlewares as mw

    if kind == "none":
        return None
    if kind == "noop":
        return NoOp()
    if kind == "logger":
        log = logging.getLogger("bench.middleware.logger")
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(logging.StreamHandler(open(os.devnull, "w")))
        return mw.LoggerEventBusMiddleware(logger=log)
    if kind in ("wal", "wal-writer"):
        return mw.WALEventBusMiddleware(directory / "events.jsonl")
    if kind == "wal-fsync-always":
        return mw.WALEventBusMiddleware(directory / "events.jsonl", fsync="always")
    if kind in ("sqlite", "sqlite-writer"):
        return mw.SQLiteHistoryMirrorMiddleware(directory / "history.db")
    if kind == "otel":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        return mw.OtelTracingMiddleware(tracer_provider=provider)
    if kind == "auto-return":
        return mw.AutoReturnEventMiddleware()
    raise ValueError(f"unknown middleware kind {kind!r}")


def _scenario(kind: str) -> Callable[[int, Clock], Awaitable[dict[str, Any]]]:
    async def run(n: int, clock: Clock) -> dict[str, Any]:
        count = 0

        def handle(event: MwSimple) -> int:
            nonlocal count
            count += 1
            return event.value

        with tempfile.TemporaryDirectory(prefix="bench-mw-") as tmp:
            middleware = _make(kind, Path(tmp))
            middlewares = [] if middleware is None else [middleware]
            async with contextlib.AsyncExitStack() as stack:
                if kind.endswith("-writer"):  # the batching writer task runs inside ``async with middleware``
                    await stack.enter_async_context(middleware)
                bus = await stack.enter_async_context(
                    EventBus("MwBurst", max_history_size=HISTORY, middlewares=middlewares)
                )
                bus.on(MwSimple, handle)
                clock.start()
                for i in range(n):
                    await bus.emit(MwSimple(value=i))
                await bus.wait_until_idle()
            if middleware is not None and hasattr(middleware, "close"):
                middleware.close()
            clock.stop()
            extra: dict[str, Any] = {"processed": count, "expected": n}
            if kind.startswith("wal"):
                extra["lines"] = middleware.lines_written
            if kind.startswith("sqlite"):
                extra["rows"] = middleware.rows_written
        return extra

    return run


KINDS = (
    "none",
    "noop",
    "logger",
    "wal",
    "wal-writer",
    "wal-fsync-always",
    "sqlite",
    "sqlite-writer",
    "otel",
    "auto-return",
)
MW_SCENARIOS = {f"middleware-{kind}": (_scenario(kind), "event") for kind in KINDS}
