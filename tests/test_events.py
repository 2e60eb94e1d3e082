"""BaseEvent[T]: definition rules, payload checks, metadata defaults and validation, ids, helpers."""

from __future__ import annotations

import inspect
import itertools
import re
import uuid
from typing import Any, Literal

import anyio
import attrs
import pytest

from bubus_anyio import (
    BaseEvent,
    BusNotRunningError,
    EventBus,
    EventHandlerResultSchemaError,
    EventResult,
    EventValidationError,
    get_current_bus,
)


class EvAdd(BaseEvent[int]):
    a: int
    b: int = 0


class EvItems(BaseEvent[str]):
    items: list[int]
    tags: dict[str, int] = attrs.field(factory=dict)


class EvNoResult(BaseEvent):  # type: ignore[type-arg]
    note: str = ""


class EvNoneResult(BaseEvent[None]):
    pass


class EvOptional(BaseEvent[int]):
    maybe: int | None = None
    kind: Literal["a", "b"] = "a"


class EvTimed(BaseEvent[int]):
    event_timeout = 5.0
    event_handler_concurrency = "parallel"
    event_version = "2.1.0"


CANONICAL_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


class TestDefinition:
    def test_subclass_without_decorator_is_a_keyword_only_class(self) -> None:
        event = EvAdd(a=1, b=2)
        assert (event.a, event.b) == (1, 2)
        with pytest.raises(TypeError):
            EvAdd(1, 2)  # type: ignore[misc]

    def test_payload_default_is_used_when_omitted(self) -> None:
        assert EvAdd(a=1).b == 0

    def test_missing_required_payload_field_is_an_error(self) -> None:
        with pytest.raises(TypeError, match="a"):
            EvAdd()  # type: ignore[call-arg]

    def test_every_event_field_has_its_default(self) -> None:
        event = EvAdd(a=1)
        assert event.event_type == "EvAdd"
        assert event.event_version == "0.0.1"
        for name in (
            "event_timeout",
            "event_slow_timeout",
            "event_concurrency",
            "event_handler_timeout",
            "event_handler_slow_timeout",
            "event_handler_concurrency",
            "event_handler_completion",
            "event_parent_id",
            "event_emitted_by_handler_id",
            "event_started_at",
            "event_completed_at",
        ):
            assert getattr(event, name) is None, name
        assert event.event_result_type is int
        assert event.event_path == []
        assert event.event_pending_bus_count == 0
        assert event.event_status == "pending"
        assert event.event_results == {}
        assert event.event_children == []

    def test_event_path_default_is_not_shared_between_instances(self) -> None:
        first, second = EvAdd(a=1), EvAdd(a=2)
        first.event_path.append("X#abcd")
        assert second.event_path == []

    def test_class_level_overrides_of_known_event_fields_become_defaults(self) -> None:
        event = EvTimed()
        assert event.event_timeout == 5.0
        assert event.event_handler_concurrency == "parallel"
        assert event.event_version == "2.1.0"
        assert EvTimed(event_timeout=1.0).event_timeout == 1.0

    def test_class_level_event_type_override(self) -> None:
        class EvRenamedClass(BaseEvent[int]):
            event_type = "EvRenamedType"

        assert EvRenamedClass().event_type == "EvRenamedType"

    @pytest.mark.parametrize(
        "field_name",
        [
            "event_foo",
            "event_result",
            "first",
            "bus",
            "model_x",
            "event_reset",
            "to_json",
            "event_results_list",
        ],
    )
    def test_reserved_payload_names_are_rejected_at_class_definition(self, field_name: str) -> None:
        with pytest.raises(TypeError, match=re.escape(field_name)):
            type(f"EvReserved_{field_name}", (BaseEvent,), {"__annotations__": {field_name: "int"}})

    def test_unknown_event_metadata_class_attribute_is_rejected(self) -> None:
        with pytest.raises(TypeError, match="event_colour"):
            type("EvUnknownMeta", (BaseEvent,), {"event_colour": "red"})

    def test_names_of_base_event_methods_are_reserved(self) -> None:
        for method in ("event_completed", "event_result_update", "from_json"):
            with pytest.raises(TypeError, match=method):
                type(f"EvMethodName_{method}", (BaseEvent,), {"__annotations__": {method: "int"}})


class TestResultType:
    def test_generic_argument_is_recorded(self) -> None:
        assert attrs.fields(EvAdd).event_result_type.default is int
        assert EvAdd(a=1).event_result_type is int
        assert EvItems(items=[]).event_result_type is str

    def test_no_argument_or_none_means_no_declared_result_type(self) -> None:
        assert EvNoResult().event_result_type is None
        assert EvNoneResult().event_result_type is None


class TestPayloadValidation:
    def test_wrong_type_names_field_expected_type_and_value(self) -> None:
        with pytest.raises(EventValidationError) as info:
            EvAdd(a="x")  # type: ignore[arg-type]
        err = info.value
        assert err.field == "a"
        assert "int" in str(err)
        assert "'x'" in str(err)
        assert "a" in str(err)

    def test_numeric_string_is_not_an_int(self) -> None:
        with pytest.raises(EventValidationError, match="'3'"):
            EvAdd(a="3")  # type: ignore[arg-type]

    def test_bool_is_not_an_int(self) -> None:
        with pytest.raises(EventValidationError) as info:
            EvAdd(a=True)
        assert info.value.field == "a"

    def test_nested_list_error_names_the_path(self) -> None:
        with pytest.raises(EventValidationError) as info:
            EvItems(items=[1, "2", 3])  # type: ignore[list-item]
        assert info.value.field == "items[1]"
        assert "items[1]" in str(info.value)
        assert "int" in str(info.value)

    def test_nested_dict_value_is_checked(self) -> None:
        with pytest.raises(EventValidationError) as info:
            EvItems(items=[], tags={"k": "v"})  # type: ignore[dict-item]
        assert info.value.field is not None and info.value.field.startswith("tags")

    def test_optional_and_literal_fields(self) -> None:
        assert EvOptional(maybe=None, kind="b").maybe is None
        with pytest.raises(EventValidationError):
            EvOptional(kind="c")  # type: ignore[arg-type]
        with pytest.raises(EventValidationError):
            EvOptional(maybe="1")  # type: ignore[arg-type]

    def test_validation_error_is_a_value_error(self) -> None:
        assert issubclass(EventValidationError, ValueError)


class TestMetadataValidation:
    @pytest.mark.parametrize("field", ["event_timeout", "event_slow_timeout", "event_handler_timeout"])
    def test_negative_timeout_is_rejected(self, field: str) -> None:
        with pytest.raises(EventValidationError) as info:
            EvAdd(a=1, **{field: -1.0})
        assert info.value.field == field

    @pytest.mark.parametrize(
        "field", ["event_concurrency", "event_handler_concurrency", "event_handler_completion"]
    )
    def test_bad_mode_string_is_rejected(self, field: str) -> None:
        with pytest.raises(EventValidationError) as info:
            EvAdd(a=1, **{field: "sometimes"})
        assert info.value.field == field
        assert "sometimes" in str(info.value)

    @pytest.mark.parametrize("event_type", ["not an identifier", "_private", "1abc"])
    def test_bad_event_type_is_rejected(self, event_type: str) -> None:
        with pytest.raises(EventValidationError) as info:
            EvAdd(a=1, event_type=event_type)
        assert info.value.field == "event_type"

    def test_valid_modes_are_accepted(self) -> None:
        event = EvAdd(
            a=1,
            event_concurrency="global-serial",
            event_handler_concurrency="parallel",
            event_handler_completion="first",
        )
        assert event.event_concurrency == "global-serial"

    def test_explicit_event_id_is_normalised(self) -> None:
        raw = "018F8E40-1234-7000-8000-000000001234"
        assert EvAdd(a=1, event_id=raw).event_id == raw.lower()
        with pytest.raises(ValueError, match="nope"):
            EvAdd(a=1, event_id="nope")

    def test_explicit_created_at_is_normalised(self) -> None:
        event = EvAdd(a=1, event_created_at="2025-01-02T05:04:05.678901+02:00")
        assert event.event_created_at == "2025-01-02T03:04:05.678901000Z"
        with pytest.raises(EventValidationError):
            EvAdd(a=1, event_created_at="yesterday")


class TestIdentity:
    def test_event_id_is_a_uuid7(self) -> None:
        parsed = uuid.UUID(EvAdd(a=1).event_id)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122

    def test_event_ids_are_unique(self) -> None:
        assert len({EvAdd(a=i).event_id for i in range(200)}) == 200

    def test_created_at_is_30_chars_and_strictly_increasing(self) -> None:
        stamps = [EvAdd(a=i).event_created_at for i in range(300)]
        assert all(len(s) == 30 and CANONICAL_TS.match(s) for s in stamps)
        assert all(a < b for a, b in itertools.pairwise(stamps))

    def test_hash_is_hash_of_event_id(self) -> None:
        event = EvAdd(a=1)
        assert hash(event) == hash(event.event_id)
        assert {event: 1}[event] == 1

    def test_event_label(self) -> None:
        event = EvAdd(a=1)
        assert event.event_label == f"EvAdd#{event.event_id[-4:]}"


class TestEventReset:
    @pytest.mark.anyio
    async def test_reset_gives_a_fresh_pending_copy_with_the_same_payload(self) -> None:
        async with EventBus() as bus:
            bus.on(EvAdd, lambda e: e.a + e.b)
            done = await bus.emit(EvAdd(a=2, b=3))
            fresh = done.event_reset()
            assert fresh is not done
            assert fresh.event_id != done.event_id
            assert uuid.UUID(fresh.event_id).version == 7
            assert (fresh.a, fresh.b) == (2, 3)
            assert fresh.event_status == "pending"
            assert fresh.event_results == {}
            assert fresh.event_started_at is None and fresh.event_completed_at is None
            assert done.event_status == "completed"


class TestEventResultUpdate:
    def test_creates_a_pending_row_then_completes_it(self) -> None:
        event = EvAdd(a=1)

        def ev_handler(e: EvAdd) -> int:
            return 0

        row = event.event_result_update(ev_handler)
        assert isinstance(row, EventResult)
        assert row.status == "pending"
        assert event.event_results[row.handler_id] is row
        again = event.event_result_update(ev_handler, result=7)
        assert again is not None and again.status == "completed"
        assert again.result == 7
        assert again.completed_at is not None

    def test_error_marks_row_as_error(self) -> None:
        event = EvAdd(a=1)
        row = event.event_result_update(lambda e: None, error=RuntimeError("bad"))
        assert row.status == "error"
        assert isinstance(row.error, RuntimeError)

    def test_result_is_validated_against_the_result_type(self) -> None:
        event = EvAdd(a=1)
        row = event.event_result_update(lambda e: None, result="not an int")
        assert row.status == "error"
        assert isinstance(row.error, EventHandlerResultSchemaError)

    @pytest.mark.anyio
    async def test_a_started_row_marks_the_event_started(self) -> None:
        event = EvAdd(a=1)

        def ev_seeded(e: EvAdd) -> int:
            return 0

        assert event.event_status == "pending" and event.event_started_at is None
        row = event.event_result_update(ev_seeded, status="started")
        assert row.status == "started" and row.started_at is not None
        assert event.event_status == "started"
        assert event.event_started_at == row.started_at
        finished = event.event_result_update(row.handler, result=3)
        assert finished is row and row.status == "completed"
        assert event.event_started_at == row.started_at  # not stamped again

    def test_pending_and_finished_rows_leave_a_pending_event_pending(self) -> None:
        event = EvAdd(a=1)
        event.event_result_update(lambda e: None)
        assert event.event_status == "pending" and event.event_started_at is None

    @pytest.mark.anyio
    async def test_updated_row_is_seen_by_event_result(self) -> None:
        event = EvAdd(a=1)
        event.event_result_update(lambda e: None, result=11)
        # The row is there even though no bus ran: it is plain data on the event.
        assert [r.result for r in event.event_results.values()] == [11]


class TestEventBusProperty:
    @pytest.mark.anyio
    async def test_event_bus_inside_handler_is_the_processing_bus(self) -> None:
        seen: list[Any] = []
        async with EventBus() as first, EventBus() as second:

            def ev_record(e: EvNoResult) -> None:
                seen.append((e.event_bus, get_current_bus()))

            first.on(EvNoResult, ev_record)
            second.on(EvNoResult, ev_record)
            event = first.emit(EvNoResult())
            second.emit(event)
            await event
        assert len(seen) == 2
        assert all(event_bus is processing for event_bus, processing in seen)
        assert {id(event_bus) for event_bus, _ in seen} == {id(first), id(second)}

    @pytest.mark.anyio
    async def test_event_bus_outside_handler_is_the_last_bus_it_was_emitted_on(self) -> None:
        async with EventBus() as bus:
            event = bus.emit(EvNoResult())
            assert event.event_bus is bus
            await event
            assert event.event_bus is bus

    def test_event_bus_of_a_never_emitted_event_raises(self) -> None:
        with pytest.raises((BusNotRunningError, AttributeError)):
            _ = EvNoResult().event_bus


class TestAwaitingUnemittedEvent:
    @pytest.mark.anyio
    async def test_awaiting_a_never_emitted_event_raises(self) -> None:
        with anyio.fail_after(2), pytest.raises(BusNotRunningError):
            await EvNoResult()


class TestAwaitingWithoutABus:
    """An event no bus holds: awaiting it raises, except a started one inside a handler (nothing to do)."""

    @pytest.mark.anyio
    async def test_inside_a_handler_a_started_event_never_emitted_returns_at_once(self) -> None:
        seen: list[str] = []

        async def handler(event: EvNoneResult) -> None:
            restored = EvAdd.from_json(EvAdd(a=1, b=2, event_status="started").to_json())
            assert await restored is restored
            assert await restored.event_results_list(raise_if_none=False) == []
            seen.append("returned")

        async with EventBus("EvNoBusStarted") as bus:
            bus.on(EvNoneResult, handler)
            await bus.emit(EvNoneResult())
        assert seen == ["returned"]

    @pytest.mark.anyio
    @pytest.mark.parametrize("status", ["pending", "started"])
    async def test_outside_handlers_every_wait_raises_naming_the_event(self, status: str) -> None:
        event = EvAdd(a=1, b=2, event_status=status)
        for wait in (event.event_completed, event.event_result, event.__await__().__next__):
            with pytest.raises(BusNotRunningError, match="was never emitted on a bus"):
                result = wait()
                if inspect.isawaitable(result):
                    await result
