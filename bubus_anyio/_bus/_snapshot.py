"""Bus snapshots: a whole bus (config, handlers, history with result rows, queue) as bubus's bus JSON.

The shape is the reference's (§3.5), readable by Python bubus 2.x and TypeScript bubus 2.x alike::

    {id, name, max_history_size, max_history_drop, event_concurrency, event_timeout, event_slow_timeout,
     event_handler_concurrency, event_handler_completion, event_handler_slow_timeout,
     event_handler_detect_file_paths, handlers: {id: handler}, handlers_by_key: {pattern: [id, ...]},
     event_history: {event_id: event + "event_results": [row, ...]}, pending_event_queue: [event_id, ...]}

Restoring builds a bus that has not run yet: handlers come back as stubs (attach callables with
``bus.handlers[id].handler = fn``), the history is refilled, and the queued events are queued again in
their FIFO order, without touching their ``event_path``. They run once the bus runs; rows that already
finished are never run again.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from .._events._errors import EventHandlerAbortedError, EventValidationError
from .._events._event import BaseEvent
from .._events._handlers import EventHandler
from .._wire._decode import decode_event, handler_from_dict, link_children, load_object
from .._wire._encode import event_to_dict, handler_to_dict

if TYPE_CHECKING:
    from ._event_bus import EventBus

__all__ = ["bus_from_json", "bus_to_dict", "bus_to_json"]

#: Bus options as written, in upstream Python's order.
_CONFIG_KEYS: Final = (
    "max_history_size",
    "max_history_drop",
    "event_concurrency",
    "event_timeout",
    "event_slow_timeout",
    "event_handler_concurrency",
    "event_handler_completion",
    "event_handler_slow_timeout",
    "event_handler_detect_file_paths",
)
_KNOWN_KEYS: Final = frozenset(
    {"id", "name", *_CONFIG_KEYS, "handlers", "handlers_by_key", "event_history", "pending_event_queue"}
)


# ---------------------------------------------------------------------------------------- writing
def queued_events(bus: EventBus) -> list[BaseEvent[Any]]:
    """The events still waiting in ``bus``'s queue, in FIFO order (even those trimmed from its history)."""
    return list(bus._queue.values())  # pyright: ignore[reportPrivateUsage]


def bus_to_dict(bus: EventBus) -> dict[str, Any]:
    """The bus as a JSON-ready dict: config, handler entries, the handler index (registration order per
    pattern), every event in history with its result rows (an ``event_results`` list, possibly empty), and
    the ids of the events still queued, FIFO. ``max_pending`` and middlewares are not part of the format."""
    out: dict[str, Any] = {"id": bus.id, "name": bus.name}
    for key in _CONFIG_KEYS:
        out[key] = getattr(bus, key)
    out["handlers"] = {handler_id: handler_to_dict(entry) for handler_id, entry in bus.handlers.items()}
    out["handlers_by_key"] = dict(bus.handlers_by_key)
    queued = queued_events(bus)
    events = dict(bus.event_history.items())
    for event in queued:  # a queued event trimmed out of the history must not be lost
        events.setdefault(event.event_id, event)
    out["event_history"] = {
        event_id: event_to_dict(event, include_results=True) for event_id, event in events.items()
    }
    out["pending_event_queue"] = [event.event_id for event in queued]
    return out


def bus_to_json(bus: EventBus) -> str:
    """:func:`bus_to_dict` as compact JSON text."""
    return orjson.dumps(bus_to_dict(bus)).decode()


# ---------------------------------------------------------------------------------------- reading
def bus_from_json(cls: type[EventBus], data: str | bytes | Mapping[str, Any]) -> EventBus:
    """Restore a bus written by any bubus 2.x runtime (or by :func:`bus_to_json`).

    Missing config keys take the constructor's defaults; ``null`` means "no limit" where the option allows
    it. Handlers are registered as stub entries in their ``handlers_by_key`` order; result rows of the
    history link to those entries. A handler of this bus named only by rows is registered too (a stub,
    after the others); one of another bus stays a stub on its rows. Child ids in rows
    are re-linked to the restored events. The queued ids are queued again, FIFO, without re-stamping
    ``event_path``; a completed event listed there is not queued again.

    :raises EventValidationError: naming the field and the value, for malformed input; no bus is built
    """
    obj = load_object(data, "EventBus")
    unknown = obj.keys() - _KNOWN_KEYS
    if unknown:
        key = min(unknown)
        raise EventValidationError(f"EventBus.{key}: unknown bus snapshot field", field=key, value=obj[key])
    handlers = _read_handlers(obj)
    row_handlers: list[EventHandler] = []
    history = _read_history(obj, handlers, row_handlers)
    pending = _read_pending(obj, history)
    bus = _build_bus(cls, obj)
    for entry in handlers:
        bus.add_handler(entry)
    _register_row_handlers(bus, row_handlers)
    _fill_history(bus, history)
    for event in pending:
        requeue(bus, event)
    for event in _interrupted(bus, history, pending):
        requeue(bus, event)
    return bus


def _interrupted(
    bus: EventBus, history: Mapping[str, BaseEvent[Any]], pending: list[BaseEvent[Any]]
) -> list[BaseEvent[Any]]:
    """Events this bus was processing when the snapshot was taken (unfinished, not queued, visited by this
    bus). Their rows that were running are closed as aborted, and the events are queued again after the
    pending ones, so the handlers that never started run and every event completes."""
    label = bus.label
    waiting = set(map(id, pending))
    found: list[BaseEvent[Any]] = []
    for event in history.values():
        if event.event_status == "completed" or id(event) in waiting or label not in event.event_path:
            continue
        for row in event.event_results.values():
            if row.status == "started" and row.eventbus_id == bus.id:
                row.mark_error(
                    EventHandlerAbortedError(
                        f"Event handler {row.handler.label}({event.event_label}) was running when the bus "
                        "snapshot was taken; it is not run again",
                        event=event,
                        handler=row.handler,
                        event_result=row,
                    )
                )
        found.append(event)
    return found


def _build_bus(cls: type[EventBus], obj: Mapping[str, Any]) -> EventBus:
    options = {key: obj[key] for key in _CONFIG_KEYS if key in obj}
    for key in ("max_history_drop", "event_handler_detect_file_paths"):
        if key in options and type(options[key]) is not bool:
            raise EventValidationError(
                f"EventBus.{key}: expected true or false, got {options[key]!r:.200}",
                field=key,
                value=options[key],
            )
    for key in ("id", "name"):
        value = obj.get(key)
        if value is not None and type(value) is not str:
            raise EventValidationError(
                f"EventBus.{key}: expected a string, got {value!r:.200}", field=key, value=value
            )
    try:
        return cls(obj.get("name"), id=obj.get("id"), **options)
    except (TypeError, ValueError) as exc:
        first_word = str(exc).split(" ", 1)[0]  # the bus names the option first: "event_timeout must be..."
        field = "name" if first_word == "bus" else first_word if first_word in (*options, "id") else None
        raise EventValidationError(
            f"EventBus.{field or 'config'}: {exc}", field=field, value=obj.get(field) if field else None
        ) from None


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventValidationError(
            f"EventBus.{key}: expected an object, got {value!r:.200}", field=key, value=value
        )
    return cast(dict[str, Any], value)


def _read_handlers(obj: Mapping[str, Any]) -> list[EventHandler]:
    """Handler entries in registration order: by ``handlers_by_key`` (per pattern), then any others."""
    entries: dict[str, EventHandler] = {}
    for handler_id, raw in _mapping(obj, "handlers").items():
        entry = handler_from_dict(raw, f"EventBus.handlers[{handler_id!r}]")
        if entry.id != handler_id:
            raise EventValidationError(
                f"EventBus.handlers[{handler_id!r}].id: the entry's id {entry.id!r} differs from its key",
                field="handlers",
                value=raw,
            )
        entries[handler_id] = entry
    ordered: dict[str, EventHandler] = {}
    for pattern, ids in _mapping(obj, "handlers_by_key").items():
        if type(ids) is not list:
            raise EventValidationError(
                f"EventBus.handlers_by_key[{pattern!r}]: expected a list of handler ids, got {ids!r:.200}",
                field="handlers_by_key",
                value=ids,
            )
        for handler_id in cast(list[object], ids):
            entry = entries.get(handler_id) if isinstance(handler_id, str) else None
            if entry is None or entry.event_pattern != pattern:
                raise EventValidationError(
                    f"EventBus.handlers_by_key[{pattern!r}]: {handler_id!r} is not a handler for {pattern!r}",
                    field="handlers_by_key",
                    value=handler_id,
                )
            ordered[entry.id] = entry
    for handler_id, entry in entries.items():
        ordered.setdefault(handler_id, entry)
    return list(ordered.values())


def _register_row_handlers(bus: EventBus, row_handlers: list[EventHandler]) -> None:
    """Register, as stubs, the handlers of this bus that appear only in result rows (removed before the
    snapshot, or left out by its writer), as upstream does, so ``bus.handlers[row.handler_id]`` finds the
    row's handler. Rows of *other* buses (on forwarded events) keep their stub on the row only: registered
    here they would run on this bus. Replayed registrations do not warn about duplicate names.

    Such a handler was removed, or never handed over, so nobody will attach a callable to it: it is
    registered as a no-op that completes its rows with None (as upstream's stubs do), so new events are not
    failed by it and ``event_result()`` keeps working."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for entry in row_handlers:
            if entry.eventbus_id == bus.id:
                if entry.handler is None:
                    entry.handler = _restored_row_handler
                    entry.is_async = False
                bus.add_handler(entry)


def _restored_row_handler(event: BaseEvent[Any]) -> None:
    """The callable of a handler restored only from result rows: it does nothing (see above)."""
    return None


def _read_history(
    obj: Mapping[str, Any], handlers: list[EventHandler], row_handlers: list[EventHandler]
) -> dict[str, BaseEvent[Any]]:
    """The events of ``event_history`` by id. Result rows link to their entry in ``handlers``; a handler
    found only in rows gets one stub entry, shared by all its rows and appended to ``row_handlers``."""
    by_id = {entry.id: entry for entry in handlers}
    history: dict[str, BaseEvent[Any]] = {}
    for event_id, raw in _mapping(obj, "event_history").items():
        if not isinstance(raw, dict):
            raise EventValidationError(
                f"EventBus.event_history[{event_id!r}]: expected an event object, got {raw!r:.200}",
                field="event_history",
                value=raw,
            )
        event = decode_event(BaseEvent, cast(dict[str, Any], raw), by_id)
        history[event.event_id] = event
        for row in event.event_results.values():
            if row.handler_id not in by_id:
                by_id[row.handler_id] = row.handler
                row_handlers.append(row.handler)
    for event in history.values():
        for row in event.event_results.values():
            link_children(row, history.get)
            _link_inline_result(row, history)
    return history


def _link_inline_result(row: Any, history: Mapping[str, BaseEvent[Any]]) -> None:
    """Python 2.x inlines a forwarded event as a row's value: point the row at the restored event."""
    value = row.result
    if isinstance(value, dict) and "event_type" in value:
        found = history.get(cast(dict[str, Any], value).get("event_id"))  # pyright: ignore[reportArgumentType]
        if found is not None:
            row.result = found


def _read_pending(obj: Mapping[str, Any], history: Mapping[str, BaseEvent[Any]]) -> list[BaseEvent[Any]]:
    ids = obj.get("pending_event_queue")
    if ids is None:
        return []
    if type(ids) is not list:
        raise EventValidationError(
            f"EventBus.pending_event_queue: expected a list of event ids, got {ids!r:.200}",
            field="pending_event_queue",
            value=ids,
        )
    pending: list[BaseEvent[Any]] = []
    for event_id in cast(list[object], ids):
        event = history.get(event_id) if isinstance(event_id, str) else None
        if event is None:
            raise EventValidationError(
                f"EventBus.pending_event_queue: {event_id!r} is not an event of event_history",
                field="pending_event_queue",
                value=event_id,
            )
        if event.event_status != "completed" and event not in pending:
            pending.append(event)
    return pending


def _fill_history(bus: EventBus, history: Mapping[str, BaseEvent[Any]]) -> None:
    events = bus._history  # pyright: ignore[reportPrivateUsage]
    for event in history.values():
        events.add(event)
        if event.event_status == "completed":
            event._buses.append(bus)  # pyright: ignore[reportPrivateUsage]
            events.on_completed(event)


def requeue(bus: EventBus, event: BaseEvent[Any]) -> None:
    """Queue ``event`` on ``bus`` again (restore): what ``emit`` does, minus parent linking and without
    appending to ``event_path``."""
    bus._requeue(event)  # pyright: ignore[reportPrivateUsage]
