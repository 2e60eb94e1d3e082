"""retry on bus handlers: attempts inside one handler call, the last error on the row, timeouts named."""

from __future__ import annotations

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandlerTimeoutError,
    RetryTimeoutError,
    retry,
)

pytestmark = pytest.mark.anyio


class RBJob(BaseEvent[str]):
    name: str = "job"


class TestRetryOnHandlers:
    async def test_a_flaky_handler_succeeds_within_its_attempts(self) -> None:
        attempts: list[int] = []

        @retry(max_attempts=3)
        async def flaky(event: RBJob) -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("not yet")
            return f"done:{event.name}"

        async with EventBus("RBFlaky") as bus:
            bus.on(RBJob, flaky)
            assert await bus.emit(RBJob()).event_result() == "done:job"
        assert len(attempts) == 3

    async def test_exhausted_retries_leave_the_last_error_on_the_row(self) -> None:
        calls: list[int] = []

        @retry(max_attempts=2)
        async def always_fails(event: RBJob) -> str:
            calls.append(1)
            raise ValueError(f"attempt {len(calls)}")

        async with EventBus("RBExhausted") as bus:
            entry = bus.on(RBJob, always_fails)
            event = await bus.emit(RBJob())
        row = event.event_results[entry.id]
        assert row.status == "error"
        assert isinstance(row.error, ValueError) and str(row.error) == "attempt 2"
        with pytest.raises(ValueError, match="attempt 2"):
            await event.event_result()

    async def test_a_retry_timeout_surfaces_as_a_handler_timeout_caused_by_it(self) -> None:
        @retry(max_attempts=2, timeout=0.01)
        async def too_slow(event: RBJob) -> str:
            await anyio.sleep(1)
            return "late"

        with anyio.fail_after(5):
            async with EventBus("RBTimeout") as bus:
                entry = bus.on(RBJob, too_slow)
                event = await bus.emit(RBJob())
        error = event.event_results[entry.id].error
        assert isinstance(error, EventHandlerTimeoutError)
        assert isinstance(error.__cause__, RetryTimeoutError)
        assert error.__cause__.attempt == 2

    async def test_a_global_semaphore_serialises_a_handler_across_buses(self) -> None:
        running = 0
        most = 0
        gate = anyio.Event()

        @retry(semaphore_limit=1, semaphore_name="rb-shared")
        async def exclusive(event: RBJob) -> str:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await gate.wait()
            running -= 1
            return event.name

        with anyio.fail_after(5):
            async with EventBus("RBSemA") as bus_a, EventBus("RBSemB") as bus_b:
                bus_a.on(RBJob, exclusive)
                bus_b.on(RBJob, exclusive)
                first = bus_a.emit(RBJob(name="a"))
                second = bus_b.emit(RBJob(name="b"))
                await anyio.wait_all_tasks_blocked()
                assert running == 1
                gate.set()
                assert await first.event_result() == "a"
                assert await second.event_result() == "b"
        assert most == 1
