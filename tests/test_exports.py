"""The public surface, in trio's style: every public name is importable from ``bubus_anyio`` and nothing
private leaks out; the error taxonomy has the documented bases."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

import bubus_anyio

#: The names SPEC §1 promises at the top level (later issues add retry, middlewares, bridges, events_suck).
SPEC_NAMES = {
    "BaseEvent",
    "EventBus",
    "get_current_event",
    "get_current_handler",
    "get_current_bus",
    "in_handler",
    "EventBusError",
    "EventHandlerError",
    "EventHandlerTimeoutError",
    "EventHandlerAbortedError",
    "EventHandlerCancelledError",
    "EventHandlerResultSchemaError",
    "HistoryFullError",
    "QueueFullError",
    "BusNotRunningError",
    "EventValidationError",
}
#: Further public names the package documents (types of objects the API hands out, helpers).
EXTRA_NAMES = {
    "BusStatistics",
    "DeadlockError",
    "EventHandler",
    "EventHistory",
    "EventResult",
    "EventConcurrencyMode",
    "EventHandlerCompletionMode",
    "EventHandlerConcurrencyMode",
    "EventResultStatus",
    "EventStatus",
    "monotonic_datetime",
    "RemoteHandlerError",
}
#: Public submodules (present once imported) and the names later issues add (allowed, not required here).
PUBLIC_SUBMODULES = {"retry", "events_suck", "middlewares", "bridges"}
LATER_ISSUE_NAMES = {"RetryTimeoutError", "SemaphoreTimeoutError", "RemoteHandlerError"}

ERRORS = [
    "EventBusError",
    "EventHandlerError",
    "EventHandlerTimeoutError",
    "EventHandlerAbortedError",
    "EventHandlerCancelledError",
    "EventHandlerResultSchemaError",
    "HistoryFullError",
    "QueueFullError",
    "BusNotRunningError",
    "EventValidationError",
    "DeadlockError",
]


def _public_names() -> set[str]:
    return {name for name in dir(bubus_anyio) if not name.startswith("_")}


class TestPublicSurface:
    @pytest.mark.parametrize("name", sorted(SPEC_NAMES | EXTRA_NAMES))
    def test_public_name_is_importable_from_the_package(self, name: str) -> None:
        namespace: dict[str, object] = {}
        exec(f"from bubus_anyio import {name}", namespace)
        assert namespace[name] is getattr(bubus_anyio, name)

    def test_no_unexpected_public_names(self) -> None:
        unexpected = _public_names() - SPEC_NAMES - EXTRA_NAMES - PUBLIC_SUBMODULES - LATER_ISSUE_NAMES
        assert unexpected == set()

    def test_no_private_module_is_reachable_by_a_public_name(self) -> None:
        for name in _public_names():
            value = getattr(bubus_anyio, name)
            if isinstance(value, types.ModuleType):
                assert not value.__name__.rsplit(".", 1)[-1].startswith("_"), name

    def test_public_objects_are_defined_inside_the_package(self) -> None:
        for name in _public_names() - PUBLIC_SUBMODULES:
            value = getattr(bubus_anyio, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert value.__module__.startswith("bubus_anyio"), name

    def test_public_classes_and_functions_are_documented(self) -> None:
        for name in SPEC_NAMES | EXTRA_NAMES:
            value = getattr(bubus_anyio, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert inspect.getdoc(value), f"{name} has no docstring"

    def test_version_is_a_string(self) -> None:
        assert isinstance(bubus_anyio.__version__, str)

    def test_reimport_is_stable(self) -> None:
        assert importlib.import_module("bubus_anyio") is bubus_anyio


class TestErrorTaxonomy:
    @pytest.mark.parametrize("name", ERRORS)
    def test_every_error_is_an_exception_under_event_bus_error(self, name: str) -> None:
        cls = getattr(bubus_anyio, name)
        assert issubclass(cls, Exception)
        assert issubclass(cls, bubus_anyio.EventBusError)

    def test_documented_extra_bases(self) -> None:
        handler_errors = [
            bubus_anyio.EventHandlerTimeoutError,
            bubus_anyio.EventHandlerAbortedError,
            bubus_anyio.EventHandlerCancelledError,
            bubus_anyio.EventHandlerResultSchemaError,
        ]
        assert all(issubclass(cls, bubus_anyio.EventHandlerError) for cls in handler_errors)
        assert issubclass(bubus_anyio.EventHandlerTimeoutError, TimeoutError)
        assert issubclass(bubus_anyio.EventHandlerResultSchemaError, ValueError)
        assert issubclass(bubus_anyio.EventValidationError, ValueError)
        assert issubclass(bubus_anyio.BusNotRunningError, RuntimeError)

    def test_cancelled_and_aborted_are_not_backend_cancellation(self) -> None:
        import asyncio

        for cls in (bubus_anyio.EventHandlerAbortedError, bubus_anyio.EventHandlerCancelledError):
            assert not issubclass(cls, asyncio.CancelledError)
            assert issubclass(cls, Exception)

    def test_handler_errors_carry_event_handler_and_timeout(self) -> None:
        error = bubus_anyio.EventHandlerTimeoutError("late", timeout=1.5)
        assert (error.event, error.handler, error.timeout) == (None, None, 1.5)
