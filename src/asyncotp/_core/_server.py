"""The client side of a server: ``call``, ``cast``, ``stop``, ``Caller`` and
the start handshake every behaviour shares.

This is the runtime half of a GenServer (the class with its callbacks lives
in ``asyncotp.actors``; the loop that answers in ``_serverloop``). A call
creates one future and one ``Caller``; the server answers by resolving that
future, so a reply never goes through
anybody's mailbox and a reply that arrives after its caller gave up simply
vanishes. Call deadlines share one loop timer (see ``_deadlines``). A server
keeps the set of callers it still owes a reply, so they fail at once with
``ServerExited`` when it ends, whatever it was doing.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal, Protocol, TypeAlias, TypeVar, final, overload

from . import _telemetry
from ._actor import spawn_process
from ._context import (
    current_node,
    current_process,
    get_ident,
    resolve,
    task_on,
    via_pid,
    wrong_thread,
)
from ._deadlines import StartWait, StopWait
from ._errors import (
    ActorError,
    CallTimeout,
    MailboxFull,
    NameTaken,
    NoProcess,
    ServerExited,
    StartError,
)
from ._exits import (
    add_on_exit,
    exit_future,
    fatal,
    kill,
    label,
    request_stop,
    unlink_pair,
    wait_exit,
)
from ._mailbox import deliver, intercepted
from ._pid import Pid
from ._reasons import KILL, KILLED, NORMAL, Stop
from ._remote import remote_call, remote_of, remote_stop
from ._returns import IGNORE
from ._safe import safe_repr
from ._state import (
    Droppable,
    ExitWith,
    Node,
    Overflow,
    Process,
    proc_var,
)
from ._validate import MAX_SECONDS, check_mailbox, check_name, check_seconds, check_timeout
from ._via import Name, Via, async_claim, holder_of, release_via


class _NoReplyMarker(enum.Enum):
    NOREPLY = "noreply"

    def __repr__(self) -> str:
        return "NOREPLY"


NOREPLY: Final = _NoReplyMarker.NOREPLY
"""Return it from ``handle_call`` to answer later with ``caller.reply(value)``."""

NoReply: TypeAlias = Literal[_NoReplyMarker.NOREPLY]
"""The type of ``NOREPLY``, for annotations: ``-> int | NoReply``."""

_CallReq = TypeVar("_CallReq")
_CallRep = TypeVar("_CallRep")


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
        """Answer the call; return False if the caller no longer waits.

        From any task of the node; from another thread, ``WrongThreadError``
        (hand the value to the loop with ``loop.call_soon_threadsafe``)."""
        server = self._server
        if server.node.thread != get_ident():
            wrong_thread(server.node, "Caller.reply")
        callers = server.callers
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
            raise TypeError(f"Caller.fail takes an exception instance, not {safe_repr(error)}")
        server = self._server
        if server.node.thread != get_ident():
            wrong_thread(server.node, "Caller.fail")
        callers = server.callers
        if callers:
            callers.discard(self)
        fut = self._fut
        if fut.done():
            return False
        fut.set_exception(error)
        return True

    @property
    def timeout(self) -> float | None:
        """The caller's timeout in seconds (None: no limit)."""
        return self._timeout

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
                f"{safe_repr(self.request)}); the server is busy or blocked: raise the timeout, or "
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
                    f"{label(proc)} ended with reason {safe_repr(reason)} before it replied",
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
                    f"{proc.overflow!r}) and the request {safe_repr(self.request)} was not "
                    "queued; "
                    "retry later or give the server a larger mailbox_size",
                    proc.pid,
                )
            )

    def __repr__(self) -> str:
        return f"<Caller {self.pid!r} request={safe_repr(self.request)}>"


@final
class Cast:
    """The envelope of a ``cast`` request, as a plain actor would receive it."""

    __slots__ = ("request",)

    def __init__(self, request: object) -> None:
        self.request = request

    def __repr__(self) -> str:
        return f"Cast({safe_repr(self.request)})"

    def __eq__(self, other: object) -> bool:
        return type(other) is Cast and other.request == self.request

    __hash__ = None  # type: ignore[assignment]


_CAST_TAG: Final = object()
"""Marks a cast in a GenServer's mailbox; a bare object() is not GC-tracked."""


class Callbacks(Protocol):
    """What the server loop calls: a GenServer's callbacks."""

    async def init(self, *args: Any, **kwargs: Any) -> Any: ...
    async def handle_call(self, request: Any, caller: Caller) -> Any: ...
    async def handle_cast(self, request: Any) -> Any: ...
    async def handle_info(self, message: Any) -> Any: ...
    async def terminate(self, reason: Any) -> None: ...
    async def handle_continue(self, arg: Any) -> Any: ...
    def sys_get_state(self) -> Any: ...
    def sys_replace_state(self, state: Any) -> None: ...
    def format_status(self, state: Any) -> Any: ...


def init_failed(proc: Process, started: asyncio.Future[Any], exc: BaseException) -> ExitWith | None:
    """What a behaviour's actor does when its ``init`` raised ``exc``: tell
    the starter (``StartError`` from ``start_behaviour``) and end without a
    crash report. Returns the exit to end with, or None when ``exc`` must be
    raised again (the init's own error, or the cancellation of a KILL).

    It unlinks from the starter first, so that a starter that used
    ``link=True`` survives to receive the ``StartError``; a KILL during init
    (a cancellation) reaches the starter too, instead of leaving it waiting;
    ``SystemExit`` and ``KeyboardInterrupt`` stop the node in order
    (``_exits.fatal``)."""
    if proc.parent is not None:
        unlink_pair(proc, proc.parent)
    proc.reported = True
    if isinstance(exc, Exception):
        failure: BaseException = exc
    elif isinstance(exc, asyncio.CancelledError):
        failure = Stop(KILLED)
    else:
        failure = Stop(fatal(proc, exc))
    if not started.done():
        started.set_exception(failure)
    if isinstance(failure, Stop) and not isinstance(exc, asyncio.CancelledError):
        return ExitWith(failure.reason)
    return None


def _abort_start(proc: Process, starter: Process | None, name: Name | None) -> None:
    """Undo a start that will not complete: the server is killed at once
    (without a crash report) and its name freed now, so that a retry can
    take it; the starter, if linked, is unlinked first so that it survives."""
    if starter is not None:
        unlink_pair(starter, proc.pid)
    proc.reported = True
    kill(proc)
    node = proc.node
    if proc.name is not None and node.names.get(proc.name) is proc.pid:
        del node.names[proc.name]
    if type(name) is Via:
        release_via(name, proc.pid)


async def _claimed_first(
    claim: Callable[[object, Pid], Any],
    name: Via,
    body: Callable[[asyncio.Future[Any]], Coroutine[Any, Any, Any]],
    started: asyncio.Future[Any],
    refusal: list[BaseException],
) -> None:
    """The new actor's body for a via name with an async ``claim_name``:
    claim the name, then run ``body``; on a refusal (or a registry error)
    settle ``started`` with it and end without running ``init``."""
    proc = proc_var.get()
    assert proc is not None
    pid = proc.pid
    try:
        claimed = await claim(name.key, pid) is True
        if not claimed:
            holder = holder_of(name)
            raise NameTaken(
                f"the name {safe_repr(name)} is already registered to {holder!r}; choose "
                "another key, or stop that actor first",
                name,
                holder,
            )
    except Exception as exc:  # noqa: BLE001 - raised from start, as register_name's are
        refusal.append(exc)
        if not started.done():
            started.set_exception(exc)
        return
    add_on_exit(proc, lambda _reason: release_via(name, pid))
    await body(started)


async def start_behaviour(
    what: str,
    body: Callable[[asyncio.Future[Any]], Coroutine[Any, Any, Any]],
    *,
    name: Name | None,
    link: bool,
    mailbox_size: int | None,
    overflow: Overflow,
    timeout: float | None,
) -> Pid | None:
    """The start handshake every behaviour shares: check the options, spawn
    an actor running ``body(started)`` and wait until ``body`` settles
    ``started`` (its ``init`` has returned, or failed). ``body`` sets
    ``started``'s result to ``IGNORE`` for an ``init`` that chose not to
    start: then ``start`` waits until the actor has ended (its name is free
    again) and returns None.

    ``timeout`` is seconds > 0, or None or ``math.inf`` for no limit. If the
    deadline passes, or the task that starts is cancelled, the half-started
    actor is killed and its name freed before ``start`` raises
    (``StartError``, or the ``CancelledError``). ``what`` (the class name)
    names the actor in error messages."""
    node = current_node(f"{what}.start")
    if type(timeout) is not float or not 0.0 < timeout <= MAX_SECONDS:
        timeout = check_seconds(timeout, f"{what}.start", "timeout", no_limit=True, positive=True)
    if name is not None:
        check_name(name, f"{what}.start")
    if mailbox_size is not None or overflow is not Overflow.REJECT:
        check_mailbox(mailbox_size, overflow, f"{what}.start")
    starter = current_process(f"{what}.start(..., link=True)") if link else None
    started: asyncio.Future[Any] = node.loop.create_future()
    # A via registry with an async claim (a name across nodes) is claimed by
    # the new actor itself, before init; the others, at the spawn.
    refusal: list[BaseException] = []
    claim = async_claim(name) if type(name) is Via else None
    if claim is None:
        coro = body(started)
    else:
        assert type(name) is Via
        coro = _claimed_first(claim, name, body, started, refusal)
    proc = spawn_process(
        node,
        coro,
        name=name if claim is None else None,
        link_to=starter,
        trap_exits=False,
        mailbox_size=mailbox_size,
        overflow=overflow,
    )
    proc.defers_exits = True
    wait = StartWait(started, timeout or 0.0)
    if timeout is not None:
        node.deadlines.add(wait, timeout)
    try:
        outcome = await started
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled (or worse): undo, then let it through
            if not started.done():
                started.cancel()
            _abort_start(proc, starter, name)
            raise
        if refusal and exc is refusal[0]:  # the async claim refused the name
            await wait_exit(proc, None)
            raise
        who = f"<Pid {proc.pid.number} {safe_repr(name)}>" if name else repr(proc.pid)
        if exc is wait.error:  # our deadline, not a TimeoutError raised by init
            _abort_start(proc, starter, name)
            await wait_exit(proc, None)
            raise StartError(
                f"{what} did not finish init within {timeout} s "
                f"({who} was killed); make init faster or raise start's timeout",
                exc,
            ) from exc
        await wait_exit(proc, None)
        reason = exc.reason if isinstance(exc, Stop) else exc
        raise StartError(f"{what}.init failed in {who}: {safe_repr(reason)}", reason) from exc
    if outcome is IGNORE:
        await wait_exit(proc, None)
        return None
    return proc.pid


# -- client functions ------------------------------------------------------


DEFAULT_TIMEOUT: Final = 5.0
"""The default of ``call``'s and ``stop``'s timeout (checked by identity on
the hot path: the default needs no validation)."""


@overload
async def call(
    dest: Pid[_CallReq, _CallRep], request: _CallReq, timeout: float | None = ...
) -> _CallRep: ...
@overload
async def call(dest: Name, request: object, timeout: float | None = ...) -> Any: ...
async def call(dest: Pid | Name, request: object, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """Send ``request`` to a server and wait for its reply.

    Typed: with ``dest`` a ``Pid[Req, Rep]`` (what ``GenServer[Req,
    Rep].start`` returns), mypy checks ``request`` against ``Req`` and the
    result is a ``Rep``; with a plain ``Pid`` or a name, the result is
    ``Any``.

    ``timeout=None`` (or ``math.inf``) waits without limit. Raises
    ``CallTimeout`` past ``timeout``, ``NoProcess`` if ``dest`` is dead or an
    unknown name, ``ServerExited`` if the server ends before replying,
    ``MailboxFull`` if a bounded mailbox refuses the request. A late reply
    is discarded. From another thread than the node's: ``WrongThreadError``
    (use ``asyncotp.from_thread.call``).
    """
    if (
        timeout is not DEFAULT_TIMEOUT
        and timeout is not None
        and (type(timeout) is not float or not 0.0 <= timeout <= MAX_SECONDS)
    ):
        timeout = check_timeout(timeout, "call")
    if type(dest) is Pid:
        node: Node = dest._node  # type: ignore[assignment]  # a pid's directory is its node
        if node.thread != get_ident():
            wrong_thread(node, "call")
        proc = node.procs.get(dest)
        if proc is None and (remote := remote_of(dest)) is not None:
            return await remote_call(remote, dest, request, timeout)
    else:
        if type(dest) is Via:  # its holder may be remote: take the pid path
            return await call(via_pid(dest, "call"), request, timeout)
        proc = resolve(dest, "call")
        node = current_node("call")
    if proc is None:
        if node.closed:
            current_node("call")  # raises NoNodeError
        raise NoProcess(f"call: {safe_repr(dest)} is not alive; nothing to call", dest)
    me = proc_var.get()  # the calling actor, if this task is one (calling_process, inlined)
    if me is not None and me.task is not task_on(node.loop):
        me = None
    if me is proc:
        raise ActorError(
            f"call: {proc.pid!r} called itself, which would wait forever; call a helper "
            "function directly instead"
        )
    fut = node.loop.create_future()
    caller = Caller(request, fut, proc, me.pid if me is not None else None, timeout)
    if node.intercept is None or not intercepted(node, proc, caller):
        deliver(proc, caller)
    if timeout is not None and not fut.done():
        node.deadlines.add(caller, timeout)
    if _telemetry.CALLS:  # timed only while a handler listens (docs/telemetry.md)
        span = _telemetry.call_start(proc, request, timeout)
        try:
            reply = await fut
        except BaseException as exc:
            _telemetry.call_exception(span, exc)
            raise
        _telemetry.call_stop(span)
        return reply
    return await fut


def cast(dest: Pid | Name, request: object) -> None:
    """Send a fire-and-forget request to a server; never waits.

    A dead pid drops it; an unknown name raises ``NoProcess``; a full mailbox
    with ``Overflow.REJECT`` raises ``MailboxFull``. From another thread than
    the node's: ``WrongThreadError`` (use ``asyncotp.from_thread.cast``).
    """
    if type(dest) is Pid:
        node: Node = dest._node  # type: ignore[assignment]  # a pid's directory is its node
        if node.thread != get_ident():
            wrong_thread(node, "cast")
        proc = node.procs.get(dest)
        if proc is None:
            remote = remote_of(dest)
            if remote is not None:
                remote.transport.cast(dest, request)
                return
            if node.closed:
                current_node("cast")
            if node.on_dead_letter is not None:
                node.on_dead_letter(dest, Cast(request))
            if _telemetry.ANY:
                _telemetry.dead_letter(dest, Cast(request))
            return
    else:
        if type(dest) is Via:  # its holder may be remote: take the pid path
            cast(via_pid(dest, "cast"), request)
            return
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
    if proc.maxlen is not None:
        deliver(proc, message)
        return
    # deliver()'s unbounded case, inlined on this hot path (it pays for the
    # thread check above).
    proc.mailbox.append(message)
    waiter = proc.waiter
    if waiter is not None:
        proc.waiter = None
        if not waiter.done():
            waiter.set_result(None)


async def stop(
    dest: Pid | Name, reason: object = NORMAL, timeout: float | None = DEFAULT_TIMEOUT
) -> None:
    """Stop a server (or any actor) with ``reason`` and wait until it has
    ended and its ``terminate`` has run.

    Past ``timeout`` (None or ``math.inf``: no limit): ``CallTimeout``, and
    the actor is left as it is: not killed, and (as with OTP's
    ``proc_lib:stop``) the stop request stays pending, so a server busy in a
    long callback still stops when it returns. ``NoProcess`` if it is not
    alive. If the actor ends with another reason than ``reason`` (its
    ``terminate`` crashed, or it ended otherwise first), ``ServerExited``
    carrying that reason, as OTP's ``gen_server:stop`` exits with it.
    """
    if (
        timeout is not DEFAULT_TIMEOUT
        and timeout is not None
        and (type(timeout) is not float or not 0.0 <= timeout <= MAX_SECONDS)
    ):
        timeout = check_timeout(timeout, "stop")
    if type(dest) is Via:  # its holder may be remote: take the pid path
        dest = via_pid(dest, "stop")
    if type(dest) is Pid and (remote := remote_of(dest)) is not None:
        await remote_stop(remote, dest, reason, timeout)
        return
    proc = resolve(dest, "stop")
    if proc is None:
        raise NoProcess(f"stop: {safe_repr(dest)} is not alive", dest)
    me = proc_var.get()  # the calling actor, if this task is one (calling_process, inlined)
    if me is proc and me.task is task_on(proc.node.loop):
        raise ActorError(
            f"stop: {proc.pid!r} cannot wait for its own end; raise Stop(reason) instead"
        )
    exited = exit_future(proc)
    if reason is KILL:
        expected: object = KILLED
        kill(proc)
    else:
        expected = reason
        request_stop(proc, reason)
    if timeout is not None and not exited.done():
        proc.node.deadlines.add(StopWait(exited, proc.pid, timeout), timeout)
    ended = await exited
    if ended is not expected:
        raise ServerExited(
            f"stop: {label(proc)} was asked to stop with reason {safe_repr(reason)} but ended with "
            f"reason {safe_repr(ended)} (its terminate failed, or it ended otherwise first)",
            proc.pid,
            ended,
        )


def token_call(request: object) -> Caller:
    """A call from the calling server to itself that nobody waits for: a
    token a behaviour routes to its own ``handle_call`` (which subclasses do
    not override), delivered with ``deliver_system``. Its future is resolved
    from the start, so the runtime never counts it as owed a reply."""
    proc = current_process("token_call")
    answered: asyncio.Future[Any] = proc.node.loop.create_future()
    answered.set_result(None)
    return Caller(request, answered, proc, None, None)
