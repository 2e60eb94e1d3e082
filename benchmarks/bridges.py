"""Every bridge between two processes: round-trip latency (p50/p99) and one-way throughput, asyncio and trio.

    .venv/bin/python benchmarks/bridges.py             # full: 500 round trips, 5000 events per row
    .venv/bin/python benchmarks/bridges.py --smoke     # a few events per row, under a minute
    .venv/bin/python benchmarks/bridges.py --bridge redis --bridge nats-js --backend trio
    make bench-bridges [ARGS=--smoke]

The server bridges (Redis pub/sub and Streams, NATS core and JetStream, PostgreSQL LISTEN/NOTIFY and its
durable cursor) run against the servers ``.ci/servers.sh start`` records (or servers this run starts and
stops itself, from tests/bridges/servers.py, when none run). The measurement itself is the embedded
bridges' (``benchmarks/_bridges_embedded.py``: a peer process echoes ``Ping`` -> ``Pong`` for latency,
and answers once after N ``Ping`` s for throughput); this file only adds the server kinds to it, so every
row is measured the same way. Upstream bubus 1.5.6 (the PyPI release) has no bridges at all (its package
is ``helpers``, ``logging``, ``models``, ``service``), so there is no upstream column to fill.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import _bridges_embedded as embedded

from bubus_anyio.bridges import EventBridge

HERE = Path(__file__).resolve()
SERVER_KINDS = ("redis", "redis-stream", "nats", "nats-js", "postgres", "postgres-durable")
_SERVER_OF = {"redis": "redis", "nats": "nats", "postgres": "postgres"}
_ENV_URLS = {
    "redis": "BUBUS_TEST_REDIS_URL",
    "nats": "BUBUS_TEST_NATS_URL",
    "postgres": "BUBUS_TEST_POSTGRES_URL",
}


def _servers_module() -> ModuleType:
    path = HERE.parent.parent / "tests" / "bridges" / "servers.py"
    spec = importlib.util.spec_from_file_location("bubus_bench_servers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def server_urls(kinds: tuple[str, ...]) -> tuple[dict[str, str], list[Any]]:
    """URL per server kind needed: from the environment, the state file, or a server started here."""
    servers = _servers_module()
    state = servers.read_state(servers.DEFAULT_STATE)
    urls: dict[str, str] = {}
    started: list[Any] = []
    for kind in sorted({_SERVER_OF[k.split("-")[0]] for k in kinds}):
        url = os.environ.get(servers.ENV_URLS[kind]) or (state.get(kind) or {}).get("url")
        if url is None:
            server = servers.Server(kind).start()
            started.append(server)
            url = server.url
        urls[kind] = str(url)
    return urls, started


def addresses(kind: str, workdir: Path) -> tuple[str, str]:
    if kind not in SERVER_KINDS:
        return _embedded_addresses(kind, workdir)
    tag = uuid.uuid4().hex[:8]
    url = os.environ[_ENV_URLS[_SERVER_OF[kind.split("-")[0]]]]
    if kind.startswith("postgres"):
        return f"{url}/bench_req_{tag}", f"{url}/bench_rep_{tag}"
    return f"{url}#bench_req_{tag}", f"{url}#bench_rep_{tag}"


def make_bridge(kind: str, address: str, *, listen: bool) -> EventBridge:
    if kind not in SERVER_KINDS:
        return _embedded_make_bridge(kind, address, listen=listen)
    from bubus_anyio import bridges

    if kind.startswith("postgres"):
        table = address.rsplit("/", 1)[1]
        return bridges.PostgresEventBridge(
            address, table, durable=kind.endswith("durable"), poll_interval=0.05
        )
    url, _, channel = address.partition("#")
    if kind.startswith("redis"):
        if kind == "redis-stream":
            return bridges.RedisEventBridge(url, channel, mode="stream", block=0.05)
        return bridges.RedisEventBridge(url, channel)
    if kind == "nats-js":
        return bridges.NATSEventBridge(url, channel, jetstream=True, fetch_timeout=0.05)
    return bridges.NATSEventBridge(url, channel)


_embedded_addresses = embedded.addresses
_embedded_make_bridge = embedded.make_bridge


def _install() -> None:
    """Make the embedded harness measure our kinds too (it looks these names up at call time)."""
    embedded.addresses = addresses
    embedded.make_bridge = make_bridge
    embedded.HERE = HERE


def main() -> None:
    _install()
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        import anyio

        backend, kind, requests, replies, mode, count = sys.argv[2:8]
        anyio.run(embedded.peer, kind, requests, replies, mode, int(count), backend=backend)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a few events per row")
    parser.add_argument("--backend", action="append", choices=("asyncio", "trio"))
    parser.add_argument("--bridge", action="append", choices=(*embedded.KINDS, *SERVER_KINDS))
    parser.add_argument("--servers-only", action="store_true", help="skip the embedded bridges")
    args = parser.parse_args()
    kinds = tuple(args.bridge or (SERVER_KINDS if args.servers_only else (*embedded.KINDS, *SERVER_KINDS)))
    backends = tuple(args.backend or ("asyncio", "trio"))
    server_kinds = tuple(k for k in kinds if k in SERVER_KINDS)
    urls, started = server_urls(server_kinds) if server_kinds else ({}, [])
    try:
        for kind, url in urls.items():
            os.environ[_ENV_URLS[kind]] = url  # addresses() reads them
        rows = embedded.run_embedded(backends, kinds, smoke=args.smoke)
    finally:
        for server in started:
            server.cleanup()
    print(embedded.table(rows))


if __name__ == "__main__":
    main()
