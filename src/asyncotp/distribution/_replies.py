"""The errors of remote calls, as the caller raises them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .._core import CallTimeout, MailboxFull, NoProcess, Pid, ServerExited, safe_repr
from ._codec import BadMessage, Json


def reply_error(
    error: Json,
    pid: Pid,
    request: object,
    timeout: float | None,
    decode: Callable[[Json, Pid | None], Any],
) -> BaseException:
    """The exception a remote call or stop raises for the error answer ``error``."""
    if type(error) is not dict:
        return BadMessage(f"the reply of {pid!r} is malformed")
    kind = error.get("kind")
    if kind == "noproc":
        return NoProcess(f"{pid!r} is not alive", pid)
    if kind == "exited":
        reason = decode(error.get("reason"), pid)
        return ServerExited(
            f"{pid!r} ended with reason {safe_repr(reason)} before it replied", pid, reason
        )
    if kind == "timeout":
        return CallTimeout(
            f"call to {pid!r} got no reply within {timeout} s (request "
            f"{safe_repr(request)}); raise the timeout, or look at what the server is doing",
            pid,
            timeout,
        )
    if kind == "full":
        return MailboxFull(f"call to {pid!r}: {error.get('text')}", pid)
    if kind == "failed":
        failure = decode(error.get("reason"), pid)
        if isinstance(failure, BaseException):
            return failure
    if kind == "encode":
        return TypeError(f"call to {pid!r}: the reply could not be sent: {error.get('text')}")
    return BadMessage(f"the reply of {pid!r} is malformed")


def expire(fut: asyncio.Future[Any], error: BaseException) -> None:
    if not fut.done():
        fut.set_exception(error)


def same(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a user __eq__ that fails: not the same
        return False
