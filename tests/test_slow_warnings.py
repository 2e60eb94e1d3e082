"""Slow-handler warnings: logged (WARNING on ``bubus_anyio``), never cancelling anything."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus

pytestmark = pytest.mark.anyio


class SWWork(BaseEvent[Any]):
    pass


class SWSlowField(BaseEvent[Any]):
    event_handler_slow_timeout = 0.05


def _slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "bubus_anyio" and r.levelno == logging.WARNING and "Slow event handler" in r.getMessage()
    ]


async def slow_handler(event: BaseEvent[Any]) -> str:
    await anyio.sleep(0.2)
    return "slow-but-fine"


async def test_slow_handler_warns_and_still_completes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWBus", event_handler_slow_timeout=0.05) as bus:
            handler = bus.on(SWWork, slow_handler)
            event = bus.emit(SWWork())
            await event
    records = _slow_records(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert bus.label in message
    assert event.event_label in message
    assert "slow_handler" in message
    assert event.event_results[handler.id].result == "slow-but-fine"


async def test_fast_handler_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWFast", event_handler_slow_timeout=0.05) as bus:

            async def fast(event: SWWork) -> str:
                await anyio.lowlevel.checkpoint()
                return "fast"

            bus.on(SWWork, fast)
            for _ in range(3):
                await bus.emit(SWWork())
    assert _slow_records(caplog) == []


async def test_handler_option_sets_threshold(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWOption") as bus:  # bus default threshold: 30 s
            bus.on(SWWork, slow_handler, handler_slow_timeout=0.05)
            await bus.emit(SWWork())
    assert len(_slow_records(caplog)) == 1


async def test_event_field_sets_threshold(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWField") as bus:
            bus.on(SWSlowField, slow_handler)
            await bus.emit(SWSlowField())
    assert len(_slow_records(caplog)) == 1


async def test_disabled_threshold_never_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWDisabled", event_handler_slow_timeout=None, event_slow_timeout=None) as bus:
            bus.on(SWWork, slow_handler)
            await bus.emit(SWWork())
    assert _slow_records(caplog) == []


async def test_slow_threaded_handler_warns(caplog: pytest.LogCaptureFixture) -> None:
    import time

    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWThread", event_handler_slow_timeout=0.05) as bus:

            def blocking(event: SWWork) -> str:
                time.sleep(0.2)
                return "done"

            bus.on(SWWork, blocking, run_in_thread=True)
            event = await bus.emit(SWWork())
    assert len(_slow_records(caplog)) == 1
    assert await event.event_result() == "done"


async def test_slow_event_warns_with_its_handler_count(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWSlowEvent", event_slow_timeout=0.05, event_handler_slow_timeout=None) as bus:
            bus.on(SWWork, slow_handler)
            await bus.emit(SWWork())
    messages = [r.getMessage() for r in caplog.records if "Slow event processing" in r.getMessage()]
    assert len(messages) == 1
    assert "SWSlowEvent#" in messages[0] and "1 handlers" in messages[0]


async def test_a_handler_is_timed_from_its_start_not_from_its_first_await(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The monitor starts watching a handler when it first suspends (it cannot run before), but times it
    from its start: one that computed past its threshold before awaiting is reported at once."""
    import time

    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWComputes", event_handler_slow_timeout=0.05) as bus:

            async def computes_then_awaits(event: SWWork) -> None:
                end = time.perf_counter() + 0.08
                while time.perf_counter() < end:
                    pass
                await anyio.sleep(0.03)  # shorter than the threshold by itself

            bus.on(SWWork, computes_then_awaits)
            await bus.emit(SWWork())
    (record,) = _slow_records(caplog)
    assert "computes_then_awaits" in record.getMessage()


async def test_a_sync_handler_is_never_watched(caplog: pytest.LogCaptureFixture) -> None:
    """A plain sync handler holds the event loop until it returns: no warning could be printed while it
    runs, so none is printed after either."""
    import time

    caplog.set_level(logging.WARNING, logger="bubus_anyio")
    with anyio.fail_after(5):
        async with EventBus("SWSync", event_handler_slow_timeout=0.01) as bus:

            def blocks(event: SWWork) -> None:
                time.sleep(0.05)

            bus.on(SWWork, blocks)
            await bus.emit(SWWork())
            await anyio.sleep(0.05)
    assert _slow_records(caplog) == []
