"""asyncotp.testing.Probe: an actor whose messages a test expects, with
failures that say what did arrive."""

from __future__ import annotations

import pytest

from asyncotp import KILLED, Down, Exited, Node, send, send_after, send_exit, spawn
from asyncotp.testing import Probe, VirtualClock, WaitTimeout, kill


async def test_expect_takes_the_oldest_message_that_matches_and_leaves_the_rest(
    otp_node: Node,
) -> None:
    probe = await Probe.start()
    for message in ("a", 1, ("pong", 2), "b"):
        send(probe.pid, message)
    assert await probe.expect(int) == 1  # a class: its instances
    assert await probe.expect(("pong", 2)) == ("pong", 2)  # a value: equality
    assert await probe.expect(lambda m: m == "b") == "b"  # a predicate
    assert await probe.expect() == "a"  # None: any message
    assert probe.pending == []
    assert probe.received == ["a", 1, ("pong", 2), "b"]


async def test_expect_waits_for_a_message_still_to_come(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    probe = await Probe.start()
    send_after(3.0, probe.pid, "tick")
    assert await probe.expect("tick", timeout=5.0) == "tick"
    assert virtual_clock.elapsed == pytest.approx(3.0)


async def test_a_failed_expect_lists_the_messages_that_did_arrive(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    probe = await Probe.start()
    send(probe.pid, ("pong", 1))
    send(probe.pid, "noise")
    await probe.expect("noise")
    with pytest.raises(WaitTimeout) as failure:
        await probe.expect(("pong", 2), timeout=1.0)
    message = str(failure.value)
    assert "a message equal to ('pong', 2)" in message
    assert "within 1.0 s" in message
    assert "2 message(s), 1 already taken" in message
    assert "('pong', 1)" in message
    assert isinstance(failure.value, AssertionError)
    assert isinstance(failure.value, TimeoutError)


async def test_a_failed_expect_on_a_silent_probe_says_nothing_arrived(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    probe = await Probe.start()
    with pytest.raises(WaitTimeout, match="received no message at all"):
        await probe.expect(timeout=0.5)


async def test_expect_no_message_fails_on_a_matching_message(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    probe = await Probe.start()
    send(probe.pid, "other")
    await probe.expect_no_message("boom", within=1.0)
    send_after(0.5, probe.pid, "boom")
    with pytest.raises(AssertionError, match="received 'boom'"):
        await probe.expect_no_message("boom", within=1.0)


async def test_take_returns_a_pending_message_without_waiting(otp_node: Node) -> None:
    probe = await Probe.start()
    assert probe.take() is None
    send(probe.pid, "x")
    await probe.expect_no_message("y", within=0.01)
    assert probe.take(str) == "x"


async def test_a_probe_monitors_an_actor_and_receives_its_down(otp_node: Node) -> None:
    probe = await Probe.start()

    async def idle() -> None:
        await probe.expect("never", timeout=3600)

    worker = spawn(idle)
    ref = await probe.monitor(worker)
    await kill(worker)
    down = await probe.expect(Down)
    assert (down.ref, down.pid, down.reason) == (ref, worker, KILLED)


async def test_a_trapping_probe_linked_to_an_actor_receives_its_exit(otp_node: Node) -> None:
    probe = await Probe.start(trap_exits=True, name="watcher")
    assert repr(probe.pid) == "<Pid 1 'watcher'>"

    async def idle() -> None:
        await probe.expect("never", timeout=3600)

    worker = spawn(idle)
    await probe.link(worker)
    send_exit(worker, "bye")
    exited = await probe.expect(Exited)
    assert (exited.pid, exited.reason) == (worker, "bye")


async def test_a_stopped_probe_refuses_to_act(otp_node: Node) -> None:
    probe = await Probe.start()
    await probe.stop()
    await probe.stop()  # idempotent
    with pytest.raises(RuntimeError, match="has stopped"):
        await probe.monitor(probe.pid)
