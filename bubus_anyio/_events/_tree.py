"""``log_tree()``: the history as a tree of events, the handler rows under them, and the children each
handler emitted under that handler's row (bubus's shape)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import EventHandlerAbortedError, EventHandlerCancelledError, EventHandlerTimeoutError
from ._event import BaseEvent
from ._results import EventResult
from ._time import normalize_timestamp

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus

__all__ = ["format_value", "render_timeout_tree", "render_tree"]

_ROW_ICONS = {"completed": "✅", "error": "❌", "started": "🏃", "pending": "⏳"}


def format_value(value: Any) -> str:
    """Short rendering of a handler's value: ``None``, ``Event(T#abcd)``, reprs, ``list(N items)``..."""
    if value is None:
        return "None"
    if isinstance(value, BaseEvent):
        return f"Event({value.event_label})"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, list):
        return f"list({len(value)} items)"  # pyright: ignore[reportUnknownArgumentType]
    if isinstance(value, dict):
        return f"dict({len(value)} items)"  # pyright: ignore[reportUnknownArgumentType]
    return f"{type(value).__name__}(...)"


def _clock(stamp: str | None) -> str:
    return stamp[11:23] if stamp else "--:--:--.---"


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "..."

    def seconds(stamp: str) -> float:
        s = normalize_timestamp(stamp)
        h, m, rest = int(s[11:13]), int(s[14:16]), float(s[17:29])
        return h * 3600 + m * 60 + rest

    return f"{max(0.0, seconds(end) - seconds(start)):.3f}s"


def _event_line(event: BaseEvent[Any], prefix: str, last: bool) -> str:
    branch = "└── " if last else "├── "
    return (
        f"{prefix}{branch}{event.event_label} "
        f"[{_clock(event.event_created_at)} ({_duration(event.event_created_at, event.event_completed_at)})]"
    )


def _timeout_marker(row: EventResult[Any]) -> str:
    """What a row says in a timeout tree: where the limit fired, what it interrupted, what never ran."""
    error = row.error
    if isinstance(error, EventHandlerTimeoutError):
        return f"  ⏰ TIMEOUT HERE (limit {row.timeout}s)"
    if isinstance(error, EventHandlerAbortedError):
        return "  ✂️ INTERRUPTED"
    if isinstance(error, EventHandlerCancelledError):
        return "  🔜 never started"
    return ""


def _row_line(row: EventResult[Any], prefix: str, last: bool, annotate: bool = False) -> str:
    branch = "└── " if last else "├── "
    icon = _ROW_ICONS.get(row.status, "?")
    head = (
        f"{prefix}{branch}{icon} {row.eventbus_label}.{row.handler_name}#{row.handler_id[-4:]} "
        f"[{_clock(row.started_at)} ({_duration(row.started_at, row.completed_at)})]"
    )
    if annotate:
        head += _timeout_marker(row)
    if row.status == "error" and row.error is not None:
        return f"{head} ☠️ {type(row.error).__name__}: {row.error}"
    if row.status == "completed":
        return f"{head} → {format_value(row.result)}"
    return head


def _render_event(
    event: BaseEvent[Any], prefix: str, last: bool, lines: list[str], seen: set[str], annotate: bool = False
) -> None:
    lines.append(_event_line(event, prefix, last))
    if event.event_id in seen:
        return
    seen.add(event.event_id)
    child_prefix = prefix + ("    " if last else "│   ")
    rows = list(event.event_results.values())
    for index, row in enumerate(rows):
        row_last = index == len(rows) - 1
        lines.append(_row_line(row, child_prefix, row_last, annotate))
        children = row.event_children
        grand_prefix = child_prefix + ("    " if row_last else "│   ")
        for cindex, child in enumerate(children):
            _render_event(child, grand_prefix, cindex == len(children) - 1, lines, seen, annotate)


def render_tree(bus: EventBus) -> str:
    events = bus.event_history.values()
    if not events:
        return "(No events in history)"
    ids = {e.event_id for e in events}
    roots = sorted(
        (e for e in events if e.event_parent_id is None or e.event_parent_id not in ids),
        key=lambda e: e.event_created_at,
    )
    lines: list[str] = []
    seen: set[str] = set()
    for index, root in enumerate(roots):
        _render_event(root, "", index == len(roots) - 1, lines, seen)
    return "\n".join(lines)


def render_timeout_tree(event: BaseEvent[Any]) -> str:
    """The tree of ``event``'s root ancestor, each row marked with what a timeout did to it: where a limit
    fired (``TIMEOUT HERE`` with the limit), what it interrupted, and which handlers never started."""
    root = event
    while (parent := root.event_parent) is not None:
        root = parent
    lines: list[str] = []
    _render_event(root, "", True, lines, set(), annotate=True)
    return "\n".join(lines)
