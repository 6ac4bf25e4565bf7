"""The registry (register, unregister, whereis, registered) and timers
(send_after, cancel_timer, read_timer)."""

from __future__ import annotations

import asyncio

import anyio
import pytest

import asyncotp
from asyncotp import (
    NORMAL,
    MailboxFull,
    NameTaken,
    NoProcess,
    Pid,
    TimerRef,
    cancel_timer,
    monitor,
    process_info,
    read_timer,
    receive,
    register,
    registered,
    self_pid,
    send,
    send_after,
    spawn,
    unregister,
    whereis,
)
from tests.helpers import WAIT, down_of, drain, in_actor, wait, watch


async def idle() -> None:
    """An actor that waits for ``"stop"``."""
    await receive(lambda m: m == "stop")


async def stop_and_wait(pid: Pid) -> object:
    """Tell an ``idle`` actor to stop and return its exit reason once it has ended."""

    async def watch() -> object:
        ref = monitor(pid)
        send(pid, "stop")
        return (await down_of(ref)).reason

    return await in_actor(watch)


# -- registry -------------------------------------------------------------------


async def test_register_makes_the_name_resolve_to_the_pid(node: asyncotp.Node) -> None:
    pid = spawn(idle)
    assert whereis("svc") is None
    register("svc", pid)
    assert whereis("svc") == pid
    assert "svc" in registered()
    assert process_info(pid).name == "svc"  # type: ignore[union-attr]
    assert "svc" in repr(pid)
    send("svc", "hello")
    assert process_info(pid).mailbox_length == 1  # type: ignore[union-attr]


async def test_registered_lists_every_name_in_use_sorted(node: asyncotp.Node) -> None:
    for name in ["b", "c", "a"]:
        spawn(idle, name=name)
    assert registered() == ["a", "b", "c"]


async def test_unregister_frees_the_name_and_the_actor_keeps_running(
    node: asyncotp.Node,
) -> None:
    pid = spawn(idle, name="svc")
    unregister("svc")
    assert whereis("svc") is None
    assert "svc" not in registered()
    assert process_info(pid).name is None  # type: ignore[union-attr]
    assert asyncotp.is_alive(pid)
    with pytest.raises(NoProcess):
        send("svc", "hello")
    register("svc", pid)  # the same actor may take it again
    assert whereis("svc") == pid


async def test_unregister_of_a_name_nobody_holds_raises_no_process(node: asyncotp.Node) -> None:
    with pytest.raises(NoProcess, match="nobody"):
        unregister("nobody")


async def test_a_name_is_freed_when_its_actor_ends(node: asyncotp.Node) -> None:
    pid = spawn(idle, name="svc")
    assert await stop_and_wait(pid) is NORMAL
    assert whereis("svc") is None
    assert "svc" not in registered()
    with pytest.raises(NoProcess):
        send("svc", "hello")
    successor = spawn(idle, name="svc")
    assert whereis("svc") == successor


async def test_a_name_is_freed_when_its_actor_crashes(node: asyncotp.Node) -> None:
    async def crasher() -> None:
        await receive()
        raise RuntimeError("gone")

    async def scenario() -> object:
        pid = spawn(crasher, name="fragile")
        ref = monitor(pid)
        send("fragile", "go")
        return (await down_of(ref)).reason

    assert isinstance(await in_actor(scenario), RuntimeError)
    assert whereis("fragile") is None


async def test_registering_a_taken_name_raises_name_taken_and_keeps_the_holder(
    node: asyncotp.Node,
) -> None:
    holder = spawn(idle, name="svc")
    other = spawn(idle)
    with pytest.raises(NameTaken, match="svc") as caught:
        register("svc", other)
    assert caught.value.name == "svc"
    assert caught.value.holder == holder
    assert repr(holder) in str(caught.value)
    assert whereis("svc") == holder
    assert process_info(other).name is None  # type: ignore[union-attr]
    with pytest.raises(NameTaken):
        spawn(idle, name="svc")


async def test_registering_a_dead_pid_raises_no_process(node: asyncotp.Node) -> None:
    pid = spawn(idle)
    await stop_and_wait(pid)
    with pytest.raises(NoProcess):
        register("late", pid)
    assert whereis("late") is None


async def test_an_actor_has_at_most_one_name(node: asyncotp.Node) -> None:
    pid = spawn(idle, name="first")
    with pytest.raises(ValueError, match="first"):
        register("second", pid)
    assert whereis("second") is None
    assert whereis("first") == pid


@pytest.mark.parametrize("name", ["", 42, None])
async def test_register_rejects_a_name_that_is_not_a_non_empty_str(
    node: asyncotp.Node, name: object
) -> None:
    pid = spawn(idle)
    with pytest.raises(TypeError, match="name"):
        register(name, pid)  # type: ignore[arg-type]


# -- send_after -----------------------------------------------------------------


async def test_send_after_delivers_the_message_after_the_delay(node: asyncotp.Node) -> None:
    delay = 0.02

    async def scenario() -> tuple[object, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        send_after(delay, self_pid(), "tick")
        message = await receive(timeout=WAIT)
        return message, loop.time() - start

    message, elapsed = await in_actor(scenario)
    assert message == "tick"
    assert elapsed >= delay * 0.9  # the loop may fire a timer a clock tick early


async def test_send_after_to_a_name_looks_the_name_up_when_it_fires(
    node: asyncotp.Node,
) -> None:
    got: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def receiver() -> None:
        got.set_result(await receive())

    send_after(0.005, "late-comer", "hello")  # nobody holds the name yet: no error
    spawn(receiver, name="late-comer")
    assert await wait(got) == "hello"


async def test_send_after_to_a_dead_pid_or_a_free_name_is_dropped(node: asyncotp.Node) -> None:
    pid = spawn(idle)
    await stop_and_wait(pid)

    async def scenario() -> object:
        send_after(0.001, pid, "lost")
        send_after(0.001, "nobody", "lost")
        send_after(0.01, self_pid(), "after both")
        return await receive(timeout=WAIT)

    assert await in_actor(scenario) == "after both"


async def test_send_after_to_a_full_reject_mailbox_counts_a_rejection(
    node: asyncotp.Node,
) -> None:
    gate = anyio.Event()

    async def blocked() -> None:
        await gate.wait()

    pid = spawn(blocked, mailbox_size=1)
    send(pid, "fills it")

    async def scenario() -> object:
        send_after(0.001, pid, "refused")
        send_after(0.01, self_pid(), "later")
        return await receive(timeout=WAIT)

    assert await in_actor(scenario) == "later"
    info = process_info(pid)
    assert info is not None
    assert (info.mailbox_length, info.rejected) == (1, 1)
    gate.set()
    with pytest.raises(MailboxFull):
        send(pid, "still full")


@pytest.mark.parametrize("delay", [-1, "1", True])
async def test_send_after_rejects_a_bad_delay(node: asyncotp.Node, delay: object) -> None:
    with pytest.raises(ValueError, match="delay"):
        send_after(delay, "svc", "m")  # type: ignore[arg-type]


async def test_send_after_rejects_a_destination_that_is_no_pid_nor_name(
    node: asyncotp.Node,
) -> None:
    with pytest.raises(TypeError, match="destination"):
        send_after(1.0, 42, "m")  # type: ignore[arg-type]


# -- cancel_timer and read_timer --------------------------------------------------


async def test_cancel_timer_returns_true_while_pending_and_the_message_never_arrives(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[bool, float | None, list[object]]:
        cancelled = send_after(0.005, self_pid(), "cancelled")
        send_after(0.02, self_pid(), "later")
        was_pending = cancel_timer(cancelled)
        # Had it not been cancelled, "cancelled" would arrive before "later".
        first = await receive(timeout=WAIT)
        return was_pending, read_timer(cancelled), [first, *await drain()]

    assert await in_actor(scenario) == (True, None, ["later"])


async def test_cancel_timer_returns_false_after_the_timer_fired(node: asyncotp.Node) -> None:
    async def scenario() -> tuple[object, bool]:
        timer = send_after(0.001, self_pid(), "fired")
        message = await receive(timeout=WAIT)
        return message, cancel_timer(timer)

    assert await in_actor(scenario) == ("fired", False)


async def test_cancel_timer_returns_false_the_second_time(node: asyncotp.Node) -> None:
    timer = send_after(10.0, "nobody", "m")
    assert cancel_timer(timer) is True
    assert cancel_timer(timer) is False


async def test_read_timer_gives_the_time_left_then_none_once_fired(node: asyncotp.Node) -> None:
    async def scenario() -> tuple[float | None, float | None, float | None]:
        long = send_after(10.0, self_pid(), "long")
        short = send_after(0.001, self_pid(), "short")
        left_before = read_timer(long)
        await receive(lambda m: m == "short", timeout=WAIT)
        left_after = read_timer(long)
        cancel_timer(long)
        assert read_timer(long) is None
        return left_before, left_after, read_timer(short)

    before, after, fired = await in_actor(scenario)
    assert before is not None
    assert after is not None
    assert 9.0 < after <= before <= 10.0
    assert fired is None


async def test_the_timers_to_an_actor_are_cancelled_when_it_ends(node: asyncotp.Node) -> None:
    # As in Erlang (and API.md), a timer to a pid belongs to its destination:
    # it goes when the destination ends, whoever set it. (That a timer
    # outlives the short-lived actor that set it: tests/core/test_hardening.py.)
    async def sets_timers(target: Pid) -> tuple[TimerRef, TimerRef]:
        return send_after(10.0, target, "long"), send_after(10.0, target, "also long")

    target = spawn(idle)
    timers = await in_actor(lambda: sets_timers(target))  # that actor has ended now
    assert all(read_timer(t) is not None for t in timers)  # they belong to target
    ended = await watch(target)
    send(target, "stop")
    assert await wait(ended) is NORMAL
    assert [read_timer(t) for t in timers] == [None, None]
    assert [cancel_timer(t) for t in timers] == [False, False]


async def test_timers_set_outside_an_actor_are_cancelled_when_the_node_stops() -> None:
    async with asyncotp.node():
        timer = send_after(10.0, "nobody", "m")
        assert read_timer(timer) is not None
    assert read_timer(timer) is None
    assert cancel_timer(timer) is False
