"""The wire codec port: ``BaseEvent.to_json`` and ``BaseEvent.from_json`` without importing the wire layer.

Events sit below the wire format (the codec needs event classes, rows and handlers to do its job), yet
users call the codec through methods of the event. So this layer declares what it needs, a
:class:`WireCodec` of three functions, and :mod:`bubus_anyio._wire` installs its implementation when it is
imported, which ``import bubus_anyio`` always does. Callers may rely on :func:`wire_codec` answering
whenever the package has been imported; the error below is for a broken install, not for users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._event import BaseEvent

__all__ = ["WireCodec", "install_wire_codec", "wire_codec"]


@attrs.frozen
class WireCodec:
    """What events need of the wire layer: each function is the one of ``_wire._encode``/``_decode``."""

    #: ``(event, include_results)`` -> a fresh JSON-ready dict in bubus's wire shape
    to_dict: Callable[[BaseEvent[Any], bool], dict[str, Any]]
    #: ``(event, include_results)`` -> compact JSON text
    to_json: Callable[[BaseEvent[Any], bool], str]
    #: ``(cls, data)`` -> an event of ``cls`` (or, on ``BaseEvent``, of the registered class)
    from_json: Callable[[type[Any], str | bytes | Mapping[str, Any]], BaseEvent[Any]]


_installed: list[WireCodec] = []


def install_wire_codec(codec: WireCodec) -> None:
    """Plug the wire layer in (called once, by ``bubus_anyio._wire`` when it is imported)."""
    _installed[:] = [codec]


def wire_codec() -> WireCodec:
    """The installed codec.

    :raises RuntimeError: if the wire layer was never imported (only possible by importing this private
        module without the ``bubus_anyio`` package, which Python does not allow)
    """
    if not _installed:
        raise RuntimeError("bubus_anyio's wire layer is not loaded; import bubus_anyio first")
    return _installed[0]
