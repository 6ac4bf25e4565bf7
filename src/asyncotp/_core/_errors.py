"""Every error asyncotp raises, in one place.

``ActorError`` is the base of them all. Each error also subclasses the
built-in exception that matches its meaning (``TimeoutError``,
``LookupError``, ``ValueError``, ``RuntimeError``), so ``except TimeoutError``
around a ``call`` does what a Python programmer expects.

Messages name the actor (its pid, which shows its registered name) and say
what to do where there is something to do.
"""

from __future__ import annotations

from ._pid import Pid


class ActorError(Exception):
    """Base class of every error raised by asyncotp itself."""


class NoNodeError(ActorError, RuntimeError):
    """An asyncotp call was made outside a running node."""


class WrongThreadError(NoNodeError):
    """An asyncotp function was called from a thread other than its node's
    event-loop thread. Other threads use ``asyncotp.from_thread``.

    A ``NoNodeError``: no node runs on the calling thread.
    """


class NotAnActorError(ActorError, RuntimeError):
    """A call that needs the calling actor (its pid or mailbox) ran in a plain task."""


class NoProcess(ActorError, LookupError):
    """The destination is dead, or no actor holds that name.

    ``dest`` is the pid or name that was asked for.
    """

    def __init__(self, message: str, dest: object = None) -> None:
        super().__init__(message)
        self.dest = dest


class CallTimeout(ActorError, TimeoutError):
    """A ``call`` or ``stop`` got no answer within its timeout.

    ``pid`` is the server, ``timeout`` the limit in seconds.
    """

    def __init__(self, message: str, pid: Pid | None = None, timeout: float | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.timeout = timeout


class ServerExited(ActorError):
    """The server ended before it replied to a call.

    ``pid`` is the server and ``reason`` its exit reason.
    """

    def __init__(self, message: str, pid: Pid | None = None, reason: object = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.reason = reason


class ReceiveTimeout(ActorError, TimeoutError):
    """No matching message arrived within the ``receive`` timeout."""


class MailboxFull(ActorError):
    """A bounded mailbox with ``Overflow.REJECT`` refused a message (or a call's
    request was dropped by a full mailbox). ``pid`` is the refusing actor."""

    def __init__(self, message: str, pid: Pid | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class NameTaken(ActorError, ValueError):
    """The name is already registered to another actor.

    ``name`` is the name and ``holder`` the pid that holds it.
    """

    def __init__(self, message: str, name: str | None = None, holder: Pid | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.holder = holder


class StartError(ActorError):
    """An actor, server or supervisor failed to start.

    ``__cause__`` is the underlying error (a ``TimeoutError`` when ``init``
    took too long); ``reason`` is the same object, for code that prefers an
    attribute.
    """

    def __init__(self, message: str, reason: object = None) -> None:
        super().__init__(message)
        self.reason = reason


class DuplicateChild(ActorError, ValueError):
    """A supervisor already has a child with that id."""

    def __init__(self, message: str, child_id: object = None, pid: Pid | None = None) -> None:
        super().__init__(message)
        self.child_id = child_id
        self.pid = pid


class MaxChildren(ActorError):
    """A dynamic supervisor already runs its ``max_children``."""


class ChildNotFound(NoProcess):
    """The supervisor has no child with that id (or pid)."""


# -- the testing kit (asyncotp.testing) ---------------------------------------


class WaitTimeout(AssertionError, TimeoutError):
    """A test helper waited in vain: the message says for what, and what it saw.

    An ``AssertionError`` (pytest shows it as a failed expectation) and a
    ``TimeoutError``.
    """


class SettleTimeout(WaitTimeout):
    """``settle()`` found actors that do not come to rest."""
