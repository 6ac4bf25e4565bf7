"""The state machine loop: the runtime half of ``StateMachine`` (the class
with its callbacks lives in ``asyncotp.actors``).

It follows Erlang's ``gen_statem`` engine. Requests arrive as a GenServer's
do (``call`` delivers a ``Caller``, ``cast`` a tagged tuple; see
``_server``), so ``call``, ``cast``, ``send`` and ``stop`` work unchanged,
and a machine defers exits exactly like a GenServer: a running callback is
never interrupted but by ``KILL``.

Besides the state and the data, the loop keeps, in its ``Engine``
(``_statem_engine``, which also carries out transitions and actions):

* ``queue``: events to handle before the next message: the inserted ones
  (``NextEvent``) first, then the retried ones (postponed events, retried
  oldest first after a state change), then zero-time timeouts (OTP's
  "before any message not yet received, after the queued events");
* ``postponed``: events waiting for the next state change;
* the timers: one event timeout, one state timeout, named generic ones. A
  timer that fires puts itself in the mailbox (``deliver_system``); when the
  loop takes it out it checks the timer is still live, so a timeout
  cancelled after it fired is never handled. A zero-time timeout arms no
  timer: it goes to the end of ``queue``.

The hot path, an event whose callback returns ``(same_state, data)``, is
inline in ``_events``; every other transition goes through
``Engine.transition``. The loop keeps GenServer's rules: a KILL whose
cancellation a callback swallowed still ends the machine with KILLED,
``SystemExit`` and ``KeyboardInterrupt`` stop the node in order
(``_exits.fatal``), the crash report (the state, the last event,
``format_status``) is formatted only if it is written, and a dead machine
is freed without waiting for a garbage collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any, Final

from ._actions import (
    CallEvent,
    EventKind,
    EventType,
    show,
)
from ._exits import fatal
from ._pid import Pid
from ._reasons import KILL, KILLED, NORMAL, SHUTDOWN, Stop, is_clean_exit
from ._server import _CAST_TAG, Caller, Cast, init_failed, start_behaviour
from ._serverloop import STATE_REPR, STATE_SHOWN
from ._state import BUDGET, EXITING, UNSET, ExitWith, Overflow, proc_var
from ._statem_engine import Engine, MachineCallbacks, Timer, describe, initial, was_killed
from ._sys import MachineView, SysRequest
from ._sys import handle as sys_handle
from ._via import Name

CAST = EventType.CAST
INFO = EventType.INFO

_NO_EVENT: Final = object()
"""No event handled yet (the crash report's last event before the first)."""


def _note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, unless the exception refuses notes."""
    with contextlib.suppress(Exception):  # a user exception that breaks add_note keeps its text
        exc.add_note(note)


def _crashed(
    exc: Exception, engine: Engine, event_type: EventKind, content: object, state: object
) -> Exception:
    """Note on ``exc`` what the machine was doing when it crashed; return it."""
    _note(
        exc,
        f"in {engine.cls.__qualname__} {engine.proc.pid!r} handling "
        f"{describe(event_type, content)} in the state {_cut(state)}",
    )
    return exc


def _stop_reason(stop: Stop) -> object:
    """The exit reason a ``Stop`` asks for (``Stop(KILL)`` ends with KILLED)."""
    return KILLED if stop.reason is KILL else stop.reason


def _cut(value: object) -> str:
    """``value`` for a crash report: with ``reprlib``'s limits (a machine
    holding a million entries does not build a million-entry repr as it
    dies), cut to a length."""
    try:
        text = STATE_REPR.repr(value)
    except Exception as exc:  # noqa: BLE001 - a failing repr must not stop a report
        return f"<repr raised {type(exc).__qualname__}>"
    return text if len(text) <= STATE_SHOWN else text[:STATE_SHOWN] + "...(cut)"


def _status_shown(machine: MachineCallbacks, state: object, data: object) -> str:
    """The machine's ``(state, data)`` for a crash report, through its
    ``format_status`` (guarded: a hook that raises shows as a placeholder)."""
    try:
        status = machine.format_status((state, data))
    except Exception as exc:  # noqa: BLE001 - a failing hook must not stop a report
        return f"<format_status raised {type(exc).__qualname__}>"
    return _cut(status)


def _detail(machine: MachineCallbacks, state: object, data: object, event: object) -> str:
    """For the crash report: the machine's class, its state, its last event
    and its ``(state, data)`` as ``format_status`` shows them. Called only
    when a report is written (a ``functools.partial`` until then)."""
    name = type(machine).__qualname__
    if event is _NO_EVENT:
        last = "no event handled yet"
    else:
        assert type(event) is tuple
        last = f"last event {describe(event[0], event[1])}"
    return (
        f"{name} in the state {_cut(state)}, {last}, status {_status_shown(machine, state, data)}"
    )


async def start_statem(
    machine: MachineCallbacks,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    name: Name | None,
    link: bool,
    mailbox_size: int | None,
    overflow: Overflow,
    timeout: float | None,
    functions: bool,
    enter_calls: bool,
    has_terminate: bool,
) -> Pid:
    """Spawn ``machine``'s loop and wait until its ``init`` has returned: the
    start handshake of ``start_server`` (``start_behaviour``)."""
    pid = await start_behaviour(
        type(machine).__qualname__,
        lambda started: _serve(
            machine, args, kwargs, started, functions, enter_calls, has_terminate
        ),
        name=name,
        link=link,
        mailbox_size=mailbox_size,
        overflow=overflow,
        timeout=timeout,
    )
    assert pid is not None  # only a GenServer's init may answer IGNORE
    return pid


async def _serve(
    machine: MachineCallbacks,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    started: asyncio.Future[None],
    functions: bool,
    enter_calls: bool,
    has_terminate: bool,
) -> ExitWith:
    proc = proc_var.get()
    assert proc is not None
    engine = Engine(proc, machine, functions, enter_calls)
    try:
        result = await machine.init(*args, **kwargs)
        if was_killed(proc):  # init swallowed the cancellation of a KILL
            raise asyncio.CancelledError
        state, data, actions, fn = initial(engine, result)
    except BaseException as exc:
        ended = init_failed(proc, started, exc)  # the starter is told, as by any behaviour
        if ended is None:
            raise
        return ended
    if started.done():  # the starter gave up (timeout or cancellation): nobody knows us
        raise Stop(NORMAL)
    started.set_result(None)
    del started, result
    proc.handles_sys = True

    cls = engine.cls
    reason: object = UNSET
    event: object = _NO_EVENT
    try:
        try:
            # Entering the initial state: init's actions, the enter call.
            state, data, fn = await engine.transition((state, data, actions), None, state, data, fn)
        except Stop as stop:
            reason = _stop_reason(stop)
        except Exception as exc:  # noqa: BLE001 - a callback's crash is the machine's reason
            _note(exc, f"in {cls.__qualname__} {proc.pid!r} entering the state {_cut(state)}")
            reason = exc
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: see fatal
            reason = fatal(proc, exc)
        del actions
        if reason is UNSET:
            reason, state, data, event = await _events(engine, state, data, fn)
    finally:
        engine.cancel_timers()
    proc.state = EXITING
    if not proc.killed and has_terminate:
        try:
            await machine.terminate(reason, state, data)
        except Stop as stop:  # terminate chose the exit reason
            reason = _stop_reason(stop)
            proc.forced_reason = UNSET
        except Exception as exc:  # noqa: BLE001 - terminate's crash becomes the reason
            _note(exc, f"raised by {cls.__qualname__}.terminate({show(reason)}, ...)")
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
        return ExitWith(reason, functools.partial(_detail, machine, state, data, event))
    finally:
        # A crash's traceback holds this frame, which would hold the crash:
        # a cycle that keeps the dead machine (and its data) alive until the
        # garbage collector runs.
        del reason


async def _events(
    engine: Engine, state: object, data: object, fn: Callable[..., Any]
) -> tuple[object, object, object, object]:
    """The event loop (see the module's docstring), until the machine
    stops: return its reason, its last state, its last data and its last
    event (``(event_type, content)``, or ``_NO_EVENT``), for the report.

    The pending exit (a stop, a shutdown, a KILL whose cancellation a
    callback swallowed) is looked at after every callback and every wait;
    a KILL is also looked at right after the callback that swallowed it,
    so that the machine neither replies nor runs a state-enter call."""
    proc = engine.proc
    machine = engine.machine
    functions = engine.functions
    mailbox = proc.mailbox
    queue = engine.queue
    loop = proc.node.loop
    budget = 0
    handled = 0  # events before the last wait or yield (for asyncotp.sys.statistics)
    etype: EventKind = CAST
    content: object = _NO_EVENT
    caller: Caller | None
    # Whether an event timeout runs: any event cancels it. Read again after
    # every transition, the only place that sets one.
    timed = engine.event_timer is not None
    while True:
        if proc.pending_exit is not UNSET:
            reason = proc.pending_exit
            if proc.forced_reason is UNSET:
                proc.forced_reason = reason  # a signal's consequence, not its own crash
            break
        if budget >= BUDGET:
            handled += budget
            budget = 0
            await asyncio.sleep(0)
            continue
        budget += 1
        if queue:
            item = queue.popleft()
            if isinstance(item, Timer):
                if not item.live:
                    continue  # cancelled: not an event
                engine.fired(item)
                etype = item.kind
                content = item.content
                caller = None
            else:
                etype, content = item
                caller = etype.caller if type(etype) is CallEvent else None
        elif mailbox:
            message = mailbox.popleft()
            kind = type(message)
            if kind is tuple and len(message) == 2 and message[0] is _CAST_TAG:
                # The hot path, inline: a cast whose callback returns
                # (same_state, data).
                etype = CAST
                content = message[1]
                if timed:
                    engine.cancel_event_timer()
                    timed = False
                try:
                    if functions:
                        result = await fn(machine, CAST, content, data)
                    else:
                        result = await fn(machine, CAST, content, state, data)
                    match result:
                        case (new_state, new_data) if type(result) is tuple and (
                            new_state is state or new_state == state
                        ):
                            data = new_data
                            continue  # a swallowed KILL: the pending exit, at the top
                    if proc.killed:  # it swallowed the cancellation of a KILL
                        reason = KILLED
                        break
                    state, data, fn = await engine.transition(
                        result, (CAST, content), state, data, fn
                    )
                    timed = engine.event_timer is not None
                except Stop as stop:
                    reason = _stop_reason(stop)
                    break
                except Exception as exc:  # noqa: BLE001 - the machine's crash reason
                    reason = _crashed(exc, engine, CAST, content, state)
                    break
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: see fatal
                    reason = fatal(proc, exc)
                    break
                continue
            caller = None
            if kind is Caller:
                caller = message
                etype = CallEvent(message)
                content = message.request
            elif kind is Timer:
                if not message.live:
                    continue  # cancelled after it fired: not an event
                engine.fired(message)
                etype = message.kind
                content = message.content
            elif kind is Cast:
                etype = CAST
                content = message.request
            elif kind is SysRequest:  # between two events, as OTP's sys
                handled -= 1
                view = MachineView(
                    machine,
                    state,
                    data,
                    functools.partial(engine.function_for, fn=fn, context="event")
                    if functions
                    else None,
                )
                debug = engine.debug
                new_debug = await sys_handle(proc, view, message, debug, handled + budget)
                state, data = view.state, view.data
                if view.fn is not None:
                    fn = view.fn
                if new_debug is not debug:
                    fn = engine.switch(new_debug, fn)
                del view
                continue
            else:
                etype = INFO
                content = message
        else:
            handled += budget - 1  # this pass took no event
            budget = 0
            waiter = loop.create_future()
            proc.waiter = waiter
            await waiter
            continue
        if timed:
            engine.cancel_event_timer()
            timed = False
        try:
            if caller is not None:
                proc.current = caller
            if functions:
                result = await fn(machine, etype, content, data)
            else:
                result = await fn(machine, etype, content, state, data)
            if proc.killed:  # it swallowed the cancellation of a KILL: no reply
                reason = KILLED
                break
            if (
                type(result) is tuple
                and len(result) == 2
                and (result[0] is state or result[0] == state)
            ):
                data = result[1]  # same state, no actions
            else:
                state, data, fn = await engine.transition(result, (etype, content), state, data, fn)
                timed = engine.event_timer is not None
            if caller is not None:
                proc.current = None
                if not caller._fut.done():  # owed a reply, from a later event
                    if proc.callers is None:
                        proc.callers = {caller}
                    else:
                        proc.callers.add(caller)
        except Stop as stop:
            if stop.has_reply and caller is not None:
                proc.current = None
                caller.reply(stop.reply)
            reason = _stop_reason(stop)
            break
        except Exception as exc:  # noqa: BLE001 - a callback's crash is the machine's reason
            reason = _crashed(exc, engine, etype, content, state)
            break
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: see fatal
            reason = fatal(proc, exc)
            break
    try:
        return reason, state, data, (_NO_EVENT if content is _NO_EVENT else (etype, content))
    finally:
        # The crash's traceback holds this frame: without this, a cycle
        # would keep the dead machine alive until a garbage collection.
        del reason
