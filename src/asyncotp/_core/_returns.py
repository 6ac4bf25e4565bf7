"""What a GenServer's callbacks may return besides a reply.

OTP's callbacks return tuples such as ``{noreply, State, {continue, Arg}}``
or ``{noreply, State, Timeout}``; a GenServer keeps its state in ``self``,
so here a callback returns only the instruction: ``Continue(arg)`` (run
``handle_continue(arg)`` before any other message) or
``IdleTimeout(seconds)`` (call ``handle_info(TIMEOUT)`` if no message
arrives within ``seconds``). From ``handle_call`` the same values take a
``reply=`` (as ``Stop`` does): ``return Continue(arg, reply=value)`` is
OTP's ``{reply, Value, State, {continue, Arg}}``. ``init`` may also return
``IGNORE``: the server does not start, and ``start`` returns None.
"""

from __future__ import annotations

import enum
from typing import Final, Literal, TypeAlias, final

import attrs

from ._reasons import _NO_REPLY
from ._safe import safe_repr
from ._validate import check_timeout


class _Ignore(enum.Enum):
    IGNORE = "ignore"

    def __repr__(self) -> str:
        return "IGNORE"


Ignore: TypeAlias = Literal[_Ignore.IGNORE]
"""The type of ``IGNORE``, for ``init``'s annotation."""

IGNORE: Final = _Ignore.IGNORE
"""Return it from ``init`` to not start (OTP's ``ignore``).

The server ends at once with reason ``NORMAL`` (``terminate`` does not run,
nothing is logged, its name is free again) and ``start`` returns None. A
supervisor whose child's start function returns None keeps the child's spec
without a running pid and does not restart it: OTP's ``ignore``.
"""


class _Timeout(enum.Enum):
    TIMEOUT = "timeout"

    def __repr__(self) -> str:
        return "TIMEOUT"


TIMEOUT: Final = _Timeout.TIMEOUT
"""The message ``handle_info`` receives when an ``IdleTimeout`` runs out
(OTP's ``timeout`` atom)."""


def _seconds(value: object) -> float | None:
    return check_timeout(value, "IdleTimeout", "seconds")


@final
@attrs.frozen(repr=False)
class Continue:
    """Run ``handle_continue(arg)`` before any other message.

    Return it from ``init``, ``handle_cast``, ``handle_info`` or
    ``handle_continue`` itself (OTP's ``{continue, Arg}``); from
    ``handle_call`` pass ``reply=`` to answer the caller first (without it,
    the call is answered later with ``caller.reply``, as with ``NOREPLY``).
    Returned from ``init``, ``start`` returns first and the continuation runs
    right after, before any request: the way to do slow setup without making
    the starter (a supervisor) wait. A stop or shutdown that arrived during
    the callback is still handled first, as after any callback.

    A value: ``Continue("load") == Continue("load")``, so a test can call a
    callback directly and compare what it returned.
    """

    arg: object = None
    reply: object = attrs.field(default=_NO_REPLY, kw_only=True)

    @property
    def has_reply(self) -> bool:
        """Whether a reply was given (for ``handle_call``)."""
        return self.reply is not _NO_REPLY

    def __repr__(self) -> str:
        if self.reply is not _NO_REPLY:
            return f"Continue({safe_repr(self.arg)}, reply={safe_repr(self.reply)})"
        return f"Continue({safe_repr(self.arg)})"


@final
@attrs.frozen(repr=False)
class IdleTimeout:
    """Call ``handle_info(TIMEOUT)`` if no message arrives within ``seconds``.

    OTP's ``{noreply, State, Timeout}``: the timer starts when the callback
    returns and any message (a call, a cast, any ``send``) cancels it; a
    message already queued cancels it at once. A system request
    (``asyncotp.sys.get_state``...) does not: once answered, the timeout
    starts again from zero, as in OTP. ``seconds`` is >= 0 (0: time out at
    once unless a message is already queued); None or ``math.inf`` mean no
    timeout, as a plain return. Checked when made: a bad value raises
    ``ValueError`` in the callback that makes it. From ``handle_call``, pass
    ``reply=``. A value, as ``Continue``.
    """

    seconds: float | None = attrs.field(converter=_seconds)
    reply: object = attrs.field(default=_NO_REPLY, kw_only=True)

    @property
    def has_reply(self) -> bool:
        """Whether a reply was given (for ``handle_call``)."""
        return self.reply is not _NO_REPLY

    def __repr__(self) -> str:
        if self.reply is not _NO_REPLY:
            return f"IdleTimeout({self.seconds!r}, reply={safe_repr(self.reply)})"
        return f"IdleTimeout({self.seconds!r})"
