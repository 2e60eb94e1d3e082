"""Subprocess helper for ``test_retry.py``: hold a ``multiprocess``-scope semaphore briefly, logging it.

Usage: ``python _retry_worker.py <backend> <semaphore name> <log file> <hold seconds>``. Appends
``start <pid>`` when the decorated function starts and ``end <pid>`` just before it returns; with
``semaphore_limit=1`` the lines of all workers must come in start/end pairs of one pid.
"""

from __future__ import annotations

import os
import sys

import anyio

from bubus_anyio.retry import retry


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def main() -> None:
    backend, name, log_path, hold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    @retry(semaphore_limit=1, semaphore_name=name, semaphore_scope="multiprocess", semaphore_timeout=30)
    async def hold_slot() -> None:
        _append(log_path, f"start {os.getpid()}")
        await anyio.sleep(hold)
        _append(log_path, f"end {os.getpid()}")

    anyio.run(hold_slot, backend=backend)


if __name__ == "__main__":
    main()
