"""Identifiers and timestamps, checked against the vectors recorded from bubus 2.3.2 (Python and TypeScript)."""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from _interop import INTEROP

from bubus_anyio import BaseEvent, EventBus, monotonic_datetime
from bubus_anyio._events._ids import HANDLER_ID_NAMESPACE, handler_id, new_id, normalize_uuid
from bubus_anyio._events._time import normalize_timestamp

VECTOR_FILES = {
    "py": INTEROP / "py-2.3.2" / "vectors.json",
    "ts": INTEROP / "ts-2.3.2" / "vectors.json",
}
CANONICAL_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def _load(runtime: str) -> dict[str, Any]:
    path = VECTOR_FILES[runtime]
    if not path.exists():
        pytest.skip(f"interop vectors not available: {path}")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _vector_params(key: str) -> list[Any]:
    params: list[Any] = []
    for runtime, path in VECTOR_FILES.items():
        if not path.exists():
            continue
        for index, vector in enumerate(json.loads(path.read_text())[key]):
            params.append(pytest.param(vector, id=f"{runtime}-{index}"))
    return params


class IdsEvent(BaseEvent[int]):
    pass


class TestHandlerIds:
    def test_namespace_is_uuid5_of_dns_bubus_handler(self) -> None:
        assert str(HANDLER_ID_NAMESPACE) == "4898345e-32b7-5f44-b450-2112431ad29d"

    @pytest.mark.parametrize("vector", _vector_params("handler_id_vectors"))
    def test_handler_id_vectors(self, vector: dict[str, Any]) -> None:
        assert handler_id(**vector["input"]) == vector["output"]

    def test_typescript_registered_handlers_recompute(self) -> None:
        data = _load("ts")
        top = data["registered_handler_top_level"]
        entry = top["entry"]
        assert entry["handler_file_path"] is None
        assert (
            handler_id(
                eventbus_id=entry["eventbus_id"],
                handler_name=entry["handler_name"],
                handler_file_path=None,
                handler_registered_at=entry["handler_registered_at"],
                event_pattern=entry["event_pattern"],
            )
            == top["recomputed_id"]
            == entry["id"]
        )
        detected = data["registered_handler_file_path_detected"]
        entry = detected["entry"]
        # TypeScript derives the id before it detects the file path: the id is that of a null path.
        assert (
            handler_id(
                eventbus_id=entry["eventbus_id"],
                handler_name=entry["handler_name"],
                handler_file_path=None,
                handler_registered_at=entry["handler_registered_at"],
                event_pattern=entry["event_pattern"],
            )
            == detected["recomputed_id_with_file_path_null"]
            == entry["id"]
        )

    @pytest.mark.anyio
    async def test_bus_on_derives_the_id_from_the_entry_fields(self) -> None:
        async with EventBus("IdsBus") as bus:

            def ids_handler(event: IdsEvent) -> int:
                return 1

            entry = bus.on(IdsEvent, ids_handler)
            assert entry.id == handler_id(
                eventbus_id=bus.id,
                handler_name=entry.handler_name,
                handler_file_path=entry.handler_file_path,
                handler_registered_at=entry.handler_registered_at,
                event_pattern="IdsEvent",
            )
            assert uuid.UUID(entry.id).version == 5


class TestUuids:
    def test_new_ids_are_uuid7_rfc_variant_lowercase(self) -> None:
        for _ in range(50):
            value = new_id()
            parsed = uuid.UUID(value)
            assert parsed.version == 7
            assert parsed.variant == uuid.RFC_4122
            assert value == str(parsed)

    def test_new_ids_sort_by_creation(self) -> None:
        ids = [new_id() for _ in range(100)]
        # uuid7's 48-bit millisecond prefix never goes backwards.
        prefixes = [i[:13] for i in ids]
        assert prefixes == sorted(prefixes)

    def test_normalize_uuid_lowercases_and_rejects_garbage(self) -> None:
        assert (
            normalize_uuid("018F8E40-1234-7000-8000-000000001234") == "018f8e40-1234-7000-8000-000000001234"
        )
        with pytest.raises(ValueError, match="xyz"):
            normalize_uuid("xyz")

    @pytest.mark.anyio
    async def test_bus_id_any_uuid_accepted_and_normalised(self) -> None:
        async with EventBus(id="018F8E40-1234-7000-8000-000000001234") as bus:
            assert bus.id == "018f8e40-1234-7000-8000-000000001234"
            assert bus.label.endswith("#1234")
        async with EventBus() as other:
            assert uuid.UUID(other.id).version == 7
        with pytest.raises(ValueError):
            EventBus(id="not-a-uuid")


class TestTimestampNormalisation:
    @pytest.mark.parametrize("vector", _vector_params("timestamp_normalization"))
    def test_vectors(self, vector: dict[str, Any]) -> None:
        if "output" in vector:
            assert normalize_timestamp(vector["input"]) == vector["output"]
            assert monotonic_datetime(vector["input"]) == vector["output"]
        else:
            with pytest.raises(ValueError):
                normalize_timestamp(vector["input"])
            with pytest.raises(ValueError):
                monotonic_datetime(vector["input"])

    @pytest.mark.parametrize(
        "value",
        [
            "2500-01-01T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-01-02T03:04:05.Z",
            "",
            "2025-01-02T03:04:05+0200",
        ],
    )
    def test_rejections(self, value: str) -> None:
        with pytest.raises(ValueError):
            normalize_timestamp(value)

    def test_non_string_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            normalize_timestamp(12345)  # type: ignore[arg-type]

    def test_datetimes_aware_and_naive(self) -> None:
        aware = datetime(2025, 1, 2, 5, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
        naive = datetime(2025, 1, 2, 3, 4, 5, 678901)
        assert normalize_timestamp(aware) == "2025-01-02T03:04:05.678901000Z"
        assert normalize_timestamp(naive) == "2025-01-02T03:04:05.678901000Z"
        assert normalize_timestamp(datetime(2025, 1, 2, tzinfo=UTC)) == "2025-01-02T00:00:00.000000000Z"

    @pytest.mark.parametrize("runtime", ["py", "ts"])
    def test_event_created_at_vectors(self, runtime: str) -> None:
        inputs: dict[str, Any] = {
            "datetime aware +02:00": datetime(
                2025, 1, 2, 5, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2))
            ),
            "datetime naive (treated as UTC)": datetime(2025, 1, 2, 3, 4, 5, 678901),
        }
        for vector in _load(runtime)["timestamp_via_event_created_at"]:
            given = inputs.get(vector["input"], vector["input"])
            assert IdsEvent(event_created_at=given).event_created_at == vector["output"]

    def test_canonical_form_sorts_in_time_order(self) -> None:
        values = ["2025-01-02T03:04:05.5-05:00", "2025-01-02T03:04:05Z", "2025-01-02T05:04:05.678901+02:00"]
        normalised = sorted(normalize_timestamp(v) for v in values)
        assert normalised == [
            "2025-01-02T03:04:05.000000000Z",
            "2025-01-02T03:04:05.678901000Z",
            "2025-01-02T08:04:05.500000000Z",
        ]


class TestMonotonicDatetime:
    @pytest.mark.parametrize("runtime", ["py", "ts"])
    def test_generated_examples_have_the_canonical_shape(self, runtime: str) -> None:
        for example in _load(runtime)["generated_now_examples"]:
            assert CANONICAL_TS.match(example)
            assert normalize_timestamp(example) == example

    def test_now_is_canonical_and_strictly_increasing(self) -> None:
        stamps = [monotonic_datetime() for _ in range(2000)]
        assert all(len(s) == 30 and CANONICAL_TS.match(s) for s in stamps)
        assert all(a < b for a, b in itertools.pairwise(stamps))

    def test_now_is_close_to_wall_clock(self) -> None:
        now = datetime.now(UTC)
        stamp = datetime.fromisoformat(monotonic_datetime()[:26] + "+00:00")
        assert abs((stamp - now).total_seconds()) < 5

    def test_stamps_across_a_second_boundary_and_clock_ties(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The cached second is left exactly at its end, ties are bumped by one nanosecond, and every stamp
        equals the general formatting of its instant."""
        from bubus_anyio._events import _time

        boundary = 1_800_000_001 * 1_000_000_000  # the start of an epoch second
        start = boundary - _time._ANCHOR_NS - 2  # pyright: ignore[reportPrivateUsage]
        readings = iter([start, start + 1, start + 1, start + 2, start + 5])
        monkeypatch.setattr(_time, "_monotonic_ns", lambda: next(readings))
        monkeypatch.setattr(_time, "_last_mono", 0)
        monkeypatch.setattr(_time, "_second", (0, 0, ""))
        stamps = [_time.new_timestamp() for _ in range(5)]
        anchor = _time._ANCHOR_NS  # pyright: ignore[reportPrivateUsage]
        expected = [start, start + 1, start + 2, start + 3, start + 5]  # the tie bumped, the next one too
        assert stamps == [_time.format_ns(anchor + m) for m in expected]
        assert stamps[1].endswith(".999999999Z") and stamps[2].endswith(".000000000Z")
        assert all(a < b for a, b in itertools.pairwise(stamps))

    def test_strictly_increasing_across_threads(self) -> None:
        results: list[list[str]] = []

        def worker() -> None:
            results.append([monotonic_datetime() for _ in range(500)])

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = [s for batch in results for s in batch]
        assert len(set(everything)) == len(everything)
        for batch in results:
            assert batch == sorted(batch)
