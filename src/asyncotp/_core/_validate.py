"""Argument validators, written once: each message names the operation, the
argument, what was expected and the value that came.

Time arguments (``timeout``, ``delay``, ``shutdown_timeout``, ...) are
checked before anything happens, by ``check_seconds`` and its two usual
forms: ``check_timeout`` (None or ``math.inf`` mean "no limit") and
``check_delay`` (a finite number of seconds). NaN, negative values and
values that overflow (``10**400``, or more than ``MAX_SECONDS``, past which
an event loop's timer arithmetic stops being exact or fails) raise
``ValueError``. A valid value comes back as a plain ``float`` (None for no
limit), so the runtime never hashes or compares a user's number subclass.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Final

from ._safe import safe_repr
from ._state import Overflow

MAX_SECONDS: Final = 1e9
"""The longest finite time argument, about 31 years: a longer one is a
mistake (use None, where accepted, for no limit)."""


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` makes a coroutine: an ``async def`` function, an
    object with an async ``__call__``, or a ``functools.partial`` of one."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    try:
        call = getattr(fn, "__call__", None)  # noqa: B004 - an object with async __call__
    except Exception:  # noqa: BLE001 - a user object whose attribute lookup fails
        return False
    return call is not None and inspect.iscoroutinefunction(call)


def fn_name(fn: object) -> str:
    """A readable name for a callable, for error messages."""
    try:
        name = getattr(fn, "__qualname__", None)
    except Exception:  # noqa: BLE001 - a user object whose attribute lookup fails
        name = None
    return name if isinstance(name, str) and name else safe_repr(fn)


def check_name(name: object, operation: str) -> None:
    """A registered name is a non-empty ``str``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"{operation}: a name must be a non-empty str, not {safe_repr(name)}")


def check_mailbox(mailbox_size: int | None, overflow: Overflow, operation: str) -> None:
    """``mailbox_size`` is None or an int >= 1; ``overflow`` an ``Overflow``."""
    if mailbox_size is not None and (
        not isinstance(mailbox_size, int) or isinstance(mailbox_size, bool) or mailbox_size < 1
    ):
        raise ValueError(
            f"{operation}: mailbox_size must be None (unbounded) or an int >= 1, "
            f"not {safe_repr(mailbox_size)}"
        )
    if not isinstance(overflow, Overflow):
        raise TypeError(
            f"{operation}: overflow must be an Overflow member, not {safe_repr(overflow)}"
        )


def check_seconds(
    value: object,
    operation: str,
    argument: str,
    *,
    no_limit: bool = False,
    positive: bool = False,
) -> float | None:
    """Validate a time argument and return it as a ``float``.

    With ``no_limit``, None and ``math.inf`` are accepted and mean "no
    limit" (returned as None); otherwise only finite seconds are. The value
    must be >= 0 (> 0 with ``positive``) and at most ``MAX_SECONDS``. The
    message starts ``"{operation}: {argument}"`` (just the argument when
    ``operation`` is empty, for a field such as ``"ChildSpec.shutdown"``).
    """
    if (
        type(value) is float
        and value <= MAX_SECONDS  # False for NaN and math.inf
        and (value > 0.0 if positive else value >= 0.0)
    ):
        return value  # the common case, without building any message
    if value is None and no_limit:
        return None
    problem = ""
    seconds = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            problem = " (too large)"
        except Exception:  # noqa: BLE001 - a number subclass whose __float__ fails
            problem = " (not convertible to a float)"
        else:
            if seconds == math.inf and no_limit:
                return None
            if seconds > MAX_SECONDS:
                problem = (
                    " (too large; None or math.inf mean no limit)"
                    if no_limit
                    else " (too large; to wait for ever, set no timer or deadline at all)"
                )
            elif seconds >= 0 and not (positive and seconds == 0):
                return seconds
    expected = "seconds > 0" if positive else "seconds >= 0"
    expected = f"{expected} (at most {MAX_SECONDS:g})"
    if no_limit:
        expected = f"None or math.inf (no limit), or {expected}"
    shown = safe_repr(value)  # "nan", "inf", "-1", "'1'", ...
    name = f"{operation}: {argument}" if operation else argument
    # ValueError also for a value of the wrong type: the contract (and its
    # tests) make every bad time argument a ValueError.
    raise ValueError(f"{name} must be {expected}, not {shown}{problem}")


def check_timeout(timeout: object, operation: str, argument: str = "timeout") -> float | None:
    """A timeout: None or ``math.inf`` (no limit, returned as None), or
    finite seconds >= 0 (returned as a float)."""
    return check_seconds(timeout, operation, argument, no_limit=True)


def check_delay(delay: object, operation: str, argument: str = "delay") -> float:
    """A delay: finite seconds >= 0 (``math.inf`` refused: set no timer)."""
    seconds = check_seconds(delay, operation, argument)
    assert seconds is not None
    return seconds
