"""retry: what is retried, how long it waits, when it gives up.

These tests run on the kit's virtual clock (``asyncotp.testing.VirtualClock``,
autojump on): when nothing is ready to run, the loop jumps to its next timer
instead of sleeping, so a backoff of seconds takes no real time and every
elapsed time is exact. The backoff waits are the system under test; the
tests never sleep to synchronise.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import asyncotp
from asyncotp import (
    ActorError,
    Backoff,
    CallTimeout,
    GenServer,
    MailboxFull,
    NoProcess,
    ServerExited,
    Supervisor,
    call,
    cast,
)
from asyncotp.resilience import (
    DEFAULT_RETRY_ON,
    RetryAttempt,
    RetryDeadlineExceeded,
    RetryError,
    RetryPolicy,
    retry,
    retrying,
)

# Every test runs on the kit's virtual clock (autojump on), installed before the
# ``node`` fixture starts and removed after the node has stopped.
pytestmark = pytest.mark.usefixtures("virtual_clock")


def now() -> float:
    return asyncio.get_running_loop().time()


class Flaky:
    """Raises the given errors in turn, then returns ``"ok"``; counts calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.times: list[float] = []

    async def __call__(self) -> str:
        self.calls += 1
        self.times.append(now())
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


NO_JITTER = RetryPolicy(max_attempts=10, initial=0.1, multiplier=2.0, max_delay=10.0, jitter=0)


# -- what is retried --------------------------------------------------------------------


async def test_the_virtual_clock_moves_only_with_timers(node: asyncotp.Node) -> None:
    start = now()
    await asyncio.sleep(3600)
    assert now() - start == pytest.approx(3600)


async def test_a_call_that_succeeds_at_once_is_neither_retried_nor_delayed(
    node: asyncotp.Node,
) -> None:
    flaky = Flaky()
    start = now()
    assert await retry(flaky) == "ok"
    assert flaky.calls == 1
    assert now() == start


async def test_timeouts_server_exits_and_missing_names_are_retried_by_default(
    node: asyncotp.Node,
) -> None:
    flaky = Flaky(
        CallTimeout("slow"), ServerExited("gone"), NoProcess("nobody"), TimeoutError("plain")
    )
    assert await retry(flaky, policy=NO_JITTER) == "ok"
    assert flaky.calls == 5
    assert (TimeoutError, ServerExited, NoProcess) == DEFAULT_RETRY_ON


async def test_an_error_that_is_not_retryable_is_raised_at_once_unchanged(
    node: asyncotp.Node,
) -> None:
    error = ValueError("bad request")
    flaky = Flaky(error)
    with pytest.raises(ValueError, match="bad request") as caught:
        await retry(flaky, policy=NO_JITTER)
    assert caught.value is error
    assert flaky.calls == 1


async def test_mailbox_full_is_not_retried_even_when_a_broader_class_is_listed(
    node: asyncotp.Node,
) -> None:
    flaky = Flaky(MailboxFull("full"))
    policy = attrs.evolve(NO_JITTER, retry_on=(ActorError,))
    with pytest.raises(MailboxFull):
        await retry(flaky, policy=policy)
    assert flaky.calls == 1


async def test_mailbox_full_is_retried_when_asked_for_by_name(node: asyncotp.Node) -> None:
    flaky = Flaky(MailboxFull("full"), MailboxFull("full"))
    policy = attrs.evolve(NO_JITTER, retry_on=(MailboxFull,))
    assert await retry(flaky, policy=policy) == "ok"
    assert flaky.calls == 3


async def test_user_chosen_exceptions_are_retried(node: asyncotp.Node) -> None:
    flaky = Flaky(ConnectionError("refused"))
    assert await retry(flaky, policy=attrs.evolve(NO_JITTER, retry_on=ConnectionError)) == "ok"
    assert flaky.calls == 2


class Store(GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return ("stored", request)

    async def handle_cast(self, request: Any) -> None:
        raise RuntimeError("store crashed")


async def test_a_call_to_a_server_that_its_supervisor_restarts_later_succeeds_on_a_retry(
    node: asyncotp.Node,
) -> None:
    # The first call is queued behind the crash: the store ends before it
    # replies (ServerExited). Its supervisor restarts it 1 s later; meanwhile
    # its name is free (NoProcess). Retries at 0.4 s and 1.2 s bridge the gap.
    await Supervisor.start(
        [Store.child_spec(id="store", name="store", backoff=Backoff(initial=1.0, jitter=0))]
    )
    cast("store", "crash")
    attempts: list[RetryAttempt] = []
    policy = RetryPolicy(max_attempts=5, initial=0.4, multiplier=2.0, jitter=0)
    start = now()
    result = await retry(call, "store", "x", policy=policy, on_retry=attempts.append)
    assert result == ("stored", "x")
    assert [type(a.error) for a in attempts] == [ServerExited, NoProcess]
    assert now() - start == pytest.approx(0.4 + 0.8)


# -- how long it waits ---------------------------------------------------------------------


async def test_delays_grow_exponentially_up_to_the_cap(node: asyncotp.Node) -> None:
    flaky = Flaky(*(TimeoutError() for _ in range(5)))
    policy = RetryPolicy(max_attempts=6, initial=0.1, multiplier=2.0, max_delay=0.5, jitter=0)
    attempts: list[RetryAttempt] = []
    start = now()
    assert await retry(flaky, policy=policy, on_retry=attempts.append) == "ok"
    assert [a.delay for a in attempts] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    gaps = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
    assert gaps == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    assert now() - start == pytest.approx(1.7)


async def test_jitter_takes_a_random_share_from_the_injected_rng(node: asyncotp.Node) -> None:
    flaky = Flaky(*(TimeoutError() for _ in range(3)))
    policy = RetryPolicy(max_attempts=4, initial=1.0, multiplier=2.0, max_delay=10.0, jitter=0.5)
    attempts: list[RetryAttempt] = []
    await retry(flaky, policy=policy, rng=random.Random(7), on_retry=attempts.append)
    draws = random.Random(7)
    expected = [base * (1 - 0.5 * draws.random()) for base in (1.0, 2.0, 4.0)]
    assert [a.delay for a in attempts] == pytest.approx(expected)
    assert all(base / 2 <= d <= base for d, base in zip(expected, (1.0, 2.0, 4.0), strict=True))


@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 10),
    max_delay=st.floats(0, 60),
    jitter=st.floats(0, 1),
    retry_number=st.integers(0, 10_000),
    unit=st.floats(0, 1, exclude_max=True),
)
def test_a_delay_never_exceeds_the_cap_nor_falls_below_its_jitter_floor(
    initial: float,
    multiplier: float,
    max_delay: float,
    jitter: float,
    retry_number: int,
    unit: float,
) -> None:
    policy = RetryPolicy(initial=initial, multiplier=multiplier, max_delay=max_delay, jitter=jitter)
    delay = policy.delay(retry_number, unit)
    try:
        base = min(max_delay, initial * multiplier**retry_number)
    except OverflowError:  # the exact value is beyond any cap, or 0 when initial is 0
        base = max_delay if initial > 0 else 0.0
    assert 0 <= delay <= max_delay
    assert delay >= base * (1 - jitter) - 1e-9


# -- when it gives up ---------------------------------------------------------------------


async def test_running_out_of_attempts_raises_retry_error_with_the_last_error_as_cause(
    node: asyncotp.Node,
) -> None:
    last = CallTimeout("third")
    flaky = Flaky(CallTimeout("first"), CallTimeout("second"), last)
    with pytest.raises(RetryError) as caught:
        await retry(flaky, policy=attrs.evolve(NO_JITTER, max_attempts=3))
    assert flaky.calls == 3
    assert caught.value.attempts == 3
    assert caught.value.last_error is last
    assert caught.value.__cause__ is last
    assert not isinstance(caught.value, TimeoutError)
    assert "3 time(s)" in str(caught.value)


async def test_a_retry_gives_up_at_its_deadline_without_waiting_past_it(
    node: asyncotp.Node,
) -> None:
    # Attempts at 0.0, 0.3 and 0.9; the next wait (1.2 s) would end after the
    # deadline (1.0 s), so retry gives up at 0.9 instead of sleeping for nothing.
    flaky = Flaky(*(CallTimeout(f"attempt {n}") for n in range(10)))
    policy = RetryPolicy(max_attempts=None, initial=0.3, multiplier=2.0, jitter=0, deadline=1.0)
    start = now()
    with pytest.raises(RetryDeadlineExceeded) as caught:
        await retry(flaky, policy=policy)
    assert now() - start == pytest.approx(0.9)
    assert [t - start for t in flaky.times] == pytest.approx([0.0, 0.3, 0.9])
    error = caught.value
    assert isinstance(error, TimeoutError)
    assert isinstance(error, RetryError)
    assert error.attempts == 3
    assert error.deadline == 1.0
    assert str(error.last_error) == "attempt 2"
    assert "deadline of 1.0 s" in str(error)


async def test_the_deadline_cancels_an_attempt_that_is_still_running(
    node: asyncotp.Node,
) -> None:
    cancelled: list[bool] = []

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(True)

    start = now()
    with pytest.raises(RetryDeadlineExceeded) as caught:
        await retry(hangs, policy=RetryPolicy(deadline=2.5))
    assert now() - start == pytest.approx(2.5)
    assert cancelled == [True]
    assert caught.value.attempts == 1
    assert caught.value.last_error is None


async def test_an_attempt_timeout_cuts_a_slow_attempt_and_retries_it(
    node: asyncotp.Node,
) -> None:
    calls: list[float] = []

    async def slow_then_fast() -> str:
        calls.append(now())
        if len(calls) == 1:
            await asyncio.Event().wait()
        return "fast"

    policy = RetryPolicy(attempt_timeout=1.0, initial=0.25, jitter=0)
    start = now()
    assert await retry(slow_then_fast, policy=policy) == "fast"
    assert [t - start for t in calls] == pytest.approx([0.0, 1.25])


async def test_an_attempt_timeout_is_raised_when_timeouts_are_not_retried(
    node: asyncotp.Node,
) -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    policy = RetryPolicy(attempt_timeout=0.5, retry_on=(ConnectionError,))
    with pytest.raises(TimeoutError, match=r"attempt_timeout of 0\.5 s"):
        await retry(hangs, policy=policy)


async def test_cancelling_a_retry_stops_it_and_is_not_swallowed(node: asyncotp.Node) -> None:
    flaky = Flaky(*(CallTimeout(f"attempt {n}") for n in range(10)))
    second_failure = asyncio.Event()

    def on_retry(attempt: RetryAttempt) -> None:
        if attempt.attempt == 2:
            second_failure.set()

    retrying_task = asyncio.ensure_future(
        retry(
            flaky, policy=RetryPolicy(max_attempts=None, initial=5.0, jitter=0), on_retry=on_retry
        )
    )
    await second_failure.wait()  # retry is about to wait before its third attempt
    retrying_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await retrying_task
    assert flaky.calls == 2


async def test_giving_up_is_logged_with_structured_fields(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    flaky = Flaky(CallTimeout("a"), CallTimeout("b"))
    with pytest.raises(RetryError):
        await retry(flaky, policy=attrs.evolve(NO_JITTER, max_attempts=2))
    events = [(r.levelno, getattr(r, "event", None)) for r in caplog.records]
    assert events == [(logging.DEBUG, "retry"), (logging.INFO, "retry_gave_up")]
    gave_up = caplog.records[-1]
    assert gave_up.attempt == 2  # type: ignore[attr-defined]
    assert "Flaky" in gave_up.operation  # type: ignore[attr-defined]
    assert repr(gave_up.error) == "CallTimeout('b')"  # type: ignore[attr-defined]


# -- the API ------------------------------------------------------------------------------


async def test_a_coroutine_instead_of_a_function_is_refused_with_a_hint(
    node: asyncotp.Node,
) -> None:
    flaky = Flaky()
    with pytest.raises(TypeError, match=r"not a coroutine \(fetch\(url\)\)"):
        await retry(flaky())  # type: ignore[arg-type]
    assert flaky.calls == 0


async def test_arguments_are_passed_to_each_attempt(node: asyncotp.Node) -> None:
    seen: list[tuple[int, str]] = []

    async def add(n: int, label: str) -> int:
        seen.append((n, label))
        if len(seen) < 2:
            raise CallTimeout("again")
        return n + 1

    assert await retry(add, 41, "x", policy=NO_JITTER) == 42
    assert seen == [(41, "x"), (41, "x")]


async def test_the_retrying_decorator_retries_every_call(node: asyncotp.Node) -> None:
    failures = [CallTimeout("1"), CallTimeout("2")]

    @retrying(NO_JITTER)
    async def lookup(key: str, *, default: int = 0) -> tuple[str, int]:
        if failures:
            raise failures.pop()
        return key, default

    assert await lookup("a", default=3) == ("a", 3)
    assert lookup.__name__ == "lookup"
    with pytest.raises(TypeError, match="@retrying"):
        retrying(lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_attempts", 0, "max_attempts must be None or an int >= 1, not 0"),
        ("initial", -1, "initial must be a number >= 0, not -1"),
        ("multiplier", 0.5, "multiplier must be a number >= 1, not 0.5"),
        ("max_delay", float("nan"), "max_delay must be a number >= 0, not nan"),
        ("jitter", 1.5, r"jitter must be a fraction in \[0, 1\], not 1.5"),
        ("deadline", 0, "deadline must be None or seconds > 0, not 0"),
        ("attempt_timeout", "1", "attempt_timeout must be None or seconds > 0, not '1'"),
    ],
)
def test_policy_fields_are_validated_naming_the_field_and_the_value(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"RetryPolicy.{message}"):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


def test_retry_on_must_be_exception_classes() -> None:
    with pytest.raises(TypeError, match="retry_on must be an exception class"):
        RetryPolicy(retry_on=("TimeoutError",))  # type: ignore[arg-type]
    assert RetryPolicy(retry_on=KeyError).retry_on == (KeyError,)


def test_a_policy_repr_is_valid_python() -> None:
    policy = RetryPolicy(max_attempts=4, deadline=2.0, retry_on=(TimeoutError, MailboxFull))
    namespace = {
        "RetryPolicy": RetryPolicy,
        "TimeoutError": TimeoutError,
        "MailboxFull": MailboxFull,
    }
    assert eval(repr(policy), namespace) == policy
    single = RetryPolicy(retry_on=KeyError)
    assert eval(repr(single), {"RetryPolicy": RetryPolicy, "KeyError": KeyError}) == single
