"""Errors: one base class, the built-in bases users catch, and messages that
name the actor (pid and registered name) the error is about."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import asyncotp
from asyncotp import (
    ActorError,
    Caller,
    CallTimeout,
    DuplicateChild,
    GenServer,
    MailboxFull,
    MaxChildren,
    NameTaken,
    Node,
    NoNodeError,
    NoProcess,
    NotAnActorError,
    ReceiveTimeout,
    ServerExited,
    StartError,
    call,
    cast,
    receive,
    self_pid,
    send,
    spawn,
    stop,
    whereis,
)

T = TypeVar("T")

ERRORS = [
    NoNodeError,
    NotAnActorError,
    NoProcess,
    CallTimeout,
    ServerExited,
    ReceiveTimeout,
    MailboxFull,
    NameTaken,
    StartError,
    DuplicateChild,
    MaxChildren,
]


async def in_actor(fn: Callable[[], Awaitable[T]], *, name: str | None = None) -> T:
    """Run ``fn`` inside a new actor and return (or raise) what it does."""
    result: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    async def body() -> None:
        try:
            result.set_result(await fn())
        except Exception as exc:
            result.set_exception(exc)

    spawn(body, name=name)
    return await result


class Server(GenServer):
    """Answers ``"ping"``; never answers ``"ignore"``; crashes on ``"crash"``;
    ``init(fail=...)`` raises instead of starting; ``init(hang=...)`` never returns."""

    async def init(self, fail: Exception | None = None, hang: asyncio.Event | None = None) -> None:
        if fail is not None:
            raise fail
        if hang is not None:
            await hang.wait()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError("crashed on request")
        if request == "ignore":
            return asyncotp.NOREPLY
        return "pong"


# -- the hierarchy ----------------------------------------------------------------


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_every_error_is_an_actor_error_exported_at_the_top_level(error: type[Exception]) -> None:
    assert issubclass(error, ActorError)
    assert getattr(asyncotp, error.__name__) is error
    assert error.__module__ == "asyncotp"  # its public home, not a private module


@pytest.mark.parametrize("error", [CallTimeout, ReceiveTimeout], ids=lambda e: e.__name__)
def test_timeouts_are_timeout_errors(error: type[Exception]) -> None:
    assert issubclass(error, TimeoutError)


def test_lookup_and_value_errors_subclass_the_matching_builtin() -> None:
    assert issubclass(NoProcess, LookupError)
    assert issubclass(NameTaken, ValueError)
    assert issubclass(DuplicateChild, ValueError)


# -- real errors: attributes and messages --------------------------------------------


def test_no_node_error_outside_a_node_says_how_to_start_one() -> None:
    with pytest.raises(NoNodeError) as info:
        whereis("anything")
    assert "asyncotp.run" in str(info.value)
    with pytest.raises(NoNodeError):
        cast("anything", "request")


async def test_not_an_actor_error_outside_an_actor_says_what_to_do(node: Node) -> None:
    with pytest.raises(NotAnActorError) as info:
        self_pid()
    assert "spawn" in str(info.value)


async def test_no_process_names_the_unknown_name(node: Node) -> None:
    with pytest.raises(NoProcess) as info:
        await call("ghost", "ping")
    assert info.value.dest == "ghost"
    assert "'ghost'" in str(info.value)


async def test_no_process_for_a_dead_pid_names_the_pid(node: Node) -> None:
    pid = await Server.start()
    await stop(pid)
    with pytest.raises(NoProcess) as info:
        await call(pid, "ping")
    assert info.value.dest is pid
    assert repr(pid) in str(info.value)


async def test_call_timeout_names_the_server_its_name_and_the_timeout(node: Node) -> None:
    pid = await Server.start(name="sleepy")
    with pytest.raises(CallTimeout) as info:
        await call("sleepy", "ignore", timeout=0.01)
    message = str(info.value)
    assert f"<Pid {pid.number} 'sleepy'>" in message
    assert "0.01" in message
    assert info.value.pid is pid
    assert info.value.timeout == 0.01


async def test_stop_timeout_names_the_server_and_its_name(node: Node) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    class Stuck(GenServer):
        async def handle_cast(self, request: Any) -> None:
            entered.set()
            await release.wait()

    pid = await Stuck.start(name="stuck")
    cast(pid, "block")
    await entered.wait()
    with pytest.raises(CallTimeout) as info:
        await stop(pid, timeout=0.01)
    assert f"<Pid {pid.number} 'stuck'>" in str(info.value)
    assert info.value.pid is pid
    release.set()


async def test_receive_timeout_names_the_waiting_actor(node: Node) -> None:
    async def wait_for_nothing() -> tuple[str, str]:
        try:
            await receive(timeout=0)
        except ReceiveTimeout as exc:
            return str(exc), repr(self_pid())
        raise AssertionError("receive(timeout=0) on an empty mailbox must raise")

    message, me = await in_actor(wait_for_nothing, name="listener")
    assert "'listener'" in me
    assert me in message


async def test_mailbox_full_names_the_actor_and_its_name(node: Node) -> None:
    async def never_reads() -> None:
        await asyncio.Event().wait()

    pid = spawn(never_reads, name="full", mailbox_size=1)
    send(pid, "fills it")
    with pytest.raises(MailboxFull) as info:
        send(pid, "one too many")
    assert info.value.pid is pid
    assert f"<Pid {pid.number} 'full'>" in str(info.value)
    assert "mailbox_size" in str(info.value)  # what to do


async def test_name_taken_names_the_name_and_its_holder(node: Node) -> None:
    holder = await Server.start(name="unique")
    with pytest.raises(NameTaken) as info:
        await Server.start(name="unique")
    assert info.value.name == "unique"
    assert info.value.holder is holder
    assert "'unique'" in str(info.value)
    assert repr(holder) in str(info.value)


async def test_start_error_carries_the_init_error_and_names_the_server(node: Node) -> None:
    error = ValueError("bad setting")
    with pytest.raises(StartError) as info:
        await Server.start(fail=error, name="starter")
    assert info.value.__cause__ is error
    assert info.value.reason is error
    message = str(info.value)
    assert "'starter'" in message
    assert "<Pid " in message
    assert "bad setting" in message


async def test_start_error_for_an_init_timeout_names_the_server_and_the_timeout(
    node: Node,
) -> None:
    with pytest.raises(StartError) as info:
        await Server.start(hang=asyncio.Event(), name="hanging", timeout=0.01)
    assert type(info.value.__cause__) is TimeoutError
    message = str(info.value)
    assert "'hanging'" in message
    assert "0.01" in message


async def test_server_exited_carries_the_pid_and_the_reason(node: Node) -> None:
    pid = await Server.start()
    with pytest.raises(ServerExited) as info:
        await call(pid, "crash")
    assert info.value.pid is pid
    assert isinstance(info.value.reason, RuntimeError)
    assert repr(pid) in str(info.value)
    assert "crashed on request" in str(info.value)


async def test_server_exited_names_the_registered_name(node: Node) -> None:
    pid = await Server.start(name="crasher")
    with pytest.raises(ServerExited) as info:
        await call(pid, "crash")
    assert f"<Pid {pid.number} 'crasher'>" in str(info.value)
