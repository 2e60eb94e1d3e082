"""Canonical timestamps: ``YYYY-MM-DDTHH:MM:SS.fffffffffZ`` (UTC, 9 fractional digits, 30 characters).

The canonical form sorts lexicographically in time order, which ``find(past=...)`` and the bridges rely on.
Generated stamps are strictly increasing within the process (ties are bumped by one nanosecond), even across
threads, because ordering by ``event_created_at`` must agree with emit order.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["format_ns", "monotonic_datetime", "new_timestamp", "normalize_timestamp", "now_ns"]

_ANCHOR_NS = time.time_ns() - time.monotonic_ns()
_lock = threading.Lock()
#: The last monotonic reading handed out (epoch time minus ``_ANCHOR_NS``): small integers are cheaper to
#: compare and subtract than epoch nanoseconds, which need a third 30-bit digit.
_last_mono = 0
#: (epoch second, its "YYYY-MM-DDTHH:MM:SS." prefix), replaced as one tuple so threads never see a mix
_prefix_cache: tuple[int, str] = (-1, "")
#: The second ``new_timestamp`` is in, on the monotonic clock: (start, end, its prefix), one tuple likewise
_second: tuple[int, int, str] = (0, 0, "")


def now_ns() -> int:
    """Nanoseconds since the epoch: wall-clock anchored once, advanced by the monotonic clock, strictly
    increasing per process (and together with ``new_timestamp``)."""
    global _last_mono
    with _lock:
        m = time.monotonic_ns()
        if m <= _last_mono:
            m = _last_mono + 1
        _last_mono = m
    return _ANCHOR_NS + m


def _prefix(seconds: int) -> str:
    global _prefix_cache
    tm = time.gmtime(seconds)
    prefix = (
        f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}."
    )
    _prefix_cache = (seconds, prefix)
    return prefix


def format_ns(ns: int) -> str:
    """Render epoch nanoseconds in the canonical 30-character form."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    cached_second, prefix = _prefix_cache
    if seconds != cached_second:
        prefix = _prefix(seconds)
    return f"{prefix}{fraction:09d}Z"


def _enter_second(mono: int) -> tuple[int, int, str]:
    global _second
    seconds = (_ANCHOR_NS + mono) // 1_000_000_000
    start = seconds * 1_000_000_000 - _ANCHOR_NS
    _second = (start, start + 1_000_000_000, _prefix(seconds))
    return _second


def new_timestamp() -> str:
    """A new strictly increasing canonical timestamp: ``format_ns(now_ns())`` inlined, with the lock taken
    by its bound methods and the current second's bounds cached on the monotonic clock (no division per
    call), because it runs several times per event."""
    global _last_mono
    _acquire()
    try:  # free when nothing is raised (3.11); a KeyboardInterrupt in here must not keep the lock
        m = _monotonic_ns()
        if m <= _last_mono:
            m = _last_mono + 1
        _last_mono = m
    finally:
        _release()
    start, end, prefix = _second
    if m >= end:
        start, end, prefix = _enter_second(m)
    return prefix + str(m - start + 1_000_000_000)[1:] + "Z"  # zero-padded to 9 digits, cheaper than :09d


_monotonic_ns = time.monotonic_ns
_acquire = _lock.acquire
_release = _lock.release


_CANONICAL_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
_TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


def normalize_timestamp(value: str | datetime) -> str:
    """Validate a timestamp and return its canonical UTC form.

    Accepts ``YYYY-MM-DDTHH:MM:SS`` with 0-9 fractional digits and ``Z`` or a ``±HH:MM`` offset, or an aware
    :class:`datetime` (naive ones are taken as UTC). The year must lie in 1991..2499, as upstream requires.

    :raises ValueError: with the offending value in the message
    """
    if type(value) is str and _CANONICAL_RE.match(value):
        try:
            year = datetime.fromisoformat(value[:19]).year  # validates the calendar date and the time
        except ValueError as exc:
            raise ValueError(f"invalid timestamp {value!r}: {exc}") from None
        if 1990 < year < 2500:
            return value
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        dt = dt.astimezone(UTC)
        fraction = f"{dt.microsecond:06d}000"
    else:
        if not isinstance(value, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"timestamp must be a string or datetime, got {value!r}")
        match = _TIMESTAMP_RE.match(value)
        if match is None:
            raise ValueError(
                f"invalid timestamp {value!r}: expected YYYY-MM-DDTHH:MM:SS[.fffffffff](Z|±HH:MM)"
            )
        year, month, day, hour, minute, second, digits, zone = match.groups()
        try:
            dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
        except ValueError as exc:
            raise ValueError(f"invalid timestamp {value!r}: {exc}") from None
        if zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            dt -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        fraction = (digits or "").ljust(9, "0")
    if not 1990 < dt.year < 2500:
        raise ValueError(f"invalid timestamp {value!r}: year must be between 1991 and 2499")
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{fraction}Z"


def monotonic_datetime(value: str | datetime | None = None) -> str:
    """Without an argument, a new strictly increasing canonical timestamp; with one, its canonical form."""
    if value is None:
        return new_timestamp()
    return normalize_timestamp(value)
