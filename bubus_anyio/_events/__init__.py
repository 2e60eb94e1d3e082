"""The value layer (layer 2): events, result rows, handler entries, ids, time, modes, errors.

Builds on :mod:`bubus_anyio._validation` only. Nothing here imports the wire format, the engine or the bus:
an event reaches the engine through the buses it was emitted on (``BaseEvent._buses``, set by ``emit``)
and the wire format through the codec port (:mod:`._codec`). ``_context`` holds the handler-frame
context variable that the engine sets and events read (``event_bus``, queue-jumps); ``_tree`` renders
events and rows as text.
"""
