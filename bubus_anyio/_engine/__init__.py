"""The engine (layer 3, beside the wire format): processing events on buses.

Builds on :mod:`bubus_anyio._events` and :mod:`bubus_anyio._validation`; never on the wire format or on the
user-facing bus, which hands the engine itself (``bus``, typed against ``EventBus`` for the checker only)
and calls in. Imports point one way inside too: ``_awaiting`` -> ``_runloop`` -> ``_calling`` ->
``_runtime``; ``_backend`` (the one backend-specific spot), ``_slots``, ``_monitor`` and ``_hooks`` (middleware
delivery) import no other engine module.
"""
