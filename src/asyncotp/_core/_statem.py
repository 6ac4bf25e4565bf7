"""The state machine loop: the runtime half of ``StateMachine`` (the class
with its callbacks lives in ``asyncotp.actors``).

It follows Erlang's ``gen_statem`` engine. Requests arrive as a GenServer's
do (``call`` delivers a ``Caller``, ``cast`` a tagged tuple; see
``_server``), so ``call``, ``cast``, ``send`` and ``stop`` work unchanged,
and a machine defers exits exactly like a GenServer: a running callback is
never interrupted but by ``KILL``.

Besides the state and the data, the loop keeps:

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
inline in ``_serve``; every other transition goes through
``_Engine.transition``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Final, Protocol, final

from . import _telemetry
from ._actions import (
    ACTION_TYPES,
    UNCHANGED,
    Action,
    CallEvent,
    EventKind,
    EventTimeout,
    EventType,
    GenericTimeout,
    GenericTimeoutEvent,
    KeepState,
    NextEvent,
    Postpone,
    RepeatState,
    Reply,
    StateTimeout,
    actions_of,
    is_never,
    show,
)
from ._exits import fatal, unlink_pair
from ._mailbox import deliver_system
from ._pid import Pid
from ._reasons import KILL, KILLED, NORMAL, SHUTDOWN, Stop, is_clean_exit
from ._server import _CAST_TAG, Caller, Cast, start_behaviour
from ._serverloop import STATE_REPR, STATE_SHOWN
from ._state import BUDGET, DEAD, EXITING, UNSET, ExitWith, Overflow, Process, proc_var
from ._sys import MachineView, SysRequest
from ._sys import handle as sys_handle
from ._via import Name

CAST = EventType.CAST
INFO = EventType.INFO
ENTER = EventType.ENTER

Event = tuple[EventKind, object]
"""An event in the loop's queues: its type and its content."""


class MachineCallbacks(Protocol):
    """What the loop calls: a ``StateMachine``'s callbacks. In
    ``STATE_FUNCTIONS`` mode the loop also looks up ``state_<state>``."""

    async def init(self, *args: Any, **kwargs: Any) -> Any: ...
    async def handle_event(self, event_type: Any, event: Any, state: Any, data: Any) -> Any: ...
    async def terminate(self, reason: Any, state: Any, data: Any) -> None: ...
    def format_status(self, state: Any) -> Any: ...


@final
class _Timer:
    """One armed timeout; it is also the message it puts in the mailbox."""

    __slots__ = ("content", "handle", "kind", "live")

    def __init__(self, kind: EventKind, content: object) -> None:
        self.kind = kind
        self.content = content
        self.handle: asyncio.TimerHandle | None = None
        self.live = True

    def cancel(self) -> None:
        self.live = False
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def __repr__(self) -> str:
        return f"<timeout {show(self.kind)} {'live' if self.live else 'cancelled'}>"


def _fire(proc: Process, timer: _Timer) -> None:
    timer.handle = None
    if timer.live and proc.state != DEAD:
        deliver_system(proc, timer)


def _describe(event_type: EventKind, content: object) -> str:
    if type(event_type) is CallEvent:
        return f"the call {show(content)}"
    if type(event_type) is GenericTimeoutEvent:
        return f"the generic timeout {show(event_type.name)} {show(content)}"
    assert isinstance(event_type, EventType)
    return f"the {event_type.value} event {show(content)}"


def _note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, unless the exception refuses notes."""
    with contextlib.suppress(Exception):  # a user exception that breaks add_note keeps its text
        exc.add_note(note)


def _crashed(
    exc: Exception, engine: _Engine, event_type: EventKind, content: object, state: object
) -> Exception:
    """Note on ``exc`` what the machine was doing when it crashed; return it."""
    _note(
        exc,
        f"in {engine.cls.__qualname__} {engine.proc.pid!r} handling "
        f"{_describe(event_type, content)} in the state {show(state)}",
    )
    return exc


def _was_killed(proc: Process) -> bool:
    # A function, so that type checkers do not narrow ``proc.killed`` for
    # the rest of the loop (a KILL changes it during any await).
    return proc.killed


def _stop_reason(stop: Stop) -> object:
    """The exit reason a ``Stop`` asks for (``Stop(KILL)`` ends with KILLED)."""
    return KILLED if stop.reason is KILL else stop.reason


_NO_EVENT: Final = object()
"""No event handled yet (the crash report's last event before the first)."""


def _status_shown(machine: MachineCallbacks, state: object, data: object) -> str:
    """The machine's ``(state, data)`` for a crash report, through its
    ``format_status`` (guarded: a hook that raises shows as a placeholder),
    cut to a length."""
    try:
        text = STATE_REPR.repr(machine.format_status((state, data)))
    except Exception as exc:  # noqa: BLE001 - a failing hook (or repr) must not stop a report
        return f"<format_status or repr raised {type(exc).__qualname__}>"
    if len(text) > STATE_SHOWN:
        text = text[:STATE_SHOWN] + "...(cut)"
    return text


def _detail(machine: MachineCallbacks, state: object, data: object, event: object) -> str:
    """For the crash report: the machine's class, its state, its last event
    and its ``(state, data)`` as ``format_status`` shows them. Called only
    when a report is written (a ``functools.partial`` until then)."""
    name = type(machine).__qualname__
    if event is _NO_EVENT:
        last = "no event handled yet"
    else:
        assert type(event) is tuple
        last = f"last event {_describe(event[0], event[1])}"
    return (
        f"{name} in the state {show(state)}, {last}, status {_status_shown(machine, state, data)}"
    )


class _Engine:
    """What the loop keeps besides the state and the data, and every
    transition that is not the hot path."""

    __slots__ = (
        "cls",
        "enter_calls",
        "event_timer",
        "functions",
        "generic",
        "loop",
        "machine",
        "postponed",
        "proc",
        "queue",
        "state_timer",
        "timed",
    )

    def __init__(
        self, proc: Process, machine: MachineCallbacks, functions: bool, enter_calls: bool
    ) -> None:
        self.proc = proc
        self.loop = proc.node.loop
        self.machine = machine
        self.cls = type(machine)
        self.functions = functions
        self.enter_calls = enter_calls
        self.queue: deque[Event | _Timer] = deque()
        self.postponed: list[Event] = []
        self.event_timer: _Timer | None = None
        self.state_timer: _Timer | None = None
        self.generic: dict[Hashable, _Timer] | None = None
        # The state callbacks wrapped for slow-callback timing, for a machine
        # started while someone listens (docs/telemetry.md); None: not timed.
        self.timed: dict[Callable[..., Any], Callable[..., Any]] | None = (
            {} if _telemetry.SLOW else None
        )

    def callback(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The state callback ``fn`` as the loop calls it: itself, or, for a
        timed machine, wrapped to emit ``SLOW_CALLBACK`` (once per function)."""
        timed = self.timed
        if timed is None:
            return fn
        wrapped = timed.get(fn)
        if wrapped is None:
            wrapped = timed[fn] = _telemetry.timed_state_callback(self.proc, self.cls, fn)
        return wrapped

    # -- callbacks ------------------------------------------------------------

    def where(self, fn: Callable[..., Any], context: str) -> str:
        """The callback that returned a value, for error messages: ``context``
        is ``"event"``, ``"enter"`` (a state-enter call) or ``"init"``."""
        if context == "init":
            return f"{self.cls.__qualname__}.init"
        name = f"{self.cls.__qualname__}.{getattr(fn, '__name__', 'handle_event')}"
        return name if context == "event" else f"{name} (state-enter call)"

    def function_for(
        self, state: object, fn: Callable[..., Any], context: str
    ) -> Callable[..., Any]:
        """The state function of ``state`` (``STATE_FUNCTIONS`` mode), which
        ``fn`` returned."""
        if not isinstance(state, str):
            raise TypeError(
                f"{self.where(fn, context)} returned the state {show(state)}: with "
                "CallbackMode.STATE_FUNCTIONS a state is a str naming its method "
                "state_<state>; use CallbackMode.HANDLE_EVENT for other states"
            )
        found = getattr(self.cls, "state_" + state, None)
        if found is None or not callable(found):
            raise TypeError(
                f"{self.where(fn, context)} returned the state {state!r}, but "
                f"{self.cls.__qualname__} has no state function state_{state}; define "
                f"`async def state_{state}(self, event_type, event, data)`"
            )
        return self.callback(found)

    def parse(
        self, result: object, state: object, data: object, fn: Callable[..., Any], context: str
    ) -> tuple[object, object, tuple[Action, ...], bool]:
        """``(next_state, data, actions, repeat)`` from a callback's result."""
        if type(result) is tuple:
            size = len(result)
            if size == 2:
                return result[0], result[1], (), False
            if size == 3:
                try:
                    actions = actions_of(result[2])
                except TypeError as exc:
                    raise TypeError(f"{self.where(fn, context)}: {exc}") from None
                return result[0], result[1], actions, False
        elif isinstance(result, (KeepState, RepeatState)):  # final classes
            new = result.data
            return (
                state,
                data if new is UNCHANGED else new,
                result.actions,
                type(result) is RepeatState,
            )
        raise TypeError(
            f"{self.where(fn, context)} returned {show(result)}; a state callback returns "
            "(next_state, data), (next_state, data, actions), KeepState(...) or "
            "RepeatState(...)"
        )

    # -- transitions ----------------------------------------------------------

    async def transition(
        self,
        result: object,
        event: Event | None,
        state: object,
        data: object,
        fn: Callable[..., Any],
    ) -> tuple[object, object, Callable[..., Any]]:
        """Carry out what a callback returned for ``event`` (None: ``init``'s
        result, entering the initial state); return the new state, data and
        state function. The steps and their order are OTP's: actions (replies
        at once), state-enter calls, postpone, retrying postponed events on a
        state change, inserting events, timeouts."""
        context = "init" if event is None else "event"
        new_state, new_data, actions, repeat = self.parse(result, state, data, fn, context)
        changed = event is not None and new_state is not state and new_state != state
        inserted: list[Event] = []
        timeouts: list[Action] = []
        postpone = False
        if actions:
            postpone = self.actions(actions, fn, context, inserted, timeouts)
        new_fn = fn
        if changed and self.functions:
            new_fn = self.function_for(new_state, fn, context)
        enter = self.enter_calls and (changed or repeat or event is None)
        while enter:
            if self.functions:
                reply = await new_fn(self.machine, ENTER, state, new_data)
            else:
                reply = await new_fn(self.machine, ENTER, state, new_state, new_data)
            if _was_killed(self.proc):  # it swallowed the cancellation of a KILL
                raise Stop(KILLED)
            same, new_data, actions, enter = self.parse(reply, new_state, new_data, new_fn, "enter")
            if same is not new_state and same != new_state:
                raise TypeError(
                    f"{self.where(new_fn, 'enter')} returned the state {show(same)}: a "
                    f"state-enter call cannot change the state (it is {show(new_state)}); "
                    "change it from an event, with NextEvent if it must happen at once"
                )
            if actions:
                self.actions(actions, new_fn, "enter", None, timeouts)
        if postpone:
            assert event is not None
            self.postponed.append(event)
        queue = self.queue
        if changed:
            if self.postponed:
                queue.extendleft(reversed(self.postponed))
                self.postponed.clear()
            if self.state_timer is not None:
                self.state_timer.cancel()
                self.state_timer = None
        if inserted:
            queue.extendleft(reversed(inserted))
        for timeout in timeouts:
            self.set_timeout(timeout)
        return new_state, new_data, new_fn

    def actions(
        self,
        actions: tuple[Action, ...],
        fn: Callable[..., Any],
        context: str,
        inserted: list[Event] | None,
        timeouts: list[Action],
    ) -> bool:
        """Do the actions in order: replies now, the rest noted for later.
        ``inserted`` is None in a state-enter call (no Postpone, no
        NextEvent there). Return whether the event is postponed."""
        postpone = False
        for action in actions:
            kind = type(action)
            if kind is Reply:
                action.caller.reply(action.value)  # type: ignore[union-attr]
            elif kind is Postpone or kind is NextEvent:
                if inserted is None:
                    raise TypeError(
                        f"{self.where(fn, context)} returned {show(action)}: a state-enter "
                        "call is not an event, so it cannot postpone nor insert events "
                        "(only Reply and timeouts)"
                    )
                if kind is NextEvent:
                    inserted.append((action.type, action.content))  # type: ignore[union-attr]
                elif context == "event":
                    postpone = True
                else:
                    raise TypeError(
                        f"{self.where(fn, context)} returned Postpone(): there is no event "
                        "to postpone"
                    )
            else:
                assert kind in ACTION_TYPES
                timeouts.append(action)
        return postpone

    # -- timers ---------------------------------------------------------------

    def arm(self, kind: EventKind, seconds: float, content: object) -> _Timer:
        timer = _Timer(kind, content)
        if seconds == 0:
            self.queue.append(timer)
        else:
            timer.handle = self.loop.call_later(seconds, _fire, self.proc, timer)
        return timer

    def set_timeout(self, action: Action) -> None:
        """(Re)start or cancel one timeout; the last one of a kind wins."""
        kind = type(action)
        seconds: float | None = action.seconds  # type: ignore[union-attr]
        if kind is EventTimeout:
            if self.event_timer is not None:
                self.event_timer.cancel()
                self.event_timer = None
            if not is_never(seconds):
                assert seconds is not None
                self.event_timer = self.arm(EventType.EVENT_TIMEOUT, seconds, action.content)  # type: ignore[union-attr]
        elif kind is StateTimeout:
            if self.state_timer is not None:
                self.state_timer.cancel()
                self.state_timer = None
            if not is_never(seconds):
                assert seconds is not None
                self.state_timer = self.arm(EventType.STATE_TIMEOUT, seconds, action.content)  # type: ignore[union-attr]
        else:
            assert isinstance(action, GenericTimeout)
            generic = self.generic
            if generic is None:
                generic = self.generic = {}
            old = generic.pop(action.name, None)
            if old is not None:
                old.cancel()
            if not is_never(seconds):
                assert seconds is not None
                event_type = GenericTimeoutEvent(action.name)
                generic[action.name] = self.arm(event_type, seconds, action.content)

    def cancel_event_timer(self) -> None:
        """An event arrived: the event timeout, if any, will not fire."""
        if self.event_timer is not None:
            self.event_timer.cancel()
            self.event_timer = None

    def fired(self, timer: _Timer) -> None:
        """``timer`` is about to be handled: it is no longer running."""
        timer.live = False
        kind = timer.kind
        if kind is EventType.EVENT_TIMEOUT:
            self.event_timer = None
        elif kind is EventType.STATE_TIMEOUT:
            self.state_timer = None
        elif self.generic is not None:
            assert type(kind) is GenericTimeoutEvent
            self.generic.pop(kind.name, None)

    def cancel_timers(self) -> None:
        if self.event_timer is not None:
            self.event_timer.cancel()
            self.event_timer = None
        if self.state_timer is not None:
            self.state_timer.cancel()
            self.state_timer = None
        if self.generic:
            for timer in self.generic.values():
                timer.cancel()
            self.generic.clear()
        self.queue.clear()


def _initial(
    engine: _Engine, result: object
) -> tuple[object, object, tuple[Action, ...], Callable[..., Any]]:
    """The initial state, data, actions and state function from ``init``'s result."""
    init = engine.cls.init
    if type(result) is not tuple or len(result) not in (2, 3):
        raise TypeError(
            f"{engine.where(init, 'init')} returned {show(result)}; init returns "
            "(state, data) or (state, data, actions)"
        )
    state, data, actions, _ = engine.parse(result, None, None, init, "init")
    for action in actions:
        if type(action) is Postpone:
            raise TypeError(
                f"{engine.where(init, 'init')} returned Postpone(): there is no event to postpone"
            )
    if engine.functions:
        return state, data, actions, engine.function_for(state, init, "init")
    return state, data, actions, engine.callback(engine.cls.handle_event)


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
    engine = _Engine(proc, machine, functions, enter_calls)
    try:
        result = await machine.init(*args, **kwargs)
        if _was_killed(proc):  # init swallowed the cancellation of a KILL
            raise asyncio.CancelledError
        state, data, actions, fn = _initial(engine, result)
    except BaseException as exc:
        # As a GenServer's: unlink from the starter first, so that a starter
        # that used link=True survives to receive StartError; a KILL during
        # init (a cancellation) must reach the starter too.
        if proc.parent is not None:
            unlink_pair(proc, proc.parent)
        proc.reported = True
        if isinstance(exc, Exception):
            failure: BaseException = exc
        elif isinstance(exc, asyncio.CancelledError):
            failure = Stop(KILLED)
        else:  # SystemExit, KeyboardInterrupt: the node stops (see _exits.fatal)
            failure = Stop(fatal(proc, exc))
        if not started.done():
            started.set_exception(failure)
        if isinstance(failure, Stop) and not isinstance(exc, asyncio.CancelledError):
            return ExitWith(failure.reason)
        raise
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
            _note(exc, f"in {cls.__qualname__} {proc.pid!r} entering the state {show(state)}")
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
    engine: _Engine, state: object, data: object, fn: Callable[..., Any]
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
            if isinstance(item, _Timer):
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
                    if proc.killed:  # it swallowed the cancellation of a KILL
                        reason = KILLED
                        break
                    match result:
                        case (new_state, new_data) if type(result) is tuple and (
                            new_state is state or new_state == state
                        ):
                            data = new_data
                            continue
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
            elif kind is _Timer:
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
                await sys_handle(proc, view, message, None, handled + budget)
                state, data = view.state, view.data
                if view.fn is not None:
                    fn = view.fn
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
