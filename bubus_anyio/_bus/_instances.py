"""``EventBus.all_instances``: the buses of a class that are still alive, as upstream bubus keeps them.

Upstream's meaning, kept: every bus constructed and not garbage-collected yet (running or not), held
weakly so the registry never keeps a bus alive, one registry per class (``EventBus.all_instances`` does
not list instances of a subclass; :meth:`EventBus.iter_all_instances` does). ``stop(clear=True)`` takes a
bus out, as upstream. The view is read-only: a bus joins by being constructed, never by being added.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Set
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from ._event_bus import EventBus

__all__ = ["AllInstances", "InstancesView", "forget", "iter_instances", "register"]

_B = TypeVar("_B", bound="EventBus")

#: every live bus of every class, weakly
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def register(bus: EventBus) -> None:
    """Called once by the bus's ``__init__``."""
    _LIVE.add(bus)


def forget(bus: EventBus) -> None:
    """``stop(clear=True)``: the bus no longer appears in any view."""
    _LIVE.discard(bus)


def iter_instances(cls: type[_B], *, subclasses: bool) -> Iterator[_B]:
    """The live buses of exactly ``cls`` (or of ``cls`` and its subclasses), in no particular order.
    Iterates over a copy, so buses may be created or collected meanwhile."""
    for bus in list(_LIVE):
        if type(bus) is cls or (subclasses and isinstance(bus, cls)):
            yield bus


class InstancesView(Set[_B], Generic[_B]):
    """A read-only set of the live buses of one class (``len``, ``in``, iteration; computed on each use)."""

    __slots__ = ("_cls",)

    def __init__(self, cls: type[_B]) -> None:
        self._cls = cls

    def __iter__(self) -> Iterator[_B]:
        return iter_instances(self._cls, subclasses=False)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, bus: object) -> bool:
        return type(bus) is self._cls and bus in _LIVE

    def __repr__(self) -> str:
        return f"<{self._cls.__name__}.all_instances: {len(self)} live>"


class AllInstances:
    """The class-level descriptor behind ``EventBus.all_instances`` (also readable on an instance)."""

    @overload
    def __get__(self, obj: None, owner: type[_B]) -> InstancesView[_B]: ...
    @overload
    def __get__(self, obj: _B, owner: type[_B]) -> InstancesView[_B]: ...
    def __get__(self, obj: Any, owner: type[_B]) -> InstancesView[_B]:
        return InstancesView(owner)
