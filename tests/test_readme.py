"""The README's quickstart works as written, on both backends (and the demo runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _quickstart() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python block"
    return blocks[0]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_quickstart_runs_as_written(backend: str) -> None:
    code = _quickstart()
    assert "anyio.run(main)" in code
    if backend == "trio":
        code = code.replace("anyio.run(main)", "anyio.run(main, backend='trio')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_demo_runs_on_both_backends() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "=== bubus-anyio on asyncio ===" in result.stdout
    assert "=== bubus-anyio on trio ===" in result.stdout
    assert "Event tree of App:" in result.stdout


def test_the_middlewares_demo_runs_on_both_backends() -> None:
    demo = ROOT / "examples" / "middlewares_demo.py"
    result = subprocess.run([sys.executable, str(demo)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "=== middlewares on asyncio ===" in result.stdout
    assert "=== middlewares on trio ===" in result.stdout
    assert "SQLite mirror" in result.stdout and "card limit exceeded" in result.stdout
