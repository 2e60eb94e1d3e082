"""Bridges: carry events between buses in different processes or machines.

Every bridge is an async context manager with ``emit(event)`` (out) and ``on(pattern, handler)`` (in);
see ``docs/bridges/index.md`` for the delivery semantics of each. Bridges that need an optional package
(httpx, hypercorn, coredis, nats-py, asyncpg) are imported on first use, so importing this package never
imports those.
"""

from __future__ import annotations

import importlib
from typing import Any

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
from ._transport import Transport as Transport

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
