"""asyncotp.testing waits: wait_for_exit, wait_for_restart and settle
synchronise on events and fail with what they saw instead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncotp import (
    NOPROC,
    Backoff,
    Caller,
    ChildSpec,
    GenServer,
    Node,
    Restart,
    Stop,
    Supervisor,
    cast,
    receive,
    send,
    spawn,
    which_children,
)
from asyncotp.testing import (
    SettleTimeout,
    VirtualClock,
    WaitTimeout,
    crash,
    settle,
    wait_for_exit,
    wait_for_restart,
)


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request

    async def handle_cast(self, request: Any) -> None:
        if request == "stop":
            raise Stop("asked to")
        if isinstance(request, tuple):
            dest, message = request
            send(dest, message)


async def first_child(sup: Any) -> Any:
    (child,) = await which_children(sup)
    assert child.pid is not None
    return child.pid


async def test_wait_for_exit_returns_the_exit_reason(otp_node: Node) -> None:
    worker = await Worker.start()
    cast(worker, "stop")
    assert await wait_for_exit(worker) == "asked to"


async def test_wait_for_exit_of_an_actor_already_gone_gives_noproc(otp_node: Node) -> None:
    worker = await Worker.start()
    cast(worker, "stop")
    await wait_for_exit(worker)
    assert await wait_for_exit(worker) is NOPROC


async def test_wait_for_exit_fails_with_what_the_actor_is_doing(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    worker = await Worker.start()
    with pytest.raises(WaitTimeout, match=r"did not end within 2\.0 s; it is waiting"):
        await wait_for_exit(worker, timeout=2.0)


async def test_wait_for_restart_returns_the_new_pid(otp_node: Node) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w")])
    old = await first_child(sup)
    cast(old, "stop")
    new = await wait_for_restart(sup, "w", old)
    assert new is not old
    assert new is await first_child(sup)


async def test_wait_for_restart_returns_at_once_when_already_restarted(otp_node: Node) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w")], name="sup")
    old = await first_child(sup)
    await crash(old)
    await settle()
    assert await wait_for_restart("sup", "w", old) is await first_child(sup)
    assert await wait_for_restart("sup", "w", None) is await first_child(sup)


async def test_wait_for_restart_waits_out_a_backoff_delay(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    backoff = Backoff(initial=20.0, max=20.0, jitter=0.0)
    sup = await Supervisor.start([ChildSpec("w", Worker.start, backoff=backoff)])
    old = await first_child(sup)
    await crash(old)
    await wait_for_restart(sup, "w", old, timeout=30.0)
    assert virtual_clock.elapsed == pytest.approx(20.0)


async def test_wait_for_restart_fails_at_once_when_the_supervisor_gives_up(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w")], max_restarts=0)
    old = await first_child(sup)
    cast(old, "stop")
    with pytest.raises(WaitTimeout, match="ended with reason Shutdown") as failure:
        await wait_for_restart(sup, "w", old)
    assert "supervisor_gave_up" in str(failure.value)
    assert virtual_clock.elapsed == 0  # no timeout was waited out


async def test_wait_for_restart_of_a_child_that_is_not_restarted_times_out_with_reports(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w", restart=Restart.TRANSIENT)])
    old = await first_child(sup)
    await crash(old, Stop().reason)  # a normal exit: a transient child stays down
    with pytest.raises(WaitTimeout, match="did not restart child 'w'") as failure:
        await wait_for_restart(sup, "w", old, timeout=1.0)
    assert "the child is not running; it made no report meanwhile" in str(failure.value)


async def test_wait_for_restart_names_the_children_when_the_id_is_unknown(
    otp_node: Node,
) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w")])
    with pytest.raises(WaitTimeout, match=r"has no child 'nope'; its children are \['w'\]"):
        await wait_for_restart(sup, "nope", None)


async def test_wait_for_restart_of_an_unknown_supervisor_fails(otp_node: Node) -> None:
    with pytest.raises(WaitTimeout, match="no supervisor is registered as 'ghost'"):
        await wait_for_restart("ghost", "w", None)


async def test_settle_returns_once_a_chain_of_messages_has_run_its_course(
    otp_node: Node,
) -> None:
    seen: list[int] = []

    async def relay(nxt: Any) -> None:
        while True:
            n = await receive()
            seen.append(n)
            if nxt is not None and n < 50:
                send(nxt, n + 1)

    last = spawn(relay, None)
    middle = spawn(relay, last)
    first = spawn(relay, middle)
    send(first, 0)
    await settle()
    assert seen == [0, 1, 2]


async def test_settle_under_a_frozen_clock_names_the_actors_that_wait_on_time(
    otp_node: Node,
) -> None:
    with VirtualClock(autojump=False) as clock:

        async def dozes() -> None:
            await asyncio.sleep(10)

        sleeper = spawn(dozes)
        with pytest.raises(SettleTimeout, match="autojump is off") as failure:
            await settle()
        assert repr(sleeper) in str(failure.value)
        await clock.advance(10)
        await settle()
        clock.autojump = True


async def test_settle_without_a_clock_gives_up_after_its_timeout(otp_node: Node) -> None:
    async def spins() -> None:
        while True:  # noqa: ASYNC110 - busy on purpose: never waits on its mailbox
            await asyncio.sleep(0)

    spinner = spawn(spins)
    with pytest.raises(SettleTimeout, match=r"did not rest within 0\.05 s") as failure:
        await settle(timeout=0.05)
    assert f"{spinner!r}: running" in str(failure.value)


async def test_waits_refuse_a_timeout_that_is_not_positive(otp_node: Node) -> None:
    with pytest.raises(ValueError, match="timeout must be seconds > 0"):
        await settle(timeout=0)
    worker = await Worker.start()
    with pytest.raises(ValueError, match="timeout must be seconds > 0"):
        await wait_for_exit(worker, timeout=-1)
    with pytest.raises(TypeError, match="expected a Pid"):
        await wait_for_exit("worker", timeout=1)  # type: ignore[arg-type]
