"""handle_continue: a callback asks for a continuation that runs before any
other message (OTP's ``{continue, Arg}``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncotp
from asyncotp import (
    NORMAL,
    Caller,
    Continue,
    Exited,
    GenServer,
    IdleTimeout,
    Node,
    ServerExited,
    StartError,
    call,
    cast,
    receive,
    stop,
    whereis,
)
from tests.helpers import Gate, in_actor, wait, watch


class Steps(GenServer):
    """Logs every callback; what each returns is scripted by the request."""

    log: list[object]

    async def init(self, log: list[object], first: object = None) -> Any:
        self.log = log
        log.append(("init", first))
        return None if first is None else Continue(first)

    async def handle_continue(self, arg: Any) -> Any:
        self.log.append(("continue", arg))
        match arg:
            case Gate() as gate:
                await gate.pass_through()
            case ("chain", n) if n > 0:
                return Continue(("chain", n - 1))
            case ("reply", caller, value):
                caller.reply(value)
            case "crash":
                raise RuntimeError("crash in continue")
        return None

    async def handle_cast(self, request: Any) -> Any:
        self.log.append(("cast", request))
        match request:
            case ("continue", arg):
                return Continue(arg)
            case ("hold", Gate() as gate, arg):
                await gate.pass_through()
                return Continue(arg)
            case ("return", value):
                return value
        return None

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        self.log.append(("call", request))
        match request:
            case ("reply_then_continue", value, arg):
                return Continue(arg, reply=value)
            case ("continue_then_reply", value):
                return Continue(("reply", caller, value))
        return request

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", reason))


async def test_init_continue_runs_after_start_returns_and_before_any_request(
    node: Node,
) -> None:
    log: list[object] = []
    gate = Gate()
    pid = await wait(Steps.start(log, gate))
    await wait(gate.entered.wait())  # start has returned while the continuation runs
    cast(pid, "queued")
    gate.open()
    assert await wait(call(pid, "sync")) == "sync"
    assert log == [
        ("init", gate),
        ("continue", gate),
        ("cast", "queued"),
        ("call", "sync"),
    ]


async def test_a_continue_from_handle_cast_runs_before_messages_already_queued(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await wait(Steps.start(log))
    cast(pid, ("continue", "after a"))
    cast(pid, "b")
    await wait(call(pid, "sync"))
    assert log[1:] == [
        ("cast", ("continue", "after a")),
        ("continue", "after a"),
        ("cast", "b"),
        ("call", "sync"),
    ]


async def test_handle_continue_may_chain_continuations(node: Node) -> None:
    log: list[object] = []
    pid = await wait(Steps.start(log, ("chain", 2)))
    await wait(call(pid, "sync"))
    assert [e for e in log if isinstance(e, tuple) and e[0] == "continue"] == [
        ("continue", ("chain", 2)),
        ("continue", ("chain", 1)),
        ("continue", ("chain", 0)),
    ]


async def test_handle_call_replies_first_with_continue_reply(node: Node) -> None:
    log: list[object] = []
    pid = await wait(Steps.start(log))
    assert await wait(call(pid, ("reply_then_continue", 42, "next"))) == 42
    await wait(call(pid, "sync"))
    assert log[1:] == [
        ("call", ("reply_then_continue", 42, "next")),
        ("continue", "next"),
        ("call", "sync"),
    ]


async def test_handle_call_continue_without_reply_answers_later_like_noreply(
    node: Node,
) -> None:
    pid = await wait(Steps.start([]))
    assert await wait(call(pid, ("continue_then_reply", "from continue"))) == "from continue"


async def test_the_default_handle_continue_crashes_naming_the_server(node: Node) -> None:
    class NoContinue(GenServer):
        async def init(self) -> Continue:
            return Continue("setup")

    async def starter() -> object:
        # Linked from the start: the continuation runs (and crashes) as soon
        # as start returns, before a monitor set afterwards could see it.
        await NoContinue.start(link=True)
        exited = await receive(lambda m: isinstance(m, Exited))
        return exited.reason

    reason = await wait(in_actor(starter, trap_exits=True))
    assert isinstance(reason, NotImplementedError)
    assert "NoContinue" in str(reason)
    assert "handle_continue" in str(reason)


async def test_a_crash_in_handle_continue_ends_the_server_with_that_error(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[object] = []
    pid = await wait(Steps.start(log))
    ended = await watch(pid)
    with caplog.at_level(logging.ERROR, logger="asyncotp"):
        cast(pid, ("continue", "crash"))
        reason = await wait(ended)
    assert isinstance(reason, RuntimeError)
    assert ("terminate", reason) in log
    assert "last message Continue('crash')" in caplog.text


async def test_a_stop_that_arrives_during_the_callback_goes_before_its_continuation(
    node: Node,
) -> None:
    log: list[object] = []
    gate = Gate()
    pid = await wait(Steps.start(log))
    cast(pid, ("hold", gate, "never"))
    await wait(gate.entered.wait())
    stopping = wait(stop(pid))
    gate.open()
    await stopping
    assert ("continue", "never") not in log
    assert log[-1] == ("terminate", NORMAL)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (42, "Steps.handle_cast returned 42; it may return None, Continue(arg)"),
        (Continue("x", reply=1), "reply= is only for handle_call"),
        (IdleTimeout(1, reply=1), "reply= is only for handle_call"),
    ],
)
async def test_a_bad_return_from_handle_cast_crashes_with_a_type_error_naming_it(
    node: Node, returned: object, message: str
) -> None:
    pid = await wait(Steps.start([]))
    ended = await watch(pid)
    cast(pid, ("return", returned))
    reason = await wait(ended)
    assert isinstance(reason, TypeError)
    assert message in str(reason)


async def test_continue_repr_shows_its_argument_and_reply() -> None:
    assert repr(Continue("a")) == "Continue('a')"
    assert repr(Continue("a", reply=2)) == "Continue('a', reply=2)"
    assert not Continue().has_reply


async def test_a_server_that_exited_fails_callers_queued_behind_a_continuation(
    node: Node,
) -> None:
    pid = await wait(Steps.start([]))
    cast(pid, ("continue", "crash"))
    with pytest.raises(ServerExited):
        await wait(call(pid, "too late"))


@settings(max_examples=25, deadline=None)
@given(chains=st.lists(st.integers(min_value=0, max_value=3), max_size=12))
def test_each_continuation_chain_runs_right_after_its_callback_before_the_next_message(
    chains: list[int],
) -> None:
    async def main() -> list[object]:
        log: list[object] = []
        pid = await Steps.start(log)
        for n, length in enumerate(chains):
            if length:
                cast(pid, ("continue", ("chain", length - 1)))
            else:
                cast(pid, n)
        await call(pid, "sync")
        return log[1:-1]

    expected: list[object] = []
    for n, length in enumerate(chains):
        if length:
            expected.append(("cast", ("continue", ("chain", length - 1))))
            expected.extend(("continue", ("chain", k)) for k in range(length - 1, -1, -1))
        else:
            expected.append(("cast", n))
    assert asyncotp.run(main) == expected


async def test_callbacks_can_be_tested_directly_continue_compares_by_value(node: Node) -> None:
    server = Steps()
    server.log = []
    assert await server.handle_cast(("continue", "x")) == Continue("x")
    assert Continue("x", reply=1) != Continue("x")
    assert IdleTimeout(1) == IdleTimeout(1.0)


async def test_init_returning_something_else_fails_start_with_a_type_error(node: Node) -> None:
    class Odd(GenServer):
        async def init(self) -> Any:
            return 42

    with pytest.raises(StartError) as info:
        await wait(Odd.start(name="odd"))
    assert isinstance(info.value.__cause__, TypeError)
    assert "Odd.init returned 42" in str(info.value.__cause__)
    assert whereis("odd") is None
