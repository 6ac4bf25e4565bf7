"""asyncotp.testing.VirtualClock: everything that waits on the loop's clock
follows virtual time, in order, in milliseconds of real time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest

from asyncotp import (
    NOREPLY,
    Backoff,
    Caller,
    CallTimeout,
    ChildSpec,
    GenServer,
    Node,
    ReceiveTimeout,
    Supervisor,
    call,
    receive,
    send,
    send_after,
    spawn,
    which_children,
)
from asyncotp.testing import (
    Probe,
    ReportCapture,
    VirtualClock,
    crash,
    current_clock,
    settle,
    wait_for_restart,
)


class Silent(GenServer):
    """Never answers a call."""

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return NOREPLY


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def test_a_sixty_second_sleep_takes_milliseconds_of_real_time(
    virtual_clock: VirtualClock,
) -> None:
    started = time.monotonic()
    await asyncio.sleep(60)
    assert virtual_clock.elapsed == pytest.approx(60)
    assert time.monotonic() - started < 0.5


async def test_timers_fire_in_the_order_of_their_deadlines_at_their_deadlines(
    virtual_clock: VirtualClock,
) -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []

    def note(label: str) -> None:
        fired.append((label, virtual_clock.elapsed))

    loop.call_later(3.0, note, "c")
    loop.call_later(1.0, note, "a")
    loop.call_at(loop.time() + 2.0, note, "b")
    await asyncio.sleep(5)
    assert [label for label, _ in fired] == ["a", "b", "c"]
    assert [at for _, at in fired] == pytest.approx([1.0, 2.0, 3.0])


async def test_advance_fires_what_is_due_in_order_including_timers_armed_meanwhile() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []
    with VirtualClock(autojump=False) as clock:

        def note(label: str) -> None:
            fired.append((label, clock.elapsed))
            if label == "b":
                loop.call_later(0.5, note, "b+0.5")

        loop.call_later(2.0, note, "b")
        loop.call_later(1.0, note, "a")
        loop.call_later(10.0, note, "late")
        await clock.advance(3.0)
        assert fired == [("a", 1.0), ("b", 2.0), ("b+0.5", 2.5)]
        assert clock.elapsed == pytest.approx(3.0)


async def test_without_autojump_time_stands_still_until_advanced() -> None:
    with VirtualClock(autojump=False) as clock:
        sleeper = asyncio.ensure_future(asyncio.sleep(1.0))
        await clock.advance(0)
        assert not sleeper.done()
        assert clock.elapsed == 0
        await clock.advance(1.0)
        assert sleeper.done()


async def test_advance_refuses_negative_and_endless_durations(
    virtual_clock: VirtualClock,
) -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        await virtual_clock.advance(-1)
    with pytest.raises(ValueError, match="finite and >= 0"):
        await virtual_clock.advance(float("inf"))
    with pytest.raises(TypeError, match="a number"):
        await virtual_clock.advance("1")  # type: ignore[arg-type]


async def test_anyio_deadlines_follow_virtual_time(virtual_clock: VirtualClock) -> None:
    with anyio.move_on_after(100) as scope:
        await anyio.sleep(1000)
    assert scope.cancelled_caught
    assert virtual_clock.elapsed == pytest.approx(100)


async def test_send_after_follows_virtual_time(virtual_clock: VirtualClock, otp_node: Node) -> None:
    probe = await Probe.start()
    send_after(30.0, probe.pid, "late")
    send_after(10.0, probe.pid, "early")
    assert await probe.expect(timeout=60) == "early"
    assert virtual_clock.elapsed == pytest.approx(10)
    assert await probe.expect(timeout=60) == "late"
    assert virtual_clock.elapsed == pytest.approx(30)


async def test_receive_timeouts_follow_virtual_time(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    probe = await Probe.start()

    async def waits() -> None:
        try:
            await receive(timeout=45.0)
        except ReceiveTimeout:
            send(probe.pid, ("timed out at", virtual_clock.elapsed))

    spawn(waits)
    _, at = await probe.expect(tuple, timeout=60)
    assert at == pytest.approx(45)


async def test_call_timeouts_share_one_timer_and_follow_virtual_time(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    server = await Silent.start()

    async def timed_call(timeout: float) -> float:
        with pytest.raises(CallTimeout):
            await call(server, "hello", timeout=timeout)
        return virtual_clock.elapsed

    short, long = await asyncio.gather(timed_call(2.0), timed_call(7.0))
    assert short == pytest.approx(2.0)
    assert long == pytest.approx(7.0)


async def test_restart_windows_expire_on_virtual_time(
    virtual_clock: VirtualClock, otp_node: Node, crash_reports: ReportCapture
) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w")], max_restarts=1, max_seconds=10.0)
    for _ in range(3):  # one crash per window: never more than 1 restart in 10 s
        (child,) = await which_children(sup)
        assert child.pid is not None
        await crash(child.pid)
        await wait_for_restart(sup, "w", child.pid)
        await virtual_clock.advance(10.0)
    assert crash_reports.events("supervisor_gave_up") == []

    (child,) = await which_children(sup)
    assert child.pid is not None
    await crash(child.pid)
    new = await wait_for_restart(sup, "w", child.pid)
    await crash(new)  # two restarts within 10 s: too many
    await crash_reports.wait_for("supervisor_gave_up", supervisor=sup)


async def test_backoff_delays_a_restart_by_virtual_seconds(otp_node: Node) -> None:
    clock = current_clock()
    assert clock is None
    with VirtualClock(autojump=False) as clock:
        backoff = Backoff(initial=30.0, max=30.0, jitter=0.0)
        spec = ChildSpec("w", Worker.start, backoff=backoff)
        sup = await Supervisor.start([spec])
        (child,) = await which_children(sup)
        assert child.pid is not None
        await crash(child.pid)
        await clock.advance(29.0)
        assert [c.pid for c in await which_children(sup)] == [None]
        await clock.advance(1.0)
        (restarted,) = await which_children(sup)
        assert restarted.pid is not None
        assert restarted.pid is not child.pid
        clock.autojump = True  # let the node's shutdown run its deadlines


async def test_settle_lets_time_jump_for_an_actor_that_sleeps(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    async def naps() -> None:
        await asyncio.sleep(10)
        await receive()

    spawn(naps)
    await settle(timeout=60)  # virtual seconds it may take
    assert virtual_clock.elapsed == pytest.approx(10)


async def test_the_clock_gives_the_loop_its_real_clock_back() -> None:
    loop = asyncio.get_running_loop()
    selector = vars(loop)["_selector"]  # the loop's own selector, which the clock patches
    with VirtualClock() as clock:
        assert current_clock() is clock
        assert "time" in vars(loop)
        assert "select" in vars(selector)
    assert current_clock() is None
    assert "time" not in vars(loop)
    assert "select" not in vars(selector)
    assert abs(loop.time() - time.monotonic()) < 1.0


async def test_a_second_clock_on_the_same_loop_is_refused(virtual_clock: VirtualClock) -> None:
    with pytest.raises(RuntimeError, match="already installed"):
        VirtualClock().install()
    with pytest.raises(RuntimeError, match="already installed"):
        virtual_clock.install()


def test_uvloop_is_refused_with_a_clear_message() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        with pytest.raises(TypeError, match="uvloop"):
            VirtualClock().install()

    uvloop.run(main())


async def test_advance_needs_the_clock_installed_on_the_running_loop() -> None:
    with pytest.raises(RuntimeError, match="not installed"):
        await VirtualClock().advance(1)
