"""bubus-anyio: a typed, in-memory async event bus on anyio (asyncio and trio), wire-compatible with bubus."""

from ._bus._event_bus import BusStatistics as BusStatistics
from ._bus._event_bus import EventBus as EventBus
from ._bus._history import EventHistory as EventHistory
from ._engine._runtime import DeadlockError as DeadlockError
from ._events._context import get_current_bus as get_current_bus
from ._events._context import get_current_event as get_current_event
from ._events._context import get_current_handler as get_current_handler
from ._events._context import in_handler as in_handler
from ._events._errors import BusNotRunningError as BusNotRunningError
from ._events._errors import EventBusError as EventBusError
from ._events._errors import EventHandlerAbortedError as EventHandlerAbortedError
from ._events._errors import EventHandlerCancelledError as EventHandlerCancelledError
from ._events._errors import EventHandlerError as EventHandlerError
from ._events._errors import EventHandlerResultSchemaError as EventHandlerResultSchemaError
from ._events._errors import EventHandlerTimeoutError as EventHandlerTimeoutError
from ._events._errors import EventValidationError as EventValidationError
from ._events._errors import HistoryFullError as HistoryFullError
from ._events._errors import QueueFullError as QueueFullError
from ._events._event import BaseEvent as BaseEvent
from ._events._handlers import EventHandler as EventHandler
from ._events._modes import EventConcurrencyMode as EventConcurrencyMode
from ._events._modes import EventHandlerCompletionMode as EventHandlerCompletionMode
from ._events._modes import EventHandlerConcurrencyMode as EventHandlerConcurrencyMode
from ._events._modes import EventResultStatus as EventResultStatus
from ._events._modes import EventStatus as EventStatus
from ._events._results import EventResult as EventResult
from ._events._time import monotonic_datetime as monotonic_datetime
from ._wire._convert import RemoteHandlerError as RemoteHandlerError
from .retry import RetryTimeoutError as RetryTimeoutError
from .retry import SemaphoreTimeoutError as SemaphoreTimeoutError
from .retry import retry as retry

__version__ = "0.1.0"
