"""StateMachine: events by state, postpone, inserted events, enter calls,
the three timeouts, calls and replies, stop and terminate, supervision.

Most tests drive ``Scripted``, a machine that logs every event it sees and
returns what the event (a ``Do``) tells it to. Tests synchronise on calls
(``sync``: handled after everything queued before it), gates and monitors,
never on sleeps; timeouts run on the kit's ``VirtualClock`` and the tests
assert the exact virtual times at which they fire.
"""

from __future__ import annotations

import asyncio
import enum
import math
import re
from collections import deque
from collections.abc import Iterable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings

import asyncotp
from asyncotp import (
    KILL,
    KILLED,
    NORMAL,
    SHUTDOWN,
    Action,
    CallbackMode,
    CallEvent,
    EventKind,
    EventTimeout,
    EventType,
    Exited,
    GenericTimeout,
    GenericTimeoutEvent,
    KeepState,
    NameTaken,
    NextEvent,
    Node,
    Pid,
    Postpone,
    RepeatState,
    Reply,
    Restart,
    ServerExited,
    StartError,
    StateMachine,
    StateTimeout,
    Stop,
    Strategy,
    Supervisor,
    Transition,
    call,
    cast,
    is_alive,
    link,
    receive,
    send,
    send_exit,
    set_trap_exits,
    spawn,
    stop,
    whereis,
)
from asyncotp.testing import VirtualClock, wait_for_exit, wait_for_restart
from tests.helpers import Gate, started, watch
from tests.strategies import statem_steps

INTERNAL = EventType.INTERNAL


class _Keep(enum.Enum):
    KEEP = 0


KEEP = _Keep.KEEP
"""A ``Do`` that stays in the current state."""


def as_tuple(actions: Iterable[Action]) -> tuple[Action, ...]:
    return tuple(actions)


@attrs.frozen
class Do:
    """What ``Scripted`` returns for this event: go to ``state`` (or stay)
    with ``actions``; answer a call with ``reply``. Outside the ``accept``
    states (None: all) it postpones the event instead. ``gate`` holds the
    callback busy first; ``crash`` is raised."""

    name: str
    state: object = KEEP
    actions: tuple[Action, ...] = attrs.field(default=(), converter=as_tuple)
    reply: object = "ok"
    accept: frozenset[object] | None = None
    repeat: bool = False
    gate: Gate | None = None
    crash: Exception | None = None


@attrs.frozen
class Seen:
    """One event as ``Scripted`` saw it, at a virtual time."""

    kind: str
    event: object
    state: object
    at: float
    postponed: bool = False


def label(event_type: EventKind) -> str:
    if isinstance(event_type, CallEvent):
        return "call"
    if isinstance(event_type, GenericTimeoutEvent):
        return f"timeout:{event_type.name}"
    return event_type.value


class Scripted(StateMachine[object, list[Seen]]):
    """Logs every event into its data, the test's list, and returns what
    the event's ``Do`` says (``KeepState()`` for anything else)."""

    async def init(
        self,
        log: list[Seen],
        state: object = "a",
        actions: tuple[Action, ...] = (),
        on_enter: dict[object, Do] | None = None,
    ) -> tuple[object, list[Seen], list[Action]]:
        self.loop = asyncio.get_running_loop()
        self.on_enter = on_enter or {}
        return state, log, list(actions)

    async def handle_event(
        self, event_type: EventKind, event: Any, state: object, data: list[Seen]
    ) -> Transition[object, list[Seen]]:
        if isinstance(event_type, CallEvent) and event == "sync":
            return KeepState(actions=Reply(event_type.caller, "synced"))
        what = event.name if isinstance(event, Do) else event
        if event_type is EventType.ENTER:
            do = self.on_enter.get(state, Do("enter"))
        elif isinstance(event, Do):
            do = event
        else:
            data.append(Seen(label(event_type), what, state, self.loop.time()))
            return KeepState()
        postpone = do.accept is not None and state not in do.accept
        data.append(Seen(label(event_type), what, state, self.loop.time(), postpone))
        if postpone:
            return KeepState(actions=Postpone())
        if do.gate is not None:
            await do.gate.pass_through()
        if do.crash is not None:
            raise do.crash
        actions = list(do.actions)
        if isinstance(event_type, CallEvent):
            actions.insert(0, Reply(event_type.caller, do.reply))
        if do.repeat:
            return RepeatState(actions=actions)
        if do.state is KEEP:
            return KeepState(actions=actions)
        return do.state, data, actions

    async def terminate(self, reason: Any, state: object, data: list[Seen]) -> None:
        data.append(Seen("terminate", reason, state, self.loop.time()))


class EnterScripted(Scripted):
    state_enter = True


async def sync(pid: Pid) -> None:
    """Return once ``pid`` has handled everything queued before this call."""
    assert await call(pid, "sync") == "synced"


def handled(log: list[Seen], *kinds: str) -> list[tuple[str, object, object]]:
    """``(kind, event, state)`` of the events handled (not postponed)."""
    return [(s.kind, s.event, s.state) for s in log if not s.postponed and s.kind in kinds]


# -- start, init, dispatch ---------------------------------------------------------


async def test_start_runs_init_and_the_machine_begins_in_its_initial_state(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log, "idle", name="scripted")
    assert whereis("scripted") is pid
    cast(pid, Do("first"))
    await sync(pid)
    assert handled(log, "cast") == [("cast", "first", "idle")]


class Counter(StateMachine[str, int]):
    """One method per state (``CallbackMode.STATE_FUNCTIONS``)."""

    callback_mode = CallbackMode.STATE_FUNCTIONS

    async def init(self, start: int = 0) -> tuple[str, int]:
        return "counting", start

    async def state_counting(
        self, event_type: EventKind, event: Any, data: int
    ) -> Transition[str, int]:
        match event_type, event:
            case CallEvent(caller), "get":
                return KeepState(actions=Reply(caller, ("counting", data)))
            case CallEvent(caller), "pause":
                return "paused", data, Reply(caller, "paused")
            case EventType.CAST, int(n):
                return "counting", data + n
            case EventType.CAST, "bad state":
                return "nowhere", data
        return KeepState()

    async def state_paused(
        self, event_type: EventKind, event: Any, data: int
    ) -> Transition[str, int]:
        match event_type, event:
            case CallEvent(caller), "get":
                return KeepState(actions=[Reply(caller, ("paused", data))])
            case EventType.CAST, "resume":
                return "counting", data
        return KeepState()  # casts are ignored while paused


async def test_state_functions_get_the_events_of_their_state(node: Node) -> None:
    pid = await Counter.start(10)
    cast(pid, 5)
    assert await call(pid, "get") == ("counting", 15)
    assert await call(pid, "pause") == "paused"
    cast(pid, 100)
    assert await call(pid, "get") == ("paused", 15)
    cast(pid, "resume")
    cast(pid, 1)
    assert await call(pid, "get") == ("counting", 16)


async def test_going_to_a_state_without_a_state_function_crashes_with_type_error(
    node: Node,
) -> None:
    pid = await Counter.start()
    ended = await watch(pid)
    cast(pid, "bad state")
    reason = await ended
    assert isinstance(reason, TypeError)
    assert "Counter.state_counting returned the state 'nowhere'" in str(reason)
    assert "state_nowhere" in str(reason)


class NoInit(StateMachine[str, int]):
    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: int
    ) -> Transition[str, int]:
        return KeepState()


class NoHandler(StateMachine[str, int]):
    async def init(self) -> tuple[str, int]:
        return "a", 0


async def test_start_refuses_a_machine_without_init_or_handle_event(node: Node) -> None:
    with pytest.raises(TypeError, match="NoInit defines no init"):
        await NoInit.start()
    with pytest.raises(TypeError, match=re.escape("NoHandler uses CallbackMode.HANDLE_EVENT")):
        await NoHandler.start()


def test_a_bad_callback_mode_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="callback_mode must be"):

        class Bad(StateMachine[str, int]):
            callback_mode = "state_functions"  # type: ignore[assignment]


class BadInit(StateMachine[object, object]):
    async def init(self, result: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    async def handle_event(
        self, event_type: EventKind, event: Any, state: object, data: object
    ) -> Transition[object, object]:
        return KeepState()


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (ValueError("no config"), "no config"),
        (Stop("refused"), "refused"),
        ("state", "returned 'state'; init returns (state, data)"),
        (("a", 0, [Postpone()]), "Postpone(): there is no event"),
        (("a", 0, ["not an action"]), "'not an action' is not an action"),
    ],
)
async def test_init_failing_or_returning_a_bad_value_gives_start_error(
    node: Node, result: object, message: str
) -> None:
    with pytest.raises(StartError, match=re.escape(message)):
        await BadInit.start(result, name="bad")
    assert whereis("bad") is None


async def test_init_slower_than_the_start_timeout_gives_start_error(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    gate = Gate()

    class Slow(BadInit):
        async def init(self, result: Any) -> Any:
            await gate.pass_through()
            return result

    with pytest.raises(StartError, match=re.escape("did not finish init within 2.0 s")) as info:
        await Slow.start(("a", 0), timeout=2.0)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert virtual_clock.elapsed == 2.0


async def test_start_with_a_taken_name_raises_name_taken(node: Node) -> None:
    await Scripted.start([], name="taken")
    with pytest.raises(NameTaken):
        await Scripted.start([], name="taken")


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (None, " returned None; a state callback returns (next_state, data)"),
        (("a", [], "x"), ": the actions must be an action or a list of actions, not 'x'"),
        (("a",), " returned ('a',)"),
        (["a", []], " returned ['a', []]"),
    ],
)
async def test_a_bad_return_value_crashes_with_type_error_naming_callback_and_value(
    node: Node, returned: object, message: str
) -> None:
    class Returns(Scripted):
        async def handle_event(
            self, event_type: EventKind, event: Any, state: object, data: list[Seen]
        ) -> Transition[object, list[Seen]]:
            return returned  # type: ignore[return-value]

    pid = await Returns.start([])
    ended = await watch(pid)
    cast(pid, "anything")
    reason = await ended
    assert isinstance(reason, TypeError)
    assert str(reason).startswith("test_a_bad_return_value")  # the callback's qualified name
    assert f"Returns.handle_event{message}" in str(reason)


# -- calls, casts, info --------------------------------------------------------------


async def test_call_cast_and_send_arrive_as_call_cast_and_info_events(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    assert await call(pid, Do("asked", reply=42)) == 42
    cast(pid, Do("told"))
    send(pid, "hello")
    await sync(pid)
    assert handled(log, "call", "cast", "info") == [
        ("call", "asked", "a"),
        ("cast", "told", "a"),
        ("info", "hello", "a"),
    ]


class Later(StateMachine[str, list[Any]]):
    """Keeps callers and answers them from a later event."""

    async def init(self) -> tuple[str, list[Any]]:
        return "collecting", []

    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: list[Any]
    ) -> Transition[str, list[Any]]:
        if isinstance(event_type, CallEvent):
            return state, [*data, event_type.caller]  # no reply yet
        if event == "answer":
            return KeepState([], actions=[Reply(c, f"late {i}") for i, c in enumerate(data)])
        if event == "answer with caller.reply":
            for caller in data:
                caller.reply("direct")
            return KeepState([])
        return KeepState()


async def test_a_call_is_answered_later_by_a_reply_action_or_caller_reply(node: Node) -> None:
    pid = await Later.start()
    first = await started(call(pid, "one"))
    second = await started(call(pid, "two"))
    cast(pid, "answer")
    assert [await first, await second] == ["late 0", "late 1"]
    third = await started(call(pid, "three"))
    cast(pid, "answer with caller.reply")
    assert await third == "direct"


async def test_a_caller_still_waiting_gets_server_exited_when_the_machine_stops(
    node: Node,
) -> None:
    pid = await Later.start()
    waiting = await started(call(pid, "never answered"))
    await stop(pid, "closing")
    with pytest.raises(ServerExited) as info:
        await waiting
    assert info.value.reason == "closing"


# -- postpone ------------------------------------------------------------------------


async def test_postponed_events_are_retried_after_a_state_change_in_postpone_order(
    node: Node,
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log, "closed")
    only_open = frozenset({"open"})
    for name in ("p1", "p2", "p3"):
        cast(pid, Do(name, accept=only_open))
    cast(pid, Do("open", state="open"))
    cast(pid, Do("after"))
    await sync(pid)
    assert handled(log, "cast") == [
        ("cast", "open", "closed"),
        ("cast", "p1", "open"),
        ("cast", "p2", "open"),
        ("cast", "p3", "open"),
        ("cast", "after", "open"),
    ]


async def test_postponed_events_stay_postponed_without_a_state_change(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log, "closed")
    cast(pid, Do("p", accept=frozenset({"open"})))
    cast(pid, Do("same state", state="closed"))  # next_state == state: no change
    cast(pid, Do("keep"))
    cast(pid, Do("repeat", repeat=True))
    await sync(pid)
    assert [s.event for s in log if s.event == "p"] == ["p"]  # seen once, not retried
    cast(pid, Do("open", state="open"))
    await sync(pid)
    assert handled(log, "cast")[-2:] == [("cast", "open", "closed"), ("cast", "p", "open")]


async def test_an_event_postponed_again_goes_after_the_older_postponed_ones(
    node: Node,
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log, "s0")
    cast(pid, Do("late", accept=frozenset({"s2"})))  # postponed in s0 and in s1
    cast(pid, Do("early", accept=frozenset({"s1", "s2"})))
    cast(pid, Do("to s1", state="s1"))
    cast(pid, Do("to s2", state="s2", accept=frozenset({"s1"})))
    await sync(pid)
    assert handled(log, "cast") == [
        ("cast", "to s1", "s0"),
        ("cast", "early", "s1"),  # "late" was retried first, and postponed again
        ("cast", "to s2", "s1"),
        ("cast", "late", "s2"),
    ]


async def test_a_postponed_call_is_answered_in_the_state_that_accepts_it(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log, "busy")
    waiting = await started(call(pid, Do("question", accept=frozenset({"ready"}), reply="yes")))
    await sync(pid)
    assert not waiting.done()
    cast(pid, Do("ready", state="ready"))
    assert await waiting == "yes"


async def test_the_caller_of_a_postponed_call_gets_server_exited_when_the_machine_stops(
    node: Node,
) -> None:
    pid = await Scripted.start([], "busy")
    waiting = await started(call(pid, Do("question", accept=frozenset({"ready"}))))
    await sync(pid)
    await stop(pid, SHUTDOWN)
    with pytest.raises(ServerExited) as info:
        await waiting
    assert info.value.reason is SHUTDOWN


def model(steps: list[Do], state: object) -> list[tuple[object, object]]:
    """gen_statem's event queue, trivially: ``(event, state)`` of each
    handled event, in order."""
    queue = deque(steps)
    postponed: list[Do] = []
    seen: list[tuple[object, object]] = []
    while queue:
        do = queue.popleft()
        if do.accept is not None and state not in do.accept:
            postponed.append(do)
            continue
        seen.append((do.name, state))
        inserted = [a.content for a in do.actions if isinstance(a, NextEvent)]
        if do.state is not KEEP and do.state != state:
            state = do.state
            queue.extendleft(reversed(postponed))
            postponed.clear()
        queue.extendleft(reversed(inserted))  # type: ignore[arg-type]
    return seen


@settings(max_examples=60, deadline=None)
@given(steps=statem_steps)
def test_postponed_and_inserted_events_are_handled_in_the_order_of_the_model(
    steps: list[tuple[Any, ...]],
) -> None:
    script: list[Do] = []
    for i, step in enumerate(steps):
        if step[0] == "work":
            script.append(Do(f"w{i}", accept=step[1]))
        else:
            inserted = [
                NextEvent(INTERNAL, Do(f"g{i}.{j}", accept=accept))
                for j, accept in enumerate(step[2])
            ]
            script.append(Do(f"g{i}", state=step[1], actions=tuple(inserted)))

    async def main() -> list[tuple[object, object]]:
        log: list[Seen] = []
        pid = await Scripted.start(log, 0)
        for do in script:
            cast(pid, do)
        await sync(pid)
        return [(s.event, s.state) for s in log if not s.postponed]

    assert asyncotp.run(main) == model(script, 0)


# -- inserted events -------------------------------------------------------------------


async def test_next_events_are_handled_in_order_before_queued_messages(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    inserted = [NextEvent(INTERNAL, Do("n1")), NextEvent(EventType.CAST, Do("n2"))]
    cast(pid, Do("first", actions=tuple(inserted)))
    cast(pid, Do("queued"))
    await sync(pid)
    assert handled(log, "cast", "internal") == [
        ("cast", "first", "a"),
        ("internal", "n1", "a"),
        ("cast", "n2", "a"),
        ("cast", "queued", "a"),
    ]


async def test_next_events_come_before_the_postponed_events_a_state_change_retries(
    node: Node,
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log, "closed")
    cast(pid, Do("waiting", accept=frozenset({"open"})))
    cast(pid, Do("open", state="open", actions=(NextEvent(INTERNAL, Do("inserted")),)))
    await sync(pid)
    assert handled(log, "cast", "internal") == [
        ("cast", "open", "closed"),
        ("internal", "inserted", "open"),
        ("cast", "waiting", "open"),
    ]


async def test_init_can_insert_an_event_handled_before_any_message(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log, actions=(NextEvent(INTERNAL, Do("connect")),))
    cast(pid, Do("request"))
    await sync(pid)
    assert handled(log, "cast", "internal") == [
        ("internal", "connect", "a"),
        ("cast", "request", "a"),
    ]


# -- state-enter calls -----------------------------------------------------------------


async def test_enter_calls_run_for_the_initial_state_and_on_every_state_change(
    node: Node,
) -> None:
    log: list[Seen] = []
    pid = await EnterScripted.start(log, "a")
    cast(pid, Do("to b", state="b"))
    cast(pid, Do("stay in b", state="b"))
    cast(pid, Do("keep"))
    cast(pid, Do("to a", state="a"))
    await sync(pid)
    assert handled(log, "enter", "cast") == [
        ("enter", "a", "a"),  # the initial state: the old state is the state itself
        ("cast", "to b", "a"),
        ("enter", "a", "b"),  # the event is the previous state
        ("cast", "stay in b", "b"),
        ("cast", "keep", "b"),
        ("cast", "to a", "b"),
        ("enter", "b", "a"),
    ]


async def test_repeat_state_repeats_the_enter_call_and_retries_nothing(node: Node) -> None:
    log: list[Seen] = []
    pid = await EnterScripted.start(log, "a")
    cast(pid, Do("p", accept=frozenset({"b"})))
    cast(pid, Do("again", repeat=True))
    await sync(pid)
    assert handled(log, "enter", "cast") == [
        ("enter", "a", "a"),
        ("cast", "again", "a"),
        ("enter", "a", "a"),
    ]


async def test_enter_call_actions_set_timeouts_and_their_data_is_kept(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    on_enter = {"b": Do("enter b", actions=(StateTimeout(3, "from enter"),))}
    pid = await EnterScripted.start(log, "a", on_enter=on_enter)
    cast(pid, Do("to b", state="b"))
    await virtual_clock.advance(3)
    await sync(pid)
    entered = next(s for s in log if s.kind == "enter" and s.state == "b")
    fired = next(s for s in log if s.kind == "state_timeout")
    assert (fired.event, fired.state, fired.at - entered.at) == ("from enter", "b", 3.0)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (Do("x", state="elsewhere"), "cannot change the state"),
        (Do("x", actions=(Postpone(),)), "cannot postpone nor insert events"),
        (Do("x", actions=(NextEvent(INTERNAL, "n"),)), "cannot postpone nor insert events"),
    ],
)
async def test_an_enter_call_may_not_change_state_postpone_or_insert_events(
    node: Node, returned: Do, message: str
) -> None:
    pid = await EnterScripted.start([], "a", on_enter={"b": returned})
    ended = await watch(pid)
    cast(pid, Do("to b", state="b"))
    reason = await ended
    assert isinstance(reason, TypeError)
    assert "EnterScripted.handle_event (state-enter call) returned" in str(reason)
    assert message in str(reason)


# -- timeouts --------------------------------------------------------------------------


def at(log: list[Seen], kind: str) -> list[tuple[object, object, float]]:
    """``(event, state, at)`` of the events of ``kind``."""
    return [(s.event, s.state, s.at) for s in log if s.kind == kind]


async def test_a_state_timeout_fires_after_its_time_if_the_state_does_not_change(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("arm", actions=(StateTimeout(10, "st"),)))
    await virtual_clock.advance(4)
    cast(pid, Do("other event"))  # neither events nor keep_state cancel it
    await virtual_clock.advance(6)
    await sync(pid)
    armed = log[0].at
    assert [(e, s, t - armed) for e, s, t in at(log, "state_timeout")] == [("st", "a", 10.0)]


async def test_a_state_timeout_is_cancelled_by_a_state_change(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("arm", actions=(StateTimeout(10, "st"),)))
    cast(pid, Do("leave", state="b"))
    await virtual_clock.advance(20)
    await sync(pid)
    assert at(log, "state_timeout") == []


async def test_a_state_timeout_set_in_a_state_change_belongs_to_the_new_state(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("to b", state="b", actions=(StateTimeout(5, "in b"),)))
    await virtual_clock.advance(5)
    await sync(pid)
    assert [(e, s) for e, s, _ in at(log, "state_timeout")] == [("in b", "b")]


async def test_setting_a_state_timeout_again_restarts_it_and_none_cancels_it(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("arm", actions=(StateTimeout(10, "first"),)))
    await virtual_clock.advance(5)
    cast(pid, Do("rearm", actions=(StateTimeout(10, "second"),)))
    await virtual_clock.advance(10)
    await sync(pid)
    rearmed = next(s.at for s in log if s.event == "rearm")
    assert [(e, t - rearmed) for e, _, t in at(log, "state_timeout")] == [("second", 10.0)]
    cast(pid, Do("arm again", actions=(StateTimeout(10, "third"),)))
    cast(pid, Do("cancel", actions=(StateTimeout(None),)))
    await virtual_clock.advance(30)
    await sync(pid)
    assert len(at(log, "state_timeout")) == 1


async def test_an_event_timeout_fires_when_no_event_arrives_in_time(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("arm", actions=(EventTimeout(7, "idle"),)))
    await virtual_clock.advance(7)
    await sync(pid)
    armed = log[0].at
    assert [(e, t - armed) for e, _, t in at(log, "timeout")] == [("idle", 7.0)]


@pytest.mark.parametrize("event", ["cast", "info", "call", "inserted"])
async def test_an_event_timeout_is_cancelled_by_any_event(
    virtual_clock: VirtualClock, otp_node: Node, event: str
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    actions: tuple[Action, ...] = (EventTimeout(7, "idle"),)
    if event == "inserted":
        actions = (*actions, NextEvent(INTERNAL, Do("inserted")))
    cast(pid, Do("arm", actions=actions))
    await virtual_clock.advance(3)
    if event == "cast":
        cast(pid, Do("a cast"))
    elif event == "info":
        send(pid, "a message")
    elif event == "call":
        assert await call(pid, Do("a call")) == "ok"
    await virtual_clock.advance(10)
    await sync(pid)
    assert at(log, "timeout") == []


async def test_generic_timeouts_run_by_name_through_events_and_state_changes(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(
        pid,
        Do("arm", actions=(GenericTimeout("slow", 9, "s"), GenericTimeout("fast", 2, "f"))),
    )
    await virtual_clock.advance(1)
    cast(pid, Do("to b", state="b"))
    await virtual_clock.advance(10)
    await sync(pid)
    armed = log[0].at
    fired = [(s.kind, s.event, s.state, s.at - armed) for s in log if s.kind.startswith("timeout:")]
    assert fired == [("timeout:fast", "f", "b", 2.0), ("timeout:slow", "s", "b", 9.0)]


async def test_a_generic_timeout_is_restarted_or_cancelled_by_its_name_only(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("arm", actions=(GenericTimeout("x", 5, 1), GenericTimeout("y", 5, 1))))
    await virtual_clock.advance(3)
    cast(pid, Do("restart x", actions=(GenericTimeout("x", 5, 2),)))
    cast(pid, Do("cancel y", actions=(GenericTimeout("y", math.inf),)))
    await virtual_clock.advance(10)
    await sync(pid)
    armed = log[0].at
    fired = [(s.kind, s.event, s.at - armed) for s in log if s.kind.startswith("timeout:")]
    assert fired == [("timeout:x", 2, 8.0)]


async def test_zero_timeouts_fire_after_the_queued_events_before_any_new_message(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    actions = (StateTimeout(0, "zero"), NextEvent(INTERNAL, Do("inserted")))
    cast(pid, Do("first", actions=actions))
    cast(pid, Do("already queued"))
    await sync(pid)
    assert [(s.kind, s.event) for s in log] == [
        ("cast", "first"),
        ("internal", "inserted"),
        ("state_timeout", "zero"),
        ("cast", "already queued"),
    ]
    assert virtual_clock.elapsed == 0


async def test_a_timeout_cancelled_after_it_fired_but_before_it_was_handled_never_arrives(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("arm", actions=(StateTimeout(5, "st"),)))
    gate = Gate()
    cast(pid, Do("busy, then leave", state="b", gate=gate))
    await gate.entered.wait()
    await virtual_clock.advance(5)  # fires while the callback is busy
    gate.open()
    await sync(pid)
    assert at(log, "state_timeout") == []


async def test_timeouts_are_cancelled_when_the_machine_stops(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    actions = (StateTimeout(100, 1), EventTimeout(100, 2), GenericTimeout("g", 100, 3))
    cast(pid, Do("arm", actions=actions))
    await stop(pid, timeout=None)
    await virtual_clock.advance(10)  # past start's (stale) deadline timer
    await virtual_clock.wait_idle()
    assert virtual_clock.next_timer is None  # no timer of the machine is left


def test_timeout_actions_validate_their_seconds_and_event_types() -> None:
    for bad in (-1, math.nan, "5", True):
        with pytest.raises(ValueError, match=r"StateTimeout.seconds must be seconds >= 0"):
            StateTimeout(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("GenericTimeout.seconds")):
        GenericTimeout("g", -0.5)
    with pytest.raises(TypeError, match=re.escape("GenericTimeout.name must be hashable")):
        GenericTimeout(["unhashable"], 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("NextEvent.type must be an EventType")):
        NextEvent(EventType.ENTER)
    with pytest.raises(TypeError, match=re.escape("Reply.caller must be the Caller")):
        Reply("not a caller", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("KeepState.actions: 'reply' is not an action")):
        KeepState(actions=["reply"])


def test_actions_and_shorthands_have_reprs_that_read_as_python() -> None:
    assert repr(StateTimeout(5, "lock")) == "StateTimeout(seconds=5, content='lock')"
    assert repr(Postpone()) == "Postpone()"
    assert repr(KeepState()) == "KeepState()"
    assert repr(KeepState(3, actions=Postpone())) == "KeepState(data=3, actions=[Postpone()])"
    assert repr(RepeatState(actions=[EventTimeout(1)])) == (
        "RepeatState(actions=[EventTimeout(seconds=1, content=None)])"
    )
    assert repr(NextEvent(INTERNAL, "go")) == "NextEvent(type=EventType.INTERNAL, content='go')"


# -- stop, terminate, crashes ----------------------------------------------------------


async def test_stop_runs_terminate_with_the_reason_the_state_and_the_data(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    cast(pid, Do("to b", state="b"))
    await sync(pid)
    await stop(pid, "halt")
    assert (log[-1].kind, log[-1].event, log[-1].state) == ("terminate", "halt", "b")


class Stopper(StateMachine[str, int]):
    async def init(self) -> tuple[str, int]:
        return "on", 0

    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: int
    ) -> Transition[str, int]:
        if event == "stop with reply":
            raise Stop("done", reply="bye")
        raise Stop()


async def test_raise_stop_with_reply_answers_the_caller_then_stops(node: Node) -> None:
    pid = await Stopper.start()
    ended = await watch(pid)
    assert await call(pid, "stop with reply") == "bye"
    assert await ended == "done"
    other = await Stopper.start()
    ended = await watch(other)
    cast(other, "stop")
    assert await ended is NORMAL


async def test_a_crash_runs_terminate_and_fails_the_waiting_callers(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    error = RuntimeError("boom")
    gate = Gate()
    crashing = await started(call(pid, Do("crash", gate=gate, crash=error)))
    await gate.entered.wait()
    queued = await started(call(pid, Do("queued")))
    gate.open()
    with pytest.raises(ServerExited) as info:
        await crashing
    assert info.value.reason is error
    with pytest.raises(ServerExited):
        await queued
    assert log[-1].kind == "terminate"
    assert log[-1].event is error
    assert "handling the call Do(name='crash'" in "\n".join(error.__notes__)


async def test_a_stop_waits_for_the_running_callback_then_goes_ahead_of_queued_events(
    node: Node,
) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    gate = Gate()
    running = await started(call(pid, Do("busy", gate=gate, reply="done")))
    await gate.entered.wait()
    queued = await started(call(pid, Do("queued")))
    stopping = await started(stop(pid, SHUTDOWN))
    assert not stopping.done()
    gate.open()
    assert await running == "done"
    await stopping
    with pytest.raises(ServerExited):
        await queued
    assert [s.kind for s in log] == ["call", "terminate"]


async def test_kill_cuts_a_callback_short_and_terminate_does_not_run(node: Node) -> None:
    log: list[Seen] = []
    pid = await Scripted.start(log)
    ended = await watch(pid)
    gate = Gate()
    running = await started(call(pid, Do("busy", gate=gate)))
    await gate.entered.wait()
    send_exit(pid, KILL)
    with pytest.raises(ServerExited):
        await running
    assert await ended is KILLED
    assert [s.kind for s in log] == ["call"]


class Trapping(Scripted):
    async def init(
        self,
        log: list[Seen],
        state: object = "a",
        actions: tuple[Action, ...] = (),
        on_enter: dict[object, Do] | None = None,
    ) -> tuple[object, list[Seen], list[Action]]:
        set_trap_exits(True)
        return await super().init(log, state, actions, on_enter)


async def test_a_trapping_machine_gets_exits_as_info_events_but_stops_on_its_parents(
    node: Node,
) -> None:
    log: list[Seen] = []
    loop = asyncio.get_running_loop()
    machine: asyncio.Future[Pid] = loop.create_future()

    async def parent() -> None:
        machine.set_result(await Trapping.start(log, link=True))
        await receive(lambda m: m == "shut it down")
        send_exit(await machine, SHUTDOWN)
        await receive(lambda m: isinstance(m, Exited))

    parent_pid = spawn(parent, trap_exits=True)
    pid = await machine
    ended = await watch(pid)
    error = RuntimeError("linked crash")

    async def linked_crasher() -> None:
        link(pid)
        raise error

    crasher = spawn(linked_crasher)
    await wait_for_exit(crasher)
    await sync(pid)
    assert handled(log, "info") == [("info", Exited(crasher, error), "a")]
    send(parent_pid, "shut it down")
    assert await ended is SHUTDOWN
    assert (log[-1].kind, log[-1].event) == ("terminate", SHUTDOWN)


# -- supervision -----------------------------------------------------------------------


async def test_a_supervisor_restarts_a_crashed_machine_in_its_initial_state(node: Node) -> None:
    log: list[Seen] = []
    sup = await Supervisor.start(
        [Scripted.child_spec(log, "initial", id="machine", name="machine")],
        strategy=Strategy.ONE_FOR_ONE,
    )
    first = whereis("machine")
    assert first is not None
    cast(first, Do("to b", state="b"))
    cast(first, Do("crash", crash=RuntimeError("boom")))
    second = await wait_for_restart(sup, "machine", first)
    assert second is not first
    assert is_alive(second)
    cast(second, Do("after restart"))
    await sync(second)
    assert handled(log, "cast")[-1] == ("cast", "after restart", "initial")
    await stop(sup)


def test_child_spec_defaults_its_id_to_the_class_name_and_takes_restart_and_shutdown() -> None:
    spec = Scripted.child_spec([], restart=Restart.TRANSIENT, shutdown=2.0)
    assert (spec.id, spec.restart, spec.shutdown) == ("Scripted", Restart.TRANSIENT, 2.0)
