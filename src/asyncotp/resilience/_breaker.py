"""Circuit breaker: an actor that guards a dependency.

When a dependency (a database, a payment API) fails, calling it again at
full rate makes things worse: callers wait for timeouts, queues grow, and the
dependency gets no room to recover. A circuit breaker counts failures and,
past a threshold, refuses calls at once for a while (it "opens"), then lets a
few trial calls through to see whether the dependency is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar, TypeVarTuple

import attrs

from .._core import (
    ActorError,
    BreakerState,
    Caller,
    CircuitOpen,
    Down,
    MailboxFull,
    MonitorRef,
    Pid,
    cast,
    demonitor,
    monitor,
    now,
    registered_name,
    safe_repr,
    self_pid,
    send,
    send_after,
    telemetry,
    validate,
)
from .._core import call as gen_call
from ..health._readiness import ReadinessServer, add_reporter

logger = logging.getLogger("asyncotp")

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@attrs.frozen
class BreakerStats:
    """A snapshot of a circuit breaker, from ``CircuitBreaker.statistics``.

    ``failures`` counts the failures inside the current window (while
    closed); ``retry_in`` is the time left before a trial call is let
    through (while open). ``calls`` (let through), ``rejected``, ``failed``
    and ``times_opened`` count since the breaker started; ``last_error`` is
    the repr of the last failure.
    """

    pid: Pid
    name: str | None
    state: BreakerState
    failures: int
    failure_threshold: int
    window: float
    cool_down: float
    trial_calls: int
    retry_in: float | None
    calls: int
    rejected: int
    failed: int
    times_opened: int
    last_error: str | None
    required: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = attrs.asdict(self, recurse=False)
        out["pid"] = self.pid.number
        out["state"] = self.state.value
        return out


@attrs.frozen
class BreakerStateChanged:
    """Sent to the subscribers of a breaker (``CircuitBreaker.subscribe``)
    each time its state changes."""

    breaker: Pid
    name: str | None
    previous: BreakerState
    state: BreakerState


# -- messages between the client functions and the breaker -------------------------


_claims = itertools.count(1)
"""Numbers for the permission requests, unique in the process (so across
restarts of a breaker)."""


class _Request(enum.Enum):
    STATISTICS = "statistics"
    RESET = "reset"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


class _Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"
    """Cancelled, or an exception the breaker does not count."""


@attrs.frozen
class _Config:
    failure_threshold: int
    window: float
    cool_down: float
    trial_calls: int
    call_timeout: float | None
    failure_on: tuple[type[BaseException], ...]
    ignore: tuple[type[BaseException], ...]
    required: bool


@attrs.frozen
class _Acquire:
    """A caller asks for permission; ``claim`` names the request, so that
    the caller can give a permission back that it never received."""

    claim: int


@attrs.frozen
class _Ticket:
    """Permission for one call, with what the caller needs to judge it."""

    breaker: Pid
    generation: int
    config: _Config


@attrs.frozen
class _Rejected:
    breaker: Pid
    state: BreakerState
    retry_in: float | None
    detail: str


@attrs.frozen
class _Outcome:
    generation: int
    claim: int
    result: _Result
    error: str | None


@attrs.frozen
class _Release:
    """The caller of ``claim`` gave up (cancelled, or its request timed out)
    before it heard the answer: a trial place it may have been given is free."""

    claim: int


@attrs.frozen
class _CoolDownOver:
    generation: int


class _NoFallback(enum.Enum):
    TOKEN = 0

    def __repr__(self) -> str:
        return "<no fallback>"


_NO_FALLBACK: Final = _NoFallback.TOKEN


class CircuitBreaker(ReadinessServer):
    """A circuit breaker: an actor that guards one dependency.

    Example::

        breaker = await CircuitBreaker.start(
            name="payments", failure_threshold=5, window=30.0, cool_down=10.0
        )
        receipt = await CircuitBreaker.call(breaker, gateway.charge, order)
        price = await CircuitBreaker.call("pricing", fetch_price, sku, fallback=cached[sku])

    **States.** *Closed*: calls go through and failures are counted;
    ``failure_threshold`` failures within ``window`` seconds open it. *Open*:
    every call is refused at once with ``CircuitOpen`` (or answered by its
    fallback) for ``cool_down`` seconds; then it becomes *half-open*: up to
    ``trial_calls`` calls go through as trials while the others are
    refused. If all the trials succeed it closes; if one fails it opens
    again for another ``cool_down``. A trial whose caller is gone (it was
    cancelled, its request timed out, its actor ended) gives its place back.

    **Where the call runs.** ``CircuitBreaker.call(breaker, fn, *args)``
    asks the breaker for permission (one round trip), runs ``fn(*args)`` in
    the *caller's* task, then tells the breaker the outcome (a cast). So a
    slow dependency never blocks the breaker, and many callers go through it
    concurrently. The guarded call's result or exception is the caller's:
    the breaker only counts it. ``call_timeout`` bounds each guarded call
    (a ``TimeoutError`` that counts as a failure); set it, so that a trial
    call that hangs cannot keep the breaker half-open.

    **What counts as a failure.** Exceptions that are instances of
    ``failure_on`` (default: every ``Exception``) and not of ``ignore``
    (say, ``ValueError`` for a request the dependency rightly refused).
    Cancellation and ignored exceptions count neither way. Outcomes of calls
    let through before the last state change are not counted: a slow
    failure from before a trial cannot reopen the breaker.

    **Fallbacks.** ``fallback=value`` returns ``value`` instead of raising
    ``CircuitOpen``; ``fallback_fn=fn`` calls ``fn(error)`` (sync or async)
    and returns its result. Only refusals fall back: a guarded call that
    fails raises its own error.

    **Seeing it.** Every state change is logged on the logger ``asyncotp``
    with structured ``extra`` fields: ``event`` (``breaker_opened`` at
    WARNING, ``breaker_half_open`` and ``breaker_closed`` at INFO),
    ``breaker``, ``breaker_name``, ``previous_state``, ``state``,
    ``failures`` and ``last_error``. Actors can ``subscribe`` to receive
    ``BreakerStateChanged`` messages. ``statistics`` returns a ``BreakerStats``.
    A breaker is a ``ReadinessServer``: ``health_report`` lists every
    breaker of the node, and shows it as a readiness check that passes
    unless ``required=True`` and the breaker is not closed (by default an
    open breaker means "degraded", not "unready": taking every replica out
    of the load balancer because a shared dependency is down helps nobody).

    **Supervising it.** ``CircuitBreaker.child_spec(id="payments_breaker",
    name="payments", ...)``. A restarted breaker starts closed.

    **When not to use it.** For a dependency that is called rarely, a
    ``retry`` with backoff is enough; a breaker pays off when many callers
    would otherwise pile onto a failing dependency at once. Do not retry
    ``CircuitOpen`` (``retry`` does not, by default).
    """

    _config: _Config
    _name: str | None
    _me: Pid

    # -- client API ------------------------------------------------------------

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        *,
        name: str | None = None,
        failure_threshold: int = 5,
        window: float = 60.0,
        cool_down: float = 30.0,
        trial_calls: int = 1,
        call_timeout: float | None = None,
        failure_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        ignore: type[BaseException] | tuple[type[BaseException], ...] = (),
        required: bool = False,
        link: bool = False,
        timeout: float = 5.0,
    ) -> Pid:
        """Start a closed breaker; ``name`` registers it.

        ``failure_threshold`` failures within ``window`` seconds open it; it
        stays open ``cool_down`` seconds, then lets ``trial_calls`` trial
        calls through. ``call_timeout`` bounds each guarded call.
        ``failure_on`` and ``ignore`` choose the exceptions that count as
        failures. ``required=True`` makes the service unready (in
        ``health_report``) while the breaker is not closed.
        """
        where = "CircuitBreaker.start"
        config = _Config(
            failure_threshold=validate.count(failure_threshold, "failure_threshold", where=where),
            window=validate.duration(window, "window", where=where),
            cool_down=validate.duration(cool_down, "cool_down", where=where),
            trial_calls=validate.count(trial_calls, "trial_calls", where=where),
            call_timeout=validate.duration(
                call_timeout, "call_timeout", where=where, optional=True, unlimited=True
            ),
            failure_on=validate.exception_classes(failure_on, "failure_on", where=where),
            ignore=validate.exception_classes(ignore, "ignore", where=where),
            required=bool(required),
        )
        timeout = validate.duration(timeout, "timeout", where=where)
        pid = await super().start(config, name=name, link=link, timeout=timeout)
        add_reporter(pid, cls.statistics)  # health_report lists it until it ends
        return pid

    @classmethod
    async def call(
        cls,
        breaker: Pid | str,
        fn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        fallback: T | _NoFallback = _NO_FALLBACK,
        fallback_fn: Callable[[CircuitOpen], T | Awaitable[T]] | None = None,
    ) -> T:
        """Run ``await fn(*args)`` in the calling task if the breaker lets it
        through, and tell the breaker how it went.

        Returns what ``fn`` returns and raises what it raises. When the
        breaker refuses the call: returns ``fallback`` if given, else
        ``fallback_fn(error)`` (awaited if it returns an awaitable) if given,
        else raises ``CircuitOpen``. Raises ``NoProcess`` when the breaker
        itself is not running.
        """
        validate.function(
            fn,
            "fn",
            where="CircuitBreaker.call",
            expected="an async callable",
            usage="the function and its arguments (CircuitBreaker.call(breaker, fetch, url))",
            coroutine=" (fetch(url))",
        )
        claim = next(_claims)
        try:
            answer = await gen_call(breaker, _Acquire(claim))
        except (asyncio.CancelledError, TimeoutError):
            # Cancelled, or timed out: the breaker may have let us through as
            # a trial all the same, and nobody else would ever free that place.
            with contextlib.suppress(ActorError):
                cast(breaker, _Release(claim))
            raise
        if type(answer) is _Rejected:
            error = CircuitOpen(answer.detail, answer.breaker, answer.state, answer.retry_in)
            if fallback is not _NO_FALLBACK:
                return fallback
            if fallback_fn is not None:
                substitute = fallback_fn(error)
                if inspect.isawaitable(substitute):
                    return await substitute
                return substitute
            raise error
        ticket: _Ticket = answer
        config = ticket.config
        result = _Result.NEUTRAL
        error_text: str | None = None
        try:
            if config.call_timeout is None:
                value = await fn(*args)
            else:
                value = await _bounded(fn(*args), config.call_timeout, ticket.breaker)
        except Exception as exc:
            if isinstance(exc, config.failure_on) and not isinstance(exc, config.ignore):
                result = _Result.FAILURE
                error_text = safe_repr(exc)  # counted even if its __repr__ raises
            raise
        else:
            result = _Result.SUCCESS
        finally:
            # ActorError: the node is stopping, or the mailbox refused; the outcome is moot.
            with contextlib.suppress(ActorError):
                cast(ticket.breaker, _Outcome(ticket.generation, claim, result, error_text))
        return value

    @classmethod
    async def statistics(cls, breaker: Pid | str, timeout: float | None = 5.0) -> BreakerStats:
        """A snapshot of the breaker: state, counts, settings."""
        timeout = validate.duration(
            timeout,
            "timeout",
            where="CircuitBreaker.statistics",
            optional=True,
            zero=True,
            unlimited=True,
        )
        result: BreakerStats = await gen_call(breaker, _Request.STATISTICS, timeout)
        return result

    @classmethod
    async def reset(cls, breaker: Pid | str) -> None:
        """Close the breaker now and forget the failures counted so far
        (after fixing the dependency by hand, say)."""
        await gen_call(breaker, _Request.RESET)

    @classmethod
    async def subscribe(cls, breaker: Pid | str) -> None:
        """Send the calling actor a ``BreakerStateChanged`` at every state
        change of the breaker, until ``unsubscribe`` or until it ends."""
        me = self_pid()
        await gen_call(breaker, (_Request.SUBSCRIBE, me))

    @classmethod
    async def unsubscribe(cls, breaker: Pid | str) -> None:
        """Stop the state-change messages to the calling actor."""
        me = self_pid()
        await gen_call(breaker, (_Request.UNSUBSCRIBE, me))

    # -- server side ------------------------------------------------------------

    async def init(self, config: _Config) -> None:
        self._me = self_pid()
        self._name = registered_name(self._me)
        self._config = config
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._open_detail = ""
        self._trials_started = 0
        self._trial_successes = 0
        self._trials: dict[int, MonitorRef | None] = {}
        """The trial calls under way (half-open), by claim, with a monitor of
        the calling actor: a trial whose caller is gone frees its place."""
        self._trial_callers: dict[MonitorRef, int] = {}
        self._calls = 0
        self._rejected = 0
        self._failed = 0
        self._times_opened = 0
        self._last_error: str | None = None
        self._subscribers: dict[Pid, MonitorRef] = {}

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if type(request) is _Acquire:
            return self._acquire(request.claim, caller)
        if request is _Request.STATISTICS:
            return self._statistics()
        if request is _Request.RESET:
            if self._state is not BreakerState.CLOSED:
                self._change(BreakerState.CLOSED, "reset by hand")
            self._failures.clear()
            return None
        if isinstance(request, tuple) and len(request) == 2:
            op, pid = request
            if op is _Request.SUBSCRIBE and type(pid) is Pid:
                if pid not in self._subscribers:
                    self._subscribers[pid] = monitor(pid)
                return None
            if op is _Request.UNSUBSCRIBE and type(pid) is Pid:
                self._subscribers.pop(pid, None)
                return None
        raise ValueError(
            f"circuit breaker {self._me!r} does not understand the call {safe_repr(request)}; use "
            "CircuitBreaker.call, statistics, reset, subscribe or unsubscribe"
        )

    async def handle_cast(self, request: Any) -> None:
        kind = type(request)
        if kind is _Outcome:
            self._outcome(request)
        elif kind is _Release:
            self._release(request.claim)
        else:
            raise ValueError(
                f"circuit breaker {self._me!r} does not understand {safe_repr(request)}"
            )

    async def handle_info(self, message: Any) -> None:
        if type(message) is _CoolDownOver:
            if message.generation == self._generation and self._state is BreakerState.OPEN:
                self._change(
                    BreakerState.HALF_OPEN, f"cool-down of {self._config.cool_down} s over"
                )
            return
        if type(message) is Down:
            claim = self._trial_callers.get(message.ref)
            if claim is not None:
                self._release(claim)  # the trial's caller ended before it told us
                return
            if message.pid in self._subscribers:
                del self._subscribers[message.pid]
                return
        await super().handle_info(message)

    async def ready(self) -> bool | tuple[bool, str]:
        config = self._config
        if self._state is BreakerState.CLOSED:
            failures = self._failures_in_window()
            return True, (
                f"closed ({failures} of {config.failure_threshold} failures within "
                f"{config.window} s)"
            )
        ok = not config.required
        if self._state is BreakerState.HALF_OPEN:
            return ok, (
                f"half-open: {self._trial_successes} of {config.trial_calls} trial calls "
                "succeeded so far"
            )
        return ok, f"open: {self._open_detail}; half-open in {self._retry_in():.1f} s"

    # -- the state machine ------------------------------------------------------

    def _who(self) -> str:
        return repr(self._name) if self._name is not None else repr(self._me)

    def _retry_in(self) -> float:
        return max(0.0, self._opened_at + self._config.cool_down - now())

    def _failures_in_window(self) -> int:
        horizon = now() - self._config.window
        failures = self._failures
        while failures and failures[0] <= horizon:
            failures.popleft()
        return len(failures)

    def _acquire(self, claim: int, caller: Caller) -> _Ticket | _Rejected | None:
        if not caller.waiting:
            return None  # its request timed out or was cancelled: nobody would use a place
        state = self._state
        config = self._config
        if state is BreakerState.CLOSED:
            self._calls += 1
            return _Ticket(self._me, self._generation, config)
        if state is BreakerState.HALF_OPEN and self._trials_started < config.trial_calls:
            self._trials_started += 1
            self._calls += 1
            ref = None if caller.pid is None else monitor(caller.pid)
            self._trials[claim] = ref
            if ref is not None:
                self._trial_callers[ref] = claim
            return _Ticket(self._me, self._generation, config)
        self._rejected += 1
        hint = (
            "pass fallback= or fallback_fn= to CircuitBreaker.call to degrade gracefully, or "
            "try again later"
        )
        if state is BreakerState.OPEN:
            retry_in = self._retry_in()
            return _Rejected(
                self._me,
                state,
                retry_in,
                f"circuit breaker {self._who()} is open ({self._open_detail}) and refuses "
                f"calls for {retry_in:.2f} s more; {hint}",
            )
        return _Rejected(
            self._me,
            state,
            None,
            f"circuit breaker {self._who()} is half-open and its {config.trial_calls} trial "
            f"call(s) are under way; {hint}",
        )

    def _end_trial(self, claim: int) -> bool:
        """Forget the trial ``claim``; False if it was not under way."""
        if claim not in self._trials:
            return False
        ref = self._trials.pop(claim)
        if ref is not None:
            del self._trial_callers[ref]
            demonitor(ref, flush=True)
        return True

    def _release(self, claim: int) -> None:
        """A trial ended without an outcome: its place is free for another."""
        if self._end_trial(claim):
            self._trials_started -= 1

    def _outcome(self, outcome: _Outcome) -> None:
        if outcome.result is _Result.FAILURE:
            self._failed += 1
            self._last_error = outcome.error
        if outcome.generation != self._generation:
            return  # let through before the last state change: it says nothing now
        if outcome.result is _Result.NEUTRAL:
            self._release(outcome.claim)  # a cancelled trial frees its place
            return
        self._end_trial(outcome.claim)
        config = self._config
        state = self._state
        if state is BreakerState.CLOSED:
            if outcome.result is _Result.FAILURE:
                self._failures.append(now())
                count = self._failures_in_window()
                if count >= config.failure_threshold:
                    self._open_detail = (
                        f"{count} failures within {config.window} s, last {outcome.error}"
                    )
                    self._change(BreakerState.OPEN, self._open_detail)
        elif state is BreakerState.HALF_OPEN:
            if outcome.result is _Result.FAILURE:
                self._open_detail = f"a trial call failed with {outcome.error}"
                self._change(BreakerState.OPEN, self._open_detail)
            else:
                self._trial_successes += 1
                if self._trial_successes >= config.trial_calls:
                    self._change(
                        BreakerState.CLOSED, f"{self._trial_successes} trial call(s) succeeded"
                    )

    def _change(self, state: BreakerState, why: str) -> None:
        previous = self._state
        self._state = state
        self._generation += 1
        config = self._config
        failures = len(self._failures)
        self._failures.clear()
        self._trials_started = 0
        self._trial_successes = 0
        for ref in self._trial_callers:
            demonitor(ref, flush=True)
        self._trials.clear()
        self._trial_callers.clear()
        if state is BreakerState.OPEN:
            self._opened_at = now()
            self._times_opened += 1
            send_after(config.cool_down, self._me, _CoolDownOver(self._generation))
            level = logging.WARNING
            event = "breaker_opened"
            message = (
                f"circuit breaker {self._who()} opened: {why}; refusing calls for "
                f"{config.cool_down} s, then letting {config.trial_calls} trial call(s) through"
            )
        elif state is BreakerState.HALF_OPEN:
            level = logging.INFO
            event = "breaker_half_open"
            message = (
                f"circuit breaker {self._who()} is half-open ({why}); letting "
                f"{config.trial_calls} trial call(s) through"
            )
        else:
            level = logging.INFO
            event = "breaker_closed"
            message = f"circuit breaker {self._who()} closed: {why}"
        logger.log(
            level,
            message,
            extra={
                "event": event,
                "breaker": self._me,
                "breaker_name": self._name,
                "previous_state": previous.value,
                "state": state.value,
                "failures": failures,
                "last_error": self._last_error,
                "reason": why,
            },
        )
        if telemetry.ANY:
            telemetry.execute(
                ("asyncotp", "breaker", "state_change"),
                {"failures": failures},
                {
                    "breaker": self._me,
                    "name": self._name,
                    "previous_state": previous,
                    "state": state,
                    "reason": why,
                },
            )
        notice = BreakerStateChanged(self._me, self._name, previous, state)
        for pid in list(self._subscribers):
            with contextlib.suppress(MailboxFull):  # a full subscriber misses this one
                send(pid, notice)

    def _statistics(self) -> BreakerStats:
        config = self._config
        return BreakerStats(
            pid=self._me,
            name=self._name,
            state=self._state,
            failures=self._failures_in_window(),
            failure_threshold=config.failure_threshold,
            window=config.window,
            cool_down=config.cool_down,
            trial_calls=config.trial_calls,
            retry_in=self._retry_in() if self._state is BreakerState.OPEN else None,
            calls=self._calls,
            rejected=self._rejected,
            failed=self._failed,
            times_opened=self._times_opened,
            last_error=self._last_error,
            required=config.required,
        )


async def _bounded(awaitable: Awaitable[T], seconds: float, breaker: Pid) -> T:
    try:
        async with asyncio.timeout(seconds) as scope:
            return await awaitable
    except TimeoutError as exc:
        if scope.expired():
            raise TimeoutError(
                f"a call through circuit breaker {breaker!r} did not finish within its "
                f"call_timeout of {seconds} s; counted as a failure"
            ) from exc
        raise
