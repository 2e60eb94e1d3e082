"""Event and handler concurrency modes, `first` completion and option precedence (asyncio and trio).

Overlap is measured with counters of handlers running at once; handlers block on an ``anyio.Event`` gate and
``anyio.wait_all_tasks_blocked()`` tells when everything that can start has started. No sleeps.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import anyio
import pytest

from bubus_anyio import (
    BaseEvent,
    EventBus,
    EventHandlerAbortedError,
    EventHandlerCancelledError,
)

pytestmark = pytest.mark.anyio


class CCWork(BaseEvent[Any]):
    n: int = 0


class CCOther(BaseEvent[Any]):
    n: int = 0


class CCChild(BaseEvent[Any]):
    n: int = 0


class CCParallelByClass(BaseEvent[Any]):
    event_handler_concurrency = "parallel"


class Probe:
    """Counts handlers running at once (overall, per bus, per event) and records the maxima."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.running = 0
        self.max_running = 0
        self.per_bus: Counter[str] = Counter()
        self.max_per_bus: Counter[str] = Counter()
        self.events_per_bus: dict[str, Counter[str]] = {}
        self.max_events_per_bus: Counter[str] = Counter()
        self.per_event: Counter[str] = Counter()
        self.max_per_event: Counter[str] = Counter()
        self.calls: list[tuple[str, str]] = []

    def handler(self, bus_name: str, tag: str) -> Any:
        async def handle(event: BaseEvent[Any]) -> None:
            eid = event.event_id
            self.calls.append((bus_name, tag))
            self.running += 1
            self.per_bus[bus_name] += 1
            self.per_event[eid] += 1
            ev_counter = self.events_per_bus.setdefault(bus_name, Counter())
            ev_counter[eid] += 1
            self.max_running = max(self.max_running, self.running)
            self.max_per_bus[bus_name] = max(self.max_per_bus[bus_name], self.per_bus[bus_name])
            self.max_per_event[eid] = max(self.max_per_event[eid], self.per_event[eid])
            active_events = sum(1 for v in ev_counter.values() if v > 0)
            self.max_events_per_bus[bus_name] = max(self.max_events_per_bus[bus_name], active_events)
            try:
                await self.gate.wait()
            finally:
                self.running -= 1
                self.per_bus[bus_name] -= 1
                self.per_event[eid] -= 1
                ev_counter[eid] -= 1

        handle.__name__ = f"probe_{bus_name}_{tag}"
        return handle


EVENT_MODES = ["global-serial", "bus-serial", "parallel"]
HANDLER_MODES = ["serial", "parallel"]
COMPLETION_MODES = ["all", "first"]
EVENTS_AT_ONCE = {"global-serial": 1, "bus-serial": 2, "parallel": 4}  # 2 buses x 2 events each
EVENTS_PER_BUS_AT_ONCE = {"global-serial": 1, "bus-serial": 1, "parallel": 2}
HANDLERS_AT_ONCE = {"serial": 1, "parallel": 2}


@pytest.mark.parametrize(
    ("event_mode", "handler_mode", "completion"),
    list(itertools.product(EVENT_MODES, HANDLER_MODES, COMPLETION_MODES)),
)
async def test_matrix_observed_overlap(event_mode: str, handler_mode: str, completion: str) -> None:
    """Two buses, two handlers each, two events each: the overlap matches the modes exactly."""
    probe = Probe()
    with anyio.fail_after(5):
        async with (
            EventBus(
                "CCMatrixA",
                event_concurrency=event_mode,  # type: ignore[arg-type]
                event_handler_concurrency=handler_mode,  # type: ignore[arg-type]
                event_handler_completion=completion,  # type: ignore[arg-type]
            ) as a,
            EventBus(
                "CCMatrixB",
                event_concurrency=event_mode,  # type: ignore[arg-type]
                event_handler_concurrency=handler_mode,  # type: ignore[arg-type]
                event_handler_completion=completion,  # type: ignore[arg-type]
            ) as b,
        ):
            for bus in (a, b):
                bus.on(CCWork, probe.handler(bus.name, "h1"))
                bus.on(CCWork, probe.handler(bus.name, "h2"))
            events = [a.emit(CCWork(n=1)), a.emit(CCWork(n=2)), b.emit(CCWork(n=3)), b.emit(CCWork(n=4))]
            await anyio.wait_all_tasks_blocked()
            blocked_running = probe.running
            probe.gate.set()
            for event in events:
                await event
    expected_events = EVENTS_AT_ONCE[event_mode]
    expected_handlers = HANDLERS_AT_ONCE[handler_mode]
    assert blocked_running == expected_events * expected_handlers
    assert probe.max_running == expected_events * expected_handlers
    for name in (a.name, b.name):
        assert probe.max_events_per_bus[name] == EVENTS_PER_BUS_AT_ONCE[event_mode]
    for event in events:
        assert probe.max_per_event[event.event_id] == expected_handlers
        assert event.event_status == "completed"
        # Handlers return None, so `first` never resolves early: every handler ran to completion.
        assert [r.status for r in event.event_results.values()] == ["completed", "completed"]
        # Defaults are resolved at processing time and never written onto the event.
        assert event.event_concurrency is None
        assert event.event_handler_concurrency is None
        assert event.event_handler_completion is None
    assert len(probe.calls) == 8


async def test_global_serial_one_event_at_a_time_across_buses() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with (
            EventBus("CCGlobalA", event_concurrency="global-serial") as a,
            EventBus("CCGlobalB", event_concurrency="global-serial") as b,
            EventBus("CCGlobalC", event_concurrency="global-serial") as c,
        ):
            for bus in (a, b, c):
                bus.on(CCWork, probe.handler(bus.name, "h"))
            events = [bus.emit(CCWork(n=i)) for i, bus in enumerate((a, b, c, a, b, c))]
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 1
            probe.gate.set()
            for event in events:
                await event
    assert probe.max_running == 1
    assert len(probe.calls) == 6


async def test_bus_serial_is_default_and_buses_overlap() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with EventBus("CCDefaultA") as a, EventBus("CCDefaultB") as b:
            assert a.event_concurrency == "bus-serial"
            assert a.event_handler_concurrency == "serial"
            assert a.event_handler_completion == "all"
            for bus in (a, b):
                bus.on(CCWork, probe.handler(bus.name, "h"))
            events = [a.emit(CCWork()), a.emit(CCWork()), b.emit(CCWork()), b.emit(CCWork())]
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 2
            assert probe.per_bus == Counter({a.name: 1, b.name: 1})
            probe.gate.set()
            for event in events:
                await event
    assert probe.max_per_bus[a.name] == 1
    assert probe.max_per_bus[b.name] == 1
    assert probe.max_running == 2


async def test_bus_serial_fifo_order() -> None:
    order: list[int] = []
    with anyio.fail_after(5):
        async with EventBus("CCFifo") as bus:

            async def handler(event: CCWork) -> None:
                await anyio.lowlevel.checkpoint()
                order.append(event.n)

            bus.on(CCWork, handler)
            events = [bus.emit(CCWork(n=i)) for i in range(10)]
            for event in events:
                await event
    assert order == list(range(10))


async def test_parallel_events_overlap_on_one_bus() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with EventBus("CCParallel", event_concurrency="parallel") as bus:
            bus.on(CCWork, probe.handler(bus.name, "h"))
            events = [bus.emit(CCWork(n=i)) for i in range(5)]
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 5
            probe.gate.set()
            for event in events:
                await event
    assert probe.max_events_per_bus[bus.name] == 5


async def test_handler_serial_runs_handlers_in_registration_order() -> None:
    probe = Probe()
    order: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("CCHandlerSerial") as bus:
            for tag in ("h1", "h2", "h3"):
                inner = probe.handler(bus.name, tag)

                async def handler(event: CCWork, inner: Any = inner, tag: str = tag) -> None:
                    order.append(tag)
                    await inner(event)

                handler.__name__ = f"ordered_{tag}"
                bus.on(CCWork, handler)
            event = bus.emit(CCWork())
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 1
            assert order == ["h1"]
            probe.gate.set()
            await event
    assert order == ["h1", "h2", "h3"]
    assert probe.max_per_event[event.event_id] == 1


async def test_handler_parallel_starts_all_handlers_together() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with EventBus("CCHandlerParallel", event_handler_concurrency="parallel") as bus:
            for tag in ("h1", "h2", "h3"):
                bus.on(CCWork, probe.handler(bus.name, tag))
            event = bus.emit(CCWork())
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 3
            probe.gate.set()
            await event
    assert probe.max_per_event[event.event_id] == 3


# ------------------------------------------------------------------------------------------ statistics
async def test_statistics_while_blocked_bus_serial() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with EventBus("CCStatsSerial") as bus:
            bus.on(CCWork, probe.handler(bus.name, "h"))
            events = [bus.emit(CCWork(n=i)) for i in range(3)]
            await anyio.wait_all_tasks_blocked()
            stats = bus.statistics()
            assert stats.is_running
            assert stats.limiter_borrowed_tokens == 1
            assert stats.queued == 2
            assert stats.in_flight == 1
            assert stats.handlers == 1
            probe.gate.set()
            for event in events:
                await event
            await bus.wait_until_idle()
            stats = bus.statistics()
            assert (stats.queued, stats.in_flight, stats.limiter_borrowed_tokens) == (0, 0, 0)


async def test_statistics_while_blocked_parallel() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with EventBus("CCStatsParallel", event_concurrency="parallel") as bus:
            bus.on(CCWork, probe.handler(bus.name, "h"))
            events = [bus.emit(CCWork(n=i)) for i in range(3)]
            await anyio.wait_all_tasks_blocked()
            stats = bus.statistics()
            assert stats.limiter_borrowed_tokens == 0
            assert stats.queued == 0
            assert stats.in_flight == 3
            probe.gate.set()
            for event in events:
                await event


async def test_statistics_while_blocked_global_serial() -> None:
    """The bus waiting for the shared global slot still counts its event as queued (not yet claimed)."""
    probe = Probe()
    with anyio.fail_after(5):
        async with (
            EventBus("CCStatsGlobalA", event_concurrency="global-serial") as a,
            EventBus("CCStatsGlobalB", event_concurrency="global-serial") as b,
        ):
            a.on(CCWork, probe.handler(a.name, "h"))
            b.on(CCWork, probe.handler(b.name, "h"))
            events = [a.emit(CCWork()), b.emit(CCWork())]
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 1
            running_bus, waiting_bus = (a, b) if probe.per_bus[a.name] else (b, a)
            assert (running_bus.statistics().queued, running_bus.statistics().in_flight) == (0, 1)
            assert (waiting_bus.statistics().queued, waiting_bus.statistics().in_flight) == (1, 0)
            probe.gate.set()
            for event in events:
                await event


async def test_statistics_queued_before_any_processing() -> None:
    with anyio.fail_after(5):
        async with EventBus("CCStatsQueued") as bus:
            bus.on(CCWork, lambda e: None)
            events = [bus.emit(CCWork(n=i)) for i in range(4)]
            stats = bus.statistics()  # no checkpoint since the emits
            assert stats.queued == 4
            assert stats.in_flight == 0
            for event in events:
                await event
            assert bus.statistics().queued == 0


# ------------------------------------------------------------------------------------------ precedence
async def test_precedence_event_field_beats_bus_default() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with EventBus("CCPrecParallelBus", event_handler_concurrency="parallel") as bus:
            for tag in ("h1", "h2"):
                bus.on(CCWork, probe.handler(bus.name, tag))
            serial_event = bus.emit(CCWork(event_handler_concurrency="serial"))
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 1
            probe.gate.set()
            await serial_event
    assert probe.max_per_event[serial_event.event_id] == 1
    assert serial_event.event_handler_concurrency == "serial"


async def test_precedence_bus_default_beats_builtin_and_is_not_written() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with (
            EventBus("CCPrecBuiltin") as plain,
            EventBus("CCPrecBusDefault", event_handler_concurrency="parallel") as par,
        ):
            for bus in (plain, par):
                bus.on(CCWork, probe.handler(bus.name, "h1"))
                bus.on(CCWork, probe.handler(bus.name, "h2"))
            e_plain = plain.emit(CCWork())
            e_par = par.emit(CCWork())
            await anyio.wait_all_tasks_blocked()
            assert probe.per_bus == Counter({plain.name: 1, par.name: 2})
            probe.gate.set()
            await e_plain
            await e_par
    assert probe.max_per_event[e_plain.event_id] == 1
    assert probe.max_per_event[e_par.event_id] == 2
    for event in (e_plain, e_par):
        assert event.event_handler_concurrency is None
        assert event.event_concurrency is None
        assert event.event_handler_completion is None


async def test_precedence_class_level_default_counts_as_event_field() -> None:
    probe = Probe()
    with anyio.fail_after(5):
        async with EventBus("CCPrecClass") as bus:  # built-in default: serial handlers
            bus.on(CCParallelByClass, probe.handler(bus.name, "h1"))
            bus.on(CCParallelByClass, probe.handler(bus.name, "h2"))
            event = bus.emit(CCParallelByClass())
            await anyio.wait_all_tasks_blocked()
            assert probe.running == 2
            probe.gate.set()
            await event


async def test_precedence_event_concurrency_field() -> None:
    """event_concurrency='parallel' on a bus-serial bus overlaps; 'bus-serial' on a parallel bus does not."""
    probe = Probe()
    with anyio.fail_after(5):
        async with (
            EventBus("CCPrecEvSerial") as serial_bus,
            EventBus("CCPrecEvParallel", event_concurrency="parallel") as parallel_bus,
        ):
            serial_bus.on(CCWork, probe.handler(serial_bus.name, "h"))
            parallel_bus.on(CCWork, probe.handler(parallel_bus.name, "h"))
            events = [
                serial_bus.emit(CCWork(event_concurrency="parallel")),
                serial_bus.emit(CCWork(event_concurrency="parallel")),
                parallel_bus.emit(CCWork(event_concurrency="bus-serial")),
                parallel_bus.emit(CCWork(event_concurrency="bus-serial")),
            ]
            await anyio.wait_all_tasks_blocked()
            assert probe.per_bus == Counter({serial_bus.name: 2, parallel_bus.name: 1})
            probe.gate.set()
            for event in events:
                await event
    assert probe.max_events_per_bus[serial_bus.name] == 2
    assert probe.max_events_per_bus[parallel_bus.name] == 1


async def test_precedence_resolved_per_processing_bus_when_forwarded() -> None:
    """The same event object obeys each bus's own default: serial on A, parallel on B."""
    probe = Probe()
    with anyio.fail_after(5):
        async with (
            EventBus("CCPrecFwdA") as a,
            EventBus("CCPrecFwdB", event_handler_concurrency="parallel") as b,
        ):
            a.on(CCWork, probe.handler(a.name, "h1"))
            a.on(CCWork, probe.handler(a.name, "h2"))
            a.on("*", b.emit)
            b.on(CCWork, probe.handler(b.name, "h1"))
            b.on(CCWork, probe.handler(b.name, "h2"))
            event = a.emit(CCWork())
            probe.gate.set()
            await event
    assert probe.max_per_bus[a.name] == 1
    assert probe.max_per_bus[b.name] == 2
    assert event.event_handler_concurrency is None


async def test_precedence_completion_event_field_beats_bus() -> None:
    ran: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("CCPrecCompletion", event_handler_completion="all") as bus:

            def handler_a(event: CCWork) -> str:
                ran.append("a")
                return "a"

            def handler_b(event: CCWork) -> str:
                ran.append("b")
                return "b"

            bus.on(CCWork, handler_a)
            bus.on(CCWork, handler_b)
            first_event = bus.emit(CCWork(event_handler_completion="first"))
            all_event = bus.emit(CCWork())
            await first_event
            await all_event
    assert ran == ["a", "a", "b"]
    assert await first_event.first() == "a"
    assert await all_event.event_results_list() == ["a", "b"]


# ------------------------------------------------------------------------------------------ first completion
@pytest.mark.parametrize("falsy", [0, "", False])
async def test_first_serial_falsy_value_wins_and_later_handlers_cancelled(falsy: Any) -> None:
    ran: list[str] = []

    def returns_none(event: CCWork) -> None:
        ran.append("none")

    def returns_falsy(event: CCWork) -> Any:
        ran.append("falsy")
        return falsy

    def later(event: CCWork) -> str:
        ran.append("later")
        return "later"

    with anyio.fail_after(5):
        async with EventBus("CCFirstSerial", event_handler_completion="first") as bus:
            h_none = bus.on(CCWork, returns_none)
            h_falsy = bus.on(CCWork, returns_falsy)
            h_later = bus.on(CCWork, later)
            event = await bus.emit(CCWork())
    assert ran == ["none", "falsy"]
    rows = event.event_results
    assert rows[h_none.id].status == "completed" and rows[h_none.id].result is None
    assert rows[h_falsy.id].status == "completed" and rows[h_falsy.id].result is falsy
    assert rows[h_later.id].status == "error"
    assert isinstance(rows[h_later.id].error, EventHandlerCancelledError)
    value = await event.first()
    assert value == falsy and type(value) is type(falsy)


async def test_first_returned_event_never_wins() -> None:
    ran: list[str] = []

    def returns_event(event: CCWork) -> BaseEvent[Any]:
        ran.append("event")
        return CCOther(n=1)

    def returns_value(event: CCWork) -> str:
        ran.append("value")
        return "winner"

    def after(event: CCWork) -> str:
        ran.append("after")
        return "after"

    with anyio.fail_after(5):
        async with EventBus("CCFirstEvent") as bus:
            bus.on(CCWork, returns_event)
            bus.on(CCWork, returns_value)
            bus.on(CCWork, after)
            event = bus.emit(CCWork())
            assert await event.first() == "winner"
    assert ran == ["event", "value"]


async def test_first_no_winner_runs_every_handler() -> None:
    ran: list[str] = []
    with anyio.fail_after(5):
        async with EventBus("CCFirstNone", event_handler_completion="first") as bus:

            def handler_a(event: CCWork) -> None:
                ran.append("a")

            def handler_b(event: CCWork) -> None:
                ran.append("b")

            bus.on(CCWork, handler_a)
            bus.on(CCWork, handler_b)
            event = await bus.emit(CCWork())
    assert ran == ["a", "b"]
    assert all(r.status == "completed" for r in event.event_results.values())
    assert await event.first() is None


async def test_first_parallel_losers_aborted_and_their_children_cancelled() -> None:
    loser_started = anyio.Event()
    child_ran: list[int] = []
    loser_finished: list[bool] = []
    holder: dict[str, BaseEvent[Any]] = {}

    with anyio.fail_after(5):
        async with EventBus(
            "CCFirstParallel", event_handler_concurrency="parallel", event_handler_completion="first"
        ) as bus:

            async def loser(event: CCWork) -> str:
                holder["child"] = bus.emit(CCChild(n=1))
                loser_started.set()
                await anyio.sleep_forever()
                loser_finished.append(True)
                return "loser"

            async def winner(event: CCWork) -> str:
                await loser_started.wait()
                return "winner"

            bus.on(CCChild, lambda e: child_ran.append(e.n))
            h_loser = bus.on(CCWork, loser)
            h_winner = bus.on(CCWork, winner)
            event = bus.emit(CCWork())
            assert await event.first() == "winner"
            await bus.wait_until_idle()
    child = holder["child"]
    rows = event.event_results
    assert rows[h_winner.id].status == "completed"
    assert isinstance(rows[h_loser.id].error, EventHandlerAbortedError)
    assert not loser_finished
    assert child_ran == []
    assert child.event_status == "completed"
    assert child.event_results, "the cancelled child has a row saying why"
    assert all(isinstance(r.error, EventHandlerCancelledError) for r in child.event_results.values())


async def test_first_parallel_falsy_winner() -> None:
    with anyio.fail_after(5):
        async with EventBus(
            "CCFirstParFalsy", event_handler_concurrency="parallel", event_handler_completion="first"
        ) as bus:
            release = anyio.Event()
            slow_started = anyio.Event()

            async def slow(event: CCWork) -> str:
                slow_started.set()
                await release.wait()
                return "slow"

            async def falsy(event: CCWork) -> int:
                await slow_started.wait()
                return 0

            h_slow = bus.on(CCWork, slow)
            bus.on(CCWork, falsy)
            event = bus.emit(CCWork())
            assert await event.first() == 0
            assert isinstance(event.event_results[h_slow.id].error, EventHandlerAbortedError)


async def test_first_parallel_loser_not_yet_started_is_cancelled() -> None:
    """The winner resolves before the other parallel handler took its first step: that handler must not
    start at all (its row says Cancelled), or at worst be aborted at once; it must never block the event."""
    late_ran: list[bool] = []
    with anyio.fail_after(2):
        async with EventBus(
            "CCFirstParLate", event_handler_concurrency="parallel", event_handler_completion="first"
        ) as bus:

            async def instant_winner(event: CCWork) -> str:
                return "win"

            async def late(event: CCWork) -> str:
                late_ran.append(True)
                await anyio.sleep_forever()
                return "late"

            bus.on(CCWork, instant_winner)
            h_late = bus.on(CCWork, late)
            event = bus.emit(CCWork())
            assert await event.first() == "win"
    error = event.event_results[h_late.id].error
    assert isinstance(error, (EventHandlerCancelledError, EventHandlerAbortedError))
    if isinstance(error, EventHandlerCancelledError):
        assert late_ran == []
