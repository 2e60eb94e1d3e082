"""The consuming half of a two-process bridge example: prints every event the producer sends.

    python examples/bridge_consumer.py --count 5 &      # start it first: it reads what comes from now on
    python examples/bridge_producer.py --count 5

Over a JSONL file by default (``/tmp/bubus-example.jsonl``); ``--transport sqlite|socket|redis|nats``
picks another bridge (redis and nats need a server: ``--url``). ``--durable`` makes a restarted
consumer resume where it stopped (JSONL offset file, SQLite consumer cursor, Redis Streams group,
JetStream consumer): stop it, run the producer, start it again, and it gets what it missed. The consumer has no class for the producer's events: they
arrive as generic events that keep every field. ``--backend trio`` runs it on trio.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.bridges import EventBridge

DEFAULTS = {
    "jsonl": "/tmp/bubus-example.jsonl",
    "sqlite": "/tmp/bubus-example.db",
    "socket": "/tmp/bubus-example.sock",
    "redis": "redis://127.0.0.1:6379/0",
    "nats": "nats://127.0.0.1:4222",
}


def make_bridge(transport: str, where: str, *, durable: bool, listen: bool) -> EventBridge:
    """The bridge for ``--transport`` (shared with the producer)."""
    from bubus_anyio import bridges

    if transport == "jsonl":
        offsets = f"{where}.offset" if durable and listen else None
        return bridges.JSONLEventBridge(where, poll_interval=0.05, offset_path=offsets)
    if transport == "sqlite":
        return bridges.SQLiteEventBridge(
            where, poll_interval=0.05, consumer="example" if durable and listen else None
        )
    if transport == "socket":
        return bridges.SocketEventBridge(where)
    if transport == "redis":
        if durable:
            return bridges.RedisEventBridge(where, "bubus_example", mode="stream", group="example")
        return bridges.RedisEventBridge(where, "bubus_example")
    if transport == "nats":
        if durable:
            return bridges.NATSEventBridge(where, "bubus.example", jetstream=True, durable="example")
        return bridges.NATSEventBridge(where, "bubus.example")
    raise SystemExit(f"unknown transport {transport!r}")


def parse(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--transport", choices=sorted(DEFAULTS), default="jsonl")
    parser.add_argument("--url", "--path", dest="where", help="file, socket path or server URL")
    parser.add_argument("--count", type=int, default=5, help="events to send / to wait for (0: forever)")
    parser.add_argument("--durable", action="store_true", help="at-least-once: resume after a restart")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    args.where = args.where or DEFAULTS[args.transport]
    return args


async def consume(args: argparse.Namespace) -> None:
    done = anyio.Event()
    seen = 0

    def show(event: BaseEvent[Any]) -> None:
        nonlocal seen
        seen += 1
        fields = {k: v for k, v in event.to_dict().items() if not k.startswith("event_")}
        print(f"received {event.event_type} {fields} via {' -> '.join(event.event_path)}", flush=True)
        if args.count and seen >= args.count:
            done.set()

    bridge = make_bridge(args.transport, args.where, durable=args.durable, listen=True)
    async with EventBus("Consumer") as bus:
        bus.on("*", show)
        bridge.on("*", bus.emit)  # before entering: listening as soon as `async with` returns
        async with bridge:
            print(f"consumer ready on {args.transport} {args.where}", flush=True)
            await done.wait()


if __name__ == "__main__":
    arguments = parse(__doc__ or "")
    anyio.run(consume, arguments, backend=arguments.backend)
