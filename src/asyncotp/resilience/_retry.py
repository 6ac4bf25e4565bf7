"""Retries with exponential backoff, jitter, a cap and a deadline.

A supervisor restarts what crashed; a caller still has to decide what to do
with the call that failed while its server was restarting. ``retry`` tries
again, a few times, waiting longer each time, for the failures that a retry
can fix: a timeout, a server that ended mid-call, a name that nobody holds
while its owner restarts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, ParamSpec, TypeVar, TypeVarTuple

import attrs

from .._core import (
    MailboxFull,
    NoProcess,
    RetryDeadlineExceeded,
    RetryError,
    ServerExited,
    now,
    safe_repr,
    telemetry,
    validate,
)

logger = logging.getLogger("asyncotp")

T = TypeVar("T")
P = ParamSpec("P")
Ts = TypeVarTuple("Ts")

DEFAULT_RETRY_ON: Final[tuple[type[BaseException], ...]] = (TimeoutError, ServerExited, NoProcess)
"""What ``retry`` retries unless told otherwise: timeouts (``CallTimeout``,
``ReceiveTimeout`` and every other ``TimeoutError``), ``ServerExited`` (the
server ended mid-call: its supervisor is restarting it) and ``NoProcess``
(nobody holds the name yet)."""

_RNG: Final = random.Random()


def _retry_on(
    value: type[BaseException] | tuple[type[BaseException], ...],
) -> tuple[type[BaseException], ...]:
    return validate.exception_classes(value, "RetryPolicy.retry_on")


def _no_limit(value: Any) -> Any:
    """``math.inf`` means no limit, which a policy spells None."""
    return None if type(value) is float and value == math.inf else value


def _classes_repr(classes: tuple[type[BaseException], ...]) -> str:
    names = ", ".join(c.__qualname__ for c in classes)
    return f"({names},)" if len(classes) == 1 else f"({names})"


@attrs.frozen
class RetryPolicy:
    """How ``retry`` retries: how often, how long it waits, for what.

    Before retry number ``n`` (0 for the first retry) it waits
    ``min(max_delay, initial * multiplier**n)``, less a random share of up
    to ``jitter`` of it: ``jitter=0`` waits exactly that, ``0.5`` (the
    default) between half of it and all of it, ``1`` anywhere from nothing
    to all of it ("full jitter"). Jitter spreads out the retries of many
    callers that failed together, so that they do not come back together.
    The cap, ``max_delay``, is never exceeded.

    ``max_attempts`` counts every attempt, the first included (None: no
    limit). ``deadline`` bounds the whole call, attempts and waits included,
    in seconds from the start of ``retry`` (None: no limit); an attempt still
    running at the deadline is cancelled. ``attempt_timeout`` bounds each
    attempt (a ``TimeoutError``, which is retried by default). With neither
    ``max_attempts`` nor ``deadline``, ``retry`` tries until it succeeds or
    meets an error it must not retry.

    ``retry_on`` lists the exception classes worth retrying (default:
    ``DEFAULT_RETRY_ON``, that is ``TimeoutError``, ``ServerExited``,
    ``NoProcess``). Every other exception is raised at once. ``MailboxFull``
    is never retried unless it is asked for by name (it is a server saying
    "slow down": retrying it at once defeats its purpose), even when a
    class in ``retry_on`` covers it, such as ``ActorError``. ``CircuitOpen``
    is not retried by default either.

    A policy is a frozen value: share it, and derive variants with
    ``attrs.evolve(policy, deadline=2.0)``.
    """

    max_attempts: int | None = attrs.field(
        default=3, validator=validate.attribute(validate.count, optional=True)
    )
    initial: float = attrs.field(
        default=0.1,
        validator=[
            validate.attribute(validate.number, minimum=0),
            validate.attribute(validate.duration, zero=True),
        ],
    )
    multiplier: float = attrs.field(
        default=2.0, validator=validate.attribute(validate.number, minimum=1)
    )
    max_delay: float = attrs.field(
        default=5.0,
        validator=[
            validate.attribute(validate.number, minimum=0),
            validate.attribute(validate.duration, zero=True, unlimited=True),  # inf: no cap
        ],
    )
    jitter: float = attrs.field(default=0.5, validator=validate.attribute(validate.fraction))
    deadline: float | None = attrs.field(
        default=None,
        converter=_no_limit,
        validator=validate.attribute(validate.duration, optional=True, unlimited=True),
    )
    attempt_timeout: float | None = attrs.field(
        default=None,
        converter=_no_limit,
        validator=validate.attribute(validate.duration, optional=True, unlimited=True),
    )
    retry_on: tuple[type[BaseException], ...] = attrs.field(
        default=DEFAULT_RETRY_ON, converter=_retry_on, repr=_classes_repr
    )

    def delay(self, retry: int, unit_random: float) -> float:
        """The wait before retry number ``retry`` (0-based); ``unit_random``
        is a number in [0, 1)."""
        try:
            grown = self.initial * self.multiplier**retry
        except OverflowError:  # a long run of retries outgrows a float
            grown = math.inf if self.initial > 0 else 0.0
        base = min(self.max_delay, grown)
        return base * (1.0 - self.jitter * unit_random)

    def should_retry(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt under this policy."""
        if not isinstance(error, self.retry_on):
            return False
        if isinstance(error, MailboxFull):
            return any(issubclass(c, MailboxFull) for c in self.retry_on)
        return True


DEFAULT_POLICY: Final = RetryPolicy()


@attrs.frozen
class RetryAttempt:
    """A failed attempt that ``retry`` is about to retry (for ``on_retry``).

    ``attempt`` is its number (1 for the first), ``error`` what it raised,
    ``delay`` the wait before the next one and ``elapsed`` the seconds since
    ``retry`` started.
    """

    attempt: int
    error: BaseException
    delay: float
    elapsed: float


def _name(fn: object) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    try:
        name = getattr(fn, "__qualname__", None)
    except Exception:  # noqa: BLE001 - a user's __getattr__ that raises
        name = None
    return name if isinstance(name, str) and name else safe_repr(fn)


async def retry(
    fn: Callable[[*Ts], Awaitable[T]],
    *args: *Ts,
    policy: RetryPolicy = DEFAULT_POLICY,
    rng: random.Random | None = None,
    on_retry: Callable[[RetryAttempt], None] | None = None,
) -> T:
    """Call ``await fn(*args)`` until it succeeds, as ``policy`` says.

    Example::

        fast = RetryPolicy(max_attempts=5, initial=0.05, max_delay=1.0, deadline=3.0)
        balance = await retry(call, "accounts", ("balance", user), policy=fast)

    ``fn`` is called afresh for each attempt: pass the function and its
    arguments (or a ``lambda``, or a ``functools.partial`` for keyword
    arguments), not a coroutine, which can only be awaited once.

    Returns the first result. An error the policy does not retry is raised
    at once, unchanged. When the attempts run out: ``RetryError`` (its
    ``__cause__`` is the last error); when the deadline passes:
    ``RetryDeadlineExceeded``, a ``RetryError`` and a ``TimeoutError``.
    Cancellation is never retried nor swallowed.

    ``rng`` supplies the jitter (a seeded ``random.Random`` makes the
    delays reproducible); ``on_retry`` is called before each wait, for
    metrics. Each retry is logged at DEBUG and giving up at INFO on the
    logger ``asyncotp``, with ``extra`` fields ``event`` (``retry`` or
    ``retry_gave_up``), ``operation``, ``attempt``, ``delay``, ``error``.
    All waits are loop timers, and all times the loop's clock.
    """
    validate.function(
        fn,
        "fn",
        where="retry",
        expected="an async callable",
        usage="the function and its arguments (retry(fetch, url))",
        coroutine=" (fetch(url)): a coroutine can only be awaited once, so it cannot be retried",
    )
    validate.instance(policy, RetryPolicy, "policy", where="retry")
    source = rng if rng is not None else _RNG
    started = now()
    deadline_at = None if policy.deadline is None else started + policy.deadline
    attempt = 0
    last_error: BaseException | None = None
    while True:
        attempt += 1
        attempt_end = None if policy.attempt_timeout is None else now() + policy.attempt_timeout
        ends_at = _earliest(deadline_at, attempt_end)
        try:
            async with asyncio.timeout_at(ends_at) as scope:
                return await fn(*args)
        except Exception as exc:
            error: BaseException = exc
            if isinstance(exc, TimeoutError) and scope.expired():
                if deadline_at is not None and ends_at == deadline_at:
                    _gave_up(fn, attempt, last_error, "deadline")
                    raise RetryDeadlineExceeded(
                        f"retry: {_name(fn)} did not succeed within the deadline of "
                        f"{policy.deadline} s ({attempt} attempt(s); the last one was cut "
                        f"short, the one before failed with {safe_repr(last_error)}); raise the "
                        "deadline or look at why it is slow",
                        attempt,
                        last_error,
                        policy.deadline,
                    ) from last_error
                error = TimeoutError(
                    f"attempt {attempt} of {_name(fn)} did not finish within the "
                    f"attempt_timeout of {policy.attempt_timeout} s"
                )
                error.__cause__ = exc
            if not policy.should_retry(error):
                if error is exc:
                    raise
                raise error from exc
            last_error = error
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            _gave_up(fn, attempt, last_error, "attempts")
            raise RetryError(
                f"retry: {_name(fn)} failed {attempt} time(s), its max_attempts; the last "
                f"error was {safe_repr(last_error)}",
                attempt,
                last_error,
            ) from last_error
        delay = policy.delay(attempt - 1, source.random())
        if deadline_at is not None and now() + delay >= deadline_at:
            _gave_up(fn, attempt, last_error, "deadline")
            raise RetryDeadlineExceeded(
                f"retry: {_name(fn)} failed {attempt} time(s) (last: {safe_repr(last_error)}) "
                "and the "
                f"next attempt would start after the deadline of {policy.deadline} s; "
                "raise the deadline or look at why it fails",
                attempt,
                last_error,
                policy.deadline,
            ) from last_error
        logger.debug(
            "retry: %s failed (attempt %d): %s; trying again in %.3f s",
            _name(fn),
            attempt,
            safe_repr(last_error),
            delay,
            extra={
                "event": "retry",
                "operation": _name(fn),
                "attempt": attempt,
                "delay": delay,
                "error": last_error,
            },
        )
        if telemetry.ANY:
            telemetry.execute(
                ("asyncotp", "retry", "retry"),
                {"attempt": attempt, "delay": delay, "elapsed": now() - started},
                {"operation": _name(fn), "error": last_error},
            )
        if on_retry is not None:
            on_retry(RetryAttempt(attempt, last_error, delay, now() - started))
        await asyncio.sleep(delay)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _gave_up(fn: object, attempts: int, error: BaseException | None, why: str) -> None:
    if telemetry.ANY:
        telemetry.execute(
            ("asyncotp", "retry", "gave_up"),
            {"attempts": attempts},
            {"operation": _name(fn), "error": error, "reason": why},
        )
    logger.info(
        "retry: giving up on %s after %d attempt(s) (%s); last error: %s",
        _name(fn),
        attempts,
        "deadline reached" if why == "deadline" else "no attempts left",
        safe_repr(error),
        extra={
            "event": "retry_gave_up",
            "operation": _name(fn),
            "attempt": attempts,
            "delay": None,
            "error": error,
            "reason": why,
        },
    )


def retrying(
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    rng: random.Random | None = None,
    on_retry: Callable[[RetryAttempt], None] | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """A decorator: every call of the decorated async function is retried as
    ``policy`` says (see ``retry``).

    Example::

        @retrying(RetryPolicy(max_attempts=5, deadline=2.0))
        async def balance(user: str) -> int:
            return await call("accounts", ("balance", user))
    """
    validate.instance(
        policy,
        RetryPolicy,
        "policy",
        where="retrying",
        hint=" (write @retrying() or @retrying(RetryPolicy(...)))",
    )

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await retry(
                functools.partial(fn, *args, **kwargs), policy=policy, rng=rng, on_retry=on_retry
            )

        return wrapper

    return decorate
