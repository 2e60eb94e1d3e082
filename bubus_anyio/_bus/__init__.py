"""The user-facing bus (layer 4): ``EventBus`` with its history, find, snapshots and tree.

Builds on every layer below (values, wire format, engine). ``_event_bus`` holds the class; ``_registry``
(which handlers an event gets), ``_history``, ``_finding`` and ``_snapshot`` are modules it calls, given
what they need as arguments.
"""
