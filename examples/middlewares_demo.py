"""Middlewares on asyncio and then on trio: the logger prints each completed event and its tree, and the
SQLite mirror keeps every transition in a database that is queried at the end.

Run it with ``make demo`` (or ``python examples/middlewares_demo.py``).
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import tempfile
from pathlib import Path

import anyio

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio.middlewares import LoggerEventBusMiddleware, SQLiteHistoryMirrorMiddleware


class PlaceOrder(BaseEvent[str]):
    order_id: str


class ChargeCard(BaseEvent[int]):
    order_id: str
    cents: int


def charge(event: ChargeCard) -> int:
    if event.cents > 10_000:
        raise ValueError(f"card limit exceeded for {event.order_id}")
    return event.cents


class FieldsFormatter(logging.Formatter):
    """Shows a few of the structured fields the logger middleware puts on each record (``record.bubus``)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "bubus", None)
        if fields is None or record.levelno == logging.DEBUG:
            return "  " + record.getMessage().replace("\n", "\n  ")
        return (
            f"  log {record.levelname:<7} {fields['eventbus_name']} {fields['event_type']} "
            f"{fields['event_status']}: {fields['handlers']} handler(s), {fields['errors']} error(s) "
            f"{fields['error_types'] or ''}"
        )


async def tour(backend: str, db: Path) -> None:
    print(f"\n=== middlewares on {backend} ===")
    log = logging.getLogger(f"demo.{backend}")
    log.setLevel(logging.DEBUG)  # DEBUG: the logger middleware adds each root event's tree
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(FieldsFormatter())
    log.addHandler(handler)
    log.propagate = False

    with SQLiteHistoryMirrorMiddleware(db) as mirror:
        middlewares = [LoggerEventBusMiddleware(logger=log), mirror]
        async with EventBus("Shop", middlewares=middlewares) as shop:

            async def place(event: PlaceOrder) -> str:
                cents = 2_500 if event.order_id == "o-1" else 25_000
                charged = await shop.emit(ChargeCard(order_id=event.order_id, cents=cents))
                await charged.event_results_list(raise_if_any=False, raise_if_none=False)
                return "placed"

            shop.on(PlaceOrder, place)
            shop.on(ChargeCard, charge)
            await shop.emit(PlaceOrder(order_id="o-1"))
            await shop.emit(PlaceOrder(order_id="o-2"))
            await shop.wait_until_idle()

            print(f"\n  SQLite mirror, events of {shop.label} and their final status:")
            for row in await mirror.query_events(eventbus_name=shop.label):
                print(f"    {row['event_type']:<11} {row['event_status']:<10} on {row['eventbus_name']}")
            print("  failed handler runs:")
            for row in await mirror.query_results(status="error"):
                print(f"    {row['handler_name']}: {row['error_repr']}")
    log.removeHandler(handler)


def main() -> None:
    logging.getLogger("bubus_anyio").setLevel(logging.CRITICAL)  # the bus's own error logs: not shown here
    with tempfile.TemporaryDirectory(prefix="bubus-demo-") as tmp:
        db = Path(tmp) / "history.db"
        for backend in ("asyncio", "trio"):
            anyio.run(tour, backend, db, backend=backend)
        with sqlite3.connect(db) as conn:
            (rows,) = conn.execute("SELECT COUNT(*) FROM events_log").fetchone()
            (runs,) = conn.execute("SELECT COUNT(*) FROM event_results_log").fetchone()
        print(
            f"\n{db.name} after both runs: {rows} event rows, {runs} result rows (any SQLite client reads it)"
        )


if __name__ == "__main__":
    main()
