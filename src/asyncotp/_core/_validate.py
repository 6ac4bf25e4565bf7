"""Validators for the arguments of the public API, written once.

Each one checks one argument and, when it is wrong, raises an error whose
message names the argument, says what was expected and shows the value::

    CircuitBreaker.start: window must be seconds > 0, not 0
    RetryPolicy.jitter must be a fraction in [0, 1], not 1.5

``name`` is the argument and ``where`` the function or class it was given to
(left out when ``name`` already says it, as in ``RetryPolicy.jitter``; see
``attribute`` for attrs fields). Each returns the value it accepted, so that
checking and keeping it is one line.

Numbers (``duration``, ``count``, ``number``, ``fraction``) are refused with
``ValueError`` whatever is wrong with them, their type or their value, so
that one ``except ValueError`` catches every bad setting. Everything else
that has the wrong type is refused with ``TypeError``.

The ``check_*`` functions at the end, the runtime's own, take the operation
first-class (``check_timeout(timeout, "call")``) and word their messages for
it.

Time arguments of the runtime (``timeout``, ``delay``, ``shutdown_timeout``,
...) are checked before anything happens, by ``check_seconds`` and its two
usual forms: ``check_timeout`` (None or ``math.inf`` mean "no limit") and
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
from collections.abc import Callable
from typing import Any, Final, Literal, NoReturn, TypeVar, overload

import attrs

from ._pid import Pid
from ._safe import safe_repr
from ._state import Overflow
from ._via import Via

T = TypeVar("T")

MAX_SECONDS: Final = 1e9
"""The longest finite time argument, about 31 years: a longer one is a
mistake (use None, where accepted, for no limit)."""


def fail(
    error: type[Exception], value: object, name: str, expected: str, *, where: str = ""
) -> NoReturn:
    """Raise ``error`` saying that ``name`` (given to ``where``) must be
    ``expected``, not ``value``."""
    prefix = f"{where}: " if where else ""
    raise error(f"{prefix}{name} must be {expected}, not {safe_repr(value)}")


def is_number(value: object) -> bool:
    """An int or a float, but not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@overload
def count(
    value: object,
    name: str,
    *,
    where: str = "",
    minimum: int = 1,
    optional: Literal[False] = False,
) -> int: ...
@overload
def count(
    value: object, name: str, *, where: str = "", minimum: int = 1, optional: bool
) -> int | None: ...
def count(
    value: object, name: str, *, where: str = "", minimum: int = 1, optional: bool = False
) -> int | None:
    """An int (not a bool) >= ``minimum``, or None with ``optional=True``."""
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        expected = f"an int >= {minimum}"
        fail(ValueError, value, name, f"None or {expected}" if optional else expected, where=where)
    return value


def number(value: object, name: str, *, where: str = "", minimum: float) -> float:
    """A number (int or float, not a bool, not NaN) >= ``minimum``."""
    if not is_number(value) or not value >= minimum:  # type: ignore[operator]
        fail(ValueError, value, name, f"a number >= {minimum:g}", where=where)
    return value  # type: ignore[return-value]


def fraction(value: object, name: str, *, where: str = "") -> float:
    """A number in [0, 1]."""
    if not is_number(value) or not 0 <= value <= 1:  # type: ignore[operator]
        fail(ValueError, value, name, "a fraction in [0, 1]", where=where)
    return value  # type: ignore[return-value]


def integer(value: object, name: str, *, where: str = "") -> int:
    """An int, not a bool (``TypeError`` otherwise)."""
    if not isinstance(value, int) or isinstance(value, bool):
        fail(TypeError, value, name, "an int", where=where)
    return value


def instance(value: object, cls: type[T], name: str, *, where: str = "", hint: str = "") -> T:
    """An instance of ``cls`` (``TypeError`` otherwise, followed by ``hint``)."""
    if not isinstance(value, cls):
        article = "an" if cls.__name__[:1] in "AEIOU" else "a"
        prefix = f"{where}: " if where else ""
        raise TypeError(
            f"{prefix}{name} must be {article} {cls.__name__}, not {safe_repr(value)}{hint}"
        )
    return value


def text(value: object, name: str, *, where: str = "") -> str:
    """A non-empty str."""
    if not isinstance(value, str) or not value:
        fail(TypeError, value, name, "a non-empty str", where=where)
    return value


def pid_or_name(
    value: object, name: str, *, where: str = "", expected: str = "a pid or a registered name"
) -> Pid | str:
    """A ``Pid`` or a non-empty str (a registered name); ``expected`` says
    what the pid or name is of."""
    if type(value) is not Pid and not (isinstance(value, str) and value):
        fail(TypeError, value, name, expected, where=where)
    return value


def exception_classes(
    value: object, name: str, *, where: str = ""
) -> tuple[type[BaseException], ...]:
    """An exception class, or a tuple (list, set) of them; returns a tuple."""
    given = (value,) if isinstance(value, type) else value
    if not isinstance(given, (tuple, list, frozenset, set)) or not all(
        isinstance(c, type) and issubclass(c, BaseException) for c in given
    ):
        fail(TypeError, value, name, "an exception class or a tuple of them", where=where)
    return tuple(given)


def function(
    value: object,
    name: str,
    *,
    where: str,
    expected: str = "a callable",
    usage: str = "the function",
    coroutine: str = "",
) -> None:
    """A callable. A coroutine object (the result of calling an async
    function, which can be awaited only once) is closed and refused with a
    message that says to ``pass {usage}``; ``coroutine`` follows it."""
    if inspect.iscoroutine(value):
        value.close()
        raise TypeError(f"{where}: pass {usage}, not a coroutine{coroutine}")
    if not callable(value):
        fail(TypeError, value, name, expected, where=where)


def async_function(
    value: object, name: str, *, where: str, expected: str = "an async function"
) -> None:
    """An async function (see ``is_async_callable``)."""
    if not is_async_callable(value):
        fail(TypeError, value, name, expected, where=where)


def not_async_hint(fn: object) -> tuple[str, str]:
    """Why ``fn`` is not an async function, and what to do: ``("the class
    Counter", "start it with ...")``, for a class, a sync function, an async
    generator function and anything else."""
    shown = fn_name(fn)
    if isinstance(fn, type):
        try:
            start = getattr(fn, "start", None)
        except Exception:  # noqa: BLE001 - a user class whose attribute lookup fails
            start = None
        if start is not None and is_async_callable(start):
            return (
                f"the class {shown}",
                f"start it with `await {shown}.start(...)`, or pass its start function "
                f"({shown}.start, or functools.partial({shown}.start, ...)); under a "
                f"supervisor use {shown}.child_spec(...)",
            )
        return (
            f"the class {shown}",
            "pass an `async def` function (or an object with an `async def __call__`)",
        )
    probe = fn
    while isinstance(probe, functools.partial):
        probe = probe.func
    if inspect.isasyncgenfunction(probe):
        return (
            f"the async generator function {shown} (it contains `yield`)",
            "an actor's function returns its result, it does not yield values",
        )
    if callable(fn):
        return f"{shown}, which is not async", "define it with `async def`"
    return safe_repr(fn), "pass an `async def` function"


def async_entry(value: object, name: str, *, where: str = "", usage: str) -> None:
    """A function something will run as ``await value(*args)``: an async
    function (``is_async_callable``); ``usage`` says what is expected ("an
    async function"). A coroutine object is closed and refused (it can be
    awaited only once, and the arguments go apart: ``fn, x``, not ``fn(x)``);
    a class, a sync function or an async generator function are refused with
    what to do instead. The ``TypeError`` names ``where`` and ``name``."""
    prefix = f"{where}: " if where else ""
    if inspect.iscoroutine(value):
        value.close()
        raise TypeError(
            f"{prefix}{name} must be {usage}, not a coroutine object: pass the function "
            "and its arguments apart (fn, arg1, arg2), not fn(arg1, arg2)"
        )
    if not is_async_callable(value):
        what, todo = not_async_hint(value)
        raise TypeError(f"{prefix}{name} must be {usage}, not {what}; {todo}")


def attribute(
    check: Callable[..., object], **options: Any
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """An attrs validator running ``check(value, "Class.field", **options)``."""

    def validate(instance: object, field: attrs.Attribute[Any], value: object) -> None:
        check(value, f"{type(instance).__name__}.{field.name}", **options)

    return validate


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
    """A name is a non-empty ``str`` (a local name) or a ``Via`` (a name
    held by a registry)."""
    if isinstance(name, str) and name:
        return
    if type(name) is not Via:
        raise TypeError(
            f"{operation}: a name must be a non-empty str or a via(registry, key) name, "
            f"not {safe_repr(name)}"
        )


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


@overload
def duration(
    value: object,
    name: str,
    *,
    where: str = "",
    optional: Literal[False] = False,
    zero: bool = False,
    unlimited: bool = False,
) -> float: ...
@overload
def duration(
    value: object,
    name: str,
    *,
    where: str = "",
    optional: bool,
    zero: bool = False,
    unlimited: bool = False,
) -> float | None: ...
def duration(
    value: object,
    name: str,
    *,
    where: str = "",
    optional: bool = False,
    zero: bool = False,
    unlimited: bool = False,
) -> float | None:
    """A duration in seconds, checked for everything that breaks a timer or a
    sum of times: a number > 0 (>= 0 with ``zero=True``), or None with
    ``optional=True``; not NaN, values a float cannot
    hold (``10**400``) and ``math.inf``, all refused with ``ValueError``
    naming the argument and the value.

    ``unlimited=True`` accepts ``math.inf`` where it means "no limit"; with
    ``optional=True`` too it is returned as None, the spelling of "no limit"
    the callers act on. Returns the value as a float.
    """
    if value is None and optional:
        return None
    bound = "seconds >= 0" if zero else "seconds > 0"
    expected = f"None or {bound}" if optional else bound
    if not is_number(value) or not (value >= 0 if zero else value > 0):  # type: ignore[operator]
        fail(ValueError, value, name, expected, where=where)  # NaN is refused here
    try:
        result = float(value)  # type: ignore[arg-type]
    except OverflowError:
        fail(ValueError, value, name, f"{expected} that a float can hold", where=where)
    if result == math.inf:
        if not unlimited:
            fail(ValueError, value, name, f"{expected} and finite", where=where)
        if optional:
            return None
    elif result > MAX_SECONDS:
        fail(ValueError, value, name, f"{expected} (at most {MAX_SECONDS:g})", where=where)
    return result


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
