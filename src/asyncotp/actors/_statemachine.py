"""StateMachine: the state machine behaviour, after Erlang's ``gen_statem``.

This module holds the class users subclass: its default callbacks, ``start``
and ``child_spec``. The loop that runs the callbacks is the runtime's
(``asyncotp._core._statem``); the values callbacks receive and return (event
types, actions, ``KeepState``, ``RepeatState``) are the core's too.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from .._core import (
    Action,
    CallbackMode,
    ChildSpec,
    ChildType,
    EventKind,
    Name,
    Overflow,
    Pid,
    Restart,
    ShutdownSetting,
    Transition,
    start_statem,
)
from ._callbacks import check_async_callbacks

S = TypeVar("S")
D = TypeVar("D")

InitResult: TypeAlias = tuple[S, D] | tuple[S, D, Action | Sequence[Action]]


class StateMachine(Generic[S, D]):
    """A state machine actor: events handled one at a time, by state.

    Example, a code lock (``examples/door_lock.py`` is the whole program)::

        class Door(StateMachine[str, str]):
            callback_mode = CallbackMode.STATE_FUNCTIONS
            state_enter = True

            async def init(self, code: str) -> tuple[str, str]:
                return "locked", code                  # the initial state and data

            async def state_locked(self, event_type, event, code):
                match event_type, event:
                    case EventType.ENTER, _:
                        return KeepState()
                    case CallEvent(caller), ("button", entered) if entered == code:
                        return "open", code, [Reply(caller, "opened")]
                    case CallEvent(caller), ("button", _):
                        return KeepState(actions=[Reply(caller, "wrong code")])
                return KeepState()

            async def state_open(self, event_type, event, code):
                match event_type, event:
                    case EventType.ENTER, _:           # entering: lock again in 10 s
                        return KeepState(actions=[StateTimeout(10, "lock")])
                    case EventType.STATE_TIMEOUT, "lock":
                        return "locked", code
                    case CallEvent(caller), _:         # busy: answer once locked
                        return KeepState(actions=[Postpone()])
                return KeepState()

        door = await Door.start("1234", name="door")
        assert await call(door, ("button", "1234")) == "opened"

    **Client API**: ``Cls.start`` (and ``Cls.child_spec`` for supervisors),
    then ``call``, ``cast``, ``send`` and ``stop``, exactly as for a
    ``GenServer``: a call arrives as a ``CallEvent(caller)`` event, a cast as
    ``EventType.CAST``, any other message as ``EventType.INFO``.

    **Callbacks** (all async):

    * ``init(*args, **kwargs)`` returns ``(state, data)`` or ``(state, data,
      actions)``. It runs before ``start`` returns; raise (or ``raise
      Stop(reason)``) to refuse to start: ``start`` raises ``StartError``.
      Its actions are done on entering the initial state (``Postpone`` is
      refused: there is no event).
    * The state callback, chosen by the class attribute ``callback_mode``:

      - ``CallbackMode.HANDLE_EVENT`` (the default): one method,
        ``handle_event(event_type, event, state, data)``, for every state;
        a state can be any value (compared with ``==``; keep it small).
      - ``CallbackMode.STATE_FUNCTIONS``: one method per state, named
        ``state_<state>(event_type, event, data)``; a state is a ``str``
        that can end a method name (``"locked"`` goes to ``state_locked``).
        A state without its method is an error where it is returned.

    * ``terminate(reason, state, data)`` runs when the machine stops (``Stop``,
      a crash in a callback, a shutdown from its supervisor, ``stop()``),
      not after ``KILL``. Raising ``Stop(reason)`` there chooses the exit
      reason; a crash there becomes it (and ``stop()`` raises
      ``ServerExited`` with it).

    **Event types** (``event_type``): ``CallEvent(caller)``, ``EventType.CAST``,
    ``EventType.INFO``, ``EventType.INTERNAL`` (inserted with ``NextEvent``),
    ``EventType.EVENT_TIMEOUT``, ``EventType.STATE_TIMEOUT``,
    ``GenericTimeoutEvent(name)`` and, with ``state_enter = True``,
    ``EventType.ENTER`` (the event is then the previous state). ``event`` is
    the request, message or timeout content.

    **Every allowed return** of a state callback (``Transition[S, D]``):

    * ``(next_state, data)`` or ``(next_state, data, actions)``: a state
      *change* if ``next_state != state``, else the same as ``KeepState``.
      ``actions`` is one action or a list of them.
    * ``KeepState()`` (state and data kept), ``KeepState(data)``, and either
      with ``actions=[...]``: no state change.
    * ``RepeatState(...)``: like ``KeepState``, and repeats the state's
      enter call (with ``state_enter = True``).
    * ``raise Stop(reason)``: stop; in a call, ``Stop(reason, reply=value)``
      answers the caller first. Anything else raised crashes the machine.

    A bad return value crashes the machine with a ``TypeError`` that names
    the callback and the value.

    **Actions**, done in their order: ``Reply(caller, value)`` answers a call
    (or use ``caller.reply(value)``, from any event or task; a call not
    answered when its event returns waits for a later reply, and fails with
    ``ServerExited`` if the machine ends first). ``Postpone()`` keeps the
    current event for a later state (below). ``NextEvent(type, content)``
    inserts an event to handle next, before everything queued (several keep
    their order). ``StateTimeout``, ``EventTimeout`` and ``GenericTimeout``
    set timeouts.

    **Postponing**: a postponed event is not handled in this state. After
    the next state change (``next_state != state``; ``KeepState``,
    ``RepeatState`` and returning the same state are not changes) every
    postponed event is retried, oldest first, after the ``NextEvent`` ones
    and before any other event. It is selective receive for state machines:
    ``Postpone`` says "not in this state", a state change is a new receive.
    A postponed call keeps its caller waiting. An event postponed in every
    state waits forever.

    **Timeouts** (``seconds=None`` cancels; the last of a kind in a
    transition wins; a timeout that has fired but is cancelled before its
    event is handled never arrives; all are cancelled when the machine
    ends): ``StateTimeout(seconds, content)`` fires unless the state changes
    first (set in a state change, it belongs to the new state).
    ``EventTimeout(seconds, content)`` fires unless any event arrives first.
    ``GenericTimeout(name, seconds, content)`` fires whatever happens, unless
    restarted or cancelled by name. Time is the event loop's, so
    ``asyncotp.testing.VirtualClock`` drives it in tests.

    **State-enter calls** (``state_enter = True``): on every state change,
    and on entering the initial state, the new state's callback is called
    with ``(EventType.ENTER, old_state, ...)`` (for the initial state, the old
    state is the state itself) before any event. It may change the data and
    return ``Reply`` and timeouts, but must not change the state, nor
    ``Postpone`` or ``NextEvent``: that is a ``TypeError``.

    **Naming and supervision**: ``start(..., name="door")`` registers it
    (``call("door", ...)``). ``Door.child_spec("1234", id="door",
    name="door")`` starts it linked to its supervisor, like a ``GenServer``;
    a restart begins again from ``init``'s state. Exits are a
    ``GenServer``'s: a running callback is never interrupted by a shutdown
    or ``stop()``; they are handled as soon as it returns, ahead of queued
    events (whose callers get ``ServerExited``); only ``KILL`` cuts a
    callback short, and then ``terminate`` does not run. A machine that
    calls ``set_trap_exits(True)`` in ``init`` gets exit signals as
    ``Exited`` info events, except from its parent.

    The exit reason is a GenServer's too: the exception of a crash, the
    reason of a ``Stop``, ``SHUTDOWN`` from a supervisor, ``KILLED`` after
    ``KILL`` (even if a callback swallows the cancellation); a
    ``Restart.TRANSIENT`` child is restarted unless it is a clean one.
    ``SystemExit`` or ``KeyboardInterrupt`` in a callback stops the whole
    node in order, as from a GenServer. A crash report names the machine,
    its state, its last event and the reason, with the ``(state, data)``
    pair as ``format_status`` shows it (override it to hide secrets).
    ``asyncotp.sys`` answers ``get_state``, ``replace_state``, ``suspend``,
    ``resume``, ``statistics``, ``trace`` and ``time_callbacks``.

    **When not to use it**: when what the actor accepts hardly depends on a
    state, a ``GenServer`` with an attribute is simpler. For state held and
    updated by others, an ``Agent``. A
    ``StateMachine`` earns its place when which events are accepted, and how
    long to wait, change with the state: protocols, connections,
    sessions, devices, workflows.
    """

    callback_mode: ClassVar[CallbackMode] = CallbackMode.HANDLE_EVENT
    """``HANDLE_EVENT`` (one ``handle_event`` for every state) or
    ``STATE_FUNCTIONS`` (one ``state_<state>`` method per state)."""
    state_enter: ClassVar[bool] = False
    """Whether to make state-enter calls (``EventType.ENTER``)."""

    _asyncotp_child_type: ClassVar[ChildType] = ChildType.WORKER

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_async_callbacks(cls, StateMachine, prefix="state_")
        if not isinstance(cls.callback_mode, CallbackMode):
            raise TypeError(
                f"{cls.__qualname__}.callback_mode must be CallbackMode.HANDLE_EVENT or "
                f"CallbackMode.STATE_FUNCTIONS, not {cls.callback_mode!r}"
            )
        if not isinstance(cls.state_enter, bool):
            raise TypeError(
                f"{cls.__qualname__}.state_enter must be True or False, not {cls.state_enter!r}"
            )

    async def init(self, *args: Any, **kwargs: Any) -> InitResult[S, D]:
        """Return the initial ``(state, data)`` or ``(state, data, actions)``."""
        raise NotImplementedError(
            f"{type(self).__qualname__} defines no init; define `async def init(self, ...)` "
            "returning the initial (state, data)"
        )

    async def handle_event(
        self, event_type: EventKind, event: Any, state: S, data: D
    ) -> Transition[S, D]:
        """Handle an event in ``CallbackMode.HANDLE_EVENT``; see the class."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received {event_type!r} {event!r} in the state "
            f"{state!r} but defines no handle_event; define `async def handle_event(self, "
            "event_type, event, state, data)`, or set callback_mode = "
            "CallbackMode.STATE_FUNCTIONS and define state_<state> methods"
        )

    def format_status(self, state: tuple[S, D]) -> Any:
        """The ``(state, data)`` pair as ``asyncotp.sys.get_state`` and crash
        reports show it; override it to hide secrets in the data. The
        default shows it as it is."""
        return state

    async def terminate(self, reason: Any, state: S, data: D) -> None:
        """Clean up when the machine stops; the default does nothing."""

    # -- client side ----------------------------------------------------------

    @classmethod
    async def start(
        cls,
        *args: Any,
        name: Name | None = None,
        link: bool = False,
        mailbox_size: int | None = None,
        overflow: Overflow = Overflow.REJECT,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> Pid:
        """Spawn the machine and wait until ``init(*args, **kwargs)`` has returned.

        If ``init`` raises, returns a bad value, or takes longer than
        ``timeout`` seconds, ``start`` raises ``StartError`` (its
        ``__cause__`` is the error, a ``TimeoutError`` for the timeout) and
        nothing is left running or registered. ``link=True`` links the
        machine to the calling actor.
        """
        if cls.init is StateMachine.init:
            raise TypeError(
                f"{cls.__qualname__} defines no init; define `async def init(self, ...)` "
                "returning the initial (state, data)"
            )
        functions = cls.callback_mode is CallbackMode.STATE_FUNCTIONS
        if not functions and cls.handle_event is StateMachine.handle_event:
            raise TypeError(
                f"{cls.__qualname__} uses CallbackMode.HANDLE_EVENT but defines no "
                "handle_event; define `async def handle_event(self, event_type, event, "
                "state, data)`, or set callback_mode = CallbackMode.STATE_FUNCTIONS"
            )
        return await start_statem(
            cls(),
            args,
            kwargs,
            name=name,
            link=link,
            mailbox_size=mailbox_size,
            overflow=overflow,
            timeout=timeout,
            functions=functions,
            enter_calls=cls.state_enter,
            has_terminate=cls.terminate is not StateMachine.terminate,
        )

    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = None,  # noqa: A002 - the contract's name, as in OTP
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **kwargs: Any,
    ) -> ChildSpec:
        """A child spec that starts this machine linked to its supervisor.

        ``id`` defaults to the class name. Other keyword arguments (``name=``,
        ``mailbox_size=``, ... and ``init``'s own) go to ``start`` at every
        (re)start. ``backoff=`` and ``significant=`` are taken by the spec itself.
        """
        backoff = kwargs.pop("backoff", None)
        significant = kwargs.pop("significant", False)
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
            significant=significant,
            **extra,
        )
