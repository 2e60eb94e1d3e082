"""EventHandler: a registered callable plus the metadata that identifies it across runtimes.

The id is derived (uuid5 over bus id, name, file path, registration time and pattern) exactly as bubus does,
so snapshots written by another runtime name the same handler. How the callable is invoked is decided once,
here, at registration: the hot path only reads the precomputed ``is_async`` flag.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import attrs

from ._ids import handler_id as compute_handler_id
from ._time import new_timestamp

if TYPE_CHECKING:
    from .._bus._event_bus import EventBus

__all__ = ["EventHandler", "HandlerCallable"]

HandlerCallable = Callable[[Any], Any]

_HOME = os.path.expanduser("~")


def _abbreviate(path: str) -> str:
    return "~" + path[len(_HOME) :] if _HOME and _HOME != "/" and path.startswith(_HOME) else path


def _unwrap(target: Any) -> Any:
    """The plain function behind bound methods, partials and callable objects."""
    fn: Any = target
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func  # pyright: ignore[reportUnknownMemberType]
        elif inspect.ismethod(fn):
            fn = cast(Any, fn.__func__)
        elif isinstance(fn, (staticmethod, classmethod)):
            fn = cast(Any, fn.__func__)  # pyright: ignore[reportUnknownMemberType]
        elif not inspect.isfunction(fn) and not inspect.isbuiltin(fn) and callable(fn):
            call = getattr(type(fn), "__call__", None)  # noqa: B004
            if call is None or call is fn:
                return fn
            fn = call
        else:
            return fn


@functools.lru_cache(maxsize=4096)
def _file_path_of(code: Any) -> str | None:
    try:
        return f"{_abbreviate(code.co_filename)}:{code.co_firstlineno}"
    except AttributeError:
        return None


def describe_callable(fn: Any, *, detect_file_path: bool = True) -> tuple[str, str | None]:
    """``(handler_name, handler_file_path)`` as bubus derives them: ``Class.method`` for bound methods,
    ``module.function`` for functions, ``~/path/file.py:LINE`` for the file."""
    target = fn.func if isinstance(fn, functools.partial) else fn  # pyright: ignore[reportUnknownMemberType]
    if inspect.ismethod(target):
        owner = target.__self__
        owner_name = owner.__name__ if isinstance(owner, type) else type(owner).__name__
        name = f"{owner_name}.{target.__func__.__name__}"
    elif inspect.isfunction(target) or inspect.isbuiltin(target):
        name = f"{getattr(target, '__module__', None) or 'builtins'}.{target.__name__}"
    elif callable(target):
        cls = type(target)  # pyright: ignore[reportUnknownVariableType]
        name = f"{cls.__module__}.{cls.__qualname__}"  # pyright: ignore[reportUnknownMemberType]
    else:
        name = "anonymous"
    path = None
    if detect_file_path:
        code = getattr(_unwrap(fn), "__code__", None)
        path = _file_path_of(code) if code is not None else None
    return name, path


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` produces a coroutine: a coroutine function or method, a ``functools.wraps``
    wrapper or a :func:`functools.partial` of one, or an object whose ``__call__`` is a coroutine function.
    (Shared by handler registration and ``retry``.)"""
    target: object = fn
    while isinstance(target, functools.partial):
        target = cast("functools.partial[Any]", target).func
    if inspect.iscoroutinefunction(target):
        return True
    if callable(target):
        try:
            unwrapped = inspect.unwrap(target)
        except ValueError:  # a __wrapped__ cycle
            unwrapped = target
        if unwrapped is not target and is_async_callable(unwrapped):
            return True
    if inspect.isroutine(target) or isinstance(target, type):
        return False
    return inspect.iscoroutinefunction(inspect.getattr_static(type(target), "__call__", None))


_UNSET: Any = object()

_traits_cache: dict[tuple[Any, ...], tuple[str, str | None, bool]] = {}


def _traits(handler: Any, detect_file_path: bool) -> tuple[str, str | None, bool]:
    """``(name, file_path, is_async)``, cached per underlying function (and owner class for methods): the
    same handler is often registered many times (one-off handlers), and deriving these is costly. A plain
    function with no attributes of its own is known by its code, module and name, which is all the traits
    read, so a closure defined anew for every registration hits the cache too."""
    func = getattr(handler, "__func__", None)
    if func is not None:
        owner = handler.__self__
        key: tuple[Any, ...] = (func, owner if isinstance(owner, type) else type(owner), detect_file_path)
    elif inspect.isfunction(handler):
        if handler.__dict__:  # __wrapped__, a coroutine marker...: traits of this very object
            key = (handler, None, detect_file_path)
        else:  # closures made afresh for each registration share their code: so do their traits
            key = (handler.__code__, handler.__module__, handler.__name__, detect_file_path)
    else:
        name, path = describe_callable(handler, detect_file_path=detect_file_path)
        return name, path, is_async_callable(handler)
    traits = _traits_cache.get(key)
    if traits is None:
        if len(_traits_cache) > 4096:
            _traits_cache.clear()
        name, path = describe_callable(handler, detect_file_path=detect_file_path)
        traits = _traits_cache[key] = (name, path, is_async_callable(handler))
    return traits


class ForwardingTarget:
    """The base of ``EventBus``, known to this layer without importing the bus: ``bus.emit`` (or
    ``dispatch``) registered as a handler is a forwarder, which the bus skips for events that already
    visited the target (so forwarding cycles end)."""

    __slots__ = ()


def _is_bus(owner: object) -> bool:
    return isinstance(owner, ForwardingTarget)


@attrs.define(eq=False, slots=True, weakref_slot=True)
class EventHandler:
    """A callable registered on a bus for a pattern, with its serialisable metadata.

    ``handler_timeout``/``handler_slow_timeout`` override the event and bus defaults for this handler; an
    explicit ``None`` is meaningful (no handler-level limit), unlike leaving them unset
    (:attr:`handler_timeout_is_set` tells which).
    """

    id: str
    handler: HandlerCallable | None = attrs.field(repr=False)
    handler_name: str = "anonymous"
    handler_file_path: str | None = None
    handler_timeout: float | None = None
    handler_slow_timeout: float | None = None
    handler_registered_at: str = attrs.field(factory=new_timestamp)
    event_pattern: str = "*"
    eventbus_name: str = "EventBus"
    eventbus_id: str = ""
    run_in_thread: bool = False
    handler_timeout_is_set: bool = attrs.field(default=False, repr=False)
    handler_slow_timeout_is_set: bool = attrs.field(default=False, repr=False)
    is_async: bool = attrs.field(default=False, repr=False)
    #: The bus this handler forwards to, when the handler is a bus's bound ``emit``/``dispatch``.
    forwards_to: EventBus | None = attrs.field(default=None, repr=False)

    @property
    def label(self) -> str:
        """``name#abcd``: the name and the last four characters of the id."""
        return f"{self.handler_name}#{self.id[-4:]}"

    @property
    def eventbus_label(self) -> str:
        return f"{self.eventbus_name}#{self.eventbus_id[-4:]}"

    def __call__(self, event: Any) -> Any:
        """Call the wrapped callable with ``event``, as upstream's entries can be called: returns what it
        returns (a coroutine for an async handler, not awaited). Outside a bus: no timeout, no row, no
        handler context.

        :raises EventBusError: the entry is a stub with no callable attached (restored from a snapshot)
        """
        fn = self.handler
        if fn is None:
            from ._errors import EventBusError

            raise EventBusError(f"handler {self.label} has no callable attached (restored from a snapshot?)")
        return fn(event)

    def __str__(self) -> str:
        if self.handler_file_path:
            return f"{self.handler_name}() @ {self.handler_file_path}"
        return f"{self.label}()"

    @classmethod
    def from_callable(
        cls,
        handler: HandlerCallable,
        *,
        event_pattern: str,
        eventbus_name: str,
        eventbus_id: str,
        detect_handler_file_path: bool = True,
        handler_timeout: float | None = _UNSET,
        handler_slow_timeout: float | None = _UNSET,
        run_in_thread: bool = False,
        id: str | None = None,
        handler_name: str | None = None,
    ) -> EventHandler:
        """Build the entry for ``handler``, deriving its name, file path and id the way bubus does. An
        :class:`EventHandler` given as the handler (entries are callable) stands for its own callable."""
        if isinstance(handler, EventHandler):
            if handler.handler is None:
                raise TypeError(f"handler {handler.label} has no callable attached to register")
            handler = handler.handler
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        name, path, is_async = _traits(handler, detect_handler_file_path)
        if handler_name is not None:
            name = handler_name
        registered_at = new_timestamp()
        if run_in_thread and is_async:
            raise TypeError(f"run_in_thread=True needs a sync handler, and {name} is async")
        owner = getattr(handler, "__self__", None)
        forwards_to = (
            owner if _is_bus(owner) and getattr(handler, "__name__", "") in {"emit", "dispatch"} else None
        )
        return cls(
            id=id
            or compute_handler_id(
                eventbus_id=eventbus_id,
                handler_name=name,
                handler_file_path=path,
                handler_registered_at=registered_at,
                event_pattern=event_pattern,
            ),
            handler=handler,
            handler_name=name,
            handler_file_path=path,
            handler_timeout=None if handler_timeout is _UNSET else handler_timeout,
            handler_slow_timeout=None if handler_slow_timeout is _UNSET else handler_slow_timeout,
            handler_registered_at=registered_at,
            event_pattern=event_pattern,
            eventbus_name=eventbus_name,
            eventbus_id=eventbus_id,
            run_in_thread=run_in_thread,
            handler_timeout_is_set=handler_timeout is not _UNSET,
            handler_slow_timeout_is_set=handler_slow_timeout is not _UNSET,
            is_async=is_async,
            forwards_to=forwards_to,
        )
