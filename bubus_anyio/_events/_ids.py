"""Identifiers: RFC 9562 UUIDv7 for events, results and buses; the shared UUIDv5 algorithm for handlers.

The handler id must be byte-for-byte the one bubus (Python and TypeScript) computes, so that a handler
registered in one runtime is recognised by id in a snapshot written by another.
"""

from __future__ import annotations

import hashlib
import re
import uuid

import uuid_utils

__all__ = ["HANDLER_ID_NAMESPACE", "handler_id", "new_id", "normalize_uuid", "uuid7"]

HANDLER_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "bubus-handler")
_NAMESPACE_BYTES = HANDLER_ID_NAMESPACE.bytes


def new_id() -> str:
    """A new UUIDv7 (millisecond timestamp prefix, RFC 9562), as a lowercase canonical string.

    Hot paths write ``str(uuid7())`` out (with ``uuid7`` from here) to save a Python call per id."""
    return str(uuid7())


uuid7 = uuid_utils.uuid7


_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def normalize_uuid(value: str) -> str:
    """Validate any UUID string and return its canonical lowercase form.

    :raises ValueError: naming the value, if it is not a UUID
    """
    if type(value) is str and _CANONICAL_UUID.match(value):
        return value
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"invalid UUID {value!r}") from None


def handler_id(
    *,
    eventbus_id: str,
    handler_name: str,
    handler_file_path: str | None,
    handler_registered_at: str,
    event_pattern: str,
) -> str:
    """The handler id: ``uuid5(NS, "bus_id|name|file_path or 'unknown'|registered_at|pattern")``."""
    seed = f"{eventbus_id}|{handler_name}|{handler_file_path or 'unknown'}|{handler_registered_at}|{event_pattern}"
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + seed.encode()).digest()[:16])  # what uuid5 does
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
