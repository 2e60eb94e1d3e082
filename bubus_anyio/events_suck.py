"""RPC-style helpers for people who would rather call functions than emit events.

Three small tools, usable together or alone:

- :func:`make_events` turns plain functions into event classes: each parameter becomes a payload field
  (annotation and default kept) and the return annotation becomes the result type.
- :func:`make_handler` adapts a plain keyword-argument function into a bus handler that pulls the
  matching payload fields out of the event.
- :func:`wrap` builds a client class whose async methods take the payload fields as keyword arguments,
  emit the event on the client's bus and return ``await event.event_result()``.

Round trip::

    events = make_events({"SumEvent": add})
    bus.on(events.SumEvent, make_handler(add))
    Calc = wrap("Calc", {"add": events.SumEvent})
    assert await Calc(bus).add(a=1, b=2) == 3

Everything here is ordinary :class:`BaseEvent` machinery: the generated classes validate their payload
strictly, the client's methods raise whatever :meth:`BaseEvent.event_result` raises.

Longer than 500 lines because it is a public module of three tools that share the signature and field
introspection they are built on.
"""

from __future__ import annotations

import collections.abc
import copy
import inspect
import keyword
import sys
import types
import typing
import weakref
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar, cast, final, overload

import attrs

from ._bus._event_bus import EventBus
from ._events._definition import payload_hints
from ._events._event import BaseEvent
from ._events._handlers import is_async_callable

__all__ = ["GeneratedEvents", "make_events", "make_handler", "wrap"]

R = TypeVar("R")

EventClass = type[BaseEvent[Any]]
Handler = Callable[[BaseEvent[Any]], Any]

#: Mutable defaults are copied per event (as a factory) so two events never share one list.
_MUTABLE_DEFAULTS: tuple[type, ...] = (list, dict, set, bytearray)
#: Names a generated client reserves for itself.
_CLIENT_RESERVED = frozenset({"bus"})
#: What ``make_events`` may not use as a name (it is the mapping's own attribute).
_NAMESPACE_RESERVED = frozenset({"by_name"})
#: ``attrs.Factory`` is a class at runtime (its stubs describe a function).
_FACTORY_TYPE = cast("type[Any]", attrs.Factory)


def _caller_module(depth: int) -> str:
    try:
        return str(sys._getframe(depth + 1).f_globals.get("__name__", __name__))  # pyright: ignore[reportPrivateUsage]
    except (AttributeError, ValueError):  # pragma: no cover - interpreters without frame introspection
        return __name__


def _describe(function: Callable[..., Any]) -> str:
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    return f"{name}()" if name else repr(function)


def _signature(function: Callable[..., Any]) -> inspect.Signature:
    """The signature with string annotations evaluated when possible (kept as strings otherwise)."""
    try:
        return inspect.signature(function, eval_str=True)
    except (NameError, TypeError, SyntaxError, AttributeError):
        return inspect.signature(function)


# ---------------------------------------------------------------------------------------------- fields


def _payload_fields(event_class: EventClass) -> tuple[attrs.Attribute[Any], ...]:
    """The payload fields of an event class (no ``event_*`` metadata, no private runtime slots)."""
    return tuple(
        a
        for a in attrs.fields(event_class)
        if a.init and not a.name.startswith("event_") and not a.name.startswith("_")
    )


_FIELD_NAMES: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _payload_names(event_class: EventClass) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(event_class)
    if names is None:
        names = tuple(a.name for a in _payload_fields(event_class))
        _FIELD_NAMES[event_class] = names
    return names


def _resolved_field_types(event_class: EventClass) -> dict[str, Any]:
    """Field annotations with string annotations (``from __future__ import annotations``) evaluated."""
    try:
        return payload_hints(event_class)
    except Exception:  # unresolvable forward reference: keep the raw annotations
        return {}


def _result_type(event_class: EventClass) -> Any:
    for a in attrs.fields(event_class):
        if a.name == "event_result_type":
            return a.default
    return None  # pragma: no cover - every event class has the field


# ---------------------------------------------------------------------------------------------- wrap


class _FactoryDefault:
    """Stands for a factory default (``attrs.Factory``) in a generated signature."""

    __slots__ = ("display",)

    def __init__(self, display: str) -> None:
        self.display = display

    def __repr__(self) -> str:
        return self.display


def _signature_default(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    if default is attrs.NOTHING:
        return inspect.Parameter.empty
    if isinstance(default, _FACTORY_TYPE):
        factory = cast("Callable[[], Any]", default.factory)
        if not default.takes_self:
            try:
                return _FactoryDefault(repr(factory()))
            except Exception:
                pass
        return _FactoryDefault(f"<factory {getattr(factory, '__name__', 'default')}>")
    return default


def _free_name(wanted: str, taken: set[str]) -> str:
    name = wanted
    while name in taken:
        name = f"{name}_"
    return name


def _make_method(
    class_name: str, method_name: str, event_class: EventClass, module: str
) -> Callable[..., Coroutine[Any, Any, Any]]:
    fields = _payload_fields(event_class)
    names = {a.name for a in fields}
    if "self" in names:
        raise TypeError(
            f"wrap({class_name!r}): {event_class.__name__} has a payload field named 'self', "
            "which cannot be a method parameter"
        )
    hints = _resolved_field_types(event_class)
    extra_name = _free_name("extra", names)
    result_type = _result_type(event_class)
    return_annotation: Any = Any if result_type is None else result_type
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for a in fields:
        annotation = hints.get(a.name, a.type if a.type is not None else inspect.Parameter.empty)
        parameters.append(
            inspect.Parameter(
                a.name, inspect.Parameter.KEYWORD_ONLY, default=_signature_default(a), annotation=annotation
            )
        )
    parameters.append(inspect.Parameter(extra_name, inspect.Parameter.VAR_KEYWORD, annotation=Any))
    signature = inspect.Signature(parameters, return_annotation=return_annotation)

    async def method(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:  # a missing required field, or a positional argument
            raise TypeError(f"{class_name}.{method_name}(): {exc}") from None
        client = bound.arguments.pop("self")
        payload: dict[str, Any] = dict(bound.arguments.pop(extra_name, {}))
        payload.update(bound.arguments)  # only what the caller passed: the event applies its own defaults
        event = client.bus.emit(event_class(**payload))
        return await event.event_result()

    method.__name__ = method_name
    method.__qualname__ = f"{class_name}.{method_name}"
    method.__module__ = module
    method.__signature__ = signature  # type: ignore[attr-defined]
    method.__annotations__ = {
        **{p.name: p.annotation for p in parameters[1:] if p.annotation is not inspect.Parameter.empty},
        "return": return_annotation,
    }
    result_name = "None" if result_type is None else getattr(result_type, "__name__", repr(result_type))
    doc = (
        f"Emit {event_class.__name__} with these fields on ``self.bus`` and return its first non-None "
        f"handler result ({result_name}).\n\n"
        f"``**{extra_name}`` goes to the event constructor too (for example ``event_timeout=5``); an "
        "unknown name raises TypeError.\n\n"
        ":raises ValueError: no handler returned a non-None value\n"
        ":raises BusNotRunningError: ``self.bus`` is not running\n"
        "Any handler error is re-raised (several: an ExceptionGroup)."
    )
    if event_class.__doc__:
        doc = f"{doc}\n\n{event_class.__name__}: {inspect.cleandoc(event_class.__doc__)}"
    method.__doc__ = doc
    return method


def wrap(
    class_name: str, methods: Mapping[str, type[BaseEvent[Any]]], *, module: str | None = None
) -> type[Any]:
    """Build a client class with one async method per event class.

    ``wrap("Calc", {"add": AddEvent})`` returns a class ``Calc`` with ``Calc(bus=None)`` (default bus:
    ``EventBus("CalcBus")``, kept as ``self.bus``) and ``async def add(self, *, <AddEvent's payload
    fields>, **extra)``, which emits ``AddEvent(**fields, **extra)`` on ``self.bus`` and returns
    ``await event.event_result()``. Arguments left out are not passed, so the event's own defaults apply.

    The bus must be running (``async with client.bus:``) when a method is awaited.

    :param class_name: the class's name (an identifier)
    :param methods: method name -> event class (a :class:`BaseEvent` subclass)
    :param module: the class's ``__module__`` (default: the caller's module)
    :raises TypeError: a value is not a BaseEvent subclass, or an event has a field named ``self``
    :raises ValueError: a bad class or method name
    """
    if not class_name.isidentifier() or keyword.iskeyword(class_name):
        raise ValueError(f"wrap(): class name must be an identifier, got {class_name!r}")
    module = module or _caller_module(1)
    namespace: dict[str, Any] = {"__module__": module, "__qualname__": class_name}
    for method_name, event_class in methods.items():
        if (
            not isinstance(method_name, str)  # pyright: ignore[reportUnnecessaryIsInstance]
            or not method_name.isidentifier()
            or keyword.iskeyword(method_name)
            or method_name.startswith("__")
            or method_name in _CLIENT_RESERVED
        ):
            raise ValueError(
                f"wrap({class_name!r}): method name must be an identifier, not a dunder nor 'bus', "
                f"got {method_name!r}"
            )
        if (
            not isinstance(event_class, type)  # pyright: ignore[reportUnnecessaryIsInstance]
            or not issubclass(event_class, BaseEvent)  # pyright: ignore[reportUnnecessaryIsInstance]
            or event_class is BaseEvent
        ):
            raise TypeError(
                f"wrap({class_name!r}): {method_name!r} must map to a BaseEvent subclass, got {event_class!r}"
            )
        namespace[method_name] = _make_method(class_name, method_name, event_class, module)

    bus_name = f"{class_name}Bus"

    def __init__(self: Any, bus: EventBus | None = None) -> None:
        self.bus = bus if bus is not None else EventBus(bus_name)

    def __repr__(self: Any) -> str:
        return f"<{class_name} bus={self.bus.label}>"

    __init__.__qualname__ = f"{class_name}.__init__"
    __init__.__module__ = module
    __init__.__doc__ = f"Use ``bus`` (default: a new ``EventBus({bus_name!r})``) as ``self.bus``."
    __repr__.__qualname__ = f"{class_name}.__repr__"
    __repr__.__module__ = module
    namespace["__init__"] = __init__
    namespace["__repr__"] = __repr__
    listing = ", ".join(f"{name}() -> {cls.__name__}" for name, cls in methods.items()) or "none"
    namespace["__doc__"] = (
        f"Client generated by ``events_suck.wrap``: each async method emits an event on ``self.bus`` and "
        f"returns its result. Methods: {listing}."
    )
    return type(class_name, (), namespace)


# ---------------------------------------------------------------------------------------------- make_events


@final
class GeneratedEvents:
    """What :func:`make_events` returns: one attribute per event class, plus :attr:`by_name`.

    Attribute access is typed ``type[Any]`` (the payload fields exist only at run time); ``by_name`` keeps
    the precise ``type[BaseEvent[Any]]``.
    """

    __slots__ = ("by_name",)

    def __init__(self, by_name: Mapping[str, type[BaseEvent[Any]]]) -> None:
        #: name -> event class, in the order given
        self.by_name: dict[str, type[BaseEvent[Any]]] = dict(by_name)

    def __getattr__(self, name: str) -> type[Any]:
        # ``type[Any]``, not ``type[BaseEvent[Any]]``: the fields are only known at run time, and a type
        # checker should let ``events.Add(a=1)`` through.
        try:
            return self.by_name[name]
        except KeyError:
            raise AttributeError(f"no event named {name!r} (have: {', '.join(self.by_name)})") from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.by_name]

    def __iter__(self) -> Iterator[type[BaseEvent[Any]]]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)

    def __repr__(self) -> str:
        return f"GeneratedEvents({', '.join(self.by_name)})"


_AWAITABLE_ORIGINS: frozenset[Any] = frozenset({collections.abc.Awaitable, collections.abc.Coroutine})


def _result_type_of_return(annotation: Any) -> tuple[bool, Any]:
    """``(has_result_type, T)`` from a return annotation; ``Awaitable[T]``/``Coroutine[..., T]`` give T."""
    if annotation is inspect.Signature.empty:
        return False, None
    origin = typing.get_origin(annotation)
    if origin in _AWAITABLE_ORIGINS:
        args = typing.get_args(annotation)
        if not args:
            return False, None
        annotation = args[-1]
    if annotation is None or annotation is type(None):
        return True, None
    return True, annotation


def _field_spec(name: str, function: Callable[..., Any], parameter: inspect.Parameter) -> tuple[Any, Any]:
    """``(annotation, default)`` for the field made from ``parameter`` (default ``attrs.NOTHING``)."""
    where = f"make_events({name!r}): {_describe(function)}"
    if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
        raise TypeError(
            f"{where} takes *{parameter.name}; events have named fields only, so give each value its own "
            "parameter"
        )
    if parameter.kind is inspect.Parameter.VAR_KEYWORD:
        raise TypeError(
            f"{where} takes **{parameter.name}; events have a fixed set of fields, so name each one as a "
            "parameter"
        )
    field = parameter.name
    if field.startswith("event_"):
        raise TypeError(
            f"{where}: parameter {field!r} starts with 'event_', which is reserved for event metadata"
        )
    if field.startswith("_") or field == "self":
        raise TypeError(f"{where}: parameter {field!r} cannot be an event field (no 'self', no leading '_')")
    annotation = Any if parameter.annotation is inspect.Parameter.empty else parameter.annotation
    default: Any = attrs.NOTHING
    if parameter.default is not inspect.Parameter.empty:
        default = parameter.default
        if isinstance(default, _MUTABLE_DEFAULTS):
            default = attrs.Factory(lambda value=default: copy.copy(value))  # pyright: ignore[reportUnknownLambdaType]
    return annotation, default


def _make_event_class(name: str, function: Callable[..., Any]) -> type[BaseEvent[Any]]:
    if not callable(function):
        raise TypeError(f"make_events({name!r}): expected a callable, got {function!r}")
    signature = _signature(function)
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        annotation, default = _field_spec(name, function, parameter)
        annotations[parameter.name] = annotation
        if default is not attrs.NOTHING:
            defaults[parameter.name] = default
    has_result, result_type = _result_type_of_return(signature.return_annotation)
    base: type[Any] = BaseEvent[result_type] if has_result else BaseEvent  # pyright: ignore[reportUnknownVariableType]
    module = getattr(function, "__module__", None) or _caller_module(2)
    doc = inspect.getdoc(function)

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(defaults)
        namespace["__annotations__"] = annotations
        namespace["__module__"] = module
        namespace["__qualname__"] = name
        namespace["__doc__"] = doc or f"Event generated by ``make_events`` from {_describe(function)}."

    try:
        return cast("type[BaseEvent[Any]]", types.new_class(name, (base,), {}, body))
    except TypeError as exc:  # the event metaclass's own name rules (reserved names such as 'bus')
        raise TypeError(f"make_events({name!r}): {_describe(function)}: {exc}") from exc


def make_events(functions: Mapping[str, Callable[..., Any]]) -> GeneratedEvents:
    """Build one event class per function, from its signature.

    Each parameter becomes a payload field with the parameter's annotation (``Any`` when missing) and
    default (list/dict/set/bytearray defaults are copied per event). The return annotation becomes the
    result type ``T`` of ``BaseEvent[T]``: ``Awaitable[T]`` and ``Coroutine[..., T]`` are unwrapped, and a
    missing annotation means no result type. The class is named after its key and lives in the function's
    module.

    :return: an object with one attribute per name (the class) and ``.by_name`` (name -> class)
    :raises TypeError: a value is not callable; a function takes ``*args`` or ``**kwargs``; a parameter is
        named ``event_*``, ``self``, ``_*`` or a name events reserve (``bus``, ``first``, ``to_json``, ...)
    :raises ValueError: a name is not an identifier, starts with ``_``, is longer than 64 characters or is
        ``by_name``
    """
    classes: dict[str, type[BaseEvent[Any]]] = {}
    for name, function in functions.items():
        if (
            not isinstance(name, str)  # pyright: ignore[reportUnnecessaryIsInstance]
            or not name.isidentifier()
            or keyword.iskeyword(name)
            or name.startswith("_")
            or len(name) > 64
            or name in _NAMESPACE_RESERVED
        ):
            raise ValueError(
                "make_events(): names must be identifiers of at most 64 characters, not starting with '_' "
                f"and not 'by_name', got {name!r}"
            )
        classes[name] = _make_event_class(name, function)
    return GeneratedEvents(classes)


# ---------------------------------------------------------------------------------------------- make_handler


def _call_plan(
    function: Callable[..., Any],
) -> Callable[[BaseEvent[Any]], tuple[list[Any], dict[str, Any]]]:
    """Precompute how to turn an event into ``(args, kwargs)`` for ``function``."""
    signature = _signature(function)
    positional: list[inspect.Parameter] = []
    keywords: list[inspect.Parameter] = []
    takes_kwargs = False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(parameter)
        elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
            takes_kwargs = True
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
            keywords.append(parameter)
    described = _describe(function)

    def missing(parameter: inspect.Parameter, event: BaseEvent[Any]) -> TypeError:
        return TypeError(
            f"{described} needs the argument {parameter.name!r}, but {event.event_type} has no payload "
            f"field of that name (fields: {', '.join(_payload_names(type(event))) or 'none'})"
        )

    def plan(event: BaseEvent[Any]) -> tuple[list[Any], dict[str, Any]]:
        names = _payload_names(type(event))
        args: list[Any] = []
        for parameter in positional:
            if parameter.name in names:
                args.append(getattr(event, parameter.name))
            elif parameter.default is not inspect.Parameter.empty:
                args.append(parameter.default)
            else:
                raise missing(parameter, event)
        kwargs: dict[str, Any] = {}
        if takes_kwargs:
            used = {p.name for p in positional}
            kwargs = {name: getattr(event, name) for name in names if name not in used}
        for parameter in keywords:
            if parameter.name in names:
                kwargs[parameter.name] = getattr(event, parameter.name)
            elif parameter.default is inspect.Parameter.empty:
                raise missing(parameter, event)
        return args, kwargs

    return plan


def _name_like(handler: Callable[..., Any], function: Callable[..., Any]) -> None:
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        value = getattr(function, attribute, None)
        if value is not None:
            setattr(handler, attribute, value)
    if getattr(function, "__name__", None) is None:
        handler.__name__ = handler.__qualname__ = type(function).__name__


@overload
def make_handler(
    function: Callable[..., Coroutine[Any, Any, R]],
) -> Callable[[BaseEvent[Any]], Coroutine[Any, Any, R]]: ...
@overload
def make_handler(function: Callable[..., R]) -> Callable[[BaseEvent[Any]], R]: ...
def make_handler(function: Callable[..., Any]) -> Handler:
    """Adapt a plain function into a handler that calls it with the event's matching payload fields.

    Each parameter of ``function`` gets the payload field of the same name; parameters without a field
    keep their defaults; a function taking ``**kwargs`` receives every payload field. A sync function gives
    a sync handler, an async one an async handler. The handler carries the function's name, so the bus
    reports it under that name.

    The handler raises :class:`TypeError` naming the parameter when a required one has no field on the
    event it is called with.
    """
    if not callable(function):
        raise TypeError(f"make_handler() takes a callable, got {function!r}")
    plan = _call_plan(function)

    if is_async_callable(function):

        async def async_handler(event: BaseEvent[Any]) -> Any:
            args, kwargs = plan(event)
            return await function(*args, **kwargs)

        handler: Handler = async_handler
    else:

        def sync_handler(event: BaseEvent[Any]) -> Any:
            args, kwargs = plan(event)
            return function(*args, **kwargs)

        handler = sync_handler
    _name_like(handler, function)
    return handler
