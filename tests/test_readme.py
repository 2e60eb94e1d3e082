"""The README's quickstart works as written, on both backends (and the demo runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _doc_blocks import ROOT, on_backend, python_blocks, run_script


def _quickstart() -> str:
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "README.md has no python block"
    assert all(block.fragment is None for block in blocks), "the README's blocks must all run"
    return blocks[0].code


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_quickstart_runs_as_written(backend: str, tmp_path: Path) -> None:
    code = _quickstart()
    assert "anyio.run(main)" in code
    result = run_script(on_backend(code, backend), cwd=tmp_path)
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
