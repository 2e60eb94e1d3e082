"""log_tree(): events as roots, handler rows under them, children under the handler that emitted them."""

from __future__ import annotations

import re

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus


class TreeCheckout(BaseEvent[str]):
    order: str = "ord-1"


class TreeReserve(BaseEvent[str]):
    pass


class TreeReceipt(BaseEvent[list[int]]):
    pass


EVENT_LINE = r"(?:├── |└── ){label} \[\d\d:\d\d:\d\d\.\d{{3}} \(\d+\.\d{{3}}s\)\]"


class TestLogTree:
    @pytest.mark.anyio
    async def test_empty_history(self) -> None:
        async with EventBus() as bus:
            assert bus.log_tree() == "(No events in history)"

    @pytest.mark.anyio
    async def test_roots_rows_values_and_nested_children(self) -> None:
        async with EventBus("TreeBus") as bus:

            async def tree_on_checkout(event: TreeCheckout) -> str:
                await bus.emit(TreeReserve())
                bus.emit(TreeReceipt())
                return f"reserve:{event.order}"

            def tree_on_reserve(event: TreeReserve) -> str:
                return "reserved"

            def tree_on_receipt(event: TreeReceipt) -> list[int]:
                raise RuntimeError("printer jammed")

            checkout_entry = bus.on(TreeCheckout, tree_on_checkout)
            reserve_entry = bus.on(TreeReserve, tree_on_reserve)
            bus.on(TreeReceipt, tree_on_receipt)
            with anyio.fail_after(5):
                checkout = await bus.emit(TreeCheckout())
            second = await bus.emit(TreeReserve())
        lines = bus.log_tree().splitlines()
        reserve, receipt = checkout.event_children

        assert re.fullmatch(EVENT_LINE.format(label=re.escape(checkout.event_label)), lines[0])
        assert lines[1].startswith("│   └── ✅ ")
        assert f"{bus.label}.{checkout_entry.handler_name}#{checkout_entry.id[-4:]}" in lines[1]
        assert lines[1].endswith("→ 'reserve:ord-1'")
        assert re.fullmatch(
            r"│       ├── " + EVENT_LINE.format(label=re.escape(reserve.event_label))[len("(?:├── |└── )") :],
            lines[2],
        )
        assert lines[3].startswith("│       │   └── ✅ ")
        assert f".{reserve_entry.handler_name}#" in lines[3]
        assert lines[3].endswith("→ 'reserved'")
        assert lines[4].startswith(f"│       └── {receipt.event_label} [")
        assert lines[5].startswith("│           └── ❌ ")
        assert lines[5].endswith("☠️ RuntimeError: printer jammed")
        # The second root comes after the first, with the last-branch glyph.
        assert lines[6].startswith(f"└── {second.event_label} [")
        assert lines[7].startswith("    └── ✅ ")
        assert lines[0].startswith("├── ")
        assert len(lines) == 8

    @pytest.mark.anyio
    async def test_value_formatting(self) -> None:
        async with EventBus() as bus:
            bus.on(TreeReceipt, lambda e: [1, 2, 3])
            await bus.emit(TreeReceipt())
            tree = bus.log_tree()
        assert tree.splitlines()[1].endswith("→ list(3 items)")

    @pytest.mark.anyio
    async def test_event_without_handlers_is_a_bare_root(self) -> None:
        async with EventBus() as bus:
            event = await bus.emit(TreeReserve())
            assert bus.log_tree().splitlines() == [bus.log_tree()]
            assert bus.log_tree().startswith(f"└── {event.event_label} [")


class TestStr:
    @pytest.mark.anyio
    async def test_str_of_a_running_and_a_stopped_bus(self) -> None:
        async with EventBus("TreeStr") as bus:
            bus.on(TreeReserve, lambda e: "x")
            await bus.emit(TreeReserve())
            assert str(bus) == f"{bus.label}🟢(queue=0 active=0 history=1 handlers=1)"
        assert str(bus) == f"{bus.label}🔴(queue=0 active=0 history=1 handlers=1)"

    @pytest.mark.anyio
    async def test_str_counts_queued_events_before_running(self) -> None:
        bus = EventBus("TreeQueued")
        bus.emit(TreeReserve())
        bus.emit(TreeReserve())
        assert str(bus) == f"{bus.label}🔴(queue=2 active=0 history=2 handlers=0)"
        async with bus:
            pass
