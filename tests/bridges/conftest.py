"""Fixtures for the bridge tests."""

from __future__ import annotations

# --- real servers (Redis, NATS with JetStream, PostgreSQL) ---------------------------------------------------
# Order of preference: a URL in BUBUS_TEST_{REDIS,NATS,POSTGRES}_URL, then a live server recorded in the state
# file `.ci/servers.sh start` writes, then a server this test session starts itself (the binary is installed
# but nothing runs). Only when the binary is truly missing does a test skip, and the run's summary then says so
# in capitals; with CI=true a missing server fails the test instead.
import gc
import os
import warnings
from collections.abc import Callable, Iterator

import pytest
import servers


def _server_url(kind: str, request: pytest.FixtureRequest) -> Iterator[str]:
    url = os.environ.get(servers.ENV_URLS[kind])
    if url:
        yield url
        return
    entry = servers.read_state(servers.DEFAULT_STATE).get(kind)
    if entry is not None:
        yield str(entry["url"])
        return
    server = servers.start_or_skip(kind)
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _server_url("redis", request)


@pytest.fixture(scope="session")
def nats_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _server_url("nats", request)


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _server_url("postgres", request)


@pytest.fixture
def private_server() -> Iterator[Callable[[str], servers.Server]]:
    """Start a throwaway server of a kind, for tests that crash and restart it (`kill()` then `start()`)."""
    started: list[servers.Server] = []

    def start(kind: str) -> servers.Server:
        server = servers.start_or_skip(kind)
        started.append(server)
        return server

    yield start
    for server in started:
        server.cleanup()


@pytest.fixture(autouse=True)
def _collect_client_leaks() -> Iterator[None]:
    """coredis 6.9 leaves a failed connection's memory streams unclosed (a ResourceWarning when they are
    collected, which pytest turns into an error in whatever test is running then). After a test that may
    have leaked (test_redis.py flags it), collect before the next test starts, with only that warning
    silenced, and once more at the end of the session."""
    _collect_leaks()
    yield


@pytest.fixture(scope="session", autouse=True)
def _collect_client_leaks_at_exit() -> Iterator[None]:
    yield
    servers.LEAKS_PENDING = True
    _collect_leaks()


def _collect_leaks() -> None:
    if not servers.LEAKS_PENDING:
        return
    servers.LEAKS_PENDING = False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unclosed <MemoryObject", category=ResourceWarning)
        gc.collect()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if servers.MISSING:
        terminalreporter.write_sep(
            "!", "BRIDGE SERVERS MISSING: their tests were SKIPPED", red=True, bold=True
        )
        for kind, why in sorted(servers.MISSING.items()):
            terminalreporter.write_line(f"  {kind}: {why}", red=True)
