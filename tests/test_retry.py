"""``@retry``: attempts and backoff, matchers, timeouts, semaphores by scope, re-entrancy, cancellation."""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from bubus_anyio import BaseEvent, EventBus
from bubus_anyio._events._errors import EventBusError
from bubus_anyio.retry import RetryTimeoutError, SemaphoreTimeoutError, retry

# Not `import bubus_anyio.retry as ...`: the package re-exports the *function* `retry` under that name.
retry_module = importlib.import_module("bubus_anyio.retry")
AsyncCall = Callable[[], Coroutine[Any, Any, Any]]
REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_retry_worker.py"


# -- helpers ---------------------------------------------------------------------------------------------


class FlakyError(Exception):
    """Raised by the test functions' failing attempts."""


class OtherError(Exception):
    """An error no matcher in these tests retries."""


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the decorator's sleeps with recorders: the list collects every backoff delay."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(retry_module, "_sleep", fake_sleep)
    monkeypatch.setattr(retry_module, "_sleep_sync", recorded.append)
    return recorded


class Flaky:
    """A callable failing ``failures`` times (with ``error``), then returning ``"ok"``; counts calls."""

    def __init__(self, failures: int, error: Callable[[int], Exception] = lambda n: FlakyError(f"fail {n}")):
        self.failures = failures
        self.error = error
        self.calls = 0

    def step(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(self.calls)
        return "ok"


class Gauge:
    """Counts how many calls run at once, per key, while they wait on a shared gate."""

    def __init__(self) -> None:
        self.current: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.gate = anyio.Event()
        self.entered = anyio.Event()

    async def hold(self, key: str = "") -> None:
        self.entered.set()
        self.current[key] = self.current.get(key, 0) + 1
        self.peak[key] = max(self.peak.get(key, 0), self.current[key])
        try:
            await self.gate.wait()
        finally:
            self.current[key] -= 1


async def run_blocked(gauge: Gauge, calls: Sequence[AsyncCall]) -> dict[str, int]:
    """Start every call, wait until all are blocked, return who is running then, and let them finish."""
    running: dict[str, int] = {}
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(call)
            await anyio.wait_all_tasks_blocked()
            running = dict(gauge.current)
            gauge.gate.set()
    return running


# -- attempts and backoff --------------------------------------------------------------------------------


class TestAttempts:
    @pytest.mark.anyio
    async def test_retries_until_success(self, delays: list[float]) -> None:
        flaky = Flaky(failures=2)

        @retry(max_attempts=3)
        async def call() -> str:
            return flaky.step()

        assert await call() == "ok"
        assert flaky.calls == 3
        assert delays == [0.0, 0.0]

    @pytest.mark.anyio
    async def test_backoff_delays_and_last_error(self, delays: list[float]) -> None:
        flaky = Flaky(failures=10)

        @retry(max_attempts=4, retry_after=0.5, retry_backoff_factor=2.0)
        async def call() -> str:
            return flaky.step()

        with pytest.raises(FlakyError, match="fail 4"):
            await call()
        assert flaky.calls == 4
        assert delays == [0.5, 1.0, 2.0]

    @pytest.mark.anyio
    @pytest.mark.parametrize("max_attempts", [1, 0, -3])
    async def test_single_attempt_by_default_and_clamped(
        self, max_attempts: int, delays: list[float]
    ) -> None:
        flaky = Flaky(failures=1)

        @retry(max_attempts=max_attempts)
        async def call() -> str:
            return flaky.step()

        with pytest.raises(FlakyError):
            await call()
        assert flaky.calls == 1
        assert delays == []

    @pytest.mark.anyio
    async def test_logs_each_failed_attempt(
        self, delays: list[float], caplog: pytest.LogCaptureFixture
    ) -> None:
        flaky = Flaky(failures=10)

        @retry(max_attempts=3)
        async def call() -> str:
            return flaky.step()

        with caplog.at_level(logging.WARNING, logger="bubus_anyio.retry"), pytest.raises(FlakyError):
            await call()
        records = [r for r in caplog.records if r.name == "bubus_anyio.retry"]
        assert [r.levelno for r in records] == [logging.WARNING] * 3
        assert "attempt 3/3" in records[-1].getMessage()

    @pytest.mark.anyio
    async def test_real_sleep_between_attempts(self) -> None:
        flaky = Flaky(failures=1)

        @retry(max_attempts=2, retry_after=0.001)
        async def call() -> str:
            return flaky.step()

        assert await call() == "ok"

    @pytest.mark.anyio
    async def test_preserves_metadata_and_passes_arguments(self) -> None:
        @retry(max_attempts=2)
        async def add(a: int, b: int = 0) -> int:
            """Adds."""
            return a + b

        assert add.__name__ == "add"
        assert add.__doc__ == "Adds."
        assert inspect.iscoroutinefunction(add)
        assert await add(1, b=2) == 3

    @pytest.mark.anyio
    async def test_huge_attempt_count_does_not_overflow_the_delay(self, delays: list[float]) -> None:
        flaky = Flaky(failures=10_000)

        @retry(max_attempts=1200, retry_after=0.0, retry_backoff_factor=2)
        async def zero_delay() -> str:
            return flaky.step()

        @retry(max_attempts=1200, retry_after=1.0, retry_backoff_factor=2)
        def growing() -> str:
            return flaky.step()

        with pytest.raises(FlakyError, match=r"fail 1200$"):
            await zero_delay()
        assert set(delays) == {0.0}
        delays.clear()
        with pytest.raises(FlakyError, match=r"fail 2400$"):
            growing()
        assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
        assert max(delays) == delays[-1] == 3600.0  # capped at an hour

    def test_backoff_cap_never_shortens_retry_after(self, delays: list[float]) -> None:
        flaky = Flaky(failures=10)

        @retry(max_attempts=3, retry_after=7200.0, retry_backoff_factor=2)
        def call() -> str:
            return flaky.step()

        with pytest.raises(FlakyError):
            call()
        assert delays == [7200.0, 7200.0]

    def test_rejects_invalid_options(self) -> None:
        with pytest.raises(ValueError, match="semaphore_scope"):
            retry(semaphore_scope="galaxy")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            retry(timeout=0)
        with pytest.raises(ValueError):
            retry(retry_after=-1)
        with pytest.raises(TypeError, match="retry_on_errors"):
            retry(retry_on_errors=[42])  # type: ignore[list-item]


# -- retry_on_errors -------------------------------------------------------------------------------------


class TestMatchers:
    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "matcher",
        [
            [FlakyError],
            [Exception],
            FlakyError,
            ["FlakyError"],
            "Exception",
            [re.compile(r"^FlakyError: fail \d")],
            [OtherError, re.compile("fail 1")],
        ],
        ids=["class", "base-class", "single-class", "name", "base-name", "regex", "any-of"],
    )
    async def test_matching_errors_are_retried(self, matcher: Any, delays: list[float]) -> None:
        flaky = Flaky(failures=1)

        @retry(max_attempts=2, retry_on_errors=matcher)
        async def call() -> str:
            return flaky.step()

        assert await call() == "ok"
        assert flaky.calls == 2

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "matcher",
        [[OtherError], ["OtherError"], [re.compile("^OtherError")], [re.compile("nothing")]],
        ids=["class", "name", "regex", "regex-message"],
    )
    async def test_non_matching_error_reraises_at_once(self, matcher: Any, delays: list[float]) -> None:
        flaky = Flaky(failures=1)

        @retry(max_attempts=5, retry_on_errors=matcher)
        async def call() -> str:
            return flaky.step()

        with pytest.raises(FlakyError, match="fail 1"):
            await call()
        assert flaky.calls == 1
        assert delays == []

    @pytest.mark.anyio
    async def test_name_matcher_sees_base_classes(self, delays: list[float]) -> None:
        flaky = Flaky(failures=1, error=lambda n: ConnectionResetError(f"reset {n}"))

        @retry(max_attempts=2, retry_on_errors=["OSError"])
        async def call() -> str:
            return flaky.step()

        assert await call() == "ok"


# -- per-attempt timeout ---------------------------------------------------------------------------------


class TestTimeout:
    @pytest.mark.anyio
    async def test_attempt_timeout_raises_retry_timeout_error(self, delays: list[float]) -> None:
        calls = 0

        @retry(max_attempts=2, timeout=0.01)
        async def hang() -> None:
            nonlocal calls
            calls += 1
            await anyio.sleep_forever()

        with pytest.raises(RetryTimeoutError) as info:
            await hang()
        error = info.value
        assert calls == 2
        assert isinstance(error, TimeoutError)
        assert isinstance(error, EventBusError)
        assert (error.timeout, error.attempt, error.max_attempts) == (0.01, 2, 2)
        assert "hang" in str(error)
        assert error.function_name.endswith("hang")

    @pytest.mark.anyio
    async def test_timed_out_attempt_is_retried(self, delays: list[float]) -> None:
        calls = 0

        @retry(max_attempts=2, timeout=0.01, retry_on_errors=[TimeoutError])
        async def slow_then_fast() -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                await anyio.sleep_forever()
            return "ok"

        assert await slow_then_fast() == "ok"

    @pytest.mark.anyio
    async def test_timeout_not_retried_when_filter_excludes_it(self, delays: list[float]) -> None:
        calls = 0

        @retry(max_attempts=3, timeout=0.01, retry_on_errors=[ValueError])
        async def hang() -> None:
            nonlocal calls
            calls += 1
            await anyio.sleep_forever()

        with pytest.raises(RetryTimeoutError):
            await hang()
        assert calls == 1


# -- cancellation ----------------------------------------------------------------------------------------


class TestCancellation:
    @pytest.mark.anyio
    async def test_cancellation_during_attempt_is_not_retried(self, caplog: pytest.LogCaptureFixture) -> None:
        calls = 0
        started = anyio.Event()

        @retry(max_attempts=5, timeout=10)
        async def hang() -> None:
            nonlocal calls
            calls += 1
            started.set()
            await anyio.sleep_forever()

        with caplog.at_level(logging.WARNING, logger="bubus_anyio.retry"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(hang)
                await started.wait()
                tg.cancel_scope.cancel()
        assert calls == 1
        assert not [r for r in caplog.records if r.name == "bubus_anyio.retry"]

    @pytest.mark.anyio
    async def test_cancellation_raised_inside_attempt_propagates(self) -> None:
        calls = 0

        @retry(max_attempts=5)
        async def checkpoint() -> None:
            nonlocal calls
            calls += 1
            await anyio.lowlevel.checkpoint()

        with anyio.CancelScope() as outer:
            outer.cancel()
            await checkpoint()
        assert outer.cancelled_caught
        assert calls == 1

    @pytest.mark.anyio
    async def test_cancellation_during_backoff_delay(self) -> None:
        flaky = Flaky(failures=10)

        @retry(max_attempts=5, retry_after=60)
        async def call() -> str:
            return flaky.step()

        with anyio.move_on_after(0.01) as scope:
            await call()
        assert scope.cancelled_caught
        assert flaky.calls == 1


# -- semaphores ------------------------------------------------------------------------------------------


class TestSemaphoreScopes:
    @pytest.mark.anyio
    async def test_global_limits_concurrency(self) -> None:
        gauge = Gauge()

        @retry(semaphore_limit=2)
        async def work() -> None:
            await gauge.hold()

        running = await run_blocked(gauge, [work] * 5)
        assert running == {"": 2}
        assert gauge.peak == {"": 2}

    @pytest.mark.anyio
    async def test_global_name_is_shared_between_functions(self) -> None:
        gauge = Gauge()

        @retry(semaphore_limit=1, semaphore_name="shared")
        async def first() -> None:
            await gauge.hold()

        @retry(semaphore_limit=1, semaphore_name="shared")
        async def second() -> None:
            await gauge.hold()

        assert await run_blocked(gauge, [first, second, first]) == {"": 1}

    @pytest.mark.anyio
    async def test_callable_name_picks_semaphore_per_call(self) -> None:
        gauge = Gauge()

        def name_for(user: str) -> str:
            return f"user-{user}"

        @retry(semaphore_limit=1, semaphore_name=name_for)
        async def work(user: str) -> None:
            await gauge.hold(user)

        calls = [lambda u=u: work(u) for u in ("a", "a", "b", "b", "b")]
        assert await run_blocked(gauge, calls) == {"a": 1, "b": 1}
        assert gauge.peak == {"a": 1, "b": 1}

    @pytest.mark.anyio
    async def test_class_scope_limits_per_class(self) -> None:
        gauge = Gauge()

        class Base:
            @retry(semaphore_limit=1, semaphore_scope="class")
            async def work(self) -> None:
                await gauge.hold(type(self).__name__)

        class Left(Base): ...

        class Right(Base): ...

        objs = [Left(), Left(), Right(), Right(), Left()]
        assert await run_blocked(gauge, [o.work for o in objs]) == {"Left": 1, "Right": 1}
        assert gauge.peak == {"Left": 1, "Right": 1}

    @pytest.mark.anyio
    async def test_class_scope_under_classmethod(self) -> None:
        gauge = Gauge()

        class Service:
            @classmethod
            @retry(semaphore_limit=1, semaphore_scope="class")
            async def work(cls) -> None:
                await gauge.hold(cls.__name__)

        class Sub(Service): ...

        calls = [Service.work, Service.work, Sub.work, Sub.work]
        assert await run_blocked(gauge, calls) == {"Service": 1, "Sub": 1}

    @pytest.mark.anyio
    async def test_instance_scope_limits_per_instance(self) -> None:
        gauge = Gauge()

        class Worker:
            def __init__(self, name: str) -> None:
                self.name = name

            @retry(semaphore_limit=1, semaphore_scope="instance")
            async def work(self) -> None:
                await gauge.hold(self.name)

        one, two = Worker("one"), Worker("two")
        calls = [one.work, one.work, two.work, two.work, one.work]
        assert await run_blocked(gauge, calls) == {"one": 1, "two": 1}
        assert gauge.peak == {"one": 1, "two": 1}

    @pytest.mark.anyio
    async def test_staticmethod_without_args_uses_global(self) -> None:
        gauge = Gauge()

        class Tools:
            @staticmethod
            @retry(semaphore_limit=1, semaphore_scope="instance")
            async def work() -> None:
                await gauge.hold()

        assert await run_blocked(gauge, [Tools.work, Tools().work]) == {"": 1}

    @pytest.mark.anyio
    async def test_slot_held_across_attempts_and_delays(self, monkeypatch: pytest.MonkeyPatch) -> None:
        gauge = Gauge()
        in_delay, resume = anyio.Event(), anyio.Event()
        flaky = Flaky(failures=1)

        async def paused_sleep(seconds: float) -> None:
            in_delay.set()
            await resume.wait()

        monkeypatch.setattr(retry_module, "_sleep", paused_sleep)

        @retry(semaphore_limit=1, semaphore_name="held", max_attempts=2)
        async def flaky_holder() -> None:
            flaky.step()
            await gauge.hold("flaky")

        @retry(semaphore_limit=1, semaphore_name="held")
        async def other() -> None:
            await gauge.hold("other")

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(flaky_holder)
                await in_delay.wait()
                tg.start_soon(other)
                await anyio.wait_all_tasks_blocked()
                assert gauge.current == {}  # `other` waits while flaky_holder sleeps between attempts
                resume.set()
                await anyio.wait_all_tasks_blocked()
                assert gauge.current == {"flaky": 1}
                gauge.gate.set()
        assert gauge.peak == {"flaky": 1, "other": 1}

    @pytest.mark.anyio
    async def test_registry_is_emptied_after_use(self) -> None:
        @retry(semaphore_limit=1, semaphore_scope="instance")
        async def work(_owner: object) -> None:
            await anyio.lowlevel.checkpoint()

        for _ in range(3):
            await work(object())
        assert retry_module._current_run_registry()._entries == {}  # pyright: ignore[reportPrivateUsage]


class TestReentrancy:
    @pytest.mark.anyio
    async def test_recursive_call_runs_in_parent_slot(self) -> None:
        @retry(semaphore_limit=1)
        async def countdown(n: int) -> int:
            return 0 if n == 0 else 1 + await countdown(n - 1)

        with anyio.fail_after(5):
            assert await countdown(4) == 4

    @pytest.mark.anyio
    async def test_nested_functions_sharing_a_name(self) -> None:
        @retry(semaphore_limit=1, semaphore_name="db")
        async def inner() -> str:
            return "inner"

        @retry(semaphore_limit=1, semaphore_name="db")
        async def outer() -> str:
            return await inner()

        with anyio.fail_after(5):
            assert await outer() == "inner"

    @pytest.mark.anyio
    async def test_other_tasks_still_wait(self) -> None:
        gauge = Gauge()

        @retry(semaphore_limit=1)
        async def work(depth: int) -> None:
            if depth:
                await work(depth - 1)
            else:
                await gauge.hold()

        calls = [lambda: work(2), lambda: work(2)]
        assert await run_blocked(gauge, calls) == {"": 1}

    @pytest.mark.anyio
    async def test_task_outliving_the_call_keeps_the_slot(self) -> None:
        """A task started (into an outer task group) inside the call runs in the call's slot; when the call
        returns first, the slot stays taken until the task ends, so an unrelated call still waits."""
        gauge = Gauge()
        name = f"outlive-{uuid.uuid4().hex}"

        @retry(semaphore_limit=1, semaphore_name=name)
        async def work(key: str) -> None:
            await gauge.hold(key)

        @retry(semaphore_limit=1, semaphore_name=name)
        async def parent(tg: anyio.abc.TaskGroup) -> None:
            tg.start_soon(work, "detached")
            await gauge.entered.wait()  # the detached task runs (in this call's slot); now return

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                await parent(tg)
                tg.start_soon(work, "independent")
                await anyio.wait_all_tasks_blocked()
                assert gauge.current == {"detached": 1}
                gauge.gate.set()
        assert gauge.peak == {"detached": 1, "independent": 1}

    def test_context_copied_during_the_call_does_not_claim_the_slot_later(self) -> None:
        """A context copied inside the call (as an event bus does at emit time) inherits the slot only while
        the slot is held: run after the call, it must wait for a slot like any other caller."""
        name = f"stale-{uuid.uuid4().hex}"
        holding, release = threading.Event(), threading.Event()

        @retry(semaphore_limit=1, semaphore_name=name)
        def capture() -> contextvars.Context:
            return contextvars.copy_context()

        @retry(semaphore_limit=1, semaphore_name=name)
        def occupy() -> None:
            holding.set()
            release.wait(5)

        @retry(semaphore_limit=1, semaphore_name=name, semaphore_timeout=0.01, semaphore_lax=False)
        def strict() -> None: ...

        captured = capture()
        thread = threading.Thread(target=occupy)
        thread.start()
        try:
            assert holding.wait(5)
            with pytest.raises(SemaphoreTimeoutError):
                captured.run(strict)
        finally:
            release.set()
            thread.join(5)

    @pytest.mark.anyio
    async def test_child_event_handler_does_not_exceed_the_limit(self) -> None:
        """A handler emits a child event and returns; the child's handler (same semaphore) and the next
        parent's handler must not hold the semaphore at the same time."""

        class Parent(BaseEvent[None]):
            index: int

        class Child(BaseEvent[None]):
            pass

        gauge = Gauge()
        name = f"bus-{uuid.uuid4().hex}"

        async with EventBus("RetryChildSlot", event_concurrency="parallel") as bus:

            @retry(semaphore_limit=1, semaphore_name=name)
            async def on_parent(event: Parent) -> None:
                if event.index == 0:
                    bus.emit(Child())  # fire and forget, then give the slot back
                else:
                    await gauge.hold("parent")

            @retry(semaphore_limit=1, semaphore_name=name)
            async def on_child(_event: Child) -> None:
                await gauge.hold("child")

            bus.on(Parent, on_parent)
            bus.on(Child, on_child)
            with anyio.fail_after(5):
                bus.emit(Parent(index=0))
                await gauge.entered.wait()
                await anyio.wait_all_tasks_blocked()
                bus.emit(Parent(index=1))
                await anyio.wait_all_tasks_blocked()
                assert gauge.current == {"child": 1}
                gauge.gate.set()
        assert gauge.peak == {"child": 1, "parent": 1}


class TestSemaphoreTimeout:
    @staticmethod
    async def _contend(call: AsyncCall, holder: AsyncCall) -> Any:
        """Run ``call`` while ``holder`` (which never returns) occupies the semaphore; return its result,
        or the :class:`Exception` it raised."""
        outcome: Any = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await anyio.wait_all_tasks_blocked()
            try:
                outcome = await call()
            except Exception as error:
                outcome = error
            tg.cancel_scope.cancel()
        return outcome

    @pytest.mark.anyio
    async def test_lax_proceeds_without_slot(self, caplog: pytest.LogCaptureFixture) -> None:
        name = f"lax-{uuid.uuid4()}"

        @retry(semaphore_limit=1, semaphore_name=name)
        async def holder() -> None:
            await anyio.sleep_forever()

        @retry(semaphore_limit=1, semaphore_name=name, semaphore_timeout=0.01)
        async def lax() -> str:
            return "ran"

        with caplog.at_level(logging.WARNING, logger="bubus_anyio.retry"):
            assert await self._contend(lax, holder) == "ran"
        assert any("proceeding without it" in r.getMessage() for r in caplog.records)

    @pytest.mark.anyio
    async def test_strict_raises_semaphore_timeout_error(self) -> None:
        ran = False

        @retry(semaphore_limit=1, semaphore_name="strict")
        async def holder() -> None:
            await anyio.sleep_forever()

        @retry(semaphore_limit=1, semaphore_name="strict", semaphore_timeout=0.01, semaphore_lax=False)
        async def strict() -> None:
            nonlocal ran
            ran = True

        error = await self._contend(strict, holder)
        assert isinstance(error, SemaphoreTimeoutError)
        assert isinstance(error, TimeoutError)
        assert isinstance(error, EventBusError)
        assert (error.semaphore_name, error.semaphore_limit, error.timeout) == ("strict", 1, 0.01)
        assert not ran

    @pytest.mark.anyio
    @pytest.mark.parametrize(("limit", "expected"), [(1, 0.01), (3, 0.02)])
    async def test_default_wait_derives_from_timeout(self, limit: int, expected: float) -> None:
        gauge = Gauge()

        @retry(semaphore_limit=limit, semaphore_name="derived", timeout=0.01, semaphore_lax=False)
        async def strict() -> None: ...

        @retry(semaphore_limit=limit, semaphore_name="derived")
        async def holder() -> None:
            await gauge.hold()

        async with anyio.create_task_group() as tg:
            for _ in range(limit):
                tg.start_soon(holder)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(SemaphoreTimeoutError) as info:
                await strict()
            assert info.value.timeout == pytest.approx(expected)
            gauge.gate.set()


class TestRunIsolation:
    def test_asyncio_run_then_trio_run(self) -> None:
        gauge_peaks: list[int] = []

        @retry(semaphore_limit=1, semaphore_name="isolation")
        async def work() -> None:
            await anyio.lowlevel.checkpoint()

        async def main() -> None:
            gauge = Gauge()

            @retry(semaphore_limit=1, semaphore_name="isolation")
            async def held() -> None:
                await gauge.hold()

            await run_blocked(gauge, [held, held, work])
            gauge_peaks.append(gauge.peak[""])

        anyio.run(main, backend="asyncio")
        anyio.run(main, backend="trio")
        anyio.run(main, backend="asyncio")
        assert gauge_peaks == [1, 1, 1]

    def test_concurrent_runs_never_share_a_primitive(self) -> None:
        """An asyncio run holding the global slot does not block (or break) a trio run in another thread."""
        holding = threading.Event()
        release = threading.Event()

        @retry(semaphore_limit=1, semaphore_name="cross-run")
        async def occupy() -> None:
            holding.set()
            await anyio.to_thread.run_sync(release.wait)

        @retry(semaphore_limit=1, semaphore_name="cross-run", semaphore_timeout=5, semaphore_lax=False)
        async def quick() -> str:
            return "free"

        thread = threading.Thread(target=anyio.run, args=(occupy,), kwargs={"backend": "asyncio"})
        thread.start()
        try:
            assert holding.wait(5)
            assert anyio.run(quick, backend="trio") == "free"
        finally:
            release.set()
            thread.join(5)


# -- multiprocess ----------------------------------------------------------------------------------------


@pytest.fixture
def mp_name() -> Iterator[str]:
    """A fresh ``multiprocess`` semaphore name; its lock files are removed after the test."""
    name = f"test-retry-{uuid.uuid4().hex}"
    yield name
    for path in retry_module.SEMAPHORE_DIRECTORY.glob(f"{name}*.lock"):
        path.unlink(missing_ok=True)


class TestMultiprocess:
    @pytest.mark.anyio
    async def test_processes_never_overlap(self, tmp_path: Path, anyio_backend: str, mp_name: str) -> None:
        log = tmp_path / "holders.log"
        name = mp_name
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        command = [sys.executable, str(WORKER), anyio_backend, name, str(log), "0.15"]

        async def spawn() -> None:
            await anyio.run_process(command, env=env, cwd=REPO_ROOT, check=True)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(spawn)

        lines = log.read_text().split()
        pairs = [lines[i : i + 4] for i in range(0, len(lines), 4)]
        assert len(pairs) == 3
        for kind_start, pid_start, kind_end, pid_end in pairs:
            assert (kind_start, kind_end) == ("start", "end")
            assert pid_start == pid_end
        assert len({p[1] for p in pairs}) == 3

    @pytest.mark.anyio
    async def test_tasks_in_one_process_share_the_lock_files(self, mp_name: str) -> None:
        gauge = Gauge()

        @retry(semaphore_limit=1, semaphore_name=mp_name, semaphore_scope="multiprocess")
        async def work() -> None:
            await gauge.hold()

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(work)
            with anyio.fail_after(5):
                await gauge.entered.wait()
            await anyio.sleep(0.1)  # the others poll meanwhile; none may get in
            assert gauge.current == {"": 1}
            gauge.gate.set()
        assert gauge.peak == {"": 1}

    @pytest.mark.anyio
    async def test_strict_timeout_and_reentrancy(self, mp_name: str) -> None:
        name = mp_name
        gauge = Gauge()

        @retry(semaphore_limit=1, semaphore_name=name, semaphore_scope="multiprocess")
        async def recurse(n: int) -> int:
            return n if n == 0 else await recurse(n - 1) + 1

        @retry(semaphore_limit=1, semaphore_name=name, semaphore_scope="multiprocess")
        async def holder() -> None:
            await gauge.hold()

        @retry(
            semaphore_limit=1,
            semaphore_name=name,
            semaphore_scope="multiprocess",
            semaphore_timeout=0.05,
            semaphore_lax=False,
        )
        async def strict() -> None: ...

        with anyio.fail_after(5):
            assert await recurse(3) == 3
            async with anyio.create_task_group() as tg:
                tg.start_soon(holder)
                await gauge.entered.wait()
                with pytest.raises(SemaphoreTimeoutError) as info:
                    await strict()
                assert info.value.semaphore_name == name
                gauge.gate.set()

    @pytest.mark.anyio
    async def test_names_that_sanitise_alike_do_not_share_lock_files(self, mp_name: str) -> None:
        gauge = Gauge()

        @retry(semaphore_limit=1, semaphore_name=f"{mp_name}/a b", semaphore_scope="multiprocess")
        async def holder() -> None:
            await gauge.hold()

        @retry(
            semaphore_limit=1,
            semaphore_name=f"{mp_name}_a_b",
            semaphore_scope="multiprocess",
            semaphore_timeout=0.05,
            semaphore_lax=False,
        )
        async def other() -> str:
            return "free"

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(holder)
                await gauge.entered.wait()
                assert await other() == "free"
                gauge.gate.set()

    def test_lock_file_stem_is_readable_hashed_and_bounded(self) -> None:
        stem = retry_module._file_stem  # pyright: ignore[reportPrivateUsage]
        assert re.fullmatch(r"a_b_c-[0-9a-f]{12}", stem("a/b c"))
        assert stem("a/b c") != stem("a_b_c")
        assert len(stem("x" * 1000)) <= 80


# -- sync functions and methods --------------------------------------------------------------------------


class TestSync:
    def test_sync_function_is_retried_and_stays_sync(self, delays: list[float]) -> None:
        flaky = Flaky(failures=2)

        @retry(max_attempts=3, retry_after=0.25, retry_backoff_factor=3)
        def call(suffix: str) -> str:
            return flaky.step() + suffix

        assert not inspect.iscoroutinefunction(call)
        assert call("!") == "ok!"
        assert delays == [0.25, 0.75]

    def test_sync_non_matching_and_last_error(self, delays: list[float]) -> None:
        flaky = Flaky(failures=10)

        @retry(max_attempts=3, retry_on_errors=[OtherError])
        def unmatched() -> str:
            return flaky.step()

        @retry(max_attempts=3)
        def exhausted() -> str:
            return flaky.step()

        with pytest.raises(FlakyError, match="fail 1"):
            unmatched()
        with pytest.raises(FlakyError, match="fail 4"):
            exhausted()
        assert flaky.calls == 4

    def test_sync_semaphore_limits_threads_and_is_reentrant(self) -> None:
        lock = threading.Lock()
        current = peak = 0
        barrier = threading.Barrier(2, timeout=5)  # two slot holders meet; a third would have to wait

        @retry(semaphore_limit=2, semaphore_name=f"threads-{uuid.uuid4().hex}")
        def work(depth: int) -> None:
            nonlocal current, peak
            if depth:
                return work(depth - 1)
            with lock:
                current += 1
                peak = max(peak, current)
            try:
                barrier.wait()
            finally:
                with lock:
                    current -= 1

        threads = [threading.Thread(target=work, args=(2,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert peak == 2

    def test_sync_strict_semaphore_timeout(self) -> None:
        name = f"sync-strict-{uuid.uuid4().hex}"
        holding, release = threading.Event(), threading.Event()

        @retry(semaphore_limit=1, semaphore_name=name)
        def occupy() -> None:
            holding.set()
            release.wait(5)

        @retry(semaphore_limit=1, semaphore_name=name, semaphore_timeout=0.01, semaphore_lax=False)
        def strict() -> None: ...

        thread = threading.Thread(target=occupy)
        thread.start()
        try:
            assert holding.wait(5)
            with pytest.raises(SemaphoreTimeoutError):
                strict()
        finally:
            release.set()
            thread.join(5)


class TestAsyncCallables:
    """Async callables that are not coroutine functions get the async path (retries, timeout, semaphore)."""

    @staticmethod
    def _wrapped(flaky: Flaky) -> Callable[[], Any]:
        async def fetch() -> str:
            await anyio.lowlevel.checkpoint()
            return flaky.step()

        @functools.wraps(fetch)
        def passthrough() -> Any:  # a typical sync decorator around an async def
            return fetch()

        return passthrough

    @staticmethod
    def _partial(flaky: Flaky) -> Callable[[], Any]:
        async def fetch(suffix: str) -> str:
            await anyio.lowlevel.checkpoint()
            return flaky.step() + suffix

        return functools.partial(fetch, "")

    @staticmethod
    def _callable_object(flaky: Flaky) -> Callable[[], Any]:
        class Fetch:
            async def __call__(self) -> str:
                await anyio.lowlevel.checkpoint()
                return flaky.step()

        return Fetch()

    @pytest.mark.anyio
    @pytest.mark.parametrize("build", ["_wrapped", "_partial", "_callable_object"])
    async def test_async_callables_are_retried(self, build: str, delays: list[float]) -> None:
        flaky = Flaky(failures=2)
        decorated = retry(max_attempts=3)(getattr(self, build)(flaky))
        assert inspect.iscoroutinefunction(decorated)
        assert await decorated() == "ok"
        assert flaky.calls == 3

    @pytest.mark.anyio
    async def test_timeout_applies_through_a_sync_wrapper(self) -> None:
        async def slow() -> None:
            await anyio.sleep_forever()

        @functools.wraps(slow)
        def passthrough() -> Any:
            return slow()

        decorated = retry(timeout=0.01)(passthrough)
        with anyio.fail_after(5), pytest.raises(RetryTimeoutError):
            await decorated()

    def test_sync_call_returning_an_awaitable_is_an_error(self) -> None:
        async def fetch() -> str:
            return "never"

        made: list[Coroutine[Any, Any, str]] = []

        def hidden_async() -> Coroutine[Any, Any, str]:  # nothing marks it as async
            coroutine = fetch()
            made.append(coroutine)
            return coroutine

        decorated = retry(max_attempts=3)(hidden_async)
        with pytest.raises(TypeError, match="it is async"):
            _ = decorated()  # typed as returning a coroutine, but the call itself raises
        assert len(made) == 1  # not retried
        # closed, so no "coroutine was never awaited" warning
        assert inspect.getcoroutinestate(made[0]) == inspect.CORO_CLOSED


class TestTyping:
    def test_signatures_are_preserved_for_type_checkers(self) -> None:
        @retry(max_attempts=2)
        async def fetch(x: int, *, y: str = "") -> str:
            return y * x

        @retry()
        def compute(x: int) -> float:
            return x / 2

        as_async: Callable[[int], Coroutine[Any, Any, str]] = fetch
        as_sync: Callable[[int], float] = compute
        assert inspect.iscoroutinefunction(as_async)
        assert not inspect.iscoroutinefunction(as_sync)
        assert fetch.__wrapped__.__name__ == "fetch"  # type: ignore[attr-defined]


class TestMethods:
    @pytest.mark.anyio
    async def test_method_staticmethod_classmethod(self, delays: list[float]) -> None:
        class Client:
            calls = 0

            def __init__(self) -> None:
                self.flaky = Flaky(failures=1)

            @retry(max_attempts=2)
            async def method(self, x: int) -> str:
                return self.flaky.step() + str(x)

            @staticmethod
            @retry(max_attempts=2)
            async def static(flaky: Flaky) -> str:
                return flaky.step()

            @classmethod
            @retry(max_attempts=2)
            async def klass(cls) -> str:
                cls.calls += 1
                if cls.calls == 1:
                    raise FlakyError("first")
                return cls.__name__

        client = Client()
        assert await client.method(1) == "ok1"
        assert await Client.static(Flaky(failures=1)) == "ok"
        assert await client.static(Flaky(failures=1)) == "ok"
        assert await Client.klass() == "Client"
        assert client.flaky.calls == 2
