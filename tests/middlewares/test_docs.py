"""Every python block of docs/middlewares/ runs as written (as the docs site will run it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "middlewares"


def _blocks() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for index, match in enumerate(re.finditer(r"(<!-- fragment -->\n)?```python\n(.*?)```", text, re.S)):
            if match.group(1) is None:
                found.append((f"{page.name}#{index}", match.group(2)))
    return found


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[where for where, _ in _blocks()])
def test_the_example_runs(where: str, code: str) -> None:
    assert "anyio.run(main)" in code
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{where}:\n{result.stderr[-3000:]}"
