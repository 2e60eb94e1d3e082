"""The producing half of a two-process bridge example: emits ``OrderPlaced`` events on its bus, and a
bridge sends every event of that bus to the consumer (``examples/bridge_consumer.py``; start it first).

    python examples/bridge_producer.py --count 5 [--transport jsonl|sqlite|socket|redis|nats] [--url ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from bubus_anyio import BaseEvent, EventBus

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bridge_consumer import make_bridge, parse  # the same flags and bridges on both sides


class OrderPlaced(BaseEvent[None]):
    order_id: str
    cents: int


async def produce(args: argparse.Namespace) -> None:
    async with (
        EventBus("Producer") as bus,
        make_bridge(args.transport, args.where, durable=args.durable, listen=False) as bridge,
    ):
        bus.on("*", bridge.emit)  # out: every event on the bus goes over the bridge
        for n in range(args.count or 5):
            event = await bus.emit(OrderPlaced(order_id=f"o-{n}", cents=100 * n))
            print(f"sent {event.event_type} order_id={event.order_id}", flush=True)


if __name__ == "__main__":
    arguments = parse(__doc__ or "")
    anyio.run(produce, arguments, backend=arguments.backend)
