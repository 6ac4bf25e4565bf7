"""The hardening rules, GenServer and Agent side (API.md, "Rules every
function keeps"); the runtime's side is in tests/core/test_hardening.py.

Each test's name states the rule. Callbacks are held busy with a ``Gate``;
tests synchronise on replies, monitors and events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import asyncotp
from asyncotp import (
    KILL,
    KILLED,
    SHUTDOWN,
    Agent,
    Caller,
    CallTimeout,
    GenServer,
    MailboxFull,
    NoProcess,
    NotAnActorError,
    Overflow,
    Pid,
    ServerExited,
    Shutdown,
    StartError,
    Stop,
    Supervisor,
    call,
    cast,
    is_alive,
    processes,
    receive,
    self_pid,
    send,
    send_exit,
    stop,
    whereis,
)
from asyncotp._core import exit_future, safe_repr
from asyncotp.testing import wait_for_restart
from tests.core.test_hardening import BAD_SECONDS, Hostile, HostileError
from tests.helpers import Gate, wait, watch


async def queued_call(dest: Pid | str, request: object, timeout: float | None = 5.0) -> Any:
    """A call from a new task, returned once its request is in the mailbox
    (``call`` delivers before it first suspends)."""
    started = asyncio.Event()

    async def run() -> Any:
        started.set()
        return await call(dest, request, timeout)

    task = asyncio.create_task(run())
    await started.wait()
    return task


class Server(GenServer):
    """Holds on a gate, raises what it is given, logs its terminate."""

    log: list[object]

    async def init(self, log: list[object]) -> None:
        self.log = log

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("hold", Gate() as gate):
                await gate.pass_through()
                return "held"
            case Hostile():
                raise HostileError()
            case ("quiet", _):
                return None
            case "ping":
                return "pong"
        raise AssertionError("unexpected call")

    async def handle_cast(self, request: Any) -> None:
        match request:
            case ("hold", Gate() as gate):
                await gate.pass_through()
            case ("raise", BaseException() as error):
                raise error
            case ("stop", reason):
                raise Stop(reason)

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", reason))


# -- 1. user objects that cannot be formatted do not break a server's exit -----------


async def test_a_crash_that_cannot_be_formatted_runs_terminate_and_fails_every_caller_at_once(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []
    pid = await Server.start(log)
    ended = await watch(pid)
    gate = Gate()
    cast(pid, ("hold", gate))
    await gate.entered.wait()
    crashing = await queued_call(pid, Hostile(), timeout=None)
    waiting = await queued_call(pid, "ping", timeout=None)
    gate.open()
    with pytest.raises(ServerExited) as crashed:
        await wait(crashing)
    with pytest.raises(ServerExited) as queued:
        await wait(waiting)
    error = crashed.value.reason
    assert isinstance(error, HostileError)
    assert queued.value.reason is error
    assert "repr() raised RuntimeError" in str(crashed.value)
    assert await wait(ended) is error
    assert log == [("terminate", error)]
    assert "repr() raised RuntimeError" in error.__notes__[0]  # the request, as a placeholder


async def test_call_timeouts_fire_for_requests_that_cannot_be_formatted_and_for_other_calls(
    node: asyncotp.Node,
) -> None:
    pid = await Server.start([])
    gate = Gate()
    cast(pid, ("hold", gate))
    await gate.entered.wait()
    with pytest.raises(CallTimeout) as hostile:
        await wait(call(pid, ("quiet", Hostile()), timeout=0.01))
    assert "repr() raised RuntimeError" in str(hostile.value)
    with pytest.raises(CallTimeout):
        await wait(call(pid, "ping", timeout=0.02))  # the shared deadline timer still runs
    gate.open()
    assert await call(pid, "ping") == "pong"


async def test_start_error_stays_a_start_error_when_init_fails_with_an_unformattable_error(
    node: asyncotp.Node,
) -> None:
    error = HostileError()

    class Refuses(GenServer):
        async def init(self) -> None:
            raise error

    with pytest.raises(StartError) as info:
        await Refuses.start(name="refuses")
    assert info.value.reason is error
    assert "repr() raised RuntimeError" in str(info.value)
    assert whereis("refuses") is None


async def test_drop_oldest_evicting_an_unformattable_call_does_not_break_an_unrelated_sender(
    node: asyncotp.Node,
) -> None:
    pid = await Server.start([], mailbox_size=1, overflow=Overflow.DROP_OLDEST)
    gate = Gate()
    cast(pid, ("hold", gate))
    await gate.entered.wait()
    evicted = await queued_call(pid, Hostile(), timeout=None)
    cast(pid, ("stop", "later"))  # evicts the call: this sender must not see its failure
    with pytest.raises(MailboxFull) as info:
        await wait(evicted)
    assert "repr() raised RuntimeError" in str(info.value)
    ended = await watch(pid)
    gate.open()
    assert await wait(ended) == "later"


async def test_a_supervisor_restarts_a_child_whose_crash_cannot_be_formatted(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    # caplog formats every record (and fails on one it cannot format): the
    # supervisor's reports of this crash must format too.
    sup = await Supervisor.start([Server.child_spec([], id="worker")])
    [child] = await asyncotp.which_children(sup)
    assert child.pid is not None
    cast(child.pid, ("raise", HostileError()))
    restarted = await wait_for_restart(sup, "worker", child.pid)
    assert restarted is not child.pid
    assert await call(restarted, "ping") == "pong"
    assert any("repr() raised RuntimeError" in r.getMessage() for r in caplog.records)


async def test_the_default_handle_info_logs_an_unformattable_message_with_a_placeholder(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await Server.start([])
    send(pid, Hostile())
    assert await call(pid, "ping") == "pong"
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "repr() raised RuntimeError" in warning.getMessage()


@pytest.mark.parametrize(
    "reason", [RuntimeError("broken state"), "bad_state"], ids=["exception", "plain reason"]
)
async def test_a_servers_crash_report_names_the_server_its_last_message_and_the_reason(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture, reason: object
) -> None:
    pid = await Server.start([], name="reporter")
    ended = await watch(pid)
    request = ("raise", reason) if isinstance(reason, Exception) else ("stop", reason)
    cast(pid, request)
    assert await wait(ended) is reason
    [report] = [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]
    text = report.getMessage()
    assert "'reporter'" in text  # the server
    assert "Server" in text  # its class
    assert f"Cast({request!r})" in text  # the last message it handled
    assert repr(reason) in text


# -- 2. time arguments are validated before anything happens -----------------------


@pytest.mark.parametrize("bad", [*BAD_SECONDS, 0, 0.0], ids=safe_repr)
async def test_start_refuses_a_bad_timeout_before_it_starts_anything(
    node: asyncotp.Node, bad: object
) -> None:
    before = processes()
    with pytest.raises(ValueError) as info:
        await Server.start([], name="never", timeout=bad)  # type: ignore[call-overload]
    assert "timeout" in str(info.value)
    assert safe_repr(bad) in str(info.value)
    assert whereis("never") is None
    assert processes() == before


@pytest.mark.parametrize("no_limit", [None, math.inf])
async def test_start_takes_none_or_inf_as_no_limit(node: asyncotp.Node, no_limit: object) -> None:
    pid = await Server.start([], timeout=no_limit)  # type: ignore[call-overload]
    assert await call(pid, "ping") == "pong"


@pytest.mark.parametrize("bad", BAD_SECONDS, ids=safe_repr)
async def test_agent_functions_refuse_a_bad_timeout_before_they_call(
    node: asyncotp.Node, bad: Any
) -> None:
    agent = await Agent.start(lambda: 0)
    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "Agent.get": lambda: Agent.get(agent, timeout=bad),
        "Agent.update": lambda: Agent.update(agent, lambda n: n + 1, timeout=bad),
        "Agent.get_and_update": lambda: Agent.get_and_update(
            agent, lambda n: (n, n + 1), timeout=bad
        ),
    }
    for name, attempt in attempts.items():
        with pytest.raises(ValueError) as info:
            await attempt()
        assert f"{name}: timeout" in str(info.value)
    assert await Agent.get(agent) == 0


# -- 4. Agent: a function that is not callable fails at the call site ---------------


@pytest.mark.parametrize("bad", [42, "state", None])
async def test_agent_functions_refuse_a_function_that_is_not_callable_at_the_call_site(
    node: asyncotp.Node, bad: Any
) -> None:
    agent = await Agent.start(lambda: {"n": 1})
    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "Agent.get": lambda: Agent.get(agent, bad),
        "Agent.update": lambda: Agent.update(agent, bad),
        "Agent.get_and_update": lambda: Agent.get_and_update(agent, bad),
    }
    for name, attempt in attempts.items():
        with pytest.raises(TypeError) as info:
            await attempt()
        assert name in str(info.value)
        assert "fn" in str(info.value)
        assert repr(bad) in str(info.value)
    with pytest.raises(TypeError, match=r"Agent\.cast: fn"):
        Agent.cast(agent, bad)
    assert is_alive(agent)
    assert await Agent.get(agent) == {"n": 1}


# -- 5. a task a server starts is not the server ------------------------------------


class Spawner(GenServer):
    """``init`` starts a task that tries to act as the server."""

    async def init(self, outcome: asyncio.Future[list[object]]) -> None:
        self.me = self_pid()
        self.got: list[object] = []
        send(self.me, "for the server")  # queued before the task runs
        self.task = asyncio.create_task(self._try(outcome))

    async def _try(self, outcome: asyncio.Future[list[object]]) -> None:
        seen: list[object] = []
        try:
            self_pid()
            seen.append("self_pid allowed")
        except NotAnActorError:
            seen.append("self_pid refused")
        try:
            seen.append(await receive())  # would take "for the server"
        except NotAnActorError:
            seen.append("receive refused")
        # Any task of the node may call the server (not "the server calling itself").
        seen.append(await call(self.me, "ping"))
        outcome.set_result(seen)

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return "pong" if request == "ping" else self.got

    async def handle_info(self, message: Any) -> None:
        self.got.append(message)


async def test_a_task_a_server_starts_cannot_take_its_messages_nor_pass_for_it(
    node: asyncotp.Node,
) -> None:
    outcome: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
    pid = await Spawner.start(outcome)
    assert await wait(outcome) == ["self_pid refused", "receive refused", "pong"]
    assert await call(pid, "messages") == ["for the server"]


# -- 8. KILL ends a server whose callback swallows the cancellation -------------------


class Stubborn(GenServer):
    async def init(self, log: list[object]) -> None:
        self.log = log

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if not isinstance(request, Gate):
            self.log.append(("call", request))
            return request
        try:
            await request.pass_through()
        except asyncio.CancelledError:
            self.log.append("swallowed")
        return "reply after KILL"

    async def handle_cast(self, request: Any) -> None:
        if isinstance(request, Gate):
            try:
                await request.pass_through()
            except asyncio.CancelledError:
                self.log.append("swallowed")
            return
        self.log.append(("cast", request))

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", reason))


async def test_kill_ends_a_server_whose_cast_callback_swallows_the_cancellation(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []
    pid = await Stubborn.start(log)
    ended = await watch(pid)
    gate = Gate()
    cast(pid, gate)
    await gate.entered.wait()
    queued = await queued_call(pid, "queued", timeout=None)
    send_exit(pid, KILL)
    assert await wait(ended) is KILLED
    with pytest.raises(ServerExited) as info:
        await wait(queued)  # not answered by the killed server
    assert info.value.reason is KILLED
    assert log == ["swallowed"]  # no terminate after KILL


async def test_kill_ends_a_server_whose_callback_swallows_the_cancellation_with_killed(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []
    pid = await Stubborn.start(log)
    ended = await watch(pid)
    gate = Gate()
    holding = await queued_call(pid, gate, timeout=None)
    await gate.entered.wait()
    queued = await queued_call(pid, "queued", timeout=None)
    cast(pid, "after")
    send_exit(pid, KILL)
    assert await wait(ended) is KILLED
    with pytest.raises(ServerExited) as info:
        await wait(holding)  # no reply from a killed server
    assert info.value.reason is KILLED
    with pytest.raises(ServerExited):
        await wait(queued)
    assert log == ["swallowed"]  # neither the cast nor terminate ran
    with pytest.raises(NoProcess):
        await call(pid, "anything")


class SwallowsInit(GenServer):
    async def init(self, gate: Gate) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallows a KILL
            await gate.pass_through()


async def test_kill_during_init_ends_a_server_whose_init_swallows_the_cancellation(
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


# -- 9. KeyboardInterrupt in a callback stops the node in order -----------------------


async def test_keyboard_interrupt_in_a_callback_runs_every_terminate_then_is_raised_from_node() -> (
    None
):
    log: list[object] = []
    interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as info:  # noqa: PT012 - the whole node's life
        async with asyncotp.node():
            other = await Server.start(log, name="other")
            culprit = await Server.start(log, name="culprit")
            cast(culprit, ("raise", interrupt))
            await asyncio.Event().wait()  # the node cancels the block to stop
    assert info.value is interrupt
    assert sorted(map(repr, log)) == sorted(
        [repr(("terminate", Shutdown(interrupt))), repr(("terminate", SHUTDOWN))]
    )
    del other


# -- 10. cancelling a start undoes it -------------------------------------------------


class SlowInit(GenServer):
    async def init(self, gate: Gate) -> None:
        await gate.pass_through()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def test_cancelling_a_start_kills_the_half_started_server_and_frees_its_name(
    node: asyncotp.Node,
) -> None:
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
    assert await call("slow", "hello") == "hello"
    assert again is not half


# -- 11. Stop in terminate; stop() when terminate fails ---------------------------------


class EndsInTerminate(GenServer):
    async def init(self, outcome: BaseException) -> None:
        self.outcome = outcome

    async def terminate(self, reason: Any) -> None:
        raise self.outcome


async def test_stop_raised_in_terminate_makes_its_reason_the_exit_reason(
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


async def test_stop_raises_server_exited_with_the_crash_when_terminate_crashes(
    node: asyncotp.Node,
) -> None:
    error = RuntimeError("terminate failed")
    pid = await EndsInTerminate.start(error)
    with pytest.raises(ServerExited) as info:
        await stop(pid)
    assert info.value.reason is error
    assert "terminate failed" in str(info.value)


async def test_stop_returns_quietly_when_the_server_ends_as_asked(node: asyncotp.Node) -> None:
    log: list[object] = []
    pid = await Server.start(log)
    await stop(pid, "asked")
    await stop(await Server.start(log), KILL)  # KILL ends with KILLED: as asked
    assert log == [("terminate", "asked")]
