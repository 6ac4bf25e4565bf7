"""The vocabulary of a state machine: what its callbacks receive and return.

A ``StateMachine`` callback is called with an event type and an event, and
returns a transition: the next state and data, maybe with actions. These
are the values of that exchange, after Erlang's ``gen_statem``:

* event types: ``EventType`` members (``CAST``, ``INFO``, ``INTERNAL``,
  ``EVENT_TIMEOUT``, ``STATE_TIMEOUT``, ``ENTER``), ``CallEvent(caller)``
  for a call (OTP's ``{call, From}``) and ``GenericTimeoutEvent(name)`` for
  a generic timeout (OTP's ``{timeout, Name}``);
* actions: ``Reply``, ``Postpone``, ``NextEvent``, ``StateTimeout``,
  ``EventTimeout``, ``GenericTimeout``;
* the shorthands ``KeepState`` and ``RepeatState``;
* ``CallbackMode``, how a machine's events reach its code.

The loop that interprets them is ``_statem``. All values are frozen and
validated when they are made, so a wrong action fails in the callback that
made it, with the callback in the traceback.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Sequence
from typing import Any, Final, TypeAlias, TypeVar, Union, final

import attrs

from ._server import Caller


class CallbackMode(enum.Enum):
    """How a state machine's events reach its code (OTP's callback mode)."""

    HANDLE_EVENT = "handle_event"
    """One ``handle_event(event_type, event, state, data)`` for every state;
    the state can be any value."""
    STATE_FUNCTIONS = "state_functions"
    """One method per state: a state is a ``str`` and its events go to the
    method ``state_<state>(event_type, event, data)``."""

    def __repr__(self) -> str:
        return f"CallbackMode.{self.name}"


class EventType(enum.Enum):
    """The type of an event that carries no more than its content.

    Calls and generic timeouts carry more: their event type is a
    ``CallEvent`` or a ``GenericTimeoutEvent``.
    """

    CAST = "cast"
    """A ``cast`` request; the event is the request."""
    INFO = "info"
    """Any other message (``send``, ``Down``, ``Exited``, timers); the event
    is the message."""
    INTERNAL = "internal"
    """An event the machine inserted itself with ``NextEvent``."""
    EVENT_TIMEOUT = "timeout"
    """An ``EventTimeout`` expired (no event arrived in time)."""
    STATE_TIMEOUT = "state_timeout"
    """A ``StateTimeout`` expired (the machine stayed in the state)."""
    ENTER = "enter"
    """A state-enter call; the event is the previous state."""

    def __repr__(self) -> str:
        return f"EventType.{self.name}"


@final
@attrs.frozen
class CallEvent:
    """The event type of a call: reply to ``caller`` (OTP's ``{call, From}``).

    Match it as ``case CallEvent(caller), request:``; answer with the action
    ``Reply(caller, value)`` or with ``caller.reply(value)``, now or from a
    later event.
    """

    caller: Caller


@final
@attrs.frozen
class GenericTimeoutEvent:
    """The event type of an expired ``GenericTimeout(name, ...)`` (OTP's
    ``{timeout, Name}``)."""

    name: Hashable


EventKind: TypeAlias = EventType | CallEvent | GenericTimeoutEvent
"""Everything ``event_type`` can be."""


def _check_event_kind(instance: object, field: attrs.Attribute[Any], value: object) -> None:
    kind = type(value)
    if (kind is EventType and value is not EventType.ENTER) or kind in (
        CallEvent,
        GenericTimeoutEvent,
    ):
        return
    raise TypeError(
        f"{type(instance).__name__}.{field.name} must be an EventType (but ENTER), a "
        f"CallEvent or a GenericTimeoutEvent, not {value!r}"
    )


def _check_seconds(instance: object, field: attrs.Attribute[Any], value: object) -> None:
    # None and math.inf mean "never": the timeout is cancelled.
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(
            f"{type(instance).__name__}.{field.name} must be seconds >= 0, or None to "
            f"cancel, not {value!r}"
        )


def _check_hashable(instance: object, field: attrs.Attribute[Any], value: object) -> None:
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"{type(instance).__name__}.{field.name} must be hashable (it names the "
            f"timeout), not {show(value)}"
        ) from None


def _check_caller(instance: object, field: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not Caller:
        raise TypeError(
            f"{type(instance).__name__}.{field.name} must be the Caller of a call event "
            f"(from CallEvent(caller)), not {value!r}"
        )


@final
@attrs.frozen
class Reply:
    """Answer ``caller`` with ``value`` (OTP's ``{reply, From, Reply}``).

    Replies are sent in the order of the actions, before anything else of
    the transition happens.
    """

    caller: Caller = attrs.field(validator=_check_caller)
    value: object


@final
@attrs.frozen
class Postpone:
    """Postpone the current event: it is retried after the next state change,
    in the order it was postponed, before any new event. Not allowed in a
    state-enter call nor in ``init`` (there is no event to postpone)."""


@final
@attrs.frozen
class NextEvent:
    """Insert an event to handle next, before every event already queued
    (OTP's ``next_event``). Several ``NextEvent`` actions are handled in
    their order. ``type`` is usually ``EventType.INTERNAL``. Not allowed in
    a state-enter call."""

    type: EventKind = attrs.field(validator=_check_event_kind)
    content: object = None


@final
@attrs.frozen
class StateTimeout:
    """Fire an ``EventType.STATE_TIMEOUT`` event with ``content`` after
    ``seconds``, unless the state changes first.

    Set in a state change, it belongs to the new state. Setting it again
    restarts it; ``seconds=None`` (or ``math.inf``) cancels it; ``0`` fires
    it after the events already queued, before any new message.
    """

    seconds: float | None = attrs.field(validator=_check_seconds)
    content: object = None


@final
@attrs.frozen
class EventTimeout:
    """Fire an ``EventType.EVENT_TIMEOUT`` event with ``content`` after
    ``seconds``, unless an event arrives first (OTP's event timeout).

    Any event cancels it, of any type, including inserted and retried
    events; ``seconds=None`` (or ``math.inf``) sets none.
    """

    seconds: float | None = attrs.field(validator=_check_seconds)
    content: object = None


@final
@attrs.frozen
class GenericTimeout:
    """Fire a ``GenericTimeoutEvent(name)`` event with ``content`` after
    ``seconds``, whatever happens meanwhile (OTP's generic timeout).

    Only another ``GenericTimeout`` with the same ``name`` restarts it, or
    cancels it with ``seconds=None`` (or ``math.inf``). Timeouts with other
    names run independently.
    """

    name: Hashable = attrs.field(validator=_check_hashable)
    seconds: float | None = attrs.field(validator=_check_seconds)
    content: object = None


Action: TypeAlias = Reply | Postpone | NextEvent | StateTimeout | EventTimeout | GenericTimeout
"""Any action a callback can return."""

ACTION_TYPES: Final = (Reply, Postpone, NextEvent, StateTimeout, EventTimeout, GenericTimeout)
TIMEOUT_TYPES: Final = (StateTimeout, EventTimeout, GenericTimeout)


class _Unchanged(enum.Enum):
    UNCHANGED = 0

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged.UNCHANGED
"""The data of a ``KeepState`` or ``RepeatState`` that keeps the data."""


def actions_of(value: object) -> tuple[Action, ...]:
    """The actions of a transition as a tuple: a lone action or a sequence
    (list, tuple) of them; ``TypeError`` otherwise (its message says what
    is wrong; the caller says where)."""
    if type(value) in ACTION_TYPES:
        return (value,)  # type: ignore[return-value]
    if isinstance(value, (list, tuple)):
        for action in value:
            if type(action) not in ACTION_TYPES:
                raise TypeError(
                    f"{show(action)} is not an action; the actions are Reply, Postpone, "
                    "NextEvent, StateTimeout, EventTimeout and GenericTimeout"
                )
        return tuple(value)
    raise TypeError(f"the actions must be an action or a list of actions, not {show(value)}")


def _keep_actions(value: object) -> tuple[Action, ...]:
    try:
        return actions_of(value)
    except TypeError as exc:
        raise TypeError(f"KeepState.actions: {exc}") from None


def _repeat_actions(value: object) -> tuple[Action, ...]:
    try:
        return actions_of(value)
    except TypeError as exc:
        raise TypeError(f"RepeatState.actions: {exc}") from None


def _repr_shorthand(self: KeepState | RepeatState) -> str:
    parts = []
    if self.data is not UNCHANGED:
        parts.append(f"data={self.data!r}")
    if self.actions:
        parts.append(f"actions={list(self.actions)!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


@final
@attrs.frozen(repr=False)
class KeepState:
    """Stay in the current state (OTP's ``keep_state``): not a state change,
    so postponed events stay postponed and the state timeout runs on.

    ``KeepState()`` keeps the data too (``keep_state_and_data``);
    ``KeepState(data)`` replaces it; ``actions`` (an action or a list) are
    done as for any transition.
    """

    data: object = UNCHANGED
    actions: tuple[Action, ...] = attrs.field(default=(), converter=_keep_actions)

    __repr__ = _repr_shorthand


@final
@attrs.frozen(repr=False)
class RepeatState:
    """Like ``KeepState``, and with state-enter calls on, repeat the state's
    enter call (OTP's ``repeat_state``). Still not a state change: postponed
    events stay postponed, the state timeout runs on."""

    data: object = UNCHANGED
    actions: tuple[Action, ...] = attrs.field(default=(), converter=_repeat_actions)

    __repr__ = _repr_shorthand


S = TypeVar("S")
D = TypeVar("D")

Actions: TypeAlias = Action | Sequence[Action]
"""One action, or a list of them."""

Transition: TypeAlias = Union[tuple[S, D], tuple[S, D, Actions], KeepState, RepeatState]  # noqa: UP007 - a generic alias needs Union on 3.11
"""What a state callback returns: ``(next_state, data)``,
``(next_state, data, actions)``, ``KeepState(...)`` or ``RepeatState(...)``.
Generic: ``Transition[State, Data]``."""


def show(value: object) -> str:
    """``repr(value)``, or a stand-in when that repr raises: the runtime
    formats user values only through this."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the runtime
        return f"<{type(value).__qualname__} object (its repr raised)>"


def is_never(seconds: float | None) -> bool:
    """Whether a timeout's ``seconds`` means "never" (it cancels)."""
    return seconds is None or seconds == math.inf
