"""asyncotp.sys: get_state, replace_state, suspend/resume, statistics, trace
and format_status, answered between two callbacks as in OTP."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import asyncotp.sys as otp_sys
from asyncotp import (
    KILL,
    NORMAL,
    ActorError,
    Agent,
    CallbackMode,
    Caller,
    CallEvent,
    CallTimeout,
    GenServer,
    KeepState,
    Node,
    NoProcess,
    Pid,
    Reply,
    ServerExited,
    StateMachine,
    call,
    cast,
    receive,
    self_pid,
    spawn,
    stop,
)
from asyncotp.sys import ServerStatistics
from asyncotp.testing import VirtualClock
from tests.helpers import Gate, in_actor, started, wait, watch


class Account(GenServer):
    """Holds a balance and a secret it keeps out of get_state and crash reports."""

    balance: int
    password: str
    log: list[object]

    async def init(self, balance: int = 0) -> None:
        self.balance = balance
        self.password = "hunter2"
        self.log = []

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        self.log.append(request)
        match request:
            case ("hold", Gate() as gate):
                await gate.pass_through()
            case "crash":
                raise RuntimeError("boom")
            case ("sleep", seconds):
                await asyncio.sleep(seconds)
        return self.balance

    async def handle_cast(self, request: Any) -> None:
        self.log.append(request)
        self.balance += request

    def format_status(self, state: Any) -> Any:
        return {**state, "password": "***"}

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", reason))


async def test_get_state_of_a_genserver_is_its_attributes_through_format_status(
    node: Node,
) -> None:
    pid = await wait(Account.start(10))
    state = await wait(otp_sys.get_state(pid))
    assert state == {"balance": 10, "password": "***", "log": []}


async def test_get_state_of_an_agent_is_its_value(node: Node) -> None:
    agent = await wait(Agent.start(lambda: {"hits": 3}))
    assert await wait(otp_sys.get_state(agent)) == {"hits": 3}


async def test_replace_state_sets_the_attributes_and_returns_the_new_state(
    node: Node,
) -> None:
    pid = await wait(Account.start(10))
    new = await wait(otp_sys.replace_state(pid, lambda s: {**s, "balance": 99}))
    assert new["balance"] == 99
    assert new["password"] == "hunter2"  # replace_state works on the raw state
    assert await wait(call(pid, "balance")) == 99


async def test_replace_state_of_an_agent_replaces_its_value(node: Node) -> None:
    agent = await wait(Agent.start(lambda: 1))
    await wait(otp_sys.replace_state(agent, lambda n: n + 1))
    assert await wait(Agent.get(agent)) == 2


async def test_a_failing_replace_state_function_leaves_the_server_and_its_state_alone(
    node: Node,
) -> None:
    pid = await wait(Account.start(10))

    def broken(state: Any) -> Any:
        raise KeyError("no such field")

    with pytest.raises(KeyError) as info:
        await wait(otp_sys.replace_state(pid, broken))
    assert any("answering sys.replace_state" in note for note in info.value.__notes__)
    assert await wait(call(pid, "balance")) == 10


async def test_replace_state_of_a_genserver_refuses_what_is_not_a_dict(node: Node) -> None:
    pid = await wait(Account.start(10))
    with pytest.raises(TypeError, match="must be a dict of attribute names"):
        await wait(otp_sys.replace_state(pid, lambda s: 5))
    assert await wait(call(pid, "balance")) == 10


async def test_a_suspended_server_answers_only_system_requests_until_resumed(
    node: Node,
) -> None:
    pid = await wait(Account.start(0))
    await wait(otp_sys.suspend(pid))
    cast(pid, 5)
    cast(pid, 7)
    state = await wait(otp_sys.get_state(pid))
    assert state["log"] == []  # the casts wait
    stats = await wait(otp_sys.statistics(pid))
    assert stats.suspended
    assert stats.mailbox_length == 2
    await wait(otp_sys.replace_state(pid, lambda s: {**s, "balance": 100}))
    await wait(otp_sys.resume(pid))
    assert await wait(call(pid, "balance")) == 112
    assert (await wait(otp_sys.get_state(pid)))["log"] == [5, 7, "balance"]


async def test_a_suspended_server_still_stops_with_terminate(node: Node) -> None:
    pid = await wait(Account.start(0))
    log: list[object] = (await wait(otp_sys.get_state(pid)))["log"]
    await wait(otp_sys.suspend(pid))
    await wait(stop(pid))
    assert log == [("terminate", NORMAL)]


async def test_suspend_and_resume_twice_are_harmless(node: Node) -> None:
    pid = await wait(Account.start(0))
    await wait(otp_sys.resume(pid))
    await wait(otp_sys.suspend(pid))
    await wait(otp_sys.suspend(pid))
    await wait(otp_sys.resume(pid))
    assert await wait(call(pid, "balance")) == 0


async def test_a_busy_server_answers_system_requests_once_its_callback_returns(
    node: Node,
) -> None:
    pid = await wait(Account.start(0))
    gate = Gate()
    held = asyncio.ensure_future(in_actor(lambda: call(pid, ("hold", gate))))
    await wait(gate.entered.wait())
    asking = await started(otp_sys.get_state(pid))
    assert not asking.done()
    gate.open()
    assert (await wait(asking))["log"] == [("hold", gate)]
    await wait(held)


async def test_statistics_count_handled_messages_and_time_callbacks_when_asked(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    pid = await Account.start(0)
    cast(pid, 1)
    await call(pid, "balance")
    stats = await otp_sys.statistics(pid)
    assert isinstance(stats, ServerStatistics)
    assert (stats.pid, stats.behaviour, stats.messages_handled) == (pid, "Account", 2)
    assert stats.callback_seconds is None  # off by default
    await otp_sys.time_callbacks(pid, True)
    await call(pid, ("sleep", 2.0))
    stats = await otp_sys.statistics(pid)
    assert stats.messages_handled == 3
    assert (stats.callback_seconds, stats.slowest_callback, stats.timed_callbacks) == (
        2.0,
        2.0,
        1,
    )
    await otp_sys.time_callbacks(pid, False)
    assert (await otp_sys.statistics(pid)).callback_seconds is None


async def test_trace_logs_every_message_in_and_out_while_on(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await wait(Account.start(0))
    with caplog.at_level(logging.INFO, logger="asyncotp.sys"):
        await wait(otp_sys.trace(pid, True))
        cast(pid, 3)
        await wait(call(pid, "balance"))
        assert (await wait(otp_sys.statistics(pid))).tracing
        await wait(otp_sys.trace(pid, False))
        await wait(call(pid, "untraced"))
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncotp.sys"]
    assert len(lines) == 4
    assert lines[0].endswith("in: Cast(3)")
    assert lines[1].endswith("out: None")
    assert "in: <Caller" in lines[2]
    assert lines[3].endswith("out: 3")
    assert not any("untraced" in line for line in lines)


async def test_a_crash_report_shows_the_state_through_format_status(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await wait(Account.start(7))
    ended = await watch(pid)
    with caplog.at_level(logging.ERROR, logger="asyncotp"):
        with pytest.raises(ServerExited):
            await wait(call(pid, "crash"))
        await wait(ended)
    assert "'balance': 7" in caplog.text
    assert "'password': '***'" in caplog.text
    assert "hunter2" not in caplog.text


async def test_a_format_status_that_raises_fails_get_state_not_the_server(
    node: Node,
) -> None:
    class Broken(GenServer):
        def format_status(self, state: Any) -> Any:
            raise ValueError("cannot show")

        async def handle_call(self, request: Any, caller: Caller) -> Any:
            return request

    pid = await wait(Broken.start())
    with pytest.raises(ValueError, match="cannot show"):
        await wait(otp_sys.get_state(pid))
    assert await wait(call(pid, "still here")) == "still here"


async def test_system_requests_to_a_plain_actor_raise_type_error(node: Node) -> None:
    async def plain() -> None:
        await receive()

    pid = spawn(plain)
    with pytest.raises(TypeError, match="is not a GenServer"):
        await wait(otp_sys.get_state(pid))
    await wait(stop(pid, KILL))


async def test_system_requests_to_a_dead_server_raise_no_process(node: Node) -> None:
    pid = await wait(Account.start())
    await wait(stop(pid))
    with pytest.raises(NoProcess):
        await wait(otp_sys.get_state(pid))
    with pytest.raises(NoProcess):
        await wait(otp_sys.statistics("nobody"))


async def test_a_server_asking_itself_raises_instead_of_waiting_forever(node: Node) -> None:
    class Self(GenServer):
        async def handle_call(self, request: Any, caller: Caller) -> Any:
            return await otp_sys.get_state(self_pid())

    pid = await wait(Self.start())
    with pytest.raises(ServerExited) as info:
        await wait(call(pid, "me"))
    assert isinstance(info.value.reason, ActorError)
    assert "asked itself" in str(info.value.reason)


async def test_a_system_request_to_a_busy_server_times_out_with_call_timeout(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    pid = await Account.start()
    gate = Gate()
    cast(pid, 0)
    held = asyncio.ensure_future(call(pid, ("hold", gate)))
    await gate.entered.wait()
    with pytest.raises(CallTimeout, match="between two callbacks"):
        await otp_sys.get_state(pid, timeout=1.0)
    gate.open()
    await held


async def test_a_server_that_ends_before_answering_fails_the_request(node: Node) -> None:
    pid = await wait(Account.start())
    gate = Gate()
    held = asyncio.ensure_future(call(pid, ("hold", gate)))
    await wait(gate.entered.wait())
    asking = await started(otp_sys.get_state(pid))
    stopping = await started(stop(pid, "bye"))
    gate.open()
    with pytest.raises(ServerExited):
        await wait(asking)
    await wait(held)
    await wait(stopping)


@pytest.mark.parametrize("fn", [otp_sys.trace, otp_sys.time_callbacks])
async def test_switches_take_a_bool(node: Node, fn: Any) -> None:
    pid: Pid = await wait(Account.start())
    with pytest.raises(TypeError, match="True or False"):
        await fn(pid, 1)


# -- StateMachine ------------------------------------------------------------------


class Light(StateMachine[str, int]):
    """Switches between "off" and "on", counting the switches in its data."""

    callback_mode = CallbackMode.STATE_FUNCTIONS

    async def init(self) -> tuple[str, int]:
        return "off", 0

    async def state_off(self, event_type: Any, event: Any, flips: int) -> Any:
        return self._handle(event_type, event, "on", flips)

    async def state_on(self, event_type: Any, event: Any, flips: int) -> Any:
        return self._handle(event_type, event, "off", flips)

    def _handle(self, event_type: Any, event: Any, other: str, flips: int) -> Any:
        if isinstance(event_type, CallEvent):
            return KeepState(actions=[Reply(event_type.caller, flips)])
        return other, flips + 1

    def format_status(self, state: tuple[str, int]) -> Any:
        return {"state": state[0], "flips": state[1]}


async def test_a_state_machine_answers_get_state_and_replace_state(node: Node) -> None:
    pid = await wait(Light.start())
    cast(pid, "flip")
    assert await wait(otp_sys.get_state(pid)) == {"state": "on", "flips": 1}
    await wait(otp_sys.replace_state(pid, lambda pair: ("off", 10)))
    cast(pid, "flip")
    assert await wait(otp_sys.get_state(pid)) == {"state": "on", "flips": 11}


async def test_replace_state_of_a_state_machine_refuses_a_state_without_a_function(
    node: Node,
) -> None:
    pid = await wait(Light.start())
    with pytest.raises(TypeError, match="no state function state_broken"):
        await wait(otp_sys.replace_state(pid, lambda pair: ("broken", 0)))
    assert await wait(otp_sys.get_state(pid)) == {"state": "off", "flips": 0}


async def test_a_suspended_state_machine_keeps_its_events_until_resumed(node: Node) -> None:
    pid = await wait(Light.start())
    await wait(otp_sys.suspend(pid))
    cast(pid, "flip")
    assert (await wait(otp_sys.statistics(pid))).suspended
    assert await wait(otp_sys.get_state(pid)) == {"state": "off", "flips": 0}
    await wait(otp_sys.resume(pid))
    assert await wait(call(pid, "flips")) == 1
    stats = await wait(otp_sys.statistics(pid))
    assert (stats.behaviour, stats.messages_handled) == ("Light", 2)


async def test_a_traced_state_machine_logs_each_event_with_its_state_and_result(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await wait(Light.start())
    with caplog.at_level(logging.INFO, logger="asyncotp.sys"):
        await wait(otp_sys.trace(pid, True))
        cast(pid, "flip")
        assert await wait(call(pid, "flips")) == 1
        assert (await wait(otp_sys.statistics(pid))).tracing
        await wait(otp_sys.trace(pid, False))
        cast(pid, "untraced")
        assert await wait(call(pid, "flips")) == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncotp.sys"]
    assert len(lines) == 4
    assert lines[0].endswith("in: the cast event 'flip'")
    assert lines[1].endswith("out: ('on', 1)")
    assert "in: the call 'flips'" in lines[2]
    assert "out: KeepState(" in lines[3]
    assert not any("untraced" in line for line in lines)


async def test_a_state_machines_callback_timing_counts_its_state_callbacks(node: Node) -> None:
    pid = await wait(Light.start())
    await wait(otp_sys.time_callbacks(pid, True))
    cast(pid, "flip")
    cast(pid, "flip")
    assert await wait(call(pid, "flips")) == 2
    stats = await wait(otp_sys.statistics(pid))
    assert stats.timed_callbacks == 3
    assert stats.callback_seconds is not None
    assert stats.slowest_callback is not None
    await wait(otp_sys.time_callbacks(pid, False))
    assert (await wait(otp_sys.statistics(pid))).timed_callbacks is None


async def test_a_crash_report_shows_a_large_state_cut_short(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    class Big(GenServer):
        async def init(self) -> None:
            self.table = dict.fromkeys(range(10000), "x" * 1000)

        async def handle_cast(self, request: Any) -> None:
            raise RuntimeError("boom")

    pid = await wait(Big.start())
    ended = await watch(pid)
    with caplog.at_level(logging.ERROR, logger="asyncotp"):
        cast(pid, "crash")
        await wait(ended)
    report = next(r.getMessage() for r in caplog.records if "crashed" in r.getMessage())
    assert "'table': {0: " in report
    assert len(report) < 5000


async def test_the_state_of_a_server_with_slots_includes_them(node: Node) -> None:
    class Slotted(GenServer):
        __slots__ = ("count",)

        async def init(self) -> None:
            self.count = 0
            self.other = "in __dict__"

        async def handle_call(self, request: Any, caller: Caller) -> Any:
            return self.count

    pid = await wait(Slotted.start())
    assert await wait(otp_sys.get_state(pid)) == {"count": 0, "other": "in __dict__"}
    await wait(otp_sys.replace_state(pid, lambda s: {"count": 5}))
    assert await wait(call(pid, "count")) == 5
    assert await wait(otp_sys.get_state(pid)) == {"count": 5}
