"""The hardening rules for StateMachine: the same as a GenServer's
(tests/actors/test_hardening.py), applied to the state machine's loop.

Each test's name states the rule. Callbacks are held busy with a ``Gate``;
tests synchronise on replies, monitors and events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import weakref
from typing import Any

import pytest

import asyncotp
from asyncotp import (
    KILL,
    KILLED,
    SHUTDOWN,
    CallbackMode,
    CallEvent,
    EventKind,
    EventType,
    KeepState,
    NoProcess,
    Reply,
    ServerExited,
    Shutdown,
    StartError,
    StateMachine,
    Stop,
    call,
    cast,
    send_exit,
    stop,
    telemetry,
    whereis,
)
from asyncotp import sys as otp_sys
from asyncotp._core import exit_future
from tests.actors.test_hardening import queued_call
from tests.core.test_hardening import Hostile, HostileError
from tests.helpers import Gate, wait, watch
from tests.telemetry.conftest import record

Result = tuple[str, list[object]] | tuple[str, list[object], list[Any]] | KeepState


class Machine(StateMachine[str, list[object]]):
    """Logs what it sees in its data; each event says what to do.

    * ``("hold", gate)``: wait on the gate, swallowing a cancellation, then
      (for a call) reply ``"late"``;
    * ``("raise", exc)``: raise it; ``("stop", reason)``: raise ``Stop``;
    * ``("goto", state)``: move to that state;
    * anything else is logged and answered with itself."""

    async def init(self, log: list[object], state: str = "idle") -> tuple[str, list[object]]:
        return state, log

    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: list[object]
    ) -> Result:
        match event:
            case ("hold", Gate() as gate):
                try:
                    await gate.pass_through()
                except asyncio.CancelledError:  # swallows a KILL
                    data.append("swallowed")
                if type(event_type) is CallEvent:
                    return state, data, [Reply(event_type.caller, "late")]
                return state, data
            case ("raise", BaseException() as exc):
                raise exc
            case ("stop", reason):
                raise Stop(reason)
            case ("goto", str(new_state)):
                return new_state, data
        data.append(event)
        if type(event_type) is CallEvent:
            return KeepState(actions=[Reply(event_type.caller, event)])
        return state, data

    async def terminate(self, reason: Any, state: str, data: list[object]) -> None:
        data.append(("terminate", reason))


# -- KILL ends a machine whose callback swallows the cancellation ---------------------


async def test_kill_ends_a_machine_whose_cast_callback_swallows_the_cancellation(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []
    pid = await Machine.start(log)
    ended = await watch(pid)
    gate = Gate()
    cast(pid, ("hold", gate))  # the cast fast path
    await gate.entered.wait()
    queued = await queued_call(pid, "queued", timeout=None)
    send_exit(pid, KILL)
    assert await wait(ended) is KILLED
    with pytest.raises(ServerExited) as info:
        await wait(queued)  # not answered by the killed machine
    assert info.value.reason is KILLED
    assert log == ["swallowed"]  # neither the queued call nor terminate ran


async def test_kill_ends_a_machine_whose_call_callback_swallows_the_cancellation_unanswered(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []
    pid = await Machine.start(log)
    ended = await watch(pid)
    gate = Gate()
    holding = await queued_call(pid, ("hold", gate), timeout=None)
    await gate.entered.wait()
    cast(pid, "after")
    send_exit(pid, KILL)
    assert await wait(ended) is KILLED
    with pytest.raises(ServerExited) as info:
        await wait(holding)  # its Reply action is not carried out
    assert info.value.reason is KILLED
    assert log == ["swallowed"]
    with pytest.raises(NoProcess):
        await call(pid, "anything")


class SwallowsEnter(StateMachine[str, list[object]]):
    state_enter = True

    async def init(self, log: list[object], gate: Gate) -> tuple[str, list[object]]:
        self.gate = gate
        return "idle", log

    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: list[object]
    ) -> tuple[str, list[object]]:
        if event_type is asyncotp.EventType.ENTER:
            if state == "held":
                with contextlib.suppress(asyncio.CancelledError):  # swallows a KILL
                    await self.gate.pass_through()
                data.append("enter swallowed")
            return state, data
        data.append(event)
        return event, data


async def test_kill_ends_a_machine_whose_state_enter_call_swallows_the_cancellation(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []
    gate = Gate()
    pid = await SwallowsEnter.start(log, gate)
    ended = await watch(pid)
    cast(pid, "held")
    await gate.entered.wait()
    cast(pid, "next")
    send_exit(pid, KILL)
    assert await wait(ended) is KILLED
    assert log == ["held", "enter swallowed"]  # the queued cast never ran


class Plain(StateMachine[str, Any]):
    """A machine that keeps its state whatever the event."""

    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: Any
    ) -> tuple[str, Any]:
        return state, data


class SwallowsInit(Plain):
    async def init(self, gate: Gate) -> tuple[str, None]:
        with contextlib.suppress(asyncio.CancelledError):  # swallows a KILL
            await gate.pass_through()
        return "idle", None


async def test_kill_during_init_ends_a_machine_whose_init_swallows_the_cancellation(
    node: asyncotp.Node,
) -> None:
    gate = Gate()
    starting = asyncio.create_task(SwallowsInit.start(gate, name="swallower"))
    await gate.entered.wait()
    pid = whereis("swallower")
    assert pid is not None
    ended = exit_future(pid)
    send_exit(pid, KILL)
    with pytest.raises(StartError):
        await wait(starting)
    assert await wait(ended) is KILLED
    assert whereis("swallower") is None


# -- SystemExit and KeyboardInterrupt stop the node in order --------------------------


@pytest.mark.parametrize("fatal", [KeyboardInterrupt(), SystemExit(3)], ids=repr)
async def test_a_fatal_exception_in_a_machine_runs_every_terminate_then_is_raised_from_node(
    fatal: BaseException,
) -> None:
    log: list[object] = []
    with pytest.raises(type(fatal)) as info:  # noqa: PT012 - the whole node's life
        async with asyncotp.node():
            await Machine.start(log, name="other")
            culprit = await Machine.start(log, name="culprit")
            cast(culprit, ("raise", fatal))
            await asyncio.Event().wait()  # the node cancels the block to stop
    assert info.value is fatal
    assert sorted(map(repr, log)) == sorted(
        [repr(("terminate", Shutdown(fatal))), repr(("terminate", SHUTDOWN))]
    )


class FatalInit(Plain):
    async def init(self, fatal: BaseException) -> tuple[str, None]:
        raise fatal


async def test_keyboard_interrupt_in_a_machines_init_fails_the_start_and_stops_the_node() -> None:
    interrupt = KeyboardInterrupt()
    log: list[object] = []
    with pytest.raises(KeyboardInterrupt) as info:  # noqa: PT012 - the whole node's life
        async with asyncotp.node():
            await Machine.start(log, name="bystander")
            with pytest.raises(StartError):
                await FatalInit.start(interrupt)
            await asyncio.Event().wait()  # the node cancels the block to stop
    assert info.value is interrupt
    assert log == [("terminate", SHUTDOWN)]


# -- crash reports --------------------------------------------------------------------


class Secretive(Machine):
    def format_status(self, state: tuple[str, list[object]]) -> Any:
        return (state[0], "<data hidden>")


@pytest.mark.parametrize(
    "reason", [RuntimeError("broken machine"), "bad_state"], ids=["exception", "plain reason"]
)
async def test_a_machines_crash_report_names_it_its_state_its_last_event_and_the_reason(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture, reason: object
) -> None:
    pid = await Secretive.start(["secret"], "armed", name="reporter")
    ended = await watch(pid)
    request = ("raise", reason) if isinstance(reason, Exception) else ("stop", reason)
    cast(pid, request)
    assert await wait(ended) is reason
    [report] = [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]
    text = report.getMessage()
    assert "'reporter'" in text  # the machine
    assert "Secretive" in text  # its class
    assert "'armed'" in text  # its state
    assert f"the cast event {request!r}" in text  # its last event
    assert repr(reason) in text
    assert "<data hidden>" in text  # format_status is honoured
    assert "secret'" not in text


class _CountsRepr:
    """An event that counts how often it is formatted."""

    def __init__(self) -> None:
        self.reprs = 0

    def __repr__(self) -> str:
        self.reprs += 1
        return "_CountsRepr()"


@pytest.mark.parametrize("emitted", [True, False], ids=["kept", "dropped by level"])
async def test_a_machines_crash_report_formats_its_event_only_when_the_logger_keeps_it(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture, emitted: bool
) -> None:
    event = _CountsRepr()
    pid = await Machine.start([])
    ended = await watch(pid)
    logger = logging.getLogger("asyncotp")
    old_level = logger.level
    logger.setLevel(logging.ERROR if emitted else logging.CRITICAL + 1)
    try:
        cast(pid, ("stop", event))  # Stop(event): no exception note formats it
        assert await wait(ended) is event
    finally:
        logger.setLevel(old_level)
    reports = [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]
    assert len(reports) == (1 if emitted else 0)
    # Kept: the report shows the last event, the data (whose log holds the
    # reason terminate saw) and the reason.
    assert event.reprs == (3 if emitted else 0)


async def test_a_machines_crash_report_survives_a_format_status_that_raises(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Machine):
        def format_status(self, state: tuple[str, list[object]]) -> Any:
            raise RuntimeError("no status")

    pid = await Broken.start([])
    ended = await watch(pid)
    cast(pid, ("stop", "bad"))
    assert await wait(ended) == "bad"
    [report] = [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]
    assert "<format_status raised RuntimeError>" in report.getMessage()


async def test_a_machines_crash_report_shows_a_large_state_and_data_cut_short(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    class Big(Plain):
        async def init(self) -> tuple[str, Any]:
            return "x" * 100_000, dict.fromkeys(range(10_000), "y" * 1000)

        async def handle_event(
            self, event_type: EventKind, event: Any, state: str, data: Any
        ) -> tuple[str, Any]:
            raise RuntimeError("boom")

    pid = await Big.start()
    ended = await watch(pid)
    cast(pid, "crash")
    assert isinstance(await wait(ended), RuntimeError)
    [report] = [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]
    text = report.getMessage()
    assert "the cast event 'crash'" in text
    assert len(text) < 10_000  # not the 10 MB the data would print


# -- a dead machine is freed at once --------------------------------------------------


@pytest.mark.parametrize("how", ["crash", "crash in terminate", "stop", "kill", "shutdown"])
async def test_a_crashed_or_stopped_machine_is_freed_at_once_not_left_to_the_garbage_collector(
    node: asyncotp.Node, how: str
) -> None:
    held: list[weakref.ref[StateMachine[Any, Any]]] = []

    class Holder(Machine):
        async def init(self, log: list[object], state: str = "idle") -> tuple[str, list[object]]:
            held.append(weakref.ref(self))
            return state, log

        async def handle_event(
            self, event_type: EventKind, event: Any, state: str, data: list[object]
        ) -> Result:
            # The error is made here: one that came in the event would be
            # held by the event, in the frames its traceback holds.
            raise RuntimeError("crash")

        async def terminate(self, reason: Any, state: str, data: list[object]) -> None:
            if how == "crash in terminate":
                raise RuntimeError("terminate crash")

    logger = logging.getLogger("asyncotp")
    old_level = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # no crash report holding the exception
    gc.collect()
    gc.disable()
    try:
        pid = await Holder.start([])
        ended = await watch(pid)
        if how == "stop":
            await stop(pid, "asked")
        elif how == "kill":
            send_exit(pid, KILL)
        elif how == "shutdown":
            send_exit(pid, SHUTDOWN)
        else:
            cast(pid, "crash")
        reason = await wait(ended)
        del reason, ended  # a crash's traceback holds the machine's frames: let it go
        await asyncio.sleep(0)  # the machine's task has finished its last step
        assert held[0]() is None  # freed without a collection
    finally:
        gc.enable()
        logger.setLevel(old_level)


# -- Stop in terminate; stop() when terminate fails -----------------------------------


class EndsInTerminate(Plain):
    async def init(self, outcome: BaseException) -> tuple[str, BaseException]:
        return "idle", outcome

    async def terminate(self, reason: Any, state: str, data: BaseException) -> None:
        raise data


async def test_stop_raised_in_a_machines_terminate_makes_its_reason_the_exit_reason(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await EndsInTerminate.start(Stop("chosen in terminate"))
    ended = await watch(pid)
    with pytest.raises(ServerExited) as info:
        await stop(pid, "asked")
    assert info.value.reason == "chosen in terminate"
    assert await wait(ended) == "chosen in terminate"
    [report] = [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]
    assert "chosen in terminate" in report.getMessage()


async def test_stop_raises_server_exited_with_the_crash_when_a_machines_terminate_crashes(
    node: asyncotp.Node,
) -> None:
    error = RuntimeError("terminate failed")
    pid = await EndsInTerminate.start(error)
    with pytest.raises(ServerExited) as info:
        await stop(pid)
    assert info.value.reason is error
    assert "terminate failed" in str(info.value)


async def test_stop_kill_raised_by_a_machine_ends_it_with_killed_as_a_genservers_does(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []
    pid = await Machine.start(log)
    ended = await watch(pid)
    cast(pid, ("stop", KILL))
    assert await wait(ended) is KILLED
    assert log == [("terminate", KILLED)]  # terminate sees KILLED, as a GenServer's does


# -- slow-callback timing -------------------------------------------------------------


class Sluggish(StateMachine[str, None]):
    """Each state function blocks past the tests' threshold."""

    callback_mode = CallbackMode.STATE_FUNCTIONS

    async def init(self) -> tuple[str, None]:
        return "idle", None

    async def state_idle(self, event_type: EventKind, event: Any, data: None) -> tuple[str, None]:
        time.sleep(0.002)  # noqa: ASYNC251 - blocks the loop on purpose: a slow callback
        return "busy", data

    async def state_busy(self, event_type: EventKind, event: Any, data: None) -> Any:
        time.sleep(0.002)  # noqa: ASYNC251 - blocks the loop on purpose: a slow callback
        assert type(event_type) is CallEvent
        return KeepState(actions=[Reply(event_type.caller, event)])


async def test_a_machine_started_while_someone_listens_reports_slow_state_callbacks_by_name(
    node: asyncotp.Node,
) -> None:
    previous = telemetry.set_slow_callback_threshold(0.001)
    try:
        with record(("asyncotp", "callback", "slow")) as rec:
            pid = await Sluggish.start(name="sluggish")
            cast(pid, "go")
            assert await call(pid, "sync") == "sync"
        assert [e.metadata["callback"] for e in rec.events] == ["state_idle", "state_busy"]
        for event in rec.events:
            assert event.metadata["server"] == "Sluggish"
            assert event.metadata["name"] == "sluggish"
            assert event.measurements["duration"] >= 0.001
    finally:
        telemetry.set_slow_callback_threshold(previous)


async def test_a_machine_started_while_nobody_listens_is_not_timed(node: asyncotp.Node) -> None:
    previous = telemetry.set_slow_callback_threshold(0.001)
    try:
        pid = await Sluggish.start()  # nobody listens yet: its callbacks are not wrapped
        with record(("asyncotp", "callback", "slow")) as rec:
            cast(pid, "go")
            assert await call(pid, "sync") == "sync"
        assert rec.events == []
    finally:
        telemetry.set_slow_callback_threshold(previous)


# -- sys.trace ------------------------------------------------------------------------


class Follows(Plain):
    """Moves to the state its cast names; state-enter calls on."""

    state_enter = True

    async def init(self) -> tuple[str, None]:
        return "idle", None

    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: Any
    ) -> tuple[str, Any]:
        if event_type is EventType.ENTER:
            return state, data
        return event, data


async def test_a_traced_machine_logs_each_event_in_its_state_and_each_enter_call(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await Follows.start()
    with caplog.at_level(logging.INFO, logger="asyncotp.sys"):
        await otp_sys.trace(pid, True)
        cast(pid, "on")
        assert await otp_sys.get_state(pid) == ("on", None)  # answered after the cast
        await otp_sys.trace(pid, False)
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncotp.sys"]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "the cast event 'on' in the state 'idle'",
        "('on', None)",
        "state enter from 'idle'",
        "('on', None)",
    ]
    assert all(line.startswith("Follows ") for line in lines)


class ReturnsJunk(StateMachine[str, None]):
    callback_mode = CallbackMode.STATE_FUNCTIONS

    async def init(self) -> tuple[str, None]:
        return "idle", None

    async def state_idle(self, event_type: EventKind, event: Any, data: None) -> Any:
        return 42


async def test_a_traced_machines_errors_still_name_its_state_function_not_a_wrapper(
    node: asyncotp.Node,
) -> None:
    pid = await ReturnsJunk.start()
    ended = await watch(pid)
    await otp_sys.trace(pid, True)
    cast(pid, "go")
    reason = await wait(ended)
    assert isinstance(reason, TypeError)
    assert "ReturnsJunk.state_idle returned 42" in str(reason)


# -- unformattable events, states and reasons -----------------------------------------


class Touchy(Plain):
    """Crashes with a ``HostileError`` on a ``Hostile`` event, in a ``Hostile``
    state; logs its terminate."""

    async def init(self, log: list[object]) -> tuple[Any, list[object]]:
        return Hostile(), log

    async def handle_event(
        self, event_type: EventKind, event: Any, state: Any, data: list[object]
    ) -> tuple[Any, list[object]]:
        if isinstance(event, Hostile):
            raise HostileError
        return state, data

    async def terminate(self, reason: Any, state: Any, data: list[object]) -> None:
        data.append(("terminate", reason))


async def test_a_machine_crash_that_cannot_be_formatted_runs_terminate_fails_callers_and_reports(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[object] = []
    pid = await Touchy.start(log)
    ended = await watch(pid)
    crashing = await queued_call(pid, Hostile(), timeout=None)
    with pytest.raises(ServerExited) as crashed:
        await wait(crashing)
    error = crashed.value.reason
    assert isinstance(error, HostileError)
    assert await wait(ended) is error
    assert log == [("terminate", error)]
    assert "repr raised" in error.__notes__[0]  # the event and the state, as placeholders
    [report] = [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]
    assert "Touchy in the state <" in report.getMessage()


async def test_cancelling_a_machines_start_kills_the_half_started_machine_and_frees_its_name(
    node: asyncotp.Node,
) -> None:
    class SlowInit(Plain):
        async def init(self, gate: Gate) -> tuple[str, None]:
            await gate.pass_through()
            return "idle", None

    gate = Gate()
    starting = asyncio.create_task(SlowInit.start(gate, name="slow"))
    await gate.entered.wait()
    half = whereis("slow")
    assert half is not None
    ended = exit_future(half)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert whereis("slow") is None  # freed at once: a retry can take it
    assert await wait(ended) is KILLED
    gate.open()
    again = await SlowInit.start(gate, name="slow")
    assert again is not half
    assert whereis("slow") is again
