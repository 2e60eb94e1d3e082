"""Every python block of the docs (docs/**/*.md) runs as written, on asyncio and on trio where it runs an
event loop; blocks that are fragments on purpose are marked, and their number per page is pinned here.

README.md's blocks are run by tests/test_readme.py with the same helper.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _doc_blocks import ROOT, Block, on_backend, python_blocks, run_script

DOCS = ROOT / "docs"

#: Fragments per page, on purpose (each is marked ``<!-- fragment: why -->`` in the page). A new fragment
#: must be added here, so that a block that does not run is always a decision, never an accident.
EXPECTED_FRAGMENTS: dict[str, int] = {
    "migration.md": 8,
    "bridges/nats.md": 1,  # these three need their server: tests/bridges/test_docs_servers.py runs them
    "bridges/postgres.md": 1,
    "bridges/redis.md": 1,
}


def _all_blocks() -> list[Block]:
    return [block for page in sorted(DOCS.rglob("*.md")) for block in python_blocks(page)]


def _cases() -> list[object]:
    cases: list[object] = []
    for block in _all_blocks():
        if block.fragment is not None:
            continue
        backends = ("asyncio", "trio") if block.is_async else ("no event loop",)
        cases.extend(pytest.param(block, backend, id=f"{block.name}-{backend}") for backend in backends)
    return cases


@pytest.mark.parametrize(("block", "backend"), _cases())
def test_the_block_runs_as_written(block: Block, backend: str, tmp_path: Path) -> None:
    code = block.code if backend == "no event loop" else on_backend(block.code, backend)
    result = run_script(code, cwd=tmp_path)
    assert result.returncode == 0, f"{block.name} failed on {backend}:\n{result.stderr}"


def test_async_blocks_run_through_anyio_run() -> None:
    """A block with async code that does not call ``anyio.run(main)`` would silently run nothing (or one
    backend only): it must be a marked fragment."""
    offenders = [
        block.name
        for block in _all_blocks()
        if block.fragment is None
        and ("async def" in block.code or "await " in block.code)
        and not block.is_async
    ]
    assert offenders == []


def test_fragments_are_the_expected_ones() -> None:
    found: dict[str, int] = {}
    for block in _all_blocks():
        if block.fragment is not None:
            key = block.path.relative_to(DOCS).as_posix()
            found[key] = found.get(key, 0) + 1
    assert found == EXPECTED_FRAGMENTS


def test_the_docs_have_blocks_to_run() -> None:
    runnable = [block for block in _all_blocks() if block.fragment is None]
    assert len(runnable) >= 10, [block.name for block in runnable]


def test_the_block_finder_sees_indented_blocks_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        '# t\n\n```python\nx = 1\n```\n\n=== "tab"\n\n    ```python\n    if True:\n        y = 2\n    ```\n\n'
        "<!-- fragment: needs y -->\n```py\nprint(y)\n```\n\n```json\n{}\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [(b.line, b.code, b.fragment) for b in blocks] == [
        (3, "x = 1\n", None),
        (9, "if True:\n    y = 2\n", None),
        (15, "print(y)\n", "needs y"),
    ]


def test_on_backend_rewrites_every_run_call() -> None:
    code = "anyio.run(main)  # or anyio.run(main, backend='trio')\nanyio.run(other)\n"
    assert on_backend(code, "trio") == (
        "anyio.run(main, backend='trio')  # or anyio.run(main, backend='trio')\nanyio.run(other, backend='trio')\n"
    )
