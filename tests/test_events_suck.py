"""``events_suck``: functions -> events (``make_events``), functions -> handlers (``make_handler``), events ->
client classes (``wrap``), and the round trip through a running bus on asyncio and trio."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import attrs
import pytest

from bubus_anyio import BaseEvent, EventBus, EventHandlerResultSchemaError, EventValidationError
from bubus_anyio.events_suck import GeneratedEvents, make_events, make_handler, wrap

# -- the functions turned into events ----------------------------------------------------------------------


def add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


async def greet(name: str, punctuation: str = "!") -> str:
    await anyio.lowlevel.checkpoint()
    return f"hello {name}{punctuation}"


def tag(label: str, tags: list[str] = []) -> list[str]:  # noqa: B006 - the mutable default is the point
    tags.append(label)
    return tags


def untyped(x, y=1):  # type: ignore[no-untyped-def]  # pyright: ignore[reportMissingParameterType, reportUnknownParameterType]
    return x  # pyright: ignore[reportUnknownVariableType]


def nothing(x: int) -> None:
    return None


def fails(x: int) -> int:
    raise LookupError(f"no {x}")


class SuckSpecialError(Exception):
    pass


def _events() -> GeneratedEvents:
    return make_events({"SuckAdd": add, "SuckGreet": greet, "SuckTag": tag})


def _payload(cls: type[BaseEvent[Any]]) -> dict[str, attrs.Attribute[Any]]:
    return {a.name: a for a in attrs.fields(cls) if not a.name.startswith(("event_", "_"))}


# -- round trip --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_round_trip_returns_the_functions_values() -> None:
    events = _events()
    client_class = wrap("SuckCalc", {"add": events.SuckAdd, "greet": events.SuckGreet, "tag": events.SuckTag})
    client = client_class()
    client.bus.on(events.SuckAdd, make_handler(add))
    client.bus.on(events.SuckGreet, make_handler(greet))
    client.bus.on(events.SuckTag, make_handler(tag))
    async with client.bus:
        assert await client.add(a=1) == 3
        assert await client.add(a=1, b=5) == 6
        assert await client.greet(name="bob") == "hello bob!"
        assert await client.greet(name="bob", punctuation="?") == "hello bob?"
        assert await client.tag(label="x") == ["x"]
        assert await client.tag(label="y") == ["y"]  # the list default is fresh per event
        assert await client.tag(label="z", tags=["w"]) == ["w", "z"]


@pytest.mark.anyio
async def test_client_on_a_bus_given_explicitly() -> None:
    events = make_events({"SuckAdd": add})
    bus = EventBus("SuckSharedBus")
    bus.on(events.SuckAdd, make_handler(add))
    client = wrap("SuckCalc", {"add": events.SuckAdd})(bus)
    assert client.bus is bus
    async with bus:
        assert await client.add(a=40) == 42
        event = await bus.find(events.SuckAdd, past=True)
        assert event is not None and (event.a, event.b) == (40, 2)


@pytest.mark.anyio
async def test_extra_goes_to_the_event_constructor() -> None:
    events = make_events({"SuckAdd": add})
    client = wrap("SuckCalc", {"add": events.SuckAdd})()
    seen: list[BaseEvent[Any]] = []
    client.bus.on(events.SuckAdd, make_handler(add))
    client.bus.on(events.SuckAdd, seen.append)
    async with client.bus:
        assert await client.add(a=1, event_timeout=7.0) == 3
        assert seen[0].event_timeout == 7.0
        with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
            await client.add(a=1, bogus=True)


@pytest.mark.anyio
async def test_hand_written_event_class_and_plain_handler() -> None:
    class SuckHandWritten(BaseEvent[str]):
        """A hand-written event."""

        word: str
        times: int = 2

    client = wrap("SuckEcho", {"echo": SuckHandWritten})()

    def echo(event: SuckHandWritten) -> str:
        return event.word * event.times

    client.bus.on(SuckHandWritten, echo)
    async with client.bus:
        assert await client.echo(word="ab") == "abab"
        assert await client.echo(word="ab", times=3) == "ababab"
    doc: str = client.echo.__doc__
    assert "A hand-written event." in doc and "SuckHandWritten" in doc


# -- wrap: the generated class and signatures ----------------------------------------------------------------


@pytest.mark.anyio
async def test_generated_class_identity_and_default_bus() -> None:
    events = _events()
    client_class = wrap("SuckNamed", {"add": events.SuckAdd})
    assert client_class.__name__ == client_class.__qualname__ == "SuckNamed"
    assert client_class.__module__ == __name__
    assert wrap("SuckNamed", {}, module="somewhere").__module__ == "somewhere"
    client = client_class()
    assert isinstance(client.bus, EventBus)
    assert client.bus.name == "SuckNamedBus"
    assert repr(client).startswith("<SuckNamed bus=SuckNamedBus#")
    assert "add() -> SuckAdd" in (client_class.__doc__ or "")
    init_params = inspect.signature(client_class).parameters
    assert list(init_params) == ["bus"] and init_params["bus"].default is None
    async with client.bus:  # a bus that never runs leaks its streams (ResourceWarning); see the docs
        pass


@pytest.mark.anyio
async def test_method_signatures_mirror_the_payload_fields() -> None:
    events = _events()
    client_class = wrap("SuckSigs", {"add": events.SuckAdd, "greet": events.SuckGreet, "tag": events.SuckTag})

    sig = inspect.signature(client_class.add)
    params = list(sig.parameters.values())
    assert [p.name for p in params] == ["self", "a", "b", "extra"]
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:3])
    assert params[3].kind is inspect.Parameter.VAR_KEYWORD
    assert params[1].annotation is int and params[1].default is inspect.Parameter.empty
    assert params[2].annotation is int and params[2].default == 2
    assert sig.return_annotation is int
    assert str(sig) == "(self, *, a: int, b: int = 2, **extra: Any) -> int"

    assert str(inspect.signature(client_class.greet)) == (
        "(self, *, name: str, punctuation: str = '!', **extra: Any) -> str"
    )
    # a factory default shows what the factory makes
    assert str(inspect.signature(client_class.tag)) == (
        "(self, *, label: str, tags: list[str] = [], **extra: Any) -> list[str]"
    )
    client = client_class()
    assert list(inspect.signature(client.add).parameters) == ["a", "b", "extra"]
    async with client.bus:
        pass

    method = client_class.add
    assert method.__name__ == "add"
    assert method.__qualname__ == "SuckSigs.add"
    assert method.__module__ == __name__
    assert inspect.iscoroutinefunction(method)
    assert "SuckAdd" in method.__doc__ and "Add two numbers." in method.__doc__
    assert method.__annotations__ == {"a": int, "b": int, "extra": Any, "return": int}


def test_method_var_keyword_is_renamed_when_a_field_is_called_extra() -> None:
    class SuckExtraField(BaseEvent[int]):
        extra: int

    sig = inspect.signature(wrap("SuckExtra", {"go": SuckExtraField}).go)
    assert list(sig.parameters) == ["self", "extra", "extra_"]
    assert sig.parameters["extra_"].kind is inspect.Parameter.VAR_KEYWORD


def test_wrap_rejects_bad_input() -> None:
    events = _events()
    with pytest.raises(TypeError, match="BaseEvent subclass"):
        wrap("SuckBad", {"add": add})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="BaseEvent subclass"):
        wrap("SuckBad", {"add": BaseEvent})
    for bad in ("bus", "__init__", "not a name", "class"):
        with pytest.raises(ValueError, match="method name"):
            wrap("SuckBad", {bad: events.SuckAdd})
    with pytest.raises(ValueError, match="class name"):
        wrap("Suck Bad", {})


@pytest.mark.anyio
async def test_method_errors() -> None:
    events = make_events({"SuckAdd": add, "SuckNothing": nothing, "SuckFails": fails})
    client = wrap(
        "SuckErrs", {"add": events.SuckAdd, "nothing": events.SuckNothing, "fails": events.SuckFails}
    )()
    client.bus.on(events.SuckNothing, make_handler(nothing))
    client.bus.on(events.SuckFails, make_handler(fails))
    async with client.bus:
        with pytest.raises(TypeError, match=r"SuckErrs\.add\(\): missing a required argument: 'a'"):
            await client.add(b=1)
        with pytest.raises(TypeError, match="positional"):
            await client.add(1)
        with pytest.raises(EventValidationError, match=r"SuckAdd\.a"):
            await client.add(a="1")
        with pytest.raises(ValueError, match="non-None result"):  # no handler at all
            await client.add(a=1)
        with pytest.raises(ValueError, match="non-None result"):  # a handler returning None
            await client.nothing(x=1)
        with pytest.raises(LookupError, match="no 3"):  # the handler's own exception, unwrapped
            await client.fails(x=3)


@pytest.mark.anyio
async def test_handler_error_propagates_from_the_client_method() -> None:
    class SuckBoom(BaseEvent[int]):
        x: int

    async def boom(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        raise SuckSpecialError(f"boom {x}")

    client = wrap("SuckBoomer", {"boom": SuckBoom})()
    client.bus.on(SuckBoom, make_handler(boom))
    async with client.bus:
        with pytest.raises(SuckSpecialError, match="boom 5"):
            await client.boom(x=5)


@pytest.mark.anyio
async def test_method_on_a_bus_that_is_not_running_raises() -> None:
    from bubus_anyio import BusNotRunningError

    events = make_events({"SuckAdd": add})
    client = wrap("SuckIdle", {"add": events.SuckAdd})()
    client.bus.on(events.SuckAdd, make_handler(add))
    with anyio.fail_after(5), pytest.raises(BusNotRunningError):
        await client.add(a=1)
    async with client.bus:  # the queued event is processed once the bus runs
        pass
    event = await client.bus.find(events.SuckAdd, past=True)
    assert event is not None and await event.event_result() == 3


# -- make_events -------------------------------------------------------------------------------------------


def test_make_events_fields_defaults_and_names() -> None:
    events = _events()
    assert set(events.by_name) == {"SuckAdd", "SuckGreet", "SuckTag"}
    assert events.by_name["SuckAdd"] is events.SuckAdd
    assert list(events) == list(events.by_name.values()) and len(events) == 3
    assert "SuckAdd" in dir(events)
    with pytest.raises(AttributeError, match="no event named 'Nope'"):
        _ = events.Nope

    assert events.by_name["SuckAdd"] is events.SuckAdd
    assert issubclass(events.by_name["SuckAdd"], BaseEvent)
    cls = events.SuckAdd
    assert cls.__name__ == cls.__qualname__ == "SuckAdd"
    assert cls.__module__ == __name__
    assert cls.__doc__ == "Add two numbers."
    fields = _payload(events.by_name["SuckAdd"])
    assert list(fields) == ["a", "b"]
    assert fields["a"].type is int and fields["a"].default is attrs.NOTHING
    assert fields["b"].type is int and fields["b"].default == 2
    event = cls(a=1)
    assert (event.event_type, event.a, event.b) == ("SuckAdd", 1, 2)
    assert cls(a=1, b=3).b == 3
    with pytest.raises(TypeError):
        cls()  # a is required
    with pytest.raises(EventValidationError):
        cls(a="one")  # annotations are enforced like on hand-written events


def test_make_events_result_types() -> None:
    def sync_awaitable(x: int) -> Awaitable[str]:
        return greet(str(x))

    def sync_coroutine(x: int) -> Coroutine[Any, Any, float]:
        raise NotImplementedError

    def returns_any(x: int) -> Any:
        return x

    functions: dict[str, Callable[..., Any]] = {
        "SuckR1": add,
        "SuckR2": greet,
        "SuckR3": sync_awaitable,
        "SuckR4": sync_coroutine,
        "SuckR5": untyped,
        "SuckR6": nothing,
        "SuckR7": returns_any,
    }
    events = make_events(functions)
    assert events.SuckR1(a=1).event_result_type is int
    assert events.SuckR2(name="n").event_result_type is str  # async def: the awaited type
    assert events.SuckR3(x=1).event_result_type is str
    assert events.SuckR4(x=1).event_result_type is float
    assert events.SuckR5(x=1).event_result_type is None  # no annotation: no result type
    assert events.SuckR6(x=1).event_result_type is None
    assert events.SuckR7(x=1).event_result_type is Any
    # unannotated parameters accept anything
    assert events.SuckR5(x=object(), y="whatever").y == "whatever"


@pytest.mark.anyio
async def test_result_type_is_enforced_on_handler_values() -> None:
    def lies(x: int) -> int:
        return "not an int"  # type: ignore[return-value]

    events = make_events({"SuckLies": lies})
    client = wrap("SuckLiar", {"lies": events.SuckLies})()
    client.bus.on(events.SuckLies, make_handler(lies))
    async with client.bus:
        with pytest.raises(EventHandlerResultSchemaError, match="expected int"):
            await client.lies(x=1)


@pytest.mark.anyio
async def test_event_timeout_through_extra() -> None:
    class SuckSlow(BaseEvent[int]):
        x: int

    async def slow(x: int) -> int:
        await anyio.sleep(5)
        return x

    client = wrap("SuckSlowClient", {"slow": SuckSlow})()
    client.bus.on(SuckSlow, make_handler(slow))
    async with client.bus:
        with anyio.fail_after(3), pytest.raises(TimeoutError):
            await client.slow(x=1, event_timeout=0.05)


def test_make_events_rejects_variadic_and_reserved_parameters() -> None:
    def star_args(*values: int) -> int:
        return sum(values)

    def star_kwargs(**values: int) -> int:
        return len(values)

    def event_prefixed(event_timeout: float) -> None: ...

    def event_custom(event_foo: int) -> None: ...

    def reserved_bus(bus: str) -> None: ...

    def reserved_first(first: int) -> None: ...

    def private(_x: int) -> None: ...

    with pytest.raises(TypeError, match=r"takes \*values"):
        make_events({"SuckStar": star_args})
    with pytest.raises(TypeError, match=r"takes \*\*values"):
        make_events({"SuckStarStar": star_kwargs})
    with pytest.raises(TypeError, match="'event_timeout' starts with 'event_'"):
        make_events({"SuckMeta": event_prefixed})
    with pytest.raises(TypeError, match="'event_foo' starts with 'event_'"):
        make_events({"SuckMeta": event_custom})
    with pytest.raises(TypeError, match="'bus' is a reserved name"):
        make_events({"SuckReservedBus": reserved_bus})
    with pytest.raises(TypeError, match="'first' is a reserved name"):
        make_events({"SuckReservedFirst": reserved_first})
    with pytest.raises(TypeError, match="'_x'"):
        make_events({"SuckPrivate": private})
    with pytest.raises(TypeError, match="expected a callable"):
        make_events({"SuckNotCallable": 3})  # type: ignore[dict-item]
    for bad_name in ("_Hidden", "not valid", "by_name", "X" * 65):
        with pytest.raises(ValueError, match="names must be identifiers"):
            make_events({bad_name: add})


def test_make_events_from_callables_that_are_not_functions() -> None:
    class Multiplier:
        def __init__(self, factor: int) -> None:
            self.factor = factor

        def scale(self, value: int) -> int:
            return value * self.factor

        def __call__(self, value: int) -> int:
            return value * self.factor

    m = Multiplier(3)
    events = make_events({"SuckScale": m.scale, "SuckCall": m})
    assert list(_payload(events.SuckScale)) == ["value"]  # no 'self'
    assert list(_payload(events.SuckCall)) == ["value"]
    assert make_handler(m.scale)(events.SuckScale(value=2)) == 6
    assert make_handler(m)(events.SuckCall(value=2)) == 6


# -- make_handler ------------------------------------------------------------------------------------------


def test_make_handler_keeps_sync_and_async_and_the_name() -> None:
    sync_handler = make_handler(add)
    async_handler = make_handler(greet)
    assert not inspect.iscoroutinefunction(sync_handler)
    assert inspect.iscoroutinefunction(async_handler)
    assert sync_handler.__name__ == "add" and sync_handler.__qualname__ == "add"
    assert sync_handler.__module__ == __name__
    assert sync_handler.__doc__ == add.__doc__


def test_make_handler_pulls_matching_fields() -> None:
    class SuckMany(BaseEvent[Any]):
        a: int
        b: int = 10
        c: str = "c"

    event = SuckMany(a=1)
    assert make_handler(add)(event) == 11  # a and b from the event

    def double(a: int) -> int:
        return a * 2

    assert make_handler(double)(event) == 2  # fields the function does not take are ignored

    def defaulted(a: int, missing: str = "default") -> str:
        return f"{a}-{missing}"

    assert make_handler(defaulted)(event) == "1-default"

    def kwargs_only(a: int, **rest: Any) -> dict[str, Any]:
        return {"a": a, **rest}

    assert make_handler(kwargs_only)(event) == {"a": 1, "b": 10, "c": "c"}

    def positional_only(a: int, b: int = 0, /, *, c: str) -> str:
        return f"{a}{b}{c}"

    assert make_handler(positional_only)(event) == "110c"

    def with_star_args(a: int, *more: int) -> int:
        return a + len(more)

    assert make_handler(with_star_args)(event) == 1


def test_make_handler_missing_required_parameter() -> None:
    class SuckSparse(BaseEvent[Any]):
        a: int

    def needs_z(a: int, z: int) -> int:
        return a + z

    with pytest.raises(TypeError, match=r"needs_z\(\) needs the argument 'z'.*SuckSparse.*fields: a"):
        make_handler(needs_z)(SuckSparse(a=1))

    def needs_positional(z: int, /) -> int:
        return z

    with pytest.raises(TypeError, match="'z'"):
        make_handler(needs_positional)(SuckSparse(a=1))
    with pytest.raises(TypeError, match="takes a callable"):
        make_handler(3)  # type: ignore[call-overload]


@pytest.mark.anyio
async def test_missing_required_parameter_surfaces_through_the_client() -> None:
    class SuckPartial(BaseEvent[int]):
        a: int

    async def needs_b(a: int, b: int) -> int:
        return a + b

    client = wrap("SuckPartialClient", {"go": SuckPartial})()
    client.bus.on(SuckPartial, make_handler(needs_b))
    async with client.bus:
        with pytest.raises(TypeError, match="needs the argument 'b'"):
            await client.go(a=1)


@pytest.mark.anyio
async def test_make_handler_on_a_wildcard_sees_every_event_type() -> None:
    events = make_events({"SuckAdd": add, "SuckGreet": greet})
    seen: list[dict[str, Any]] = []

    def record(**payload: Any) -> None:
        seen.append(payload)

    bus = EventBus("SuckWildBus")
    bus.on("*", make_handler(record))
    async with bus:
        await bus.emit(events.SuckAdd(a=1))
        await bus.emit(events.SuckGreet(name="n"))
    assert seen == [{"a": 1, "b": 2}, {"name": "n", "punctuation": "!"}]
