"""GenServer: the client/server behaviour, with ``call``, ``cast`` and ``stop``.

A call creates one future and one ``Caller``; the server answers by
resolving that future, so a reply never goes through anybody's mailbox and a
reply that arrives after its caller gave up simply vanishes. Call deadlines
share one loop timer (see ``_deadlines``). A server keeps the set of futures
it still owes a reply, so its callers fail at once with ``ServerExited`` when
it ends, whatever it was doing.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Hashable
from typing import Any, ClassVar, Final, final

from .._core._childspec import ChildSpec, ChildType, Restart, ShutdownSetting
from .._core._errors import (
    ActorError,
    CallTimeout,
    MailboxFull,
    NoProcess,
    ServerExited,
    StartError,
)
from .._core._node import (
    _BUDGET,
    _EXITING,
    _UNSET,
    Droppable,
    ExitWith,
    Overflow,
    Process,
    _check_mailbox,
    _check_name,
    _label,
    _proc_var,
    current_node,
    current_process,
    intercepted,
    resolve,
)
from .._core._pid import Pid
from .._core._reasons import KILLED, NORMAL, Stop

__all__ = ["NOREPLY", "Caller", "GenServer", "call", "cast", "stop"]

logger = logging.getLogger("asyncotp")


class _NoReplyMarker(enum.Enum):
    NOREPLY = "noreply"

    def __repr__(self) -> str:
        return "NOREPLY"


NOREPLY: Final = _NoReplyMarker.NOREPLY
"""Return it from ``handle_call`` to answer later with ``caller.reply(value)``."""


@final
class Caller(Droppable):
    """The caller of one ``call``: ``handle_call`` receives it.

    ``caller.reply(value)`` answers (from any task, at most once; later
    replies are ignored). ``caller.pid`` is the calling actor, or None for a
    call made from a plain task.
    """

    __slots__ = ("_fut", "_server", "_timeout", "pid", "request")

    def __init__(
        self,
        request: object,
        fut: asyncio.Future[Any],
        server: Process,
        pid: Pid | None,
        timeout: float | None,
    ) -> None:
        self.request = request
        self.pid = pid
        self._fut = fut
        self._server = server
        self._timeout = timeout

    def reply(self, value: object) -> bool:
        """Answer the call; return False if the caller no longer waits."""
        callers = self._server.callers
        if callers:
            callers.discard(self)
        fut = self._fut
        if fut.done():
            return False
        fut.set_result(value)
        return True

    def fail(self, error: BaseException) -> bool:
        """Answer the call with an error: the caller's ``call`` raises ``error``.

        Like ``reply``, at most once, from any task; returns False if the
        caller no longer waits. Use it for errors that are the caller's
        business (a refused request), not for the server's own crash.
        """
        if not isinstance(error, BaseException):
            raise TypeError(f"Caller.fail takes an exception instance, not {error!r}")
        callers = self._server.callers
        if callers:
            callers.discard(self)
        fut = self._fut
        if fut.done():
            return False
        fut.set_exception(error)
        return True

    @property
    def waiting(self) -> bool:
        """Whether the caller still waits for a reply."""
        return not self._fut.done()

    # Expirable, for the shared deadline timer.
    def done(self) -> bool:
        return self._fut.done()

    def expire(self) -> None:
        fut = self._fut
        if fut.done():
            return
        callers = self._server.callers
        if callers:
            callers.discard(self)
        pid = self._server.pid
        fut.set_exception(
            CallTimeout(
                f"call to {pid!r} got no reply within {self._timeout} s (request "
                f"{self.request!r}); the server is busy or blocked: raise the timeout, or "
                "look at what the server is doing",
                pid,
                self._timeout,
            )
        )

    def abandon(self, proc: Process, reason: object) -> None:
        fut = self._fut
        if not fut.done():
            fut.set_exception(
                ServerExited(
                    f"{_label(proc)} ended with reason {reason!r} before it replied",
                    proc.pid,
                    reason,
                )
            )

    def dropped(self, proc: Process) -> None:
        fut = self._fut
        if proc.callers:
            proc.callers.discard(self)
        if not fut.done():
            fut.set_exception(
                MailboxFull(
                    f"call to {proc.pid!r}: its mailbox is full (mailbox_size={proc.maxlen}, "
                    f"{proc.overflow!r}) and the request {self.request!r} was not queued; "
                    "retry later or give the server a larger mailbox_size",
                    proc.pid,
                )
            )

    def __repr__(self) -> str:
        return f"<Caller {self.pid!r} request={self.request!r}>"


@final
class Cast:
    """The envelope of a ``cast`` request, as a plain actor would receive it."""

    __slots__ = ("request",)

    def __init__(self, request: object) -> None:
        self.request = request

    def __repr__(self) -> str:
        return f"Cast({self.request!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is Cast and other.request == self.request

    __hash__ = None  # type: ignore[assignment]


_CAST_TAG: Final = object()
"""Marks a cast in a GenServer's mailbox; a bare object() is not GC-tracked."""


class _StartWait:
    __slots__ = ("error", "fut", "timeout")

    def __init__(self, fut: asyncio.Future[None], timeout: float) -> None:
        self.fut = fut
        self.timeout = timeout
        self.error: TimeoutError | None = None  # set when the deadline fires

    def done(self) -> bool:
        return self.fut.done()

    def expire(self) -> None:
        if not self.fut.done():
            self.error = TimeoutError(f"init did not return within {self.timeout} s")
            self.fut.set_exception(self.error)


class _StopWait:
    """The deadline of one ``stop``: shares the node's call-deadline timer."""

    __slots__ = ("fut", "pid", "timeout")

    def __init__(self, fut: asyncio.Future[object], pid: Pid, timeout: float) -> None:
        self.fut = fut
        self.pid = pid
        self.timeout = timeout

    def done(self) -> bool:
        return self.fut.done()

    def expire(self) -> None:
        if not self.fut.done():
            self.fut.set_exception(
                CallTimeout(
                    f"stop: {self.pid!r} did not end within {self.timeout} s (it is still "
                    "running its current callback or terminate); wait longer, or "
                    "send_exit(pid, KILL)",
                    self.pid,
                    self.timeout,
                )
            )


def _check_start_timeout(timeout: object, cls: type) -> None:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"{cls.__qualname__}.start: timeout must be seconds > 0, not {timeout!r}")


def _check_timeout(timeout: float | None, operation: str) -> None:
    if timeout is None:
        return
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise ValueError(
            f"{operation}: timeout must be None (no limit) or seconds >= 0, not {timeout!r}"
        )


class GenServer:
    """A server actor: state in ``self``, requests handled one at a time.

    Example::

        class Counter(GenServer):
            async def init(self, start: int = 0) -> None:
                self.count = start

            async def handle_call(self, request, caller):
                if request == "get":
                    return self.count
                raise ValueError(f"unknown request {request!r}")

            async def handle_cast(self, request) -> None:
                self.count += request

        pid = await Counter.start(5, name="counter")
        cast(pid, 2)
        assert await call("counter", "get") == 7

    Client API: ``Cls.start`` (and ``Cls.child_spec`` for supervisors),
    ``call``, ``cast``, ``send``, ``stop``. Callbacks (all async, all
    optional but the ones you use):

    * ``init(*args, **kwargs)``: runs before ``start`` returns. Raise (or
      ``raise Stop(reason)``) to refuse to start: ``start`` raises
      ``StartError``.
    * ``handle_call(request, caller)``: its return value is the reply.
      Return ``NOREPLY`` to answer later with ``caller.reply(value)``.
      ``raise Stop(reason, reply=value)`` replies, then stops.
    * ``handle_cast(request)``: fire-and-forget requests.
    * ``handle_info(message)``: every other message (``send``, ``Down``,
      ``Exited``, timers). The default logs and drops it.
    * ``terminate(reason)``: runs when the server stops (``Stop``, a crash in
      a callback, a shutdown from its supervisor, ``stop()``), not after
      ``KILL``.

    Requests are handled one at a time, in arrival order. A running callback
    is never interrupted by a shutdown or ``stop()``: they are handled as soon
    as it returns, ahead of queued requests (whose callers get
    ``ServerExited``). Only ``KILL`` (a supervisor's, once the child's
    shutdown time runs out) cuts a callback short; a callback that shields
    itself from cancellation cannot be killed.

    Exit signals: a server that does not trap exits stops (running
    ``terminate``) when a linked actor ends abnormally; one that calls
    ``set_trap_exits(True)`` in ``init`` gets them as ``Exited`` messages,
    except from its parent (its supervisor), whose exit signal always means
    "stop".
    """

    _asyncotp_child_type: ClassVar[ChildType] = ChildType.WORKER

    async def init(self, *args: Any, **kwargs: Any) -> None:
        """Set up the server's state; the default accepts no arguments."""
        if args or kwargs:
            raise TypeError(
                f"{type(self).__qualname__}.init takes the arguments given to start() "
                f"({args!r}, {kwargs!r}); define `async def init(self, ...)` to accept them"
            )

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        """Answer a ``call``; the default crashes the server, as Elixir's does."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received the call {request!r} but defines no "
            "handle_call; define `async def handle_call(self, request, caller)`"
        )

    async def handle_cast(self, request: Any) -> None:
        """Handle a ``cast``; the default crashes the server, as Elixir's does."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received the cast {request!r} but defines no "
            "handle_cast; define `async def handle_cast(self, request)`"
        )

    async def handle_info(self, message: Any) -> None:
        """Handle any other message; the default logs it and drops it."""
        proc = _proc_var.get()
        logger.warning(
            "%s %r received an unexpected message and dropped it: %r; define handle_info "
            "to handle it",
            type(self).__qualname__,
            proc.pid if proc is not None else None,
            message,
        )

    async def terminate(self, reason: Any) -> None:
        """Clean up when the server stops; the default does nothing."""

    # -- client side ----------------------------------------------------------

    @classmethod
    async def start(
        cls,
        *args: Any,
        name: str | None = None,
        link: bool = False,
        mailbox_size: int | None = None,
        overflow: Overflow = Overflow.REJECT,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> Pid:
        """Spawn the server and wait until ``init(*args, **kwargs)`` has returned.

        If ``init`` raises or takes longer than ``timeout`` seconds, ``start``
        raises ``StartError`` (its ``__cause__`` is the error, a
        ``TimeoutError`` for the timeout) and nothing is left running or
        registered. ``link=True`` links the server to the calling actor.
        """
        node = current_node()
        if name is not None:
            _check_name(name, f"{cls.__qualname__}.start")
        if mailbox_size is not None or overflow is not Overflow.REJECT:
            _check_mailbox(mailbox_size, overflow, f"{cls.__qualname__}.start")
        if type(timeout) is not float or not timeout > 0:
            _check_start_timeout(timeout, cls)
        starter = current_process(f"{cls.__qualname__}.start(..., link=True)") if link else None
        server = cls()
        started: asyncio.Future[None] = node.loop.create_future()
        proc = node.spawn_process(
            _serve(server, args, kwargs, started),
            name=name,
            link_to=starter,
            trap_exits=False,
            mailbox_size=mailbox_size,
            overflow=overflow,
        )
        proc.defers_exits = True
        if starter is not None:
            proc.parent = starter.pid
        wait = _StartWait(started, timeout)
        node.deadlines.add(wait, timeout)
        try:
            await started
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                if not started.done():
                    started.cancel()
                raise
            who = f"<Pid {proc.pid.number} {name!r}>" if name else repr(proc.pid)
            if exc is wait.error:  # our deadline, not a TimeoutError raised by init
                _unlink_pair(starter, proc)
                proc.reported = True
                proc.kill()
                await node.wait_exit(proc, None)
                raise StartError(
                    f"{cls.__qualname__} did not finish init within {timeout} s "
                    f"({who} was killed); make init faster or raise start's timeout",
                    exc,
                ) from exc
            await node.wait_exit(proc, None)
            reason = exc.reason if isinstance(exc, Stop) else exc
            raise StartError(
                f"{cls.__qualname__}.init failed in {who}: {reason!r}", reason
            ) from exc
        return proc.pid

    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = None,  # noqa: A002 - the contract's name, as in OTP
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **kwargs: Any,
    ) -> ChildSpec:
        """A child spec that starts this server linked to its supervisor.

        ``id`` defaults to the class name. Other keyword arguments (``name=``,
        ``mailbox_size=``, ... and ``init``'s own) go to ``start`` at every
        (re)start. ``backoff=`` is taken by the spec itself.
        """
        backoff = kwargs.pop("backoff", None)
        start = functools.partial(cls.start, *args, link=True, **kwargs)
        extra: dict[str, Any] = {}
        if shutdown is not None:
            extra["shutdown"] = shutdown
        return ChildSpec(
            cls.__name__ if id is None else id,
            start,
            restart,
            type=cls._asyncotp_child_type,
            backoff=backoff,
            **extra,
        )


def _unlink_pair(a: Process | None, b: Process) -> None:
    if a is None:
        return
    if a.links is not None:
        a.links.discard(b.pid)
    if b.links is not None:
        b.links.discard(a.pid)


async def _serve(
    server: GenServer, args: tuple[Any, ...], kwargs: dict[str, Any], started: asyncio.Future[None]
) -> ExitWith:
    proc = _proc_var.get()
    assert proc is not None
    try:
        await server.init(*args, **kwargs)
    except BaseException as exc:
        # Unlink from the starter first, so that a starter that used
        # link=True survives to receive StartError; a KILL during init
        # (a cancellation) must reach the starter too, not leave it waiting.
        if proc.parent is not None:
            starter = proc.node.procs.get(proc.parent)
            if starter is not None:
                _unlink_pair(starter, proc)
        proc.reported = True
        if not started.done():
            started.set_exception(exc if isinstance(exc, Exception) else Stop(KILLED))
        raise
    if started.done():  # the starter gave up (timeout or cancellation): nobody knows us
        raise Stop(NORMAL)
    started.set_result(None)
    del started  # an idle server holds as few objects as it can

    # The message loop. Callbacks are looked up once, unbound, and the common
    # case of a call is answered inline: this loop is the server's hot path.
    cls = type(server)
    handle_call = cls.handle_call
    handle_cast = cls.handle_cast
    handle_info = cls.handle_info
    mailbox = proc.mailbox
    loop = proc.node.loop
    budget = 0
    reason: object
    while True:
        if proc.pending_exit is not _UNSET:
            reason = proc.pending_exit
            if proc.forced_reason is _UNSET:
                proc.forced_reason = reason  # a signal's consequence, not its own crash
            break
        if not mailbox:
            budget = 0
            waiter = loop.create_future()
            proc.waiter = waiter
            await waiter
            continue
        if budget >= _BUDGET:
            budget = 0
            await asyncio.sleep(0)
            continue
        budget += 1
        message = mailbox.popleft()
        kind = type(message)
        try:
            if kind is tuple and len(message) == 2 and message[0] is _CAST_TAG:
                await handle_cast(server, message[1])
            elif kind is Caller:
                proc.current = message
                result = await handle_call(server, message.request, message)
                proc.current = None
                if result is not NOREPLY:
                    fut = message._fut
                    if not fut.done():
                        fut.set_result(result)
                elif not message._fut.done():
                    callers = proc.callers
                    if callers is None:
                        proc.callers = {message}
                    else:
                        callers.add(message)
            elif kind is Cast:
                await handle_cast(server, message.request)
            else:
                await handle_info(server, message)
        except Stop as stop:
            if stop.has_reply and kind is Caller:
                proc.current = None
                message.reply(stop.reply)
            reason = stop.reason
            break
        except Exception as exc:  # noqa: BLE001 - a callback's crash is the server's reason
            shown = Cast(message[1]) if kind is tuple and message[0] is _CAST_TAG else message
            exc.add_note(f"in {cls.__qualname__} {proc.pid!r} handling {shown!r}")
            reason = exc
            break
    proc.state = _EXITING
    if not proc.killed and cls.terminate is not GenServer.terminate:
        try:
            await server.terminate(reason)
        except Exception as exc:  # noqa: BLE001 - terminate's crash becomes the reason
            exc.add_note(f"raised by {cls.__qualname__}.terminate({reason!r})")
            reason = exc
            proc.forced_reason = _UNSET  # its own crash, to be reported
    return ExitWith(reason)


# -- client functions ------------------------------------------------------


async def call(dest: Pid | str, request: object, timeout: float | None = 5.0) -> Any:
    """Send ``request`` to a server and wait for its reply.

    ``timeout=None`` waits without limit. Raises ``CallTimeout`` past
    ``timeout``, ``NoProcess`` if ``dest`` is dead or an unknown name,
    ``ServerExited`` if the server ends before replying, ``MailboxFull`` if
    a bounded mailbox refuses the request. A late reply is discarded.
    """
    if type(dest) is Pid:
        node = dest._node
        proc = node.procs.get(dest)
    else:
        proc = resolve(dest, "call")
        node = current_node()
    if proc is None:
        if node.closed:
            current_node()  # raises NoNodeError
        raise NoProcess(f"call: {dest!r} is not alive; nothing to call", dest)
    me = _proc_var.get()
    if me is proc:
        raise ActorError(
            f"call: {proc.pid!r} called itself, which would wait forever; call a helper "
            "function directly instead"
        )
    if timeout is not None and timeout != 5.0:
        _check_timeout(timeout, "call")
    fut = node.loop.create_future()
    caller = Caller(request, fut, proc, me.pid if me is not None else None, timeout)
    if node.intercept is None or not intercepted(node, proc, caller):
        mailbox = proc.mailbox
        if proc.maxlen is None or len(mailbox) < proc.maxlen or proc._overflow(caller):
            mailbox.append(caller)
            waiter = proc.waiter
            if waiter is not None:
                proc.waiter = None
                if not waiter.done():
                    waiter.set_result(None)
    if timeout is not None and not fut.done():
        node.deadlines.add(caller, timeout)
    return await fut


def cast(dest: Pid | str, request: object) -> None:
    """Send a fire-and-forget request to a server; never waits.

    A dead pid drops it; an unknown name raises ``NoProcess``; a full mailbox
    with ``Overflow.REJECT`` raises ``MailboxFull``.
    """
    if type(dest) is Pid:
        node = dest._node
        proc = node.procs.get(dest)
        if proc is None:
            if node.closed:
                current_node()
            if node.on_dead_letter is not None:
                node.on_dead_letter(dest, Cast(request))
            return
    else:
        proc = resolve(dest, "cast")
        if proc is None:
            return
        node = proc.node
    # A GenServer gets a plain tuple: cheaper to build, and untracked by the
    # garbage collector once it has been seen (a Cast object stays tracked).
    message: object
    if node.intercept is not None:
        message = Cast(request)  # interceptors see the public envelope
        if intercepted(node, proc, message):
            return
    else:
        message = (_CAST_TAG, request) if proc.defers_exits else Cast(request)
    # Process.deliver, inlined (the cast hot path).
    mailbox = proc.mailbox
    if proc.maxlen is not None and len(mailbox) >= proc.maxlen and not proc._overflow(message):
        return
    mailbox.append(message)
    waiter = proc.waiter
    if waiter is not None:
        proc.waiter = None
        if not waiter.done():
            waiter.set_result(None)


async def stop(dest: Pid | str, reason: object = NORMAL, timeout: float | None = 5.0) -> None:
    """Stop a server (or any actor) with ``reason`` and wait until it has
    ended and its ``terminate`` has run.

    Past ``timeout``: ``CallTimeout``, and the actor is left as it is: not
    killed, and (as with OTP's ``proc_lib:stop``) the stop request stays
    pending, so a server busy in a long callback still stops when it
    returns. ``NoProcess`` if it is not alive.
    """
    _check_timeout(timeout, "stop")
    proc = resolve(dest, "stop")
    if proc is None:
        raise NoProcess(f"stop: {dest!r} is not alive", dest)
    me = _proc_var.get()
    if me is proc:
        raise ActorError(
            f"stop: {proc.pid!r} cannot wait for its own end; raise Stop(reason) instead"
        )
    exited = proc.exit_future()
    proc.request_stop(reason)
    if timeout is not None and not exited.done():
        proc.node.deadlines.add(_StopWait(exited, proc.pid, timeout), timeout)
    await exited
