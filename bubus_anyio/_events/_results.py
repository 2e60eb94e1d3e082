"""EventResult: one handler's run for one event on one bus.

A row is created ``pending`` before any handler of the event runs (so a cancellation can say which handlers
never started), goes ``started`` when its handler is called, and ends ``completed`` (with ``result``) or
``error`` (with ``error``). ``completed_at`` is written once and never moves.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio
import attrs

from ._handlers import EventHandler
from ._ids import new_id
from ._modes import ResultStatusName
from ._time import new_timestamp

if TYPE_CHECKING:
    from ._event import BaseEvent

__all__ = ["EventResult"]

T = TypeVar("T")


_new_children = cast("Callable[[], list[BaseEvent[Any]]]", list)  # a C call per row, not a Python function


@attrs.define(eq=False, slots=True, weakref_slot=True)
class EventResult(Generic[T]):
    """One row of ``event.event_results``: what one handler did with one event.

    ``await row`` waits until the row is finished, then returns ``result`` or raises ``error``.
    """

    event_id: str
    handler: EventHandler
    id: str = attrs.field(factory=new_id)
    status: ResultStatusName = "pending"
    #: The effective timeout this run had (not serialised: it depends on the bus that ran it).
    timeout: float | None = None
    started_at: str | None = None
    completed_at: str | None = None
    result: T | None = None
    error: BaseException | None = None
    event_children: list[BaseEvent[Any]] = attrs.field(factory=_new_children)
    _done: anyio.Event | None = attrs.field(default=None, init=False, repr=False)
    #: Set while the handler runs: lets a ``first`` winner or a parent timeout abort it from outside.
    _cancel_scope: anyio.CancelScope | None = attrs.field(default=None, init=False, repr=False)
    _abort_reason: str | None = attrs.field(default=None, init=False, repr=False)
    #: True while one step of the (async) handler runs: emits made then defer their runloop wake-ups
    #: to the end of the step (see ``_calling._drive``).
    _stepping: bool = attrs.field(default=False, init=False, repr=False)
    _wakes: list[Any] | None = attrs.field(default=None, init=False, repr=False)

    # Flat handler metadata, as on the wire.
    @property
    def handler_id(self) -> str:
        return self.handler.id

    @property
    def handler_name(self) -> str:
        return self.handler.handler_name

    @property
    def handler_file_path(self) -> str | None:
        return self.handler.handler_file_path

    @property
    def handler_timeout(self) -> float | None:
        return self.handler.handler_timeout

    @property
    def handler_slow_timeout(self) -> float | None:
        return self.handler.handler_slow_timeout

    @property
    def handler_registered_at(self) -> str:
        return self.handler.handler_registered_at

    @property
    def handler_event_pattern(self) -> str:
        return self.handler.event_pattern

    @property
    def eventbus_id(self) -> str:
        return self.handler.eventbus_id

    @property
    def eventbus_name(self) -> str:
        return self.handler.eventbus_name

    @property
    def eventbus_label(self) -> str:
        return self.handler.eventbus_label

    @property
    def is_finished(self) -> bool:
        return self.status == "completed" or self.status == "error"

    # Transitions. They are synchronous on purpose: under level cancellation nothing that records an
    # outcome may need to await.
    def mark_started(self) -> None:
        self.status = "started"
        self.started_at = new_timestamp()

    def mark_completed(self, value: Any) -> None:
        self.result = value
        self.status = "completed"
        if self.completed_at is None:
            self.completed_at = new_timestamp()
        if self._done is not None:
            self._done.set()

    def mark_error(self, error: BaseException) -> None:
        self.error = error
        self.result = None
        self.status = "error"
        if self.completed_at is None:
            self.completed_at = new_timestamp()
        if self._done is not None:
            self._done.set()

    def update(
        self,
        *,
        status: ResultStatusName | None = None,
        result: Any = None,
        error: BaseException | str | None = None,
        timeout: float | None = None,
        **_: Any,
    ) -> EventResult[T]:
        """Seed or update the row (``event.event_result_update`` calls this). ``result=`` completes it,
        ``error=`` fails it (a string becomes ``Exception(str)``), ``status=`` is applied last."""
        if timeout is not None:
            self.timeout = timeout
        if error is not None:
            self.mark_error(Exception(error) if isinstance(error, str) else error)
        elif result is not None:
            self.mark_completed(result)
        if status is not None:
            if status != "pending" and self.started_at is None:
                self.started_at = new_timestamp()
            self.status = status
            if status in ("completed", "error"):
                if self.completed_at is None:
                    self.completed_at = new_timestamp()
                if self._done is not None:
                    self._done.set()
        return self

    def __await__(self) -> Generator[Any, Any, T | None]:
        return self._wait().__await__()

    async def _wait(self) -> T | None:
        if not self.is_finished:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
        if self.error is not None:
            raise self.error
        return self.result

    def __str__(self) -> str:
        return f"{self.handler.label}: {self.status}"
