"""Instructions per unit of a scenario, counted by valgrind's callgrind: a figure that does not drift.

    .venv/bin/python benchmarks/instructions.py [--scenario NAME ...] [--backend asyncio|trio ...]

Wall time on a shared VM drifts by a third between runs; instruction counts do not (about 0.5%). Each
scenario of ``_ours.py`` runs twice under ``valgrind --tool=callgrind`` with two sizes, and the difference
divided by the difference in units is the cost of one unit with start-up and teardown cancelled out.
This is how hot-path changes are judged (``benchmarks/README.md``, optimisation log).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: scenario -> (small N, large N); sizes chosen so a pair runs in well under a minute under callgrind
SIZES: dict[str, tuple[int, int]] = {
    "50k-events": (1_000, 3_000),
    "500-buses-x-100-events": (1_000, 3_000),
    "1-event-x-50k-parallel-handlers": (1_000, 3_000),
    "50k-one-off-handlers": (1_000, 3_000),
    "worst-case-forwarding-timeouts": (200, 600),
    "emit-await-latency": (1_000, 3_000),
    "queue-jump": (300, 900),
}
_TOTAL = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


def _units(scenario: str, n: int) -> int:
    sys.path.insert(0, str(HERE))
    from _ours import units_of  # the scenario's own unit count (e.g. 3 events per worst-case iteration)

    return units_of(scenario, n)


def count(scenario: str, backend: str, n: int) -> int:
    """Total instructions of one run of ``_ours.py scenario backend n`` under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(HERE / "_ours.py"),
                scenario,
                backend,
                str(n),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        found = _TOTAL.search(out.read_text())
        if found is None:
            raise RuntimeError(f"no summary line in callgrind output for {scenario} {backend} {n}")
        return int(found.group(1))


def per_unit(scenario: str, backend: str) -> float:
    small, large = SIZES[scenario]
    units = _units(scenario, large) - _units(scenario, small)
    return (count(scenario, backend, large) - count(scenario, backend, small)) / units


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", action="append", choices=sorted(SIZES), help="default: all")
    parser.add_argument("--backend", action="append", choices=("asyncio", "trio"), help="default: both")
    args = parser.parse_args()
    print("| scenario | backend | instructions per unit |")
    print("|---|---|---|")
    for scenario in args.scenario or list(SIZES):
        for backend in args.backend or ["asyncio", "trio"]:
            print(f"| {scenario} | {backend} | {per_unit(scenario, backend) / 1000:.1f}k |", flush=True)


if __name__ == "__main__":
    main()
