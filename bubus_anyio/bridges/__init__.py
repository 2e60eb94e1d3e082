"""Bridges: carry events between buses in different processes or machines.

Every bridge is an async context manager with ``emit(event)`` (out) and ``on(pattern, handler)`` (in);
see ``docs/bridges/index.md`` for the delivery semantics of each. Bridges that need an optional package
(httpx, hypercorn, coredis, nats-py, asyncpg) are imported on first use, so importing this package never
imports those.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._bridge import BridgeStatistics as BridgeStatistics
from ._bridge import EventBridge as EventBridge
from ._memory import MemoryHub as MemoryHub
from ._memory import MemoryTransport as MemoryTransport
from ._transport import Backoff as Backoff
from ._transport import BridgeConnectError as BridgeConnectError
from ._transport import BridgeDecodeError as BridgeDecodeError
from ._transport import BridgeError as BridgeError
from ._transport import BridgeFrameTooLargeError as BridgeFrameTooLargeError
from ._transport import BridgeNotRunningError as BridgeNotRunningError
from ._transport import BridgeSendError as BridgeSendError
from ._transport import Delivery as Delivery
from ._transport import Inbox as Inbox
from ._transport import ServingTransport as ServingTransport
from ._transport import TracePropagator as TracePropagator
from ._transport import Transport as Transport

if TYPE_CHECKING:  # what __getattr__ below returns, for type checkers and the API reference
    from ._http import BridgeHTTPStatusError as BridgeHTTPStatusError
    from ._http import HTTPEventBridge as HTTPEventBridge
    from ._jsonl import JSONLEventBridge as JSONLEventBridge
    from ._nats import NATSEventBridge as NATSEventBridge
    from ._postgres import PostgresEventBridge as PostgresEventBridge
    from ._redis import RedisEventBridge as RedisEventBridge
    from ._socket import SocketEventBridge as SocketEventBridge
    from ._sqlite import SQLiteEventBridge as SQLiteEventBridge

__all__ = [
    "Backoff",
    "BridgeConnectError",
    "BridgeDecodeError",
    "BridgeError",
    "BridgeFrameTooLargeError",
    "BridgeHTTPStatusError",
    "BridgeNotRunningError",
    "BridgeSendError",
    "BridgeStatistics",
    "Delivery",
    "EventBridge",
    "HTTPEventBridge",
    "Inbox",
    "JSONLEventBridge",
    "MemoryHub",
    "MemoryTransport",
    "NATSEventBridge",
    "PostgresEventBridge",
    "RedisEventBridge",
    "SQLiteEventBridge",
    "ServingTransport",
    "SocketEventBridge",
    "TracePropagator",
    "Transport",
]

# name -> module: imported on first attribute access (PEP 562), never at package import
_LAZY = {
    "JSONLEventBridge": "._jsonl",
    "SQLiteEventBridge": "._sqlite",
    "SocketEventBridge": "._socket",
    "HTTPEventBridge": "._http",
    "BridgeHTTPStatusError": "._http",
    "RedisEventBridge": "._redis",
    "NATSEventBridge": "._nats",
    "PostgresEventBridge": "._postgres",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
