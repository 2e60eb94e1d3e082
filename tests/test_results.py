"""Results: event_result()/event_results_list()/first() raising rules, strict result validation, rows."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, TypedDict

import anyio
import attrs
import pytest

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandlerError,
    EventHandlerResultSchemaError,
    EventResult,
)


class ResInt(BaseEvent[int]):
    pass


class ResStr(BaseEvent[str]):
    pass


class ResAny(BaseEvent):  # type: ignore[type-arg]
    pass


class ResList(BaseEvent[list[int]]):
    pass


class ResDict(BaseEvent[dict[str, list[int]]]):
    pass


class ResOptional(BaseEvent[int | None]):
    pass


class ResLiteral(BaseEvent[Literal["red", "green"]]):
    pass


class ResPoint(TypedDict):
    x: int
    y: int


class ResTyped(BaseEvent[ResPoint]):
    pass


@attrs.define
class ResAttrsUser:
    name: str
    age: int


class ResAttrs(BaseEvent[ResAttrsUser]):
    pass


@dataclasses.dataclass
class ResDataUser:
    name: str
    tags: list[str]


class ResData(BaseEvent[ResDataUser]):
    pass


class ResBoom(Exception):
    pass


async def _run(event_cls: type[BaseEvent[Any]], *handlers: Any) -> BaseEvent[Any]:
    async with EventBus() as bus:
        for handler in handlers:
            bus.on(event_cls, handler)
        return await bus.emit(event_cls())


def res_one(event: BaseEvent[Any]) -> int:
    return 1


def res_two(event: BaseEvent[Any]) -> int:
    return 2


def res_none(event: BaseEvent[Any]) -> None:
    return None


def res_fail(event: BaseEvent[Any]) -> int:
    raise ResBoom("first failure")


def res_fail_again(event: BaseEvent[Any]) -> int:
    raise KeyError("second failure")


class TestEventResult:
    @pytest.mark.anyio
    async def test_first_non_none_value(self) -> None:
        event = await _run(ResInt, res_none, res_one, res_two)
        assert await event.event_result() == 1
        assert await event.event_results_list() == [1, 2]

    @pytest.mark.anyio
    async def test_one_error_is_re_raised_as_is(self) -> None:
        event = await _run(ResInt, res_fail, res_one)
        with pytest.raises(ResBoom, match="first failure"):
            await event.event_result()
        with pytest.raises(ResBoom):
            await event.event_results_list()

    @pytest.mark.anyio
    async def test_several_errors_raise_an_exception_group(self) -> None:
        event = await _run(ResInt, res_fail, res_fail_again, res_one)
        with pytest.raises(ExceptionGroup) as info:
            await event.event_result()
        kinds = sorted(type(e).__name__ for e in info.value.exceptions)
        assert kinds == ["KeyError", "ResBoom"]

    @pytest.mark.anyio
    async def test_raise_if_any_false_ignores_errors(self) -> None:
        event = await _run(ResInt, res_fail, res_two)
        assert await event.event_result(raise_if_any=False) == 2
        assert await event.event_results_list(raise_if_any=False) == [2]

    @pytest.mark.anyio
    async def test_no_result_raises_value_error_unless_raise_if_none_false(self) -> None:
        event = await _run(ResInt, res_none)
        with pytest.raises(ValueError, match="ResInt"):
            await event.event_result()
        assert await event.event_result(raise_if_none=False) is None
        assert await event.event_results_list(raise_if_none=False) == []

    @pytest.mark.anyio
    async def test_no_handlers_counts_as_no_result(self) -> None:
        event = await _run(ResInt)
        with pytest.raises(ValueError):
            await event.event_result()
        assert await event.event_result(raise_if_none=False) is None

    @pytest.mark.anyio
    async def test_include_filters_rows(self) -> None:
        event = await _run(ResInt, res_one, res_two)

        def only_two(row: EventResult[int]) -> bool:
            return row.result == 2

        assert await event.event_result(include=only_two) == 2
        assert await event.event_results_list(include=only_two) == [2]
        with pytest.raises(ValueError):
            await event.event_result(include=lambda row: False)

    @pytest.mark.anyio
    async def test_include_can_admit_none_values(self) -> None:
        event = await _run(ResInt, res_none, res_one)
        values = await event.event_results_list(include=lambda row: row.status == "completed")
        assert values == [None, 1]

    @pytest.mark.anyio
    async def test_timeout_raises_timeout_error(self) -> None:
        gate = anyio.Event()

        async def res_wait(event: ResInt) -> int:
            await gate.wait()
            return 5

        async with EventBus() as bus:
            bus.on(ResInt, res_wait)
            event = bus.emit(ResInt())
            with pytest.raises(TimeoutError):
                await event.event_result(timeout=0.05)
            gate.set()
            assert await event.event_result(timeout=5) == 5

    @pytest.mark.anyio
    async def test_event_result_waits_for_completion(self) -> None:
        async with EventBus() as bus:
            bus.on(ResInt, res_two)
            event = bus.emit(ResInt())
            assert await event.event_result() == 2
            assert event.event_status == "completed"


class TestFirst:
    @pytest.mark.anyio
    async def test_first_returns_first_non_none_and_skips_the_rest(self) -> None:
        calls: list[str] = []

        def res_first_none(event: ResInt) -> None:
            calls.append("none")

        def res_first_value(event: ResInt) -> int:
            calls.append("value")
            return 7

        def res_first_never(event: ResInt) -> int:
            calls.append("never")
            return 8

        async with EventBus() as bus:
            bus.on(ResInt, res_first_none)
            bus.on(ResInt, res_first_value)
            bus.on(ResInt, res_first_never)
            event = bus.emit(ResInt())
            assert await event.first() == 7
        assert calls == ["none", "value"]
        assert event.event_handler_completion == "first"

    @pytest.mark.anyio
    async def test_first_defaults_do_not_raise(self) -> None:
        async with EventBus() as bus:
            bus.on(ResInt, res_fail)
            event = bus.emit(ResInt())
            assert await event.first() is None
        with pytest.raises(ResBoom):
            await event.first(raise_if_any=True)
        with pytest.raises(ValueError):
            await event.first(raise_if_none=True)


class TestResultValidation:
    @pytest.mark.anyio
    async def test_wrong_value_becomes_a_schema_error_on_the_row(self) -> None:
        event = await _run(ResInt, lambda e: "42")
        (row,) = event.event_results.values()
        assert row.status == "error"
        assert row.result is None
        assert isinstance(row.error, EventHandlerResultSchemaError)
        assert isinstance(row.error, ValueError)
        assert isinstance(row.error, EventHandlerError)
        assert row.error.raw_value == "42"
        assert row.error.event is event
        with pytest.raises(EventHandlerResultSchemaError):
            await event.event_result()

    @pytest.mark.parametrize(
        ("event_cls", "good", "bad"),
        [
            (ResInt, 3, "3"),
            (ResInt, 3, True),
            (ResInt, 3, 3.0),
            (ResStr, "ok", 42),
            (ResList, [1, 2], [1, "2"]),
            (ResList, [], (1, 2)),
            (ResDict, {"a": [1]}, {"a": [1, "x"]}),
            (ResDict, {"a": []}, {1: [1]}),
            (ResOptional, 1, "1"),
            (ResLiteral, "red", "blue"),
            (ResTyped, {"x": 1, "y": 2}, {"x": 1, "y": "2"}),
            (ResTyped, {"x": 1, "y": 2}, {"x": 1}),
            (ResAttrs, ResAttrsUser("a", 1), {"name": "a", "age": 1}),
            (ResData, ResDataUser("a", ["t"]), {"name": "a", "tags": ["t"]}),
            (ResAttrs, ResAttrsUser("a", 1), ResAttrsUser("a", "1")),  # type: ignore[arg-type]
            (ResData, ResDataUser("a", ["t"]), ResDataUser("a", [1])),  # type: ignore[list-item]
        ],
        ids=lambda v: v.__name__ if isinstance(v, type) else repr(v)[:40],
    )
    @pytest.mark.anyio
    async def test_strict_and_deep(self, event_cls: type[BaseEvent[Any]], good: Any, bad: Any) -> None:
        def res_good(event: BaseEvent[Any]) -> Any:
            return good

        def res_bad(event: BaseEvent[Any]) -> Any:
            return bad

        event = await _run(event_cls, res_good, res_bad)
        ok, wrong = event.event_results.values()
        assert ok.status == "completed"
        assert ok.result == good
        assert wrong.status == "error", f"{bad!r} was accepted as {event_cls.__name__}'s result"
        assert isinstance(wrong.error, EventHandlerResultSchemaError)

    @pytest.mark.anyio
    async def test_optional_result_accepts_none(self) -> None:
        event = await _run(ResOptional, res_none)
        (row,) = event.event_results.values()
        assert row.status == "completed"

    @pytest.mark.anyio
    async def test_no_declared_type_accepts_anything(self) -> None:
        event = await _run(ResAny, lambda e: {"anything": object()})
        (row,) = event.event_results.values()
        assert row.status == "completed"

    @pytest.mark.anyio
    async def test_returned_event_is_stored_raw_and_excluded_from_event_result(self) -> None:
        async with EventBus() as bus:
            inner = ResStr()

            def res_returns_event(event: ResInt) -> Any:
                return inner

            bus.on(ResInt, res_returns_event)
            bus.on(ResInt, res_two)
            event = await bus.emit(ResInt())
            rows = list(event.event_results.values())
            assert rows[0].status == "completed"
            assert rows[0].result is inner
            assert await event.event_result() == 2
            assert await event.event_results_list() == [2]

    @pytest.mark.anyio
    async def test_only_returned_event_means_no_result(self) -> None:
        async with EventBus() as bus:
            bus.on(ResInt, lambda e: ResStr())
            event = await bus.emit(ResInt())
            assert await event.event_result(raise_if_none=False) is None


class TestResultRows:
    @pytest.mark.anyio
    async def test_await_row_returns_its_result(self) -> None:
        event = await _run(ResInt, res_two)
        (row,) = event.event_results.values()
        assert await row == 2

    @pytest.mark.anyio
    async def test_await_row_raises_its_error(self) -> None:
        event = await _run(ResInt, res_fail)
        (row,) = event.event_results.values()
        with pytest.raises(ResBoom):
            await row

    @pytest.mark.anyio
    async def test_await_row_waits_for_the_handler(self) -> None:
        gate = anyio.Event()

        async def res_gated(event: ResInt) -> int:
            await gate.wait()
            return 9

        async with EventBus() as bus:
            bus.on(ResInt, res_gated)
            event = bus.emit(ResInt())
            await anyio.wait_all_tasks_blocked()
            (row,) = event.event_results.values()
            assert row.status == "started"
            gate.set()
            with anyio.fail_after(5):
                assert await row == 9

    @pytest.mark.anyio
    async def test_row_metadata(self) -> None:
        async with EventBus("ResMetaBus") as bus:
            entry = bus.on(ResInt, res_two)
            event = await bus.emit(ResInt())
        row = event.event_results[entry.id]
        assert row.event_id == event.event_id
        assert row.handler is entry
        assert row.handler_id == entry.id
        assert row.handler_name == entry.handler_name
        assert row.eventbus_name == "ResMetaBus"
        assert row.eventbus_id == bus.id
        assert row.eventbus_label == bus.label
        assert row.started_at is not None and row.completed_at is not None
        assert row.started_at <= row.completed_at
        assert row.timeout == 60.0
