"""Registering and removing handlers: patterns, callable kinds, names, file paths, order, timeouts."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandler,
    EventHandlerTimeoutError,
)

THIS_FILE = os.path.abspath(__file__)


def _expand(path: str) -> str:
    return os.path.expanduser(path)


class HdlPing(BaseEvent[str]):
    text: str = "ping"


class HdlOther(BaseEvent[str]):
    pass


class HdlNotAnEvent:
    pass


def hdl_sync(event: HdlPing) -> str:
    return f"sync:{event.text}"


async def hdl_async(event: HdlPing) -> str:
    await anyio.lowlevel.checkpoint()
    return f"async:{event.text}"


def hdl_join(prefix: str, event: HdlPing) -> str:
    return f"{prefix}:{event.text}"


async def hdl_ajoin(prefix: str, event: HdlPing) -> str:
    await anyio.lowlevel.checkpoint()
    return f"{prefix}:{event.text}"


class HdlService:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def on_ping(self, event: HdlPing) -> str:
        return f"{self.tag}:{event.text}"

    async def on_ping_async(self, event: HdlPing) -> str:
        await anyio.lowlevel.checkpoint()
        return f"{self.tag}-async:{event.text}"

    @classmethod
    def class_handler(cls, event: HdlPing) -> str:
        return f"{cls.__name__}:{event.text}"

    @staticmethod
    def static_handler(event: HdlPing) -> str:
        return f"static:{event.text}"


class HdlCallable:
    def __call__(self, event: HdlPing) -> str:
        return f"callable:{event.text}"


class HdlAsyncCallable:
    async def __call__(self, event: HdlPing) -> str:
        await anyio.lowlevel.checkpoint()
        return f"acallable:{event.text}"


HANDLER_KINDS: list[tuple[str, Callable[[], Callable[[HdlPing], Any]], str]] = [
    ("sync function", lambda: hdl_sync, "sync:ping"),
    ("async function", lambda: hdl_async, "async:ping"),
    ("bound method", lambda: HdlService("svc").on_ping, "svc:ping"),
    ("async bound method", lambda: HdlService("svc").on_ping_async, "svc-async:ping"),
    ("classmethod", lambda: HdlService.class_handler, "HdlService:ping"),
    ("staticmethod", lambda: HdlService.static_handler, "static:ping"),
    ("lambda", lambda: lambda e: f"lambda:{e.text}", "lambda:ping"),
    ("partial", lambda: functools.partial(hdl_join, "part"), "part:ping"),
    ("async partial", lambda: functools.partial(hdl_ajoin, "apart"), "apart:ping"),
    ("callable object", HdlCallable, "callable:ping"),
    ("async callable object", HdlAsyncCallable, "acallable:ping"),
]


class TestHandlerKinds:
    @pytest.mark.anyio
    @pytest.mark.parametrize(
        ("make", "expected"), [(m, e) for _, m, e in HANDLER_KINDS], ids=[k for k, _, _ in HANDLER_KINDS]
    )
    async def test_every_callable_kind_runs_and_returns_its_value(
        self, make: Callable[[], Callable[[HdlPing], Any]], expected: str
    ) -> None:
        async with EventBus() as bus:
            bus.on(HdlPing, make())
            event = await bus.emit(HdlPing())
            assert await event.event_result() == expected
            (row,) = event.event_results.values()
            assert row.status == "completed"


class TestPatterns:
    @pytest.mark.anyio
    async def test_class_type_string_and_wildcard_all_match(self) -> None:
        calls: list[str] = []

        def hdl_by_class(e: HdlPing) -> None:
            calls.append("class")

        def hdl_by_string(e: HdlPing) -> None:
            calls.append("string")

        def hdl_by_wildcard(e: BaseEvent[Any]) -> None:
            calls.append(f"wildcard:{e.event_type}")

        async with EventBus() as bus:
            bus.on(HdlPing, hdl_by_class)
            bus.on("HdlPing", hdl_by_string)
            bus.on("*", hdl_by_wildcard)
            await bus.emit(HdlPing())
            await bus.emit(HdlOther())
        assert calls == ["class", "string", "wildcard:HdlPing", "wildcard:HdlOther"]

    @pytest.mark.anyio
    async def test_on_returns_the_registered_entry(self) -> None:
        async with EventBus("HdlEntryBus") as bus:
            entry = bus.on(HdlPing, hdl_sync)
            assert isinstance(entry, EventHandler)
            assert entry.event_pattern == "HdlPing"
            assert entry.eventbus_name == "HdlEntryBus"
            assert entry.eventbus_id == bus.id
            assert entry.handler is hdl_sync
            assert bus.handlers[entry.id] is entry
            assert entry.label == f"{entry.handler_name}#{entry.id[-4:]}"
            assert len(entry.handler_registered_at) == 30
            assert bus.on("*", hdl_async).event_pattern == "*"

    @pytest.mark.anyio
    async def test_unknown_patterns_raise_type_error(self) -> None:
        async with EventBus() as bus:
            for pattern in (42, HdlNotAnEvent, BaseEvent, None, str, ""):
                with pytest.raises(TypeError):
                    bus.on(pattern, hdl_sync)  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    bus.off(pattern)  # type: ignore[arg-type]
            assert bus.handlers == {}

    @pytest.mark.anyio
    async def test_non_callable_handler_raises_type_error(self) -> None:
        async with EventBus() as bus:
            with pytest.raises(TypeError):
                bus.on(HdlPing, "not callable")  # type: ignore[arg-type]


class TestOff:
    @pytest.mark.anyio
    async def test_off_by_callable(self) -> None:
        async with EventBus() as bus:
            bus.on(HdlPing, hdl_sync)
            kept = bus.on(HdlPing, hdl_async)
            bus.off(HdlPing, hdl_sync)
            assert list(bus.handlers) == [kept.id]
            assert await bus.emit(HdlPing()).event_result() == "async:ping"

    @pytest.mark.anyio
    async def test_off_by_id_and_by_entry(self) -> None:
        async with EventBus() as bus:
            first = bus.on(HdlPing, hdl_sync)
            second = bus.on(HdlPing, hdl_async)
            bus.off(HdlPing, first.id)
            assert first.id not in bus.handlers
            bus.off(HdlPing, second)
            assert bus.handlers == {}
            event = await bus.emit(HdlPing())
            assert event.event_results == {}

    @pytest.mark.anyio
    async def test_off_by_type_string_removes_class_registrations(self) -> None:
        async with EventBus() as bus:
            bus.on(HdlPing, hdl_sync)
            bus.off("HdlPing")
            assert bus.handlers == {}

    @pytest.mark.anyio
    async def test_off_without_handler_removes_all_on_that_pattern_only(self) -> None:
        async with EventBus() as bus:
            bus.on(HdlPing, hdl_sync)
            bus.on(HdlPing, hdl_async)
            other = bus.on(HdlOther, hdl_sync)
            wild = bus.on("*", hdl_sync)
            bus.off(HdlPing)
            assert set(bus.handlers) == {other.id, wild.id}

    @pytest.mark.anyio
    async def test_off_wildcard_removes_only_wildcard_handlers(self) -> None:
        async with EventBus() as bus:
            exact = bus.on(HdlPing, hdl_sync)
            bus.on("*", hdl_sync)
            bus.off("*")
            assert list(bus.handlers) == [exact.id]

    @pytest.mark.anyio
    async def test_off_of_unregistered_handler_is_a_no_op(self) -> None:
        async with EventBus() as bus:
            entry = bus.on(HdlPing, hdl_sync)
            bus.off(HdlPing, hdl_async)
            bus.off(HdlOther)
            assert list(bus.handlers) == [entry.id]

    @pytest.mark.anyio
    async def test_off_by_bound_method_equal_but_not_identical(self) -> None:
        service = HdlService("svc")
        async with EventBus() as bus:
            bus.on(HdlPing, service.on_ping)
            bus.off(HdlPing, service.on_ping)  # a fresh bound-method object, equal to the registered one
            assert bus.handlers == {}


class TestNamesAndPaths:
    @pytest.mark.anyio
    async def test_function_name_is_module_dot_function(self) -> None:
        async with EventBus() as bus:
            entry = bus.on(HdlPing, hdl_sync)
            assert entry.handler_name == f"{hdl_sync.__module__}.hdl_sync"
            lam = bus.on(HdlOther, lambda e: None)
            assert lam.handler_name == f"{__name__}.<lambda>"

    @pytest.mark.anyio
    async def test_bound_and_class_methods_are_class_dot_method(self) -> None:
        async with EventBus() as bus:
            assert bus.on(HdlPing, HdlService("a").on_ping).handler_name == "HdlService.on_ping"
            assert bus.on(HdlPing, HdlService.class_handler).handler_name == "HdlService.class_handler"

    @pytest.mark.anyio
    async def test_file_path_is_file_and_first_line(self) -> None:
        async with EventBus() as bus:
            entry = bus.on(HdlPing, hdl_sync)
            path = entry.handler_file_path
            assert path is not None
            file_part, _, line = path.rpartition(":")
            assert int(line) == hdl_sync.__code__.co_firstlineno
            assert file_part.startswith(("~/", "/"))
            assert _expand(file_part) == THIS_FILE

    @pytest.mark.anyio
    async def test_file_path_of_bound_method_partial_and_callable_object(self) -> None:
        async with EventBus() as bus:
            method = bus.on(HdlPing, HdlService("a").on_ping)
            assert method.handler_file_path is not None
            assert method.handler_file_path.endswith(f":{HdlService.on_ping.__code__.co_firstlineno}")
            part = bus.on(HdlOther, functools.partial(hdl_join, "x"))
            assert part.handler_file_path is not None
            assert part.handler_file_path.endswith(f":{hdl_join.__code__.co_firstlineno}")
            obj = bus.on("*", HdlCallable())
            assert obj.handler_file_path is not None
            assert obj.handler_file_path.endswith(f":{HdlCallable.__call__.__code__.co_firstlineno}")

    @pytest.mark.anyio
    async def test_closures_made_from_the_same_code_keep_their_own_name_and_kind(self) -> None:
        """Closures defined anew for each registration share their code (and a cache of traits), yet a
        renamed one keeps its name, and one that wraps a coroutine function is still run as async."""

        def make(kind: str) -> Callable[[HdlPing], Any]:
            def closure(event: HdlPing) -> Any:
                async def later() -> str:
                    return f"{kind}-awaited"

                return kind if kind != "marked" else later()

            return closure

        async with EventBus() as bus:
            plain = bus.on(HdlPing, make("plain"))
            renamed_fn = make("renamed")
            renamed_fn.__name__ = "renamed_handler"
            renamed = bus.on(HdlPing, renamed_fn)
            marked_fn = make("marked")

            async def async_twin(event: HdlPing) -> str:
                return "unused"

            marked_fn.__wrapped__ = async_twin  # type: ignore[attr-defined]  # as functools.wraps would
            marked = bus.on("*", marked_fn)  # same name as `plain`: another pattern, so no warning
            assert plain.handler_name.endswith(".closure") and not plain.is_async
            assert renamed.handler_name.endswith(".renamed_handler")
            assert marked.is_async
            assert plain.handler_file_path == renamed.handler_file_path == marked.handler_file_path
            results = await bus.emit(HdlPing()).event_results_list(raise_if_any=False)
            assert results == ["plain", "renamed", "marked-awaited"]

    @pytest.mark.anyio
    async def test_file_path_detection_can_be_disabled(self) -> None:
        async with EventBus(event_handler_detect_file_paths=False) as bus:
            assert bus.on(HdlPing, hdl_sync).handler_file_path is None

    @pytest.mark.anyio
    async def test_duplicate_name_on_the_same_pattern_warns(self) -> None:
        async with EventBus() as bus:
            bus.on(HdlPing, hdl_sync)
            with pytest.warns(UserWarning, match="hdl_sync"):
                bus.on(HdlPing, hdl_sync)
            assert len(bus.handlers) == 2

    @pytest.mark.anyio
    async def test_same_name_on_another_pattern_does_not_warn(self) -> None:
        async with EventBus() as bus:
            bus.on(HdlPing, hdl_sync)
            bus.on(HdlOther, hdl_sync)
            bus.on("*", hdl_sync)
            assert len(bus.handlers) == 3


class TestOrder:
    @pytest.mark.anyio
    async def test_exact_handlers_run_before_wildcard_each_in_registration_order(self) -> None:
        order: list[str] = []

        def make(tag: str) -> Callable[[BaseEvent[Any]], None]:
            def handler(event: BaseEvent[Any]) -> None:
                order.append(tag)

            handler.__name__ = f"hdl_{tag}"
            return handler

        async with EventBus() as bus:
            bus.on("*", make("wild1"))
            bus.on(HdlPing, make("exact1"))
            bus.on("*", make("wild2"))
            bus.on("HdlPing", make("exact2"))
            bus.on(HdlPing, make("exact3"))
            event = await bus.emit(HdlPing())
        assert order == ["exact1", "exact2", "exact3", "wild1", "wild2"]
        assert [row.handler_name.rsplit(".", 1)[-1] for row in event.event_results.values()] == [
            "hdl_exact1",
            "hdl_exact2",
            "hdl_exact3",
            "hdl_wild1",
            "hdl_wild2",
        ]

    @pytest.mark.anyio
    async def test_serial_handlers_do_not_overlap(self) -> None:
        log: list[str] = []

        async def hdl_slow_a(event: HdlPing) -> None:
            log.append("a-start")
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
            log.append("a-end")

        async def hdl_slow_b(event: HdlPing) -> None:
            log.append("b-start")
            await anyio.lowlevel.checkpoint()
            log.append("b-end")

        async with EventBus() as bus:
            bus.on(HdlPing, hdl_slow_a)
            bus.on(HdlPing, hdl_slow_b)
            await bus.emit(HdlPing())
        assert log == ["a-start", "a-end", "b-start", "b-end"]

    @pytest.mark.anyio
    async def test_handler_registered_after_emit_but_before_processing_runs(self) -> None:
        bus = EventBus()
        event = bus.emit(HdlPing())
        bus.on(HdlPing, hdl_sync)
        async with bus:
            await event
        assert await event.event_result() == "sync:ping"


class TestHandlerTimeout:
    @pytest.mark.anyio
    async def test_per_handler_timeout_option(self) -> None:
        async def hdl_forever(event: HdlPing) -> str:
            await anyio.sleep_forever()
            return "never"

        async with EventBus() as bus:
            entry = bus.on(HdlPing, hdl_forever, handler_timeout=0.05)
            bus.on(HdlPing, hdl_sync)
            assert entry.handler_timeout == 0.05
            with anyio.fail_after(5):
                event = await bus.emit(HdlPing())
        slow, quick = event.event_results.values()
        assert slow.status == "error"
        assert isinstance(slow.error, EventHandlerTimeoutError)
        assert isinstance(slow.error, TimeoutError)
        assert slow.error.timeout == 0.05
        assert slow.error.handler is entry
        assert quick.result == "sync:ping"

    @pytest.mark.anyio
    async def test_handler_timeout_overrides_a_shorter_event_handler_timeout(self) -> None:
        async def hdl_brief(event: HdlPing) -> str:
            await anyio.sleep(0.05)
            return "done"

        async with EventBus() as bus:
            bus.on(HdlPing, hdl_brief, handler_timeout=5)
            event = await bus.emit(HdlPing(event_handler_timeout=0.001))
        assert await event.event_result() == "done"


class TestRegistrationEdgeCases:
    """Regression tests from review of the registry split and the callable-entry change."""

    @pytest.mark.anyio
    async def test_a_duplicate_name_warning_raised_as_an_error_registers_nothing(self) -> None:
        told: list[bool] = []

        class Watch:
            def on_bus_handlers_change(self, bus: EventBus, entry: EventHandler, registered: bool) -> None:
                told.append(registered)

        def twice(event: HdlPing) -> str:
            return "a"

        async with EventBus("HdlDupWarn", middlewares=[Watch()]) as bus:
            bus.on(HdlPing, twice)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with pytest.raises(UserWarning):
                    bus.on(HdlPing, twice)
            assert len(bus.handlers) == 1
            assert [len(ids) for ids in bus.handlers_by_key.values()] == [1]
            assert await bus.emit(HdlPing()).event_results_list() == ["a"]
        assert told == [True]

    @pytest.mark.anyio
    async def test_an_entry_given_to_on_registers_its_callable_with_its_traits(self) -> None:
        fast_ran = anyio.Event()
        log: list[str] = []

        async def slow(event: HdlPing) -> str:
            log.append("slow start")
            await fast_ran.wait()  # would never return if it ran inline before `fast`
            log.append("slow end")
            return "slow"

        async def fast(event: HdlPing) -> str:
            log.append("fast")
            fast_ran.set()
            return "fast"

        entry = EventBus("HdlSource").on(HdlPing, slow)
        with anyio.fail_after(5):
            async with EventBus("HdlTarget", event_handler_concurrency="parallel") as bus:
                copied = bus.on(HdlPing, entry)
                bus.on(HdlPing, fast)
                await bus.emit(HdlPing())
        assert copied.is_async and copied.handler is slow and copied.handler_name == entry.handler_name
        assert log == ["slow start", "fast", "slow end"]

    def test_an_entry_without_a_callable_cannot_be_registered(self) -> None:
        stub = EventHandler(id="0" * 32, handler=None, event_pattern="HdlPing")
        with pytest.raises(TypeError, match="no callable attached"):
            EventBus("HdlStub").on(HdlPing, stub)
