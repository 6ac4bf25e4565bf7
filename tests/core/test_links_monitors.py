"""Links, exit signals, trap_exits and monitors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import pytest

import asyncotp
from asyncotp import (
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Down,
    Exited,
    Pid,
    ReceiveTimeout,
    Shutdown,
    Stop,
    demonitor,
    is_alive,
    link,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    send_exit,
    set_trap_exits,
    spawn,
    unlink,
)
from tests.helpers import WAIT, down_of, drain, in_actor, wait


async def exited_from(pid: Pid) -> Exited:
    """In an actor that traps exits: wait for the ``Exited`` sent by ``pid``."""
    exited = await receive(lambda m: isinstance(m, Exited) and m.pid == pid, timeout=WAIT)
    assert isinstance(exited, Exited)
    return exited


async def still_alive() -> bool:
    """In an actor: whether it survives its next checkpoint (an exit signal
    already received would end it there)."""
    await anyio.lowlevel.checkpoint()
    info = process_info(self_pid())
    return info is not None and info.status != "exiting"


async def idle() -> None:
    """An actor that waits for ``"stop"``, answering pings meanwhile."""
    while True:
        message = await receive()
        if message == "stop":
            return
        if isinstance(message, tuple) and message[1:] == ("ping",):
            send(message[0], "pong")


async def answers_ping(pid: Pid) -> bool:
    """In an actor: whether ``pid`` answers a ping."""
    send(pid, (self_pid(), "ping"))
    try:
        await receive(lambda m: m == "pong", timeout=WAIT)
    except ReceiveTimeout:
        return False
    return True


async def ends_with(reason: object) -> None:
    """An actor that ends with ``reason`` when told ``"go"``."""
    await receive(lambda m: m == "go")
    if isinstance(reason, BaseException):
        raise reason
    raise Stop(reason)


_IDLE = object()


async def linker(target: Pid, parent: Pid, reason: object = _IDLE) -> None:
    """An actor that links itself to ``target``, tells ``parent`` it has, then
    idles (or, given a ``reason``, ends with it on ``"go"``)."""
    link(target)
    send(parent, ("linked", self_pid()))
    if reason is _IDLE:
        await idle()
    else:
        await ends_with(reason)


async def spawn_linker(target: Pid, reason: object = _IDLE, **spawn_options: Any) -> Pid:
    """In an actor: start a ``linker`` to ``target`` and wait until it has linked."""
    pid = spawn(linker, target, self_pid(), reason, **spawn_options)
    await receive(lambda m: m == ("linked", pid), timeout=WAIT)
    return pid


# -- links ----------------------------------------------------------------------


async def test_link_is_recorded_on_both_sides_and_unlink_removes_both(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> None:
        me = self_pid()
        other = spawn(idle)
        link(other)
        assert process_info(me).links == frozenset({other})  # type: ignore[union-attr]
        assert process_info(other).links == frozenset({me})  # type: ignore[union-attr]
        unlink(other)
        assert process_info(me).links == frozenset()  # type: ignore[union-attr]
        assert process_info(other).links == frozenset()  # type: ignore[union-attr]
        send(other, "stop")

    await in_actor(scenario)


@pytest.mark.parametrize("crashing_side", ["linker", "linked"])
async def test_an_abnormal_exit_kills_the_actor_at_the_other_end_of_a_link_with_the_same_reason(
    node: asyncotp.Node, crashing_side: str
) -> None:
    error = ValueError("boom")
    linker_crashes = crashing_side == "linker"

    async def scenario() -> tuple[object, object]:
        plain = spawn(ends_with, NORMAL if linker_crashes else error)
        linking = await spawn_linker(plain, error if linker_crashes else NORMAL)
        plain_ref, linking_ref = monitor(plain), monitor(linking)
        send(linking if linker_crashes else plain, "go")
        return (await down_of(plain_ref)).reason, (await down_of(linking_ref)).reason

    plain_reason, linking_reason = await in_actor(scenario)
    assert plain_reason is error
    assert linking_reason is error


async def test_a_crash_propagates_along_a_chain_of_links(node: asyncotp.Node) -> None:
    error = RuntimeError("chain")

    async def member(n: int, observer: Pid) -> None:
        send(observer, ("member", self_pid()))
        if n == 0:
            await ends_with(error)
        else:
            spawn(member, n - 1, observer, link=True)
            await idle()

    async def scenario() -> list[object]:
        spawn(member, 4, self_pid())
        pids = [(await receive(timeout=WAIT))[1] for _ in range(5)]
        refs = [monitor(pid) for pid in pids]
        send(pids[-1], "go")
        return [(await down_of(ref)).reason for ref in refs]

    assert await in_actor(scenario) == [error] * 5


async def test_a_normal_exit_does_not_kill_a_linked_actor_that_does_not_trap_exits(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[object, bool]:
        child = spawn(ends_with, NORMAL, link=True)
        ref = monitor(child)
        send(child, "go")
        down = await down_of(ref)
        return down.reason, await still_alive()

    assert await in_actor(scenario) == (NORMAL, True)


async def test_unlink_stops_a_crash_from_propagating(node: asyncotp.Node) -> None:
    error = ValueError("alone")

    async def scenario() -> tuple[object, bool]:
        child = spawn(ends_with, error, link=True)
        ref = monitor(child)
        unlink(child)
        send(child, "go")
        down = await down_of(ref)
        return down.reason, await still_alive()

    assert await in_actor(scenario) == (error, True)


async def test_unlink_from_the_other_side_also_removes_the_link(node: asyncotp.Node) -> None:
    error = ValueError("alone")

    async def unlinks_then_crashes(parent: Pid) -> None:
        unlink(parent)
        await ends_with(error)

    async def scenario() -> tuple[object, bool]:
        child = spawn(unlinks_then_crashes, self_pid(), link=True)
        ref = monitor(child)
        send(child, "go")
        down = await down_of(ref)
        return down.reason, await still_alive()

    assert await in_actor(scenario) == (error, True)


async def test_linking_to_a_dead_pid_ends_the_caller_with_noproc(node: asyncotp.Node) -> None:
    async def links_to(target: Pid) -> None:
        await receive(lambda m: m == "go")
        link(target)
        await receive()

    async def scenario() -> object:
        dead = spawn(ends_with, NORMAL)
        dead_ref = monitor(dead)
        send(dead, "go")
        await down_of(dead_ref)
        caller = spawn(links_to, dead)
        ref = monitor(caller)
        send(caller, "go")
        return (await down_of(ref)).reason

    assert await in_actor(scenario) is NOPROC


async def test_linking_to_a_dead_pid_while_trapping_exits_gives_exited_noproc(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[object, Pid, frozenset[Pid], bool]:
        dead = spawn(ends_with, NORMAL)
        ref = monitor(dead)
        send(dead, "go")
        await down_of(ref)
        link(dead)
        exited = await receive(timeout=0)
        links = process_info(self_pid()).links  # type: ignore[union-attr]
        return exited, dead, links, await still_alive()

    exited, dead, links, alive = await in_actor(scenario, trap_exits=True)
    assert exited == Exited(dead, NOPROC)
    assert links == frozenset()
    assert alive


async def test_spawn_with_link_links_the_new_actor_to_the_caller(node: asyncotp.Node) -> None:
    async def scenario() -> tuple[Pid, Pid, frozenset[Pid], asyncotp.ProcessInfo | None]:
        child = spawn(idle, link=True)
        mine = process_info(self_pid()).links  # type: ignore[union-attr]
        info = process_info(child)
        send(child, "stop")
        return self_pid(), child, mine, info

    me, child, mine, info = await in_actor(scenario)
    assert mine == frozenset({child})
    assert info is not None
    assert info.links == frozenset({me})
    assert info.parent == me


# -- trapping exits -----------------------------------------------------------


async def test_a_trapping_actor_receives_a_linked_crash_as_exited_and_survives(
    node: asyncotp.Node,
) -> None:
    error = ValueError("caught")

    async def scenario() -> tuple[Exited, Pid, bool]:
        child = spawn(ends_with, error, link=True)
        send(child, "go")
        return await exited_from(child), child, await still_alive()

    exited, child, alive = await in_actor(scenario, trap_exits=True)
    assert exited == Exited(child, error)
    assert exited.reason is error
    assert alive


async def test_a_trapping_actor_receives_a_linked_actors_normal_end_too(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[Exited, Pid]:
        child = spawn(ends_with, NORMAL, link=True)
        send(child, "go")
        return await exited_from(child), child

    exited, child = await in_actor(scenario, trap_exits=True)
    assert exited == Exited(child, NORMAL)


async def test_set_trap_exits_returns_the_old_flag_and_clearing_it_lets_signals_kill_again(
    node: asyncotp.Node,
) -> None:
    async def toggles(observer: Pid) -> None:
        send(observer, ("was", set_trap_exits(True)))
        send(observer, ("info", process_info(self_pid()).trap_exits))  # type: ignore[union-attr]
        first = spawn(ends_with, "first", link=True)
        send(first, "go")
        send(observer, ("trapped", await exited_from(first)))
        send(observer, ("was", set_trap_exits(False)))
        second = spawn(ends_with, "second", link=True)
        send(second, "go")
        await receive(lambda m: m == "never")

    async def scenario() -> tuple[list[Any], object]:
        pid = spawn(toggles, self_pid())
        ref = monitor(pid)
        reason = (await down_of(ref)).reason
        return await drain(), reason

    reports, reason = await in_actor(scenario)
    assert reports[:2] == [("was", False), ("info", True)]
    assert reports[2][0] == "trapped"
    assert reports[2][1].reason == "first"
    assert reports[3:] == [("was", True)]
    assert reason == "second"


@pytest.mark.parametrize("reason", ["custom", NORMAL, SHUTDOWN])
async def test_send_exit_arrives_at_a_trapping_actor_as_exited_from_the_sender(
    node: asyncotp.Node, reason: object
) -> None:
    async def sender(target: Pid) -> None:
        send_exit(target, reason)
        await receive(lambda m: m == "stop")

    async def scenario() -> tuple[Exited, Pid, bool]:
        pid = spawn(sender, self_pid())
        exited = await exited_from(pid)
        send(pid, "stop")
        return exited, pid, await still_alive()

    exited, pid, alive = await in_actor(scenario, trap_exits=True)
    assert exited == Exited(pid, reason)
    assert alive


async def test_send_exit_from_a_plain_task_arrives_from_a_pid_that_is_no_actor(
    node: asyncotp.Node,
) -> None:
    ready: asyncio.Future[Pid] = asyncio.get_running_loop().create_future()

    async def scenario() -> object:
        ready.set_result(self_pid())
        return await receive(timeout=WAIT)

    result = asyncio.ensure_future(in_actor(scenario, trap_exits=True))
    target = await wait(ready)
    send_exit(target, "from the test")
    exited = await result
    assert isinstance(exited, Exited)
    assert exited.reason == "from the test"
    assert exited.pid != target
    assert not is_alive(exited.pid)


async def test_send_exit_with_any_other_reason_ends_a_non_trapping_actor_with_that_reason(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> object:
        target = spawn(idle)
        ref = monitor(target)
        send_exit(target, "custom")
        return (await down_of(ref)).reason

    assert await in_actor(scenario) == "custom"


async def test_send_exit_normal_is_ignored_by_an_actor_that_does_not_trap_exits(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[bool, bool]:
        target = spawn(idle)
        send_exit(target, NORMAL)
        answered = await answers_ping(target)
        alive = is_alive(target)
        send(target, "stop")
        return answered, alive

    assert await in_actor(scenario) == (True, True)


# -- KILL ---------------------------------------------------------------------


async def test_kill_ends_even_a_trapping_actor_with_reason_killed(node: asyncotp.Node) -> None:
    async def scenario() -> object:
        target = spawn(idle, trap_exits=True)
        ref = monitor(target)
        send_exit(target, KILL)
        return (await down_of(ref)).reason

    assert await in_actor(scenario) is KILLED


async def test_actors_linked_to_a_killed_actor_see_killed_which_they_can_trap(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[Exited, Pid, object, bool]:
        target = spawn(idle, trap_exits=True, link=True)
        plain = await spawn_linker(target)
        plain_ref = monitor(plain)
        send_exit(target, KILL)
        exited = await exited_from(target)
        return exited, target, (await down_of(plain_ref)).reason, await still_alive()

    exited, target, plain_reason, alive = await in_actor(scenario, trap_exits=True)
    assert exited == Exited(target, KILLED)
    assert plain_reason is KILLED
    assert alive


async def test_an_actor_that_stops_with_kill_ends_killed_and_its_links_can_trap_it(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[Exited, Pid, bool]:
        child = spawn(ends_with, KILL, link=True)
        send(child, "go")
        return await exited_from(child), child, await still_alive()

    exited, child, alive = await in_actor(scenario, trap_exits=True)
    assert exited == Exited(child, KILLED)
    assert alive


# -- monitors -----------------------------------------------------------------


async def test_monitor_delivers_down_with_the_ref_pid_and_reason(node: asyncotp.Node) -> None:
    error = ValueError("watched")

    async def scenario() -> tuple[Down, asyncotp.MonitorRef, Pid]:
        target = spawn(ends_with, error)
        ref = monitor(target)
        assert process_info(self_pid()).monitors == frozenset({target})  # type: ignore[union-attr]
        send(target, "go")
        down = await receive(timeout=WAIT)
        assert process_info(self_pid()).monitors == frozenset()  # type: ignore[union-attr]
        return down, ref, target

    down, ref, target = await in_actor(scenario)
    assert down == Down(ref, target, error)
    assert down.ref is ref
    assert down.reason is error


async def test_monitor_is_one_way_so_the_watcher_survives_a_crash(node: asyncotp.Node) -> None:
    async def scenario() -> bool:
        target = spawn(ends_with, RuntimeError("not yours"))
        ref = monitor(target)
        send(target, "go")
        await down_of(ref)
        return await still_alive()

    assert await in_actor(scenario) is True


async def test_monitoring_a_dead_pid_gives_down_noproc_at_once(node: asyncotp.Node) -> None:
    async def scenario() -> tuple[object, asyncotp.MonitorRef, Pid]:
        target = spawn(ends_with, NORMAL)
        first = monitor(target)
        send(target, "go")
        await down_of(first)
        ref = monitor(target)
        return await receive(timeout=0), ref, target

    down, ref, target = await in_actor(scenario)
    assert down == Down(ref, target, NOPROC)


async def test_each_monitor_gets_its_own_down(node: asyncotp.Node) -> None:
    async def scenario() -> list[Down]:
        target = spawn(ends_with, "bye")
        refs = [monitor(target), monitor(target)]
        assert refs[0] is not refs[1]
        send(target, "go")
        return [await down_of(ref) for ref in refs]

    downs = await in_actor(scenario)
    assert [d.reason for d in downs] == ["bye", "bye"]


async def test_demonitor_stops_the_down_from_being_delivered(node: asyncotp.Node) -> None:
    async def scenario() -> tuple[bool, frozenset[Pid], bool, list[object]]:
        target = spawn(ends_with, "bye")
        removed = monitor(target)
        kept = monitor(target)
        was_active = demonitor(removed)
        monitors = process_info(self_pid()).monitors  # type: ignore[union-attr]
        send(target, "go")
        await down_of(kept)  # the removed monitor's Down would be here by now
        return was_active, monitors, demonitor(removed), await drain()

    was_active, monitors, again, rest = await in_actor(scenario)
    assert was_active is True
    assert len(monitors) == 1  # the other monitor is still there
    assert again is False
    assert rest == []


async def test_demonitor_with_flush_removes_a_down_already_delivered(node: asyncotp.Node) -> None:
    async def scenario() -> tuple[bool, list[object]]:
        target = spawn(ends_with, "bye")
        flushed = monitor(target)
        kept = monitor(target)
        send(target, "go")
        await down_of(kept)  # the other Down is in the mailbox now
        send(self_pid(), "unrelated")
        return demonitor(flushed, flush=True), await drain()

    assert await in_actor(scenario) == (False, ["unrelated"])


async def test_demonitor_without_flush_leaves_a_delivered_down_in_the_mailbox(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[list[object], asyncotp.MonitorRef]:
        target = spawn(ends_with, "bye")
        removed = monitor(target)
        kept = monitor(target)
        send(target, "go")
        await down_of(kept)
        demonitor(removed)
        return await drain(), removed

    rest, removed = await in_actor(scenario)
    assert [(d.ref, d.reason) for d in rest] == [(removed, "bye")]  # type: ignore[attr-defined]


# -- SHUTDOWN over links ------------------------------------------------------


@pytest.mark.parametrize("reason", [SHUTDOWN, Shutdown("detail")], ids=["SHUTDOWN", "Shutdown"])
async def test_shutdown_reasons_propagate_over_links_like_any_abnormal_reason(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture, reason: object
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")

    async def scenario() -> tuple[object, object, Exited]:
        ending = spawn(ends_with, reason)
        plain = await spawn_linker(ending)
        trapping = await spawn_linker(ending, trap_exits=True)
        refs = monitor(ending), monitor(plain), monitor(trapping)
        link(ending)  # this actor traps: it sees the signal as a message
        send(ending, "go")
        ending_reason = (await down_of(refs[0])).reason
        plain_reason = (await down_of(refs[1])).reason
        exited = await exited_from(ending)
        assert await answers_ping(trapping)
        send(trapping, "stop")
        await down_of(refs[2])
        return ending_reason, plain_reason, exited

    ending_reason, plain_reason, exited = await in_actor(scenario, trap_exits=True)
    assert ending_reason == reason
    assert plain_reason == reason
    assert exited.reason == reason
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
