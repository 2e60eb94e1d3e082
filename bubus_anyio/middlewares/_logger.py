"""Logging middleware: one structured stdlib ``logging`` record per completed event, and its tree.

Records go to the logger ``bubus_anyio.middlewares.logger`` (or one you pass). Each carries the summary as
structured fields on the record (``record.bubus``, a dict: event id/type/status, bus, parent, timings,
handler and error counts), so a JSON log formatter can ship them as they are; the message is
``[BusLabel] {summary}`` as upstream's. When the logger is enabled for DEBUG, the completed root event's
tree (handlers and the children they emitted) follows as a second record. ``log_path`` also appends the
message lines to a file, written by a worker thread.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from bubus_anyio import BaseEvent, EventBus, EventResult

from ._protocol import EventBusMiddleware, MiddlewareWriteError, OrderedWorker, report_write_error

__all__ = ["LoggerEventBusMiddleware", "event_summary", "render_event_tree"]

_ICONS = {"completed": "✅", "error": "❌", "started": "🏃", "pending": "⏳"}


def event_summary(bus: EventBus, event: BaseEvent[Any]) -> dict[str, Any]:
    """The structured fields logged for ``event`` (JSON-ready; no payload values, which may be private)."""
    rows = list(event.event_results.values())
    errors = [row for row in rows if row.error is not None]
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "event_status": event.event_status,
        "event_parent_id": event.event_parent_id,
        "eventbus_id": bus.id,
        "eventbus_name": bus.label,
        "event_path": list(event.event_path),
        "event_created_at": event.event_created_at,
        "event_started_at": event.event_started_at,
        "event_completed_at": event.event_completed_at,
        "handlers": len(rows),
        "errors": len(errors),
        "error_types": sorted({type(row.error).__name__ for row in errors}),
    }


def _row_text(row: EventResult[Any]) -> str:
    icon = _ICONS.get(row.status, "?")
    tail = f" ☠️ {type(row.error).__name__}: {row.error}" if row.error is not None else f" → {row.result!r}"
    return f"{icon} {row.eventbus_label}.{row.handler_name}#{row.handler_id[-4:]}{tail}"


def render_event_tree(event: BaseEvent[Any]) -> str:
    """``event``, the handler rows under it, and the children each handler emitted, as an indented tree."""
    lines: list[str] = []
    seen: set[str] = set()

    def walk(node: BaseEvent[Any], prefix: str, last: bool) -> None:
        lines.append(f"{prefix}{'└── ' if last else '├── '}{node.event_label} [{node.event_status}]")
        if node.event_id in seen:
            return
        seen.add(node.event_id)
        inner = prefix + ("    " if last else "│   ")
        rows = list(node.event_results.values())
        for index, row in enumerate(rows):
            row_last = index == len(rows) - 1
            lines.append(f"{inner}{'└── ' if row_last else '├── '}{_row_text(row)}")
            children = row.event_children
            for cindex, child in enumerate(children):
                walk(child, inner + ("    " if row_last else "│   "), cindex == len(children) - 1)

    walk(event, "", True)
    return "\n".join(lines)


class LoggerEventBusMiddleware(EventBusMiddleware):
    """Log every completed event (INFO, or WARNING when a handler failed) with structured fields.

    :param log_path: also append each message line to this file (None: logging only)
    :param logger: where records go (default ``bubus_anyio.middlewares.logger``)
    :param level: level for events whose handlers all succeeded
    """

    def __init__(
        self,
        log_path: str | os.PathLike[str] | None = None,
        *,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
    ) -> None:
        self.log_path = Path(log_path) if log_path is not None else None
        self.logger = logger or logging.getLogger("bubus_anyio.middlewares.logger")
        self.level = level
        self._worker = OrderedWorker()

    async def on_event_change(self, bus: EventBus, event: BaseEvent[Any], status: str) -> None:
        if status != "completed":
            return
        log = self.logger
        summary = event_summary(bus, event)
        level = logging.WARNING if summary["errors"] else self.level
        wants_file = self.log_path is not None
        if not wants_file and not log.isEnabledFor(level):
            return
        message = f"[{bus.label}] {summary}"
        log.log(level, "%s", message, extra={"bubus": summary})
        if event.event_parent_id is None and log.isEnabledFor(logging.DEBUG):
            log.debug("%s", render_event_tree(event), extra={"bubus": summary})
        if self.log_path is not None:
            try:
                await self._worker.run(self._append, message + "\n")
            except OSError as exc:
                report_write_error(
                    MiddlewareWriteError(type(self).__name__, str(self.log_path), "a line", exc)
                )

    def _append(self, line: str) -> None:
        assert self.log_path is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line)
