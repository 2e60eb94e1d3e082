"""Middlewares: see, keep and trace what a bus does, without slowing it.

Pass them as ``EventBus(..., middlewares=[...])``. A middleware is any object with some of the hooks
``on_event_change(bus, event, status)``, ``on_event_result_change(bus, event, result, status)`` and
``on_bus_handlers_change(bus, handler, registered)``, sync or async; see :mod:`._protocol` for what the
bus guarantees them. Built-ins: :class:`LoggerEventBusMiddleware`, :class:`WALEventBusMiddleware`
(with :func:`read_wal` and :func:`replay_wal`), :class:`SQLiteHistoryMirrorMiddleware`,
:class:`OtelTracingMiddleware` (extra ``bubus-anyio[otel]``; opentelemetry is imported only when one is
made) and the auto-* middlewares that turn errors, results and handler changes into events.
"""

from ._auto import AutoErrorEvent as AutoErrorEvent
from ._auto import AutoErrorEventMiddleware as AutoErrorEventMiddleware
from ._auto import AutoHandlerChangeEventMiddleware as AutoHandlerChangeEventMiddleware
from ._auto import AutoResultEvent as AutoResultEvent
from ._auto import AutoReturnEventMiddleware as AutoReturnEventMiddleware
from ._auto import BusHandlerRegisteredEvent as BusHandlerRegisteredEvent
from ._auto import BusHandlerUnregisteredEvent as BusHandlerUnregisteredEvent
from ._logger import LoggerEventBusMiddleware as LoggerEventBusMiddleware
from ._logger import render_event_tree as render_event_tree
from ._otel import OtelNotInstalledError as OtelNotInstalledError
from ._otel import OtelTracingMiddleware as OtelTracingMiddleware
from ._protocol import EventBusMiddleware as EventBusMiddleware
from ._protocol import MiddlewareWriteError as MiddlewareWriteError
from ._sqlite_mirror import SQLiteHistoryMirrorMiddleware as SQLiteHistoryMirrorMiddleware
from ._wal import WALCorruptError as WALCorruptError
from ._wal import WALEventBusMiddleware as WALEventBusMiddleware
from ._wal import WALLineError as WALLineError
from ._wal import WALReadResult as WALReadResult
from ._wal import read_wal as read_wal
from ._wal import replay_wal as replay_wal

__all__ = [
    "AutoErrorEvent",
    "AutoErrorEventMiddleware",
    "AutoHandlerChangeEventMiddleware",
    "AutoResultEvent",
    "AutoReturnEventMiddleware",
    "BusHandlerRegisteredEvent",
    "BusHandlerUnregisteredEvent",
    "EventBusMiddleware",
    "LoggerEventBusMiddleware",
    "MiddlewareWriteError",
    "OtelNotInstalledError",
    "OtelTracingMiddleware",
    "SQLiteHistoryMirrorMiddleware",
    "WALCorruptError",
    "WALEventBusMiddleware",
    "WALLineError",
    "WALReadResult",
    "read_wal",
    "render_event_tree",
    "replay_wal",
]
