"""Exit reasons, exit-related messages and references.

An actor's exit reason is ``NORMAL`` when its function returns, the exception
instance when it raises, the ``reason`` of a ``Stop``, ``KILLED`` after
``KILL``, and ``NOPROC`` in monitors of actors that were already gone.
Any other object can be a reason too (``raise Stop("bad_config")``).
"""

from __future__ import annotations

import enum
import itertools
from typing import Final, final

import attrs

from ._pid import Pid
from ._safe import safe_repr


class ExitReason(enum.Enum):
    """The standard exit reasons (Erlang's atoms)."""

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    KILL = "kill"
    KILLED = "killed"
    NOPROC = "noproc"
    NOCONNECTION = "noconnection"

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


NORMAL: Final = ExitReason.NORMAL
"""The actor's function returned, or it was stopped normally."""
SHUTDOWN: Final = ExitReason.SHUTDOWN
"""An orderly shutdown, ordered by a supervisor or the node."""
KILL: Final = ExitReason.KILL
"""The untrappable exit signal: the target ends with reason ``KILLED``."""
KILLED: Final = ExitReason.KILLED
"""The reason of an actor that was sent ``KILL``."""
NOPROC: Final = ExitReason.NOPROC
"""The actor was already gone (monitors, links)."""
NOCONNECTION: Final = ExitReason.NOCONNECTION
"""The actor's node was lost (``asyncotp.distribution``): its links and
monitors fire with this reason, as Erlang's ``noconnection``."""


@attrs.frozen(repr=False)
class Shutdown:
    """A shutdown with a detail, Erlang's ``{shutdown, Detail}``.

    Like ``SHUTDOWN`` it is a clean end for ``Restart.TRANSIENT`` children and
    for crash reports; over links it propagates like any other reason.
    """

    detail: object

    def __repr__(self) -> str:
        return f"Shutdown(detail={safe_repr(self.detail)})"


def is_clean_exit(reason: object) -> bool:
    """Whether ``reason`` is ``NORMAL``, ``SHUTDOWN`` or ``Shutdown(...)``.

    Clean ends are not logged as crashes and do not restart transient children.
    """
    return reason is NORMAL or reason is SHUTDOWN or type(reason) is Shutdown


@final
class _NoReply(enum.Enum):
    TOKEN = 0

    def __repr__(self) -> str:
        return "<no reply>"


_NO_REPLY: Final = _NoReply.TOKEN


class Stop(Exception):
    """Raise to end the calling actor (or GenServer) with ``reason``.

    In a GenServer's ``handle_call``, ``reply=`` answers the caller first.
    ``raise Stop()`` ends the actor normally.
    """

    def __init__(self, reason: object = NORMAL, reply: object = _NO_REPLY) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply

    @property
    def has_reply(self) -> bool:
        """Whether a reply was given."""
        return self.reply is not _NO_REPLY

    def __repr__(self) -> str:
        if self.has_reply:
            return f"Stop({safe_repr(self.reason)}, reply={safe_repr(self.reply)})"
        return f"Stop({safe_repr(self.reason)})"


@attrs.frozen(repr=False)
class Exited:
    """An exit signal turned into a message, for an actor that traps exits.

    ``pid`` is the actor the signal came from (the linked actor that ended,
    or the sender of ``send_exit``); ``reason`` is its reason.
    """

    pid: Pid
    reason: object

    def __repr__(self) -> str:
        return f"Exited(pid={self.pid!r}, reason={safe_repr(self.reason)})"


_ref_counter = itertools.count(1)


@final
class MonitorRef:
    """A reference to one monitor, returned by ``monitor`` and carried by ``Down``."""

    __slots__ = ("_number",)

    def __init__(self) -> None:
        self._number = next(_ref_counter)

    def __repr__(self) -> str:
        return f"<MonitorRef {self._number}>"


@attrs.frozen(repr=False)
class Down:
    """The message a monitor delivers when the monitored actor ends."""

    ref: MonitorRef
    pid: Pid
    reason: object

    def __repr__(self) -> str:
        return f"Down(ref={self.ref!r}, pid={self.pid!r}, reason={safe_repr(self.reason)})"
