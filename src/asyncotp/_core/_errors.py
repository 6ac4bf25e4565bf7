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
from ._via import Via


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

    ``name`` is the name (a ``str``, or a ``Via`` name) and ``holder`` the
    pid that holds it.
    """

    def __init__(
        self, message: str, name: str | Via | None = None, holder: Pid | None = None
    ) -> None:
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


class TaskTimeout(ActorError, TimeoutError):
    """``Task.await_`` (or ``await task``, ``Task.await_many``, an
    ``async_stream`` with ``on_timeout="exit"``) got no result in time.

    The task keeps running: stop it with ``Task.shutdown``, or let the link
    to its caller stop it if the caller ends with this error. ``pid`` is the
    task (the first one still running, for ``await_many``), ``timeout`` the
    limit in seconds.
    """

    def __init__(self, message: str, pid: Pid | None = None, timeout: float | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.timeout = timeout


class TaskExited(ActorError):
    """A task ended without a result, with an exit reason that is not an
    exception (``KILLED``, ``SHUTDOWN``, ``NOPROC``, a ``Stop`` reason).

    A task that raised re-raises its own exception instead. ``pid`` is the
    task and ``reason`` its exit reason.
    """

    def __init__(self, message: str, pid: Pid | None = None, reason: object = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.reason = reason


# -- the testing kit (asyncotp.testing) ---------------------------------------


class WaitTimeout(AssertionError, TimeoutError):
    """A test helper waited in vain: the message says for what, and what it saw.

    An ``AssertionError`` (pytest shows it as a failed expectation) and a
    ``TimeoutError``.
    """


class SettleTimeout(WaitTimeout):
    """``settle()`` found actors that do not come to rest."""


# -- resilience ----
# The errors of asyncotp.resilience (public there), and the states and
# reasons they carry. The imports stay in this block for now, so that it
# merges apart from the rest of the file; they belong at the top.

import enum  # noqa: E402 - see above
from collections.abc import Hashable  # noqa: E402 - see above


class BreakerState(enum.Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    """Calls go through; failures are counted."""
    OPEN = "open"
    """Calls are refused at once (``CircuitOpen``, or the fallback)."""
    HALF_OPEN = "half_open"
    """A limited number of trial calls go through; the rest are refused."""

    def __repr__(self) -> str:
        return f"BreakerState.{self.name}"


class CircuitOpen(ActorError):
    """A circuit breaker refused a call: it is open, or half-open with all its
    trial calls taken.

    ``breaker`` is the breaker's pid, ``state`` its state and ``retry_in``
    the seconds until it lets a trial call through (None when half-open).
    """

    def __init__(
        self,
        message: str,
        breaker: Pid | None = None,
        state: BreakerState | None = None,
        retry_in: float | None = None,
    ) -> None:
        super().__init__(message)
        self.breaker = breaker
        self.state = state
        self.retry_in = retry_in


class ShedReason(enum.Enum):
    """Why a ``SheddingServer`` dropped a request instead of handling it."""

    EXPIRED = "expired"
    """It waited in the queue past its deadline."""
    EVICTED = "evicted"
    """A more important request took its place in the full queue."""
    QUEUE_FULL = "queue_full"
    """The queue was full of requests at least as important."""

    def __repr__(self) -> str:
        return f"ShedReason.{self.name}"


class Overloaded(ActorError):
    """A server shed the request instead of handling it; nothing was done.

    ``pid`` is the server, ``reason`` a ``ShedReason``, ``waited`` the seconds
    the request spent queued, and ``retry_after`` (or None) the server's
    estimate of when it will have room again: the time to work through its
    queue. The request had no effect, so retrying it is always safe. A front
    end answers ``503 Service Unavailable`` (``EXPIRED``) or ``429 Too Many
    Requests`` (``QUEUE_FULL``, ``EVICTED``) with a ``Retry-After`` header.
    """

    def __init__(
        self,
        message: str,
        pid: Pid | None = None,
        reason: ShedReason = ShedReason.QUEUE_FULL,
        waited: float = 0.0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.pid = pid
        self.reason = reason
        self.waited = waited
        self.retry_after = retry_after


class RetryError(ActorError):
    """``retry`` used up its attempts; ``__cause__`` and ``last_error`` are the
    last attempt's error, ``attempts`` how many were made."""

    def __init__(
        self, message: str, attempts: int = 0, last_error: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_error = last_error


class RetryDeadlineExceeded(RetryError, TimeoutError):
    """``retry`` reached its deadline (also a ``TimeoutError``).

    Raised when the deadline cuts an attempt short, and as soon as the next
    attempt could not start before it (``retry`` does not sleep for nothing).
    ``last_error`` is the last attempt's error (None when the very first one
    was cut short); ``deadline`` the policy's deadline in seconds.
    """

    def __init__(
        self,
        message: str,
        attempts: int = 0,
        last_error: BaseException | None = None,
        deadline: float | None = None,
    ) -> None:
        super().__init__(message, attempts, last_error)
        self.deadline = deadline


class IdempotencyKeyReused(ActorError, ValueError):
    """An idempotency key came back with a different request.

    Raised by ``IdempotencyStore.run_once`` when both requests gave a
    ``fingerprint`` (a digest of the request) and they differ: the client
    reused a key for another request, which is a bug on its side (answer
    ``422 Unprocessable Entity``). ``key`` is the key, ``store`` the store.
    """

    def __init__(self, message: str, key: Hashable = None, store: Pid | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.store = store


class JobFailed(ActorError):
    """A job failed every attempt and was moved to the dead-letter queue.

    Raised by ``WorkerPool.run``. ``job_id`` is the job's number in the pool,
    ``attempts`` how many times it ran, ``letter_id`` its id in the
    dead-letter queue (None if the queue could not take it); ``__cause__``
    is the last attempt's error.
    """

    def __init__(
        self,
        message: str,
        job_id: int | None = None,
        attempts: int = 0,
        letter_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.attempts = attempts
        self.letter_id = letter_id


class DeadLetterNotFound(ActorError, LookupError):
    """The dead-letter queue has no letter with that id (replayed, discarded,
    dropped, or never there). ``letter_id`` is the id asked for."""

    def __init__(self, message: str, letter_id: int | None = None) -> None:
        super().__init__(message)
        self.letter_id = letter_id


class HandlerExists(ActorError, ValueError):
    """``telemetry.attach``: a handler with that id is attached already.

    ``handler_id`` is the id asked for; detach it first, or choose another.
    """

    def __init__(self, message: str, handler_id: str | None = None) -> None:
        super().__init__(message)
        self.handler_id = handler_id


class NodeUnreachable(ActorError, ConnectionError):
    """A call or stop addressed an actor on a node that is not reachable
    (``asyncotp.distribution``): the node was declared down, or nobody
    listens on its subject any more (NATS "no responders").

    ``node`` is the node's name and ``pid`` the remote pid asked for.
    """

    def __init__(self, message: str, node: str, pid: Pid | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.pid = pid
