"""Measurement helpers shared by the scenario children of both libraries.

Standard library only: this module is imported by our venv *and* by the upstream venv
(``benchmarks/.venv-upstream``), so it must not import either library.

A child process runs one scenario once and prints one JSON line (prefixed with ``RESULT_PREFIX``) on
stdout. The parent (``run.py``) starts a fresh child per run, so peak RSS of one run never leaks into
the next.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "


def peak_rss_kb() -> int:
    """Peak resident set size of this process so far, in KiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kb() -> int:
    """Resident set size right now, in KiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class Sample:
    """One run of one scenario: the raw totals (per-unit figures are derived by the parent)."""

    scenario: str
    library: str
    backend: str
    units: int
    unit: str = "event"
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss_delta_kb: int = 0
    ok: bool = True
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Clock:
    """Brackets the measured part of a scenario (set-up before ``start`` is not measured)."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.rss_delta_kb = 0
        self._t0 = 0.0
        self._c0 = 0.0
        self._rss0 = 0

    def start(self) -> None:
        gc.collect()
        self._rss0 = peak_rss_kb()
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.cpu_s = time.process_time() - self._c0
        self.rss_delta_kb = max(0, peak_rss_kb() - self._rss0)


def fill_sample(sample: Sample, clock: Clock) -> Sample:
    sample.wall_s = clock.wall_s
    sample.cpu_s = clock.cpu_s
    sample.rss_delta_kb = clock.rss_delta_kb
    return sample


def report(sample: Sample) -> None:
    """Print the sample for the parent and leave at once.

    ``os._exit`` skips interpreter shutdown on purpose: upstream's bus keeps a polling task alive that can
    keep ``asyncio.run`` from returning, and nothing here needs cleaning up.
    """
    sys.stdout.write(RESULT_PREFIX + json.dumps(asdict(sample)) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_guarded(make: Callable[[], Sample], failed: Callable[[str], Sample]) -> None:
    """Run ``make`` and report its sample; an exception is reported as a failed sample."""
    try:
        sample = make()
    except BaseException as exc:
        sample = failed(f"{type(exc).__name__}: {exc}"[:300])
    report(sample)
