"""Python code blocks of the markdown docs, and running one as a script (shared by test_readme and
test_docs_examples).

A block is every fenced ```` ```python ```` (or ```` ```py ````) block of a page, also when it is indented
(content tabs, grids, admonitions). A block that is not meant to run on its own (it leans on names the
page only describes, or it is upstream bubus code) is marked by an HTML comment on the line right before
its fence, with the reason: ``<!-- fragment: uses the handlers of the previous example -->``. The comment
is invisible on the site and on GitHub.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M
)
_FRAGMENT = re.compile(r"<!--\s*fragment:\s*(?P<reason>\S[^\n]*?)\s*-->\s*$")
_RUN_CALL = re.compile(r"\banyio\.run\((?P<main>[A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class Block:
    """One python code block of a markdown file."""

    path: Path
    line: int
    code: str
    #: Why the block does not run on its own, or ``None`` for a block that must run.
    fragment: str | None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def is_async(self) -> bool:
        """Whether the block runs an event loop: such a block must run on asyncio and on trio."""
        return _RUN_CALL.search(self.code) is not None


def python_blocks(path: Path) -> list[Block]:
    """Every python block of ``path``, in page order."""
    text = path.read_text(encoding="utf-8")
    blocks: list[Block] = []
    for match in _FENCE.finditer(text):
        if match["lang"] not in ("python", "py"):
            continue
        start = match.start()
        line = text.count("\n", 0, start) + 1
        before = text[:start].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _FRAGMENT.search(before)
        indent = match["indent"]
        body = "".join(
            row[len(indent) :] if row.startswith(indent) else row for row in match["body"].splitlines(True)
        )
        blocks.append(Block(path, line, textwrap.dedent(body), marker["reason"] if marker else None))
    return blocks


def on_backend(code: str, backend: str) -> str:
    """``code`` with every ``anyio.run(main)`` call running on ``backend``."""
    return _RUN_CALL.sub(lambda m: f"anyio.run({m['main']}, backend={backend!r})", code)


def run_script(code: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (warnings are errors, as in the test suite)."""
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
