"""A tour of bubus-anyio, run on asyncio and then on trio: typed events, sync and async handlers, results,
a child event processed ahead of the queue, forwarding between buses, a timeout, find(), and the event tree.

Run it with ``make demo`` (or ``python examples/demo.py``).
"""

from __future__ import annotations

import anyio

from bubus_anyio import BaseEvent, EventBus, EventHandlerTimeoutError


class CreateUser(BaseEvent[str]):
    """Create a user; handlers return the new user's id."""

    email: str


class SendWelcome(BaseEvent[bool]):
    user_id: str


class AuditLog(BaseEvent[None]):
    message: str


class SlowReport(BaseEvent[int]):
    pass


async def tour(backend: str) -> None:
    print(f"\n=== bubus-anyio on {backend} ===")
    async with EventBus("App") as app, EventBus("Audit") as audit:
        audit_lines: list[str] = []

        # Forward every event from App to Audit; Audit keeps its own handlers.
        app.on("*", audit.emit)
        audit.on(AuditLog, lambda event: audit_lines.append(event.message))

        async def create_user(event: CreateUser) -> str:
            user_id = f"user-{event.email.split('@')[0]}"
            # A child event, awaited inside the handler: processed now, ahead of anything queued.
            welcome = app.emit(SendWelcome(user_id=user_id))
            sent = await welcome.event_result()
            app.emit(AuditLog(message=f"created {user_id} (welcome sent: {sent})"))
            return user_id

        app.on(CreateUser, create_user)
        app.on(SendWelcome, lambda event: True)  # sync handlers work too

        async def slow_report(event: SlowReport) -> int:
            await anyio.sleep(1)
            return 42

        app.on(SlowReport, slow_report, handler_timeout=0.05)

        event = app.emit(CreateUser(email="ada@example.com"))
        user_id = await event.event_result()
        print(f"CreateUser -> {user_id!r}; event path {event.event_path}")

        report = await app.emit(SlowReport())
        row = next(iter(report.event_results.values()))
        assert isinstance(row.error, EventHandlerTimeoutError)
        print(f"SlowReport -> {type(row.error).__name__}: {row.error}")

        await app.wait_until_idle()
        await audit.wait_until_idle()
        found = await app.find(SendWelcome, user_id=user_id)
        print(f"find(SendWelcome, user_id={user_id!r}) -> {found.event_label if found else None}")
        print(f"audit log: {audit_lines}")
        print("\nEvent tree of App:")
        print(app.log_tree())
        print(f"\n{app.statistics()}")


def main() -> None:
    for backend in ("asyncio", "trio"):
        anyio.run(tour, backend, backend=backend)


if __name__ == "__main__":
    main()
