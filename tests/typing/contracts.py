"""Static typing contracts, checked by ``pyright --strict`` (``make typecheck``), never executed by pytest.

They pin what a user's type checker infers: ``emit(e: T) -> T``, ``find(type[T]) -> T | None``, result types
flowing from ``BaseEvent[T]`` to ``event_result()``, and the dataclass-like constructor of events.
"""

from __future__ import annotations

from typing import Any, assert_type

from bubus_anyio import BaseEvent, EventBus, EventHandler, EventResult, retry


class Add(BaseEvent[int]):
    a: int
    b: int = 0


class Note(BaseEvent[None]):
    text: str


async def contracts(bus: EventBus) -> None:
    event = bus.emit(Add(a=1, b=2))
    assert_type(event, Add)
    assert_type(await event, Add)
    assert_type(await event.event_result(), int)
    assert_type(await event.event_result(raise_if_none=False), int | None)
    assert_type(await event.event_results_list(), list[int])
    assert_type(await event.first(), int | None)
    assert_type(await bus.find(Add), Add | None)
    assert_type(await bus.find("Add"), BaseEvent[Any] | None)
    assert_type(await bus.send(Note(text="x")), Note)
    assert_type(event.event_results, dict[str, EventResult[int]])

    def on_add(e: Add) -> int:
        return e.a + e.b

    assert_type(bus.on(Add, on_add), EventHandler)

    @retry(max_attempts=3)
    async def flaky(x: int) -> str:
        return str(x)

    assert_type(await flaky(1), str)

    Add(a=1)  # keyword-only, b has a default
    Add(a=1, b=2, event_timeout=5.0)  # metadata fields are accepted too
