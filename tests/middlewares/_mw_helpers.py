"""Small blocking helpers for async tests (file listings), kept out of the async functions."""

from __future__ import annotations

from pathlib import Path


def file_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def file_sizes(directory: Path) -> list[int]:
    return [p.stat().st_size for p in directory.iterdir()]
