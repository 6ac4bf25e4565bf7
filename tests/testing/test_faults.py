"""asyncotp.testing fault injection: crash, kill, fail_init, MessageFaults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncotp import (
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Caller,
    CallTimeout,
    Cast,
    GenServer,
    Node,
    Restart,
    ServerExited,
    StartError,
    Supervisor,
    call,
    cast,
    is_alive,
    receive,
    send,
    spawn,
    which_children,
)
from asyncotp.testing import (
    FailingStart,
    InjectedFault,
    MessageFaults,
    Probe,
    ReportCapture,
    VirtualClock,
    WaitTimeout,
    crash,
    fail_init,
    kill,
    settle,
    wait_for_restart,
)


class Recorder(GenServer):
    """Tells ``probe`` when it terminates; answers calls; can hold a callback."""

    async def init(self, probe: Any = None) -> None:
        self.probe = probe

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "hang":
            send(self.probe, "hanging")
            await asyncio.Event().wait()
        return request

    async def handle_cast(self, request: Any) -> None:
        send(self.probe, ("cast", request))

    async def terminate(self, reason: Any) -> None:
        if self.probe is not None:
            send(self.probe, ("terminated", reason))


async def test_crash_ends_a_genserver_with_the_reason_and_runs_terminate(
    otp_node: Node,
) -> None:
    probe = await Probe.start()
    server = await Recorder.start(probe.pid)
    reason = await crash(server, "broken pipe")
    assert reason == "broken pipe"
    assert await probe.expect(tuple) == ("terminated", "broken pipe")


async def test_crash_defaults_to_an_injected_fault(otp_node: Node) -> None:
    server = await Recorder.start()
    reason = await crash(server)
    assert isinstance(reason, InjectedFault)
    assert repr(reason) == "InjectedFault('injected')"


async def test_crash_cannot_be_trapped(otp_node: Node) -> None:
    async def traps() -> None:
        while True:
            await receive()

    actor = spawn(traps, trap_exits=True)
    assert await crash(actor, "boom") == "boom"
    assert not is_alive(actor)


async def test_crashing_a_supervisor_stops_its_children_first(otp_node: Node) -> None:
    probe = await Probe.start()
    sup = await Supervisor.start(
        [Recorder.child_spec(probe.pid, id="a"), Recorder.child_spec(probe.pid, id="b")]
    )
    assert await crash(sup, "gone") == "gone"
    assert probe.received == [("terminated", SHUTDOWN), ("terminated", SHUTDOWN)]


async def test_crash_of_a_busy_genserver_waits_for_its_callback_then_times_out(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    probe = await Probe.start()
    server = await Recorder.start(probe.pid)
    busy = asyncio.ensure_future(call(server, "hang", timeout=None))
    await probe.expect("hanging")
    with pytest.raises(WaitTimeout, match="use kill"):
        await crash(server, timeout=1.0)
    assert await kill(server) is KILLED
    with pytest.raises(ServerExited):
        await busy


async def test_kill_skips_terminate(otp_node: Node) -> None:
    probe = await Probe.start()
    server = await Recorder.start(probe.pid)
    assert await kill(server) is KILLED
    await probe.expect_no_message(within=0.01)


async def test_faults_on_dead_actors_report_noproc(otp_node: Node) -> None:
    server = await Recorder.start()
    await kill(server)
    assert await crash(server) is NOPROC
    assert await kill(server) is NOPROC


async def test_fail_init_fails_the_next_starts_then_lets_them_through(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    spec = fail_init(Recorder.child_spec(id="r"), times=2)
    assert isinstance(spec.start, FailingStart)
    with pytest.raises(StartError) as failure:
        await Supervisor.start([spec])
    assert isinstance(failure.value.__cause__, StartError)
    assert spec.start.remaining == 1

    with pytest.raises(StartError):
        await Supervisor.start([spec])
    sup = await Supervisor.start([spec])  # the third start goes through
    (child,) = await which_children(sup)
    assert child.pid is not None
    assert spec.start.remaining == 0
    assert spec.start.last_pid is child.pid


async def test_a_child_whose_restarts_fail_is_retried_and_counted(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    spec = fail_init(Recorder.child_spec(id="r"), times=0)
    sup = await Supervisor.start([spec], max_restarts=3)
    (child,) = await which_children(sup)
    assert child.pid is not None
    assert isinstance(spec.start, FailingStart)
    spec.start.fail_next(2)
    await crash(child.pid)
    new = await wait_for_restart(sup, "r", child.pid)
    assert new is not child.pid
    failures = crash_reports.events("child_start_failed", child_id="r")
    assert len(failures) == 2
    assert isinstance(failures[0].reason, StartError)
    assert isinstance(failures[0].reason.reason, InjectedFault)
    assert crash_reports.events("child_restarted")[-1].restarts_in_window == 3


async def test_more_failing_starts_than_the_intensity_make_the_supervisor_give_up(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    spec = fail_init(Recorder.child_spec(id="r"), times=0)
    sup = await Supervisor.start([spec], max_restarts=2)
    (child,) = await which_children(sup)
    assert child.pid is not None
    assert isinstance(spec.start, FailingStart)
    spec.start.fail_next(5)
    await crash(child.pid)
    await crash_reports.wait_for("supervisor_gave_up", supervisor=sup)
    assert spec.start.remaining == 3  # two failed starts, then it gave up


def test_fail_init_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="expected a ChildSpec"):
        fail_init("spec", times=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times must be an int >= 0"):
        fail_init(Recorder.child_spec(), times=-1)


async def test_message_faults_drop_messages_between_two_actors(otp_node: Node) -> None:
    probe = await Probe.start()
    server = await Recorder.start(probe.pid)
    with MessageFaults() as faults:
        lost = faults.drop(dest=server, match=lambda m: isinstance(m, Cast) and m.request == 1)
        cast(server, 1)
        cast(server, 2)
        assert await probe.expect(tuple) == ("cast", 2)
        assert [m for _, _, m in lost.taken] == [Cast(1)]
    cast(server, 1)
    assert await probe.expect(tuple) == ("cast", 1)


async def test_message_faults_match_senders_by_pid_or_name(otp_node: Node) -> None:
    probe = await Probe.start()

    async def forwarder() -> None:
        while True:
            send(probe.pid, await receive())

    named = spawn(forwarder, name="named")
    other = spawn(forwarder)
    with MessageFaults() as faults:
        faults.drop(sender="named", dest=probe.pid)
        send(named, "from named")
        send(other, "from other")
        assert await probe.expect() == "from other"
        await settle()
        assert probe.pending == []


async def test_a_dropped_call_times_out_on_virtual_time(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    server = await Recorder.start()
    with MessageFaults() as faults:
        faults.drop(dest=server, times=1)
        with pytest.raises(CallTimeout):
            await call(server, "lost", timeout=3.0)
        assert await call(server, "through") == "through"
    assert virtual_clock.elapsed == pytest.approx(3.0)


async def test_a_delayed_message_arrives_after_later_ones(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    probe = await Probe.start()
    with MessageFaults() as faults:
        faults.delay(2.0, dest=probe.pid, match=lambda m: m == "slow")
        send(probe.pid, "slow")
        send(probe.pid, "fast")
        assert await probe.expect() == "fast"
        assert await probe.expect() == "slow"
    assert virtual_clock.elapsed == pytest.approx(2.0)


async def test_held_messages_arrive_in_order_on_release(otp_node: Node) -> None:
    probe = await Probe.start()
    with MessageFaults() as faults:
        held = faults.hold(dest=probe.pid, times=2)
        for n in range(3):
            send(probe.pid, n)
        assert await probe.expect() == 2
        assert held.release() == 2
        assert [await probe.expect(), await probe.expect()] == [0, 1]


async def test_message_faults_restore_the_previous_interceptor(otp_node: Node) -> None:
    before = otp_node.intercept
    with MessageFaults() as outer:
        with MessageFaults() as inner:
            assert otp_node.intercept == inner._intercept  # noqa: SLF001 - which hook is installed
            rule = inner.drop(times=0)
            assert not rule.active
        assert otp_node.intercept == outer._intercept  # noqa: SLF001 - which hook is installed
    assert otp_node.intercept is before is None


async def test_message_faults_check_their_rules(otp_node: Node) -> None:
    faults = MessageFaults()
    with pytest.raises(RuntimeError, match="inside `with MessageFaults"):
        faults.drop()
    with faults:
        with pytest.raises(TypeError, match="a Pid, a registered name or None"):
            faults.drop(dest=42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="seconds must be >= 0"):
            faults.delay(-1.0)


async def test_temporary_children_stay_down_after_a_crash(otp_node: Node) -> None:
    sup = await Supervisor.start([Recorder.child_spec(id="t", restart=Restart.TEMPORARY)])
    (child,) = await which_children(sup)
    assert child.pid is not None
    await crash(child.pid, NORMAL)
    await settle()
    assert await which_children(sup) == []
