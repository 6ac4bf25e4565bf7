"""Formatting user objects without trusting them.

The runtime puts user objects (messages, requests, reasons, states,
exceptions) into error messages, notes and crash reports. A ``__repr__``
that raises must not turn an exit, a timeout, a reply or a log record into a
second failure, so every such message is built with ``safe_repr``: the
object's ``repr``, or a placeholder naming its type when ``repr`` fails.

Log records are formatted later, by whatever handler the program installed
(pytest's even raises when a record cannot be formatted). So the core's own
records carry formatted text, and the ``asyncotp`` logger, which every layer
uses, has one filter, ``SafeArgs``, that wraps the arguments of each record
it lets through in ``Shown``, whose ``repr`` and ``str`` cannot fail.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, final


def safe_repr(obj: object) -> str:
    """``repr(obj)``, or ``<Type object at 0x...: repr() raised Error>`` if
    that raises (an ``Exception``; ``KeyboardInterrupt`` and ``SystemExit``
    go through)."""
    try:
        return repr(obj)
    except Exception as exc:  # noqa: BLE001 - any failure of user code becomes a placeholder
        return _placeholder(obj, "repr", exc)


def safe_str(obj: object) -> str:
    """``str(obj)``, or a placeholder if that raises."""
    try:
        return str(obj)
    except Exception as exc:  # noqa: BLE001 - any failure of user code becomes a placeholder
        return _placeholder(obj, "str", exc)


def _placeholder(obj: object, how: str, exc: Exception) -> str:
    cls = type(obj)
    try:
        kind = f"{cls.__module__}.{cls.__qualname__}"
    except Exception:  # noqa: BLE001 - a metaclass with a broken name
        kind = "object"
    return f"<{kind} object at {id(obj):#x}: {how}() raised {type(exc).__name__}>"


@final
class Shown:
    """A log-record argument whose ``%r`` and ``%s`` cannot fail."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __repr__(self) -> str:
        return safe_repr(self.obj)

    def __str__(self) -> str:
        return safe_str(self.obj)


def _shown(arg: object) -> object:
    # Strings and None as they are; numbers too (``%d`` and ``%f`` need the
    # number itself, an IntEnum included); everything else wrapped.
    if type(arg) is str or arg is None or isinstance(arg, (int, float)):
        return arg
    return Shown(arg)


@final
class SafeArgs(logging.Filter):
    """Wraps every argument of a record in ``Shown`` (``%r``/``%s`` safe)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if args:
            if isinstance(args, tuple):
                record.args = tuple(_shown(arg) for arg in args)
            elif isinstance(args, Mapping):
                record.args = {key: _shown(value) for key, value in args.items()}
        return True


SAFE_ARGS: Final = SafeArgs()
logging.getLogger("asyncotp").addFilter(SAFE_ARGS)
