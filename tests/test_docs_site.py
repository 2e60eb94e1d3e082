"""The built documentation site works in a real browser: headless Chromium (Debian's package, driven by
playwright) loads the site from a local HTTP server and checks the home page, the API reference, search,
the diagrams and the performance plot. Screenshots go to site/_screenshots/ for review.

Build the site first (`make docs`); `make docs-check` does both. Without the built site, chromium or
playwright these tests skip, saying why, except under BUBUS_DOCS_SITE_REQUIRED=1 (set by `make docs-check`
and so in CI), where they fail instead.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
SCREENSHOTS = SITE / "_screenshots"
REQUIRED = os.environ.get("BUBUS_DOCS_SITE_REQUIRED") == "1"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _missing() -> str | None:
    if not (SITE / "index.html").is_file():
        return f"no built site at {SITE}: run `make docs` (or `make docs-check`) first"
    if _chromium() is None:
        return "chromium is not installed: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        return (
            "playwright is not installed: pip install -e '.[docs]' (its own browser download is not needed)"
        )
    return None


_REASON = _missing()
if _REASON is not None:
    if REQUIRED:
        raise RuntimeError(f"BUBUS_DOCS_SITE_REQUIRED=1 but the docs site cannot be checked: {_REASON}")
    pytestmark = pytest.mark.skip(reason=f"DOCS SITE NOT CHECKED IN A BROWSER: {_REASON}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The built site, served over HTTP on 127.0.0.1 at a free port (search needs http://, not file://)."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, name="docs-site-server")
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=_chromium(),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab that records uncaught JavaScript errors; a test fails if one happened."""
    tab = browser.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_the_home_page_has_its_title_and_navigation(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/")
    assert "bubus-anyio" in page.title()
    assert page.locator("article h1").first.inner_text().startswith("bubus-anyio")
    nav = page.locator("nav.md-nav--primary")
    for entry in (
        "Getting started",
        "Guide",
        "Concurrency",
        "Middlewares",
        "Bridges",
        "Performance",
        "API reference",
    ):
        assert nav.get_by_text(entry, exact=True).count() >= 1, entry
    _shot(page, "home")


def test_the_api_reference_documents_the_bus_and_events(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/reference/bus.html")
    heading = page.locator('[id="bubus_anyio.EventBus"]')
    assert heading.count() == 1
    assert "EventBus" in heading.inner_text()
    for member in ("emit", "on", "find", "wait_until_idle"):
        assert page.locator(f'[id="bubus_anyio.EventBus.{member}"]').count() == 1, member
    _shot(page, "reference-bus")
    page.goto(f"{base_url}/reference/events.html")
    assert page.locator('[id="bubus_anyio.BaseEvent"]').count() == 1
    assert page.locator('[id="bubus_anyio.BaseEvent.event_result"]').count() == 1
    _shot(page, "reference-events")


def test_search_finds_pages_about_the_queue(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/")
    field = page.locator("input.md-search__input")
    field.click()
    field.press_sequentially("queue", delay=30)  # Material searches on key events, as a person types
    results = page.locator(".md-search-result__item")
    results.first.wait_for(state="visible")  # the index is built in a web worker: wait for it
    assert results.count() >= 3
    assert "matching documents" in page.locator(".md-search-result__meta").inner_text()
    assert page.locator(".md-search-result mark").first.inner_text().lower() == "queue"
    assert page.locator('.md-search-result__link[href*="/concurrency.html"]').count() >= 1
    _shot(page, "search-queue")


def test_the_diagrams_render(page: Any, base_url: str) -> None:
    """Material swaps each ``pre.mermaid`` source block for a ``div.mermaid`` holding the drawn diagram (in a
    closed shadow root, so its size is what can be checked from outside)."""
    page.goto(f"{base_url}/concurrency.html")
    page.wait_for_function("document.querySelectorAll('div.mermaid').length === 3")
    assert page.locator("pre.mermaid").count() == 0
    heights = page.locator("div.mermaid").evaluate_all(
        "nodes => nodes.map(n => n.getBoundingClientRect().height)"
    )
    assert all(height > 80 for height in heights), heights
    page.locator("div.mermaid").first.scroll_into_view_if_needed()
    _shot(page, "concurrency-diagram")


def test_the_performance_page_shows_the_generated_plot_and_tables(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/performance.html")
    plot = page.locator('img[src$="cost-per-event.svg"]')
    plot.wait_for(state="visible")
    assert plot.evaluate("img => img.complete && img.naturalWidth > 0")
    text = page.locator("article").inner_text()
    assert "worst-case-forwarding-timeouts" in text
    assert "benchmarks/results/" in text
    plot.scroll_into_view_if_needed()
    _shot(page, "performance-plot")


def test_the_reference_shows_no_raw_docstring_markup() -> None:
    """Sphinx field lists (``:param x:``) and roles (``:class:`X```) are rendered, never shown as text."""
    raw = re.compile(r":(?:param|raises|returns?|rtype|class|meth|func|attr|exc|data|mod)[: `]")
    leftovers = {
        page.relative_to(SITE).as_posix(): sorted(set(raw.findall(_visible_text(page))))
        for page in (SITE / "reference").glob("*.html")
    }
    assert {page: found for page, found in leftovers.items() if found} == {}


def _visible_text(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))
