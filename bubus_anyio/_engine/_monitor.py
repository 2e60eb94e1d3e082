"""The slow monitor: one task per bus that warns about handlers and events running past their slow
thresholds. It never cancels anything.

Watching is two dict operations per handler call that suspends (one that does not never lets the
monitor run while it does, so it is not watched); the task itself wakes at a quarter of the lowest
threshold it watches (5 ms to 1 s), and is woken early only when a new, lower threshold needs a faster
pace, so the common case (thresholds of many seconds) costs nothing per event.
"""

from __future__ import annotations

import logging
import math
from time import perf_counter
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from .._events._event import BaseEvent
    from .._events._results import EventResult

__all__ = ["SlowMonitor"]

logger = logging.getLogger("bubus_anyio")


def _interval(threshold: float) -> float:
    """How often to look, for the lowest threshold watched: a quarter of it, between 5 ms and 1 s."""
    return min(1.0, max(0.005, threshold / 4))


class SlowMonitor:
    """Slow-handler and slow-event warnings for one bus (``label`` names the bus in messages)."""

    __slots__ = ("_interval", "_lowest", "_runs", "_wakeup", "handler_default", "label", "rows")

    def __init__(self, label: str, handler_default: float | None) -> None:
        self.label = label
        #: the bus's ``event_handler_slow_timeout``, the last fallback for handlers
        self.handler_default = handler_default
        self.rows: dict[EventResult[Any], tuple[float, float, BaseEvent[Any]]] = {}
        self._runs: dict[Any, tuple[float, float]] = {}
        self._lowest = math.inf
        self._interval = math.inf
        self._wakeup: anyio.Event | None = None

    def watch_row(self, row: EventResult[Any], event: BaseEvent[Any], started: float) -> None:
        """A handler suspended for the first time (``started`` is when it started, on ``perf_counter``;
        one that never suspends never lets this monitor run while it does, so it is not watched; whoever
        calls this removes the row from :attr:`rows` when the handler ends): threshold = its own > the event's handler one > the event's > the bus's."""
        handler = row.handler
        if handler.handler_slow_timeout_is_set:
            threshold = handler.handler_slow_timeout
        elif event.event_handler_slow_timeout is not None:
            threshold = event.event_handler_slow_timeout
        elif event.event_slow_timeout is not None:
            threshold = event.event_slow_timeout
        else:
            threshold = self.handler_default
        if threshold is None or (row.timeout is not None and row.timeout <= threshold):
            return  # it would time out before it could be slow
        self.rows[row] = (started, threshold, event)
        if threshold < self._lowest:
            self._lower(threshold)

    def watch_run(self, run: Any) -> None:
        """``run`` (the runtime's ``EventRun``) reached its first handler that can suspend: from then on its
        processing can be seen running, timed from when the run started. Threshold: the event's, else the
        bus's."""
        run.watched = True
        event = run.event
        threshold = event.event_slow_timeout
        if threshold is None:
            threshold = run.bus.event_slow_timeout
        if threshold is None or (run.timeout is not None and run.timeout <= threshold):
            return
        self._runs[run] = (run.started, threshold)
        if threshold < self._lowest:
            self._lower(threshold)

    def unwatch_run(self, run: Any) -> None:
        if self._runs:
            self._runs.pop(run, None)

    def _lower(self, threshold: float) -> None:
        """A lower threshold than any watched so far: look sooner."""
        if threshold < self._lowest:
            self._lowest = threshold
            wake = self._wakeup
            if wake is not None and _interval(threshold) < self._interval:
                self._wakeup = None
                wake.set()

    async def run_forever(self) -> None:
        """Run in the bus's task group until the bus stops."""
        warned: set[object] = set()
        rows, runs = self.rows, self._runs
        while True:
            wakeup = self._wakeup = anyio.Event()
            self._interval = _interval(self._lowest)
            with anyio.move_on_after(self._interval):
                await wakeup.wait()
            now = perf_counter()
            for row, (started, threshold, event) in list(rows.items()):
                if row not in warned and now - started >= threshold:
                    warned.add(row)
                    logger.warning(
                        "⚠️ Slow event handler: %s.on(%s, %s) still running after %.1fs",
                        self.label,
                        event.event_label,
                        row.handler.label,
                        now - started,
                    )
            for run, (started, threshold) in list(runs.items()):
                if run not in warned and now - started >= threshold:
                    warned.add(run)
                    logger.warning(
                        "⚠️ Slow event processing: %s.on(%s, %d handlers) still running after %.2fs",
                        self.label,
                        run.event.event_label,
                        len(run.rows),
                        now - started,
                    )
            warned.intersection_update(set(rows) | set(runs))
            # back to a slow pace once the low thresholds are gone
            self._lowest = min(
                [e[1] for e in rows.values()] + [e[1] for e in runs.values()], default=math.inf
            )
