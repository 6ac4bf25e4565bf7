"""The state machine's engine: what ``_statem``'s loop keeps besides the
state and the data (queued and postponed events, the timers, the wrapped
callbacks) and every transition that is not the loop's hot path.

It follows Erlang's ``gen_statem``; see ``_statem`` for the loop itself.
"""

from __future__ import annotations

import asyncio
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
from ._mailbox import deliver_system
from ._reasons import KILLED, Stop
from ._state import DEAD, Process
from ._sys import Debug

ENTER = EventType.ENTER

Event = tuple[EventKind, object]
"""An event in the loop's queues: its type and its content."""


def was_killed(proc: Process) -> bool:
    """Whether ``proc`` was killed. A function, so that type checkers do not
    narrow ``proc.killed`` for the rest of a loop (a KILL changes it during
    any await)."""
    return proc.killed


class MachineCallbacks(Protocol):
    """What the loop calls: a ``StateMachine``'s callbacks. In
    ``STATE_FUNCTIONS`` mode the loop also looks up ``state_<state>``."""

    async def init(self, *args: Any, **kwargs: Any) -> Any: ...
    async def handle_event(self, event_type: Any, event: Any, state: Any, data: Any) -> Any: ...
    async def terminate(self, reason: Any, state: Any, data: Any) -> None: ...
    def format_status(self, state: Any) -> Any: ...


@final
class Timer:
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


def _fire(proc: Process, timer: Timer) -> None:
    timer.handle = None
    if timer.live and proc.state != DEAD:
        deliver_system(proc, timer)


def describe(event_type: EventKind, content: object) -> str:
    if type(event_type) is CallEvent:
        return f"the call {show(content)}"
    if type(event_type) is GenericTimeoutEvent:
        return f"the generic timeout {show(event_type.name)} {show(content)}"
    assert isinstance(event_type, EventType)
    return f"the {event_type.value} event {show(content)}"


_NO_STATE: Final = object()
"""A traced state function's call: the state is not among its arguments."""


@final
class _Traced:
    """A state callback's arguments as a trace line shows them: the event
    and the state (``_Traced(*args)``: event type, content, then the state,
    in ``HANDLE_EVENT`` mode, and the data)."""

    __slots__ = ("content", "event_type", "state")

    def __init__(self, event_type: EventKind, content: object, *rest: object) -> None:
        self.event_type = event_type
        self.content = content
        self.state = rest[0] if len(rest) == 2 else _NO_STATE

    def __repr__(self) -> str:
        if self.event_type is ENTER:
            return f"state enter from {show(self.content)}"
        where = "" if self.state is _NO_STATE else f" in the state {show(self.state)}"
        return describe(self.event_type, self.content) + where


class Engine:
    """What the loop keeps besides the state and the data, and every
    transition that is not the hot path."""

    __slots__ = (
        "cls",
        "debug",
        "enter_calls",
        "event_timer",
        "functions",
        "generic",
        "loop",
        "machine",
        "postponed",
        "proc",
        "queue",
        "raw",
        "slow",
        "state_timer",
        "wrapped",
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
        self.queue: deque[Event | Timer] = deque()
        self.postponed: list[Event] = []
        self.event_timer: Timer | None = None
        self.state_timer: Timer | None = None
        self.generic: dict[Hashable, Timer] | None = None
        # Whether the state callbacks are timed for SLOW_CALLBACK (a machine
        # started while someone listens; docs/telemetry.md), and the tracing
        # or timing of asyncotp.sys, while one is on. While either is, the
        # loop calls wrapped callbacks: ``wrapped`` maps each state callback
        # to its wrapper, ``raw`` each wrapper back (None: no wrapping).
        self.slow = _telemetry.SLOW
        self.debug: Debug | None = None
        self.wrapped: dict[Callable[..., Any], Callable[..., Any]] | None = None
        self.raw: dict[Callable[..., Any], Callable[..., Any]] | None = None
        if self.slow:
            self.wrapped, self.raw = {}, {}

    def callback(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The state callback ``fn`` as the loop calls it: itself, or, while
        it is timed or traced, wrapped (once per function and switch)."""
        wrapped = self.wrapped
        if wrapped is None:
            return fn
        found = wrapped.get(fn)
        if found is None:
            found = fn
            if self.debug is not None:
                found = self.debug.wrap(self.proc, self.cls, found, _Traced)
            if self.slow:
                found = _telemetry.timed_state_callback(self.proc, self.cls, found, fn.__name__)
            wrapped[fn] = found
            assert self.raw is not None
            self.raw[found] = fn
        return found

    def unwrapped(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The state callback that ``fn`` (one ``callback`` gave) wraps."""
        return fn if self.raw is None else self.raw.get(fn, fn)

    def switch(self, debug: Debug | None, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``asyncotp.sys`` turned tracing or timing on or off: wrap the
        callbacks anew; return ``fn`` (the current one) as the loop must
        call it now."""
        raw = self.unwrapped(fn)
        self.debug = debug
        if debug is None and not self.slow:
            self.wrapped = self.raw = None
        else:
            self.wrapped, self.raw = {}, {}
        return self.callback(raw)

    # -- callbacks ------------------------------------------------------------

    def where(self, fn: Callable[..., Any], context: str) -> str:
        """The callback that returned a value, for error messages: ``context``
        is ``"event"``, ``"enter"`` (a state-enter call) or ``"init"``."""
        if context == "init":
            return f"{self.cls.__qualname__}.init"
        fn = self.unwrapped(fn)
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
            if was_killed(self.proc):  # it swallowed the cancellation of a KILL
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

    def arm(self, kind: EventKind, seconds: float, content: object) -> Timer:
        timer = Timer(kind, content)
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

    def fired(self, timer: Timer) -> None:
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


def initial(
    engine: Engine, result: object
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
