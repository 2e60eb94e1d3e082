"""bubus-anyio: a typed, in-memory async event bus on anyio (asyncio and trio), wire-compatible with bubus."""

from ._bus import BusStatistics as BusStatistics
from ._bus import EventBus as EventBus
from ._context import get_current_bus as get_current_bus
from ._context import get_current_event as get_current_event
from ._context import get_current_handler as get_current_handler
from ._context import in_handler as in_handler
from ._errors import BusNotRunningError as BusNotRunningError
from ._errors import EventBusError as EventBusError
from ._errors import EventHandlerAbortedError as EventHandlerAbortedError
from ._errors import EventHandlerCancelledError as EventHandlerCancelledError
from ._errors import EventHandlerError as EventHandlerError
from ._errors import EventHandlerResultSchemaError as EventHandlerResultSchemaError
from ._errors import EventHandlerTimeoutError as EventHandlerTimeoutError
from ._errors import EventValidationError as EventValidationError
from ._errors import HistoryFullError as HistoryFullError
from ._errors import QueueFullError as QueueFullError
from ._events import BaseEvent as BaseEvent
from ._handlers import EventHandler as EventHandler
from ._history import EventHistory as EventHistory
from ._modes import EventConcurrencyMode as EventConcurrencyMode
from ._modes import EventHandlerCompletionMode as EventHandlerCompletionMode
from ._modes import EventHandlerConcurrencyMode as EventHandlerConcurrencyMode
from ._modes import EventResultStatus as EventResultStatus
from ._modes import EventStatus as EventStatus
from ._results import EventResult as EventResult
from ._runtime import DeadlockError as DeadlockError
from ._time import monotonic_datetime as monotonic_datetime
from ._wire import RemoteHandlerError as RemoteHandlerError
from .retry import RetryTimeoutError as RetryTimeoutError
from .retry import SemaphoreTimeoutError as SemaphoreTimeoutError
from .retry import retry as retry

__version__ = "0.1.0"
