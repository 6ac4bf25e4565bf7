"""CircuitBreaker: closed, open, half-open, and back.

The tests run on the kit's virtual clock (``asyncotp.testing.VirtualClock``,
autojump on: the loop jumps to its next timer when every task waits), so a
cool-down of 30 s takes no real time and elapsed times are exact. They
synchronise on the breaker's own ``BreakerStateChanged`` messages (forwarded
by a subscribed actor) and on call round trips, never on sleeps;
``virtual_clock.advance`` moves the clock on purpose, to let a failure leave
the window.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import asyncotp
from asyncotp import NoProcess, Supervisor, receive, spawn
from asyncotp.health import health_report
from asyncotp.resilience import (
    BreakerState,
    BreakerStateChanged,
    BreakerStats,
    CircuitBreaker,
    CircuitOpen,
)
from asyncotp.testing import VirtualClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


# Every test runs on the kit's virtual clock (autojump on), installed before the
# ``node`` fixture starts and removed after the node has stopped.
pytestmark = pytest.mark.usefixtures("virtual_clock")


def now() -> float:
    return asyncio.get_running_loop().time()


class Dependency:
    """A fake remote service: fails with ConnectionError while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self.gate: asyncio.Event | None = None  # when set, calls wait for it
        self.arrived: asyncio.Queue[str] = asyncio.Queue()  # the key of every call

    async def fetch(self, key: str) -> str:
        self.calls += 1
        self.arrived.put_nowait(key)
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionError(f"cannot reach the service for {key!r}")
        return f"value of {key}"


async def state_changes(breaker: Any) -> asyncio.Queue[BreakerStateChanged]:
    """A queue of the breaker's state changes, fed by a subscribed actor."""
    queue: asyncio.Queue[BreakerStateChanged] = asyncio.Queue()
    subscribed = asyncio.Event()

    async def forward() -> None:
        await CircuitBreaker.subscribe(breaker)
        subscribed.set()
        while True:
            queue.put_nowait(await receive())

    spawn(forward)
    await subscribed.wait()
    return queue


async def fail(breaker: Any, dep: Dependency, times: int) -> None:
    dep.down = True
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await CircuitBreaker.call(breaker, dep.fetch, "k")


async def opened_breaker(**settings: Any) -> tuple[Any, Dependency, asyncio.Queue[Any]]:
    """A breaker (threshold 2, cool-down 30 s) that has just opened."""
    settings = {"failure_threshold": 2, "cool_down": 30.0, **settings}
    breaker = await CircuitBreaker.start(name="svc", **settings)
    changes = await state_changes(breaker)
    dep = Dependency()
    await fail(breaker, dep, 2)
    assert (await changes.get()).state is OPEN
    return breaker, dep, changes


# -- closed ----------------------------------------------------------------------------


async def test_a_closed_breaker_runs_the_call_in_the_calling_task(node: asyncotp.Node) -> None:
    breaker = await CircuitBreaker.start()
    me = asyncio.current_task()
    ran_in: list[asyncio.Task[Any] | None] = []

    async def work(a: int, b: int) -> int:
        ran_in.append(asyncio.current_task())
        return a + b

    assert await CircuitBreaker.call(breaker, work, 2, 3) == 5
    assert ran_in == [me]
    stats = await CircuitBreaker.statistics(breaker)
    assert (stats.state, stats.calls, stats.failed) == (CLOSED, 1, 0)


async def test_a_slow_call_does_not_block_other_calls_through_the_breaker(
    node: asyncotp.Node,
) -> None:
    breaker = await CircuitBreaker.start()
    slow = Dependency()
    slow.gate = asyncio.Event()
    pending = asyncio.ensure_future(CircuitBreaker.call(breaker, slow.fetch, "slow"))
    assert await slow.arrived.get() == "slow"
    assert await CircuitBreaker.call(breaker, Dependency().fetch, "fast") == "value of fast"
    slow.gate.set()
    assert await pending == "value of slow"


async def test_failures_within_the_window_open_the_breaker_which_then_refuses_at_once(
    node: asyncotp.Node,
) -> None:
    breaker = await CircuitBreaker.start(
        name="payments", failure_threshold=3, window=10.0, cool_down=30.0
    )
    changes = await state_changes(breaker)
    dep = Dependency()
    await fail(breaker, dep, 3)  # each caller gets the real error
    change = await changes.get()
    assert change == BreakerStateChanged(breaker, "payments", CLOSED, OPEN)
    dep.down = False
    with pytest.raises(CircuitOpen) as refused:
        await CircuitBreaker.call(breaker, dep.fetch, "k")
    assert dep.calls == 3  # the refused call never reached the dependency
    error = refused.value
    assert (error.breaker, error.state) == (breaker, OPEN)
    assert error.retry_in == pytest.approx(30.0)
    assert "'payments' is open" in str(error)
    assert "fallback=" in str(error)
    stats = await CircuitBreaker.statistics(breaker)
    assert (stats.state, stats.rejected, stats.failed, stats.times_opened) == (OPEN, 1, 3, 1)
    assert stats.last_error is not None
    assert "ConnectionError" in stats.last_error


async def test_failures_spread_over_more_than_the_window_do_not_open_it(
    node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    breaker = await CircuitBreaker.start(failure_threshold=3, window=10.0)
    dep = Dependency()
    await fail(breaker, dep, 2)
    await virtual_clock.advance(10.0)  # both failures leave the window
    await fail(breaker, dep, 2)
    stats = await CircuitBreaker.statistics(breaker)
    assert (stats.state, stats.failures, stats.failed) == (CLOSED, 2, 4)


async def test_ignored_exceptions_and_those_outside_failure_on_do_not_count(
    node: asyncotp.Node,
) -> None:
    breaker = await CircuitBreaker.start(
        failure_threshold=1, failure_on=(ConnectionError, KeyError), ignore=ValueError
    )

    async def raises(error: Exception) -> None:
        raise error

    for error in (ValueError("refused, rightly"), RuntimeError("a bug, not an outage")):
        with pytest.raises(type(error)):
            await CircuitBreaker.call(breaker, raises, error)
    stats = await CircuitBreaker.statistics(breaker)
    assert (stats.state, stats.failures, stats.failed) == (CLOSED, 0, 0)


async def test_call_timeout_bounds_a_guarded_call_and_counts_as_a_failure(
    node: asyncotp.Node,
) -> None:
    breaker = await CircuitBreaker.start(failure_threshold=2, call_timeout=1.5)
    dep = Dependency()
    dep.gate = asyncio.Event()
    start = now()
    with pytest.raises(TimeoutError, match=r"call_timeout of 1\.5 s"):
        await CircuitBreaker.call(breaker, dep.fetch, "k")
    assert now() - start == pytest.approx(1.5)
    assert (await CircuitBreaker.statistics(breaker)).failures == 1


# -- open, half-open -----------------------------------------------------------------------


async def test_after_the_cool_down_it_turns_half_open_and_a_successful_trial_closes_it(
    node: asyncotp.Node,
) -> None:
    breaker, dep, changes = await opened_breaker(cool_down=30.0)
    opened_at = now()
    change = await changes.get()
    assert (change.previous, change.state) == (OPEN, HALF_OPEN)
    assert now() - opened_at == pytest.approx(30.0)
    dep.down = False
    assert await CircuitBreaker.call(breaker, dep.fetch, "k") == "value of k"
    assert (await changes.get()).state is CLOSED
    assert await CircuitBreaker.call(breaker, dep.fetch, "k") == "value of k"


async def test_a_failed_trial_opens_it_again_for_another_cool_down(node: asyncotp.Node) -> None:
    breaker, dep, changes = await opened_breaker(cool_down=30.0)
    assert (await changes.get()).state is HALF_OPEN
    with pytest.raises(ConnectionError):
        await CircuitBreaker.call(breaker, dep.fetch, "k")
    reopened_at = now()
    assert (await changes.get()).state is OPEN
    stats = await CircuitBreaker.statistics(breaker)
    assert stats.times_opened == 2
    assert stats.retry_in == pytest.approx(30.0)
    assert (await changes.get()).state is HALF_OPEN
    assert now() - reopened_at == pytest.approx(30.0)


async def test_half_open_lets_only_its_trial_calls_through_and_all_must_succeed(
    node: asyncotp.Node,
) -> None:
    breaker, dep, changes = await opened_breaker(trial_calls=2)
    assert (await changes.get()).state is HALF_OPEN
    dep.down = False
    dep.gate = asyncio.Event()
    dep.arrived = asyncio.Queue()
    trials = [
        asyncio.ensure_future(CircuitBreaker.call(breaker, dep.fetch, f"trial {n}"))
        for n in range(2)
    ]
    assert {await dep.arrived.get(), await dep.arrived.get()} == {"trial 0", "trial 1"}
    with pytest.raises(CircuitOpen, match="half-open") as refused:
        await CircuitBreaker.call(breaker, dep.fetch, "third")
    assert (refused.value.state, refused.value.retry_in) == (HALF_OPEN, None)
    dep.gate.set()
    assert await asyncio.gather(*trials) == ["value of trial 0", "value of trial 1"]
    assert (await changes.get()).state is CLOSED


async def test_a_cancelled_trial_call_frees_its_place(node: asyncotp.Node) -> None:
    breaker, dep, changes = await opened_breaker(trial_calls=1)
    assert (await changes.get()).state is HALF_OPEN
    dep.down = False
    dep.gate = asyncio.Event()
    dep.arrived = asyncio.Queue()
    trial = asyncio.ensure_future(CircuitBreaker.call(breaker, dep.fetch, "abandoned"))
    assert await dep.arrived.get() == "abandoned"
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    dep.gate = None
    assert await CircuitBreaker.call(breaker, dep.fetch, "next") == "value of next"
    assert (await changes.get()).state is CLOSED


async def test_an_outcome_from_before_the_last_state_change_is_not_counted(
    node: asyncotp.Node,
) -> None:
    breaker = await CircuitBreaker.start(failure_threshold=1, cool_down=5.0)
    changes = await state_changes(breaker)
    slow = Dependency()
    slow.gate = asyncio.Event()
    slow.down = True
    late = asyncio.ensure_future(CircuitBreaker.call(breaker, slow.fetch, "slow"))
    assert await slow.arrived.get() == "slow"
    await fail(breaker, Dependency(), 1)  # opens it
    assert (await changes.get()).state is OPEN
    assert (await changes.get()).state is HALF_OPEN
    slow.gate.set()  # the call let through while closed fails now, during half-open
    with pytest.raises(ConnectionError):
        await late
    assert (await CircuitBreaker.statistics(breaker)).state is HALF_OPEN
    assert await CircuitBreaker.call(breaker, Dependency().fetch, "k") == "value of k"
    assert (await changes.get()).state is CLOSED


# -- fallbacks, reset, errors -------------------------------------------------------------------


async def test_a_refused_call_returns_the_fallback_value_or_the_fallback_function_result(
    node: asyncotp.Node,
) -> None:
    breaker, dep, _ = await opened_breaker()
    calls = dep.calls
    assert await CircuitBreaker.call(breaker, dep.fetch, "k", fallback="cached") == "cached"
    seen: list[CircuitOpen] = []

    def from_cache(error: CircuitOpen) -> str:
        seen.append(error)
        return "from cache"

    async def from_replica(error: CircuitOpen) -> str:
        return "from replica"

    assert await CircuitBreaker.call(breaker, dep.fetch, "k", fallback_fn=from_cache) == (
        "from cache"
    )
    assert await CircuitBreaker.call(breaker, dep.fetch, "k", fallback_fn=from_replica) == (
        "from replica"
    )
    assert seen[0].state is OPEN
    assert dep.calls == calls
    assert (await CircuitBreaker.statistics(breaker)).rejected == 3


async def test_a_failing_call_raises_its_own_error_even_with_a_fallback(
    node: asyncotp.Node,
) -> None:
    breaker = await CircuitBreaker.start()
    dep = Dependency()
    dep.down = True
    with pytest.raises(ConnectionError):
        await CircuitBreaker.call(breaker, dep.fetch, "k", fallback="cached")


async def test_reset_closes_an_open_breaker_at_once(node: asyncotp.Node) -> None:
    breaker, dep, changes = await opened_breaker()
    await CircuitBreaker.reset(breaker)
    change = await changes.get()
    assert (change.previous, change.state) == (OPEN, CLOSED)
    dep.down = False
    assert await CircuitBreaker.call(breaker, dep.fetch, "k") == "value of k"


async def test_a_breaker_that_is_not_running_gives_no_process(node: asyncotp.Node) -> None:
    with pytest.raises(NoProcess):
        await CircuitBreaker.call("no_such_breaker", Dependency().fetch, "k")


async def test_a_coroutine_instead_of_a_function_is_refused_with_a_hint(
    node: asyncotp.Node,
) -> None:
    breaker = await CircuitBreaker.start()
    dep = Dependency()
    with pytest.raises(TypeError, match="not a coroutine"):
        await CircuitBreaker.call(breaker, dep.fetch("k"))  # type: ignore[arg-type]
    assert dep.calls == 0


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("failure_threshold", 0, "failure_threshold must be an int >= 1, not 0"),
        ("trial_calls", 1.5, "trial_calls must be an int >= 1, not 1.5"),
        ("window", 0, "window must be seconds > 0, not 0"),
        ("cool_down", -1, "cool_down must be seconds > 0, not -1"),
        ("call_timeout", "1", "call_timeout must be None or seconds > 0, not '1'"),
    ],
)
async def test_start_settings_are_validated_naming_the_setting_and_the_value(
    node: asyncotp.Node, setting: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"CircuitBreaker.start: {message}"):
        await CircuitBreaker.start(**{setting: value})  # type: ignore[arg-type]


async def test_failure_on_must_be_exception_classes(node: asyncotp.Node) -> None:
    with pytest.raises(TypeError, match="failure_on must be an exception class"):
        await CircuitBreaker.start(failure_on="ConnectionError")  # type: ignore[arg-type]


# -- seeing it ---------------------------------------------------------------------------------


async def test_state_changes_are_logged_with_structured_fields(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="asyncotp")
    breaker, dep, changes = await opened_breaker()
    assert (await changes.get()).state is HALF_OPEN
    dep.down = False
    await CircuitBreaker.call(breaker, dep.fetch, "k")
    assert (await changes.get()).state is CLOSED
    records = [r for r in caplog.records if getattr(r, "event", "").startswith("breaker_")]
    assert [(r.event, r.levelno) for r in records] == [  # type: ignore[attr-defined]
        ("breaker_opened", logging.WARNING),
        ("breaker_half_open", logging.INFO),
        ("breaker_closed", logging.INFO),
    ]
    opened = records[0]
    assert opened.breaker is breaker  # type: ignore[attr-defined]
    assert opened.breaker_name == "svc"  # type: ignore[attr-defined]
    assert (opened.previous_state, opened.state) == ("closed", "open")  # type: ignore[attr-defined]
    assert opened.failures == 2  # type: ignore[attr-defined]
    assert "ConnectionError" in opened.last_error  # type: ignore[attr-defined]
    assert "'svc' opened" in opened.getMessage()


async def test_breakers_appear_in_the_health_report_and_only_required_ones_affect_readiness(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start(
        [
            CircuitBreaker.child_spec(id="pay", name="payments", failure_threshold=1),
            CircuitBreaker.child_spec(id="db", name="database", failure_threshold=1, required=True),
        ]
    )
    report = await health_report(root)
    assert report.ready is True
    assert [b.state for b in report.breakers] == [CLOSED, CLOSED]

    await fail("payments", Dependency(), 1)
    report = await health_report(root)
    assert report.ready is True  # an optional dependency that is down: degraded, still ready
    check = next(c for c in report.checks if c.name == "payments")
    assert check.ok
    assert check.detail.startswith("open: 1 failures within 60.0 s")

    await fail("database", Dependency(), 1)
    report = await health_report(root)
    assert report.ready is False
    assert [c.name for c in report.failing] == ["database"]
    stats = {b.name: b for b in report.breakers}
    assert stats["database"].state is OPEN
    assert stats["database"].retry_in == pytest.approx(30.0)
    assert report.to_dict()["breakers"][1]["state"] == "open"


def test_breaker_stats_repr_shows_every_field() -> None:
    fields = [f.name for f in BreakerStats.__attrs_attrs__]
    assert fields[:3] == ["pid", "name", "state"]
    assert repr(BreakerState.HALF_OPEN) == "BreakerState.HALF_OPEN"
