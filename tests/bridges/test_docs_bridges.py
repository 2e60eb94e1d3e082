"""Every python block of the embedded bridges' docs runs as written, on asyncio and on trio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bridges"
PAGES = ("index.md", "jsonl.md", "sqlite.md", "socket.md", "http.md")


def blocks() -> list[tuple[str, int, str]]:
    found: list[tuple[str, int, str]] = []
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        for i, match in enumerate(
            re.finditer(r"(<!-- fragment -->\n)?```python\n(.*?)```", text, flags=re.S)
        ):
            if match.group(1) is None:
                found.append((page, i, match.group(2)))
    return found


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(("page", "index", "code"), blocks(), ids=lambda v: str(v)[:12])
def test_block_runs(page: str, index: int, code: str, backend: str) -> None:
    assert "anyio.run(main)" in code, f"{page} block {index} does not end with anyio.run(main)"
    code = code.replace("anyio.run(main)", f"anyio.run(main, backend={backend!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{page} block {index} on {backend}:\n{result.stderr}"
