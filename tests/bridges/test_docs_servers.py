"""The examples on the Redis, NATS and PostgreSQL bridge pages run as written, against the real servers,
on asyncio and on trio (tests/test_docs_examples.py, which has no servers, skips them as marked fragments)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bridges"
PAGES = {
    "redis.md": "BUBUS_TEST_REDIS_URL",
    "nats.md": "BUBUS_TEST_NATS_URL",
    "postgres.md": "BUBUS_TEST_POSTGRES_URL",
}


def example(page: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    match = re.search(r"<!-- fragment: needs [^>]*-->\n```python\n(.*?)```", text, flags=re.S)
    assert match is not None, f"{page} has no example"
    return match.group(1)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_example_runs(page: str, backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{page.removesuffix('.md')}_url")
    code = example(page)
    assert "anyio.run(main)" in code, f"{page}'s example does not end with anyio.run(main)"
    code = code.replace("anyio.run(main)", f"anyio.run(main, backend={backend!r})", 1)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, PAGES[page]: url},
    )
    assert result.returncode == 0, f"{page} on {backend}:\n{result.stderr}"
