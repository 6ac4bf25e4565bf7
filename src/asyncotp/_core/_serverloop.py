"""The GenServer loop: the server side of ``call``, ``cast`` and ``send``.

``start_server`` spawns a server with the start handshake of ``_server``
(``start_behaviour``) and runs ``_serve``: ``init``, then one message at a
time until a stop, a crash or an exit signal, then ``terminate``. What a
callback may return besides a reply (``Continue``, ``IdleTimeout``,
``IGNORE`` from ``init``) is in ``_returns``; system requests
(``asyncotp.sys``) are answered here, between two callbacks, by ``_sys``.

The loop is the server's hot path: callbacks are looked up once, a call is
answered inline, and what nobody uses costs next to nothing: a continuation
or an idle timeout one ``is not None`` test of the callback's return value
(continuations run right there; an idle timeout only bounds the next wait),
tracing nothing at all (the callbacks are wrapped while it is on).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import reprlib
from collections.abc import Callable, Coroutine
from typing import Any, Final, final

from . import _telemetry
from ._exits import fatal, unlink_pair
from ._pid import Pid
from ._reasons import KILL, KILLED, NORMAL, SHUTDOWN, Stop, is_clean_exit
from ._returns import IGNORE, TIMEOUT, Continue, IdleTimeout
from ._safe import safe_repr
from ._server import _CAST_TAG, NOREPLY, Callbacks, Caller, Cast, init_failed, start_behaviour
from ._state import BUDGET, EXITING, UNSET, ExitWith, Overflow, Process, proc_var
from ._sys import Callback, Debug, SysRequest, handle
from ._via import Name

STATE_SHOWN: Final = 2000
"""How many characters of a server's state a crash report shows at most."""


def _limited_repr() -> reprlib.Repr:
    shown = reprlib.Repr()
    shown.maxlevel = 3
    shown.maxdict = shown.maxlist = shown.maxtuple = shown.maxset = 25
    shown.maxstring = shown.maxother = 200
    return shown


STATE_REPR: Final = _limited_repr()
"""A crash report shows the state with ``reprlib``'s limits: a server that
holds a million entries does not build a million-entry repr as it dies."""


def start_server(
    server: Callbacks,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    name: Name | None,
    link: bool,
    mailbox_size: int | None,
    overflow: Overflow,
    timeout: float | None,
    has_terminate: bool,
) -> Coroutine[Any, Any, Pid | None]:
    """Spawn ``server``'s loop and wait until its ``init`` has returned (the
    start handshake); see ``GenServer.start`` and ``start_behaviour``. None
    when ``init`` returned ``IGNORE`` (the server has ended by then).

    A plain function returning ``start_behaviour``'s coroutine, for the
    caller to await: one coroutine less per start."""
    return start_behaviour(
        type(server).__qualname__,
        lambda started: _serve(server, args, kwargs, started, has_terminate),
        name=name,
        link=link,
        mailbox_size=mailbox_size,
        overflow=overflow,
        timeout=timeout,
    )


_NOTHING: Final = object()
"""No message handled yet (the server loop's ``message`` before the first)."""


def _shown(message: object) -> object:
    """A message as users would recognise it (a cast as ``Cast``)."""
    if type(message) is tuple and len(message) == 2 and message[0] is _CAST_TAG:
        return Cast(message[1])
    return message


def _note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, unless the exception refuses notes."""
    with contextlib.suppress(Exception):  # a user exception that breaks add_note keeps its text
        exc.add_note(note)


def _was_killed(proc: Process) -> bool:
    # A function, so that type checkers do not narrow ``proc.killed`` for
    # the rest of the server loop (a KILL changes it during any await).
    return proc.killed


def _stopping(proc: Process) -> bool:
    # A function for the same reason: a stop can arrive during any await.
    return proc.pending_exit is not UNSET


def _state_shown(server: Callbacks) -> str:
    """The server's state for a crash report, through its ``format_status``
    (guarded: a hook that raises shows as a placeholder), cut to a length."""
    try:
        text = STATE_REPR.repr(server.format_status(server.sys_get_state()))
    except Exception as exc:  # noqa: BLE001 - a failing hook (or repr) must not stop a report
        return f"<format_status or repr raised {type(exc).__qualname__}>"
    if len(text) > STATE_SHOWN:
        text = text[:STATE_SHOWN] + "...(cut)"
    return text


def _detail(server: Callbacks, message: object) -> str:
    """For the crash report: the server's class, its last message, its state."""
    cls = type(server)
    state = _state_shown(server)
    if message is _NOTHING:
        return f"{cls.__qualname__}, no message handled yet, state {state}"
    return f"{cls.__qualname__}, last message {safe_repr(_shown(message))}, state {state}"


_CALLBACK_OF: Final[dict[type, str]] = {tuple: "handle_cast", Cast: "handle_cast"}


def _directive(result: object, cls: type, kind: type | None) -> Continue | IdleTimeout:
    """What a callback returned besides None (or, for ``handle_call``, besides
    a plain reply): a ``Continue`` or an ``IdleTimeout``, or a TypeError that
    names the callback and the value. ``kind`` is the type of the message it
    handled (``Caller``: ``handle_call``, which may pass ``reply=``;
    ``Continue``: ``handle_continue``; None: ``init``)."""
    if kind is None:
        callback = "init"
    elif kind is Caller:
        callback = "handle_call"
    elif kind is Continue:
        callback = "handle_continue"
    else:
        callback = _CALLBACK_OF.get(kind, "handle_info")
    if isinstance(result, (Continue, IdleTimeout)):  # both are final: an exact type test
        if result.has_reply and kind is not Caller:
            raise TypeError(
                f"{cls.__qualname__}.{callback} returned {safe_repr(result)}: reply= is only "
                "for handle_call, where there is a caller to answer"
            )
        return result
    raise TypeError(
        f"{cls.__qualname__}.{callback} returned {safe_repr(result)}; it may return None, "
        "Continue(arg) or IdleTimeout(seconds)"
        + (" (IGNORE only from init)" if result is IGNORE else "")
    )


@final
class _Continuation:
    """``init``'s ``Continue``, put first in the mailbox so that the loop
    takes it before any message (a private type: a user cannot send one)."""

    __slots__ = ("arg",)

    def __init__(self, arg: object) -> None:
        self.arg = arg

    def __repr__(self) -> str:
        return f"Continue({safe_repr(self.arg)})"


def _show_call(request: object, caller: Caller) -> object:
    return caller


def _show_info(message: object) -> object:
    return message


_SHOWN: Final[tuple[Callable[..., object], ...]] = (_show_call, Cast, _show_info, Continue)
"""How a traced server shows the arguments of handle_call, handle_cast,
handle_info and handle_continue: as the message users know."""


def _callbacks(
    proc: Process, cls: type[Callbacks], debug: Debug | None
) -> tuple[Callback, Callback, Callback, Callback]:
    """The callbacks the loop calls: the class's own, or, while tracing or
    timing is on, the same wrapped by ``debug``."""
    own: tuple[Callback, Callback, Callback, Callback] = (
        cls.handle_call,
        cls.handle_cast,
        cls.handle_info,
        cls.handle_continue,
    )
    if debug is not None:
        own = tuple(  # type: ignore[assignment]
            debug.wrap(proc, cls, fn, shown) for fn, shown in zip(own, _SHOWN, strict=True)
        )
    if _telemetry.SLOW:  # time the callbacks while someone listens (docs/telemetry.md)
        call_, cast_, info = _telemetry.timed_callbacks(proc, cls, *own[:3])
        return call_, cast_, info, own[3]
    return own


def _ring(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(TIMEOUT)


async def _idle(proc: Process, seconds: float) -> bool:
    """Wait for a message for up to ``seconds``; True if none came (the idle
    timeout ran out), False if a message or a stop came first."""
    loop = proc.node.loop
    waiter = loop.create_future()
    proc.waiter = waiter
    timer = loop.call_later(seconds, _ring, waiter)
    try:
        woken = await waiter
    finally:
        timer.cancel()
        if proc.waiter is waiter:
            proc.waiter = None
    return woken is TIMEOUT and proc.pending_exit is UNSET


async def _serve(
    server: Callbacks,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    started: asyncio.Future[Any],
    has_terminate: bool,
) -> ExitWith:
    proc = proc_var.get()
    assert proc is not None
    cls = type(server)
    try:
        outcome = await server.init(*args, **kwargs)
        if _was_killed(proc):  # init swallowed the cancellation of a KILL
            raise asyncio.CancelledError
        if outcome is IGNORE:
            pending: Continue | IdleTimeout | None = None
        elif outcome is not None:
            pending = _directive(outcome, cls, None)
        else:
            pending = None
    except BaseException as exc:
        ended = init_failed(proc, started, exc)  # the starter is told, as by any behaviour
        if ended is None:
            raise
        return ended
    if started.done():  # the starter gave up (timeout or cancellation): nobody knows us
        raise Stop(NORMAL)
    if outcome is IGNORE:  # OTP's ignore: end quietly, the starter gets None
        if proc.parent is not None:
            unlink_pair(proc, proc.parent)
        proc.reported = True
        started.set_result(IGNORE)
        return ExitWith(NORMAL)
    started.set_result(None)
    del started, outcome  # an idle server holds as few objects as it can
    proc.handles_sys = True

    # The message loop. Callbacks are looked up once, unbound, and the common
    # case of a call is answered inline: this loop is the server's hot path.
    # The pending exit (a stop, a shutdown, a KILL whose cancellation the
    # callback swallowed) is looked at after every callback and every wait,
    # and before each continuation.
    handle_call, handle_cast, handle_info, handle_continue = _callbacks(proc, cls, None)
    mailbox = proc.mailbox
    loop = proc.node.loop
    budget = 0  # messages taken since the last wait or yield
    handled = 0  # messages taken before that, system requests not counted
    debug: Debug | None = None  # tracing or timing, while one is on
    # An idle timeout the last callback asked for while the mailbox was empty:
    # the next wait is bounded by it (a queued message cancels it at once).
    idle: IdleTimeout | None = None
    if type(pending) is Continue:  # init's: the first thing the loop takes
        mailbox.appendleft(_Continuation(pending.arg))
    elif type(pending) is IdleTimeout and pending.seconds is not None:
        idle = pending
    del pending
    message: Any = _NOTHING
    result: Any
    reason: object
    unset, cast_tag, budget_max = UNSET, _CAST_TAG, BUDGET  # locals: cheaper than globals
    while True:
        if proc.pending_exit is not unset:
            reason = proc.pending_exit
            if proc.forced_reason is UNSET:
                proc.forced_reason = reason  # a signal's consequence, not its own crash
            break
        if not mailbox:
            handled += budget
            budget = 0
            if idle is None:
                waiter = loop.create_future()
                proc.waiter = waiter
                await waiter
                continue
            after, idle = idle, None
            assert after.seconds is not None  # only a bounded timeout is kept in idle
            if not await _idle(proc, after.seconds):
                # Woken by a message or a stop. A system request does not
                # cancel the timeout: answered, then it starts again (as OTP's
                # loop re-enters with the same timeout); any other message does.
                while mailbox and type(mailbox[0]) is SysRequest:
                    debug = await handle(proc, server, mailbox.popleft(), debug, handled)
                    handle_call, handle_cast, handle_info, handle_continue = _callbacks(
                        proc, cls, debug
                    )
                if not mailbox:
                    idle = after
                continue
            message = TIMEOUT
        elif budget >= budget_max:
            handled += budget
            budget = 0
            await asyncio.sleep(0)
            continue
        else:
            budget += 1
            message = mailbox.popleft()
        kind = type(message)
        try:
            if kind is tuple and len(message) == 2 and message[0] is cast_tag:
                result = await handle_cast(server, message[1])
            elif kind is Caller:
                proc.current = message
                result = await handle_call(server, message.request, message)
                if proc.killed:  # it swallowed the KILL: no reply (ServerExited instead)
                    reason = KILLED
                    break
                proc.current = None
                if result is NOREPLY:
                    result = None
                    if not message._fut.done():
                        if proc.callers is None:
                            proc.callers = {message}
                        else:
                            proc.callers.add(message)
                elif type(result) is Continue or type(result) is IdleTimeout:
                    if result.has_reply:
                        message.reply(result.reply)
                    elif not message._fut.done():  # answered later, as with NOREPLY
                        if proc.callers is None:
                            proc.callers = {message}
                        else:
                            proc.callers.add(message)
                else:
                    fut = message._fut
                    if not fut.done():
                        fut.set_result(result)
                    result = None
            elif kind is Cast:
                result = await handle_cast(server, message.request)
            elif kind is SysRequest:
                handled -= 1  # not a message of the server's protocol
                debug = await handle(proc, server, message, debug, handled + budget)
                handle_call, handle_cast, handle_info, handle_continue = _callbacks(
                    proc, cls, debug
                )
                continue
            elif kind is _Continuation:
                handled -= 1  # init's continuation, not a message
                result = await handle_continue(server, message.arg)
                kind = Continue
            else:
                result = await handle_info(server, message)
            if result is not None:
                # The callback asked for more (rare): its continuations run now,
                # before anything queued, unless a stop came in meanwhile; an
                # idle timeout bounds the next wait, unless a message is queued.
                asked: Continue | IdleTimeout | None = _directive(result, cls, kind)
                while type(asked) is Continue:
                    if _stopping(proc):
                        asked = None
                        break
                    message = asked
                    result = await handle_continue(server, asked.arg)
                    asked = None if result is None else _directive(result, cls, Continue)
                if type(asked) is IdleTimeout and asked.seconds is not None and not mailbox:
                    idle = asked
        except Stop as stop:
            if stop.has_reply and kind is Caller:
                proc.current = None
                message.reply(stop.reply)
            reason = KILLED if stop.reason is KILL else stop.reason
            break
        except Exception as exc:  # noqa: BLE001 - a callback's crash is the server's reason
            _note(exc, f"in {cls.__qualname__} {proc.pid!r} handling {safe_repr(_shown(message))}")
            reason = exc
            break
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: see fatal
            reason = fatal(proc, exc)
            break
    proc.state = EXITING
    if not proc.killed and has_terminate:
        try:
            await server.terminate(reason)
        except Stop as stop:  # terminate chose the exit reason
            reason = KILLED if stop.reason is KILL else stop.reason
            proc.forced_reason = UNSET
        except Exception as exc:  # noqa: BLE001 - terminate's crash becomes the reason
            _note(exc, f"raised by {cls.__qualname__}.terminate({safe_repr(reason)})")
            reason = exc
            proc.forced_reason = UNSET  # its own crash, to be reported
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: see fatal
            reason = fatal(proc, exc)
            proc.forced_reason = UNSET
    try:
        if reason is NORMAL or reason is SHUTDOWN or reason is KILLED or is_clean_exit(reason):
            return ExitWith(reason)  # nothing to report
        return ExitWith(reason, functools.partial(_detail, server, message))
    finally:
        # A crash's traceback holds this frame, which would hold the crash:
        # a cycle that keeps the dead server's state (and everything it
        # refers to) alive until the garbage collector runs.
        del reason
