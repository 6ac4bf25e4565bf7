"""Argument validators, written once: each message names the operation, the
argument, what was expected and the value that came."""

from __future__ import annotations

import functools
import inspect

from ._state import Overflow


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` makes a coroutine: an ``async def`` function, an
    object with an async ``__call__``, or a ``functools.partial`` of one."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def fn_name(fn: object) -> str:
    """A readable name for a callable, for error messages."""
    return getattr(fn, "__qualname__", None) or repr(fn)


def check_name(name: object, operation: str) -> None:
    """A registered name is a non-empty ``str``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"{operation}: a name must be a non-empty str, not {name!r}")


def check_mailbox(mailbox_size: int | None, overflow: Overflow, operation: str) -> None:
    """``mailbox_size`` is None or an int >= 1; ``overflow`` an ``Overflow``."""
    if mailbox_size is not None and (
        not isinstance(mailbox_size, int) or isinstance(mailbox_size, bool) or mailbox_size < 1
    ):
        raise ValueError(
            f"{operation}: mailbox_size must be None (unbounded) or an int >= 1, "
            f"not {mailbox_size!r}"
        )
    if not isinstance(overflow, Overflow):
        raise TypeError(f"{operation}: overflow must be an Overflow member, not {overflow!r}")


def check_timeout(timeout: float | None, operation: str) -> None:
    """A timeout is None (no limit) or a number of seconds >= 0."""
    if timeout is None:
        return
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise ValueError(
            f"{operation}: timeout must be None (no limit) or seconds >= 0, not {timeout!r}"
        )
