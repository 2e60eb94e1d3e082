"""The wire format: events, result rows and handlers to bubus's JSON and back (layer 3, beside the engine).

Builds on :mod:`bubus_anyio._validation` and :mod:`bubus_anyio._events`, and on nothing above them.
``_convert`` holds what both directions share (the cattrs converter, per-class plans, the generic event);
``_encode`` and ``_decode`` never import each other. Importing this package installs the codec that
``BaseEvent.to_json``/``from_json`` call (see :mod:`bubus_anyio._events._codec` for why it is a port).
"""

from .._events._codec import WireCodec, install_wire_codec
from ._decode import event_from_json
from ._encode import event_to_dict, event_to_json

install_wire_codec(
    WireCodec(
        to_dict=lambda event, include_results: event_to_dict(event, include_results=include_results),
        to_json=lambda event, include_results: event_to_json(event, include_results=include_results),
        from_json=event_from_json,
    )
)
