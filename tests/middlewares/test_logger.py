"""Logging middleware: one structured record per completed event, WARNING when a handler failed, the tree
at DEBUG, optional file lines."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.middlewares import LoggerEventBusMiddleware, render_event_tree

pytestmark = pytest.mark.anyio

LOGGER = "bubus_anyio.middlewares.logger"


class LogOrder(BaseEvent[str]):
    order_id: str = ""


class LogReceipt(BaseEvent[None]):
    pass


def log_broken(event: LogOrder) -> str:
    raise KeyError("stock")


class TestRecords:
    async def test_a_completed_event_is_one_info_record_with_structured_fields(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            async with EventBus("LogBus", middlewares=[LoggerEventBusMiddleware()]) as bus:
                bus.on(LogOrder, lambda e: "ok")
                event = await bus.emit(LogOrder(order_id="o1"))
        (record,) = [r for r in caplog.records if r.name == LOGGER]
        assert record.levelno == logging.INFO
        assert record.getMessage().startswith(f"[{bus.label}] ")
        fields = record.bubus  # type: ignore[attr-defined]
        assert fields["event_id"] == event.event_id
        assert fields["event_type"] == "LogOrder"
        assert fields["event_status"] == "completed"
        assert fields["eventbus_name"] == bus.label
        assert fields["handlers"] == 1 and fields["errors"] == 0
        assert fields["event_completed_at"] == event.event_completed_at
        assert "o1" not in record.getMessage()  # payload values stay out of logs

    async def test_a_failed_handler_makes_it_a_warning_naming_the_error_type(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            async with EventBus("LogFail", middlewares=[LoggerEventBusMiddleware()]) as bus:
                bus.on(LogOrder, log_broken)
                await bus.emit(LogOrder())
        (record,) = [r for r in caplog.records if r.name == LOGGER]
        assert record.levelno == logging.WARNING
        assert record.bubus["error_types"] == ["KeyError"]  # type: ignore[attr-defined]

    async def test_debug_adds_the_tree_of_the_root_event(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.DEBUG, logger=LOGGER):
            async with EventBus("LogTree", middlewares=[LoggerEventBusMiddleware()]) as bus:

                async def checkout(event: LogOrder) -> str:
                    await bus.emit(LogReceipt())
                    return "paid"

                bus.on(LogOrder, checkout)
                root = await bus.emit(LogOrder())
        trees = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.DEBUG]
        assert len(trees) == 1  # the child is not a root: no tree of its own
        lines = trees[0].splitlines()
        assert lines[0] == f"└── {root.event_label} [completed]"
        assert "✅" in lines[1] and "checkout" in lines[1] and "→ 'paid'" in lines[1]
        assert "LogReceipt#" in lines[2]
        assert trees[0] == render_event_tree(root)

    async def test_quiet_when_the_logger_is_disabled(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.ERROR, logger=LOGGER):
            async with EventBus("LogQuiet", middlewares=[LoggerEventBusMiddleware()]) as bus:
                await bus.emit(LogOrder())
        assert [r for r in caplog.records if r.name == LOGGER] == []


class TestFile:
    async def test_log_path_gets_one_line_per_completed_event(self, tmp_path: Path) -> None:
        path = tmp_path / "logs" / "bus.log"
        async with EventBus("LogFile", middlewares=[LoggerEventBusMiddleware(path)]) as bus:
            for _ in range(3):
                await bus.emit(LogOrder())
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 3 and all(line.startswith(f"[{bus.label}] {{'event_id'") for line in lines)

    async def test_a_log_file_that_cannot_be_written_is_reported(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        blocker = tmp_path / "not_a_dir"
        blocker.write_text("")
        with caplog.at_level(logging.ERROR, logger="bubus_anyio.middlewares"):
            async with EventBus("LogBad", middlewares=[LoggerEventBusMiddleware(blocker / "x.log")]) as bus:
                bus.on(LogOrder, lambda e: "still fine")
                event = await bus.emit(LogOrder())
        assert await event.event_result() == "still fine"
        assert any(
            "LoggerEventBusMiddleware: could not write a line" in r.getMessage() for r in caplog.records
        )
