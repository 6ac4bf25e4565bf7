"""The runtime's own events: actors, calls, slow callbacks, mailboxes, dead
letters, supervisors and the loop-lag sampler (docs/telemetry.md).

Each test attaches a recorder, drives the runtime, and synchronises on the
runtime's own answers (calls, monitors, ``wait_exit``), never on sleeps.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import asyncotp
from asyncotp import (
    Caller,
    CallTimeout,
    ChildSpec,
    GenServer,
    Overflow,
    Restart,
    Shutdown,
    Supervisor,
    call,
    receive,
    send,
    spawn,
    stop,
    telemetry,
)
from asyncotp.testing import wait_for_exit

from .conftest import record

pytestmark = pytest.mark.timeout(10)


class Echo(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case "crash":
                raise RuntimeError("asked to crash")
            case ("block", seconds):
                time.sleep(seconds)  # noqa: ASYNC251 - blocks the loop on purpose: a slow callback
                return "done"
            case "hang":
                await anyio.sleep_forever()
        return request


async def idle() -> None:
    await receive()


async def test_spawn_and_exit_emit_with_the_pid_name_and_reason(node: asyncotp.Node) -> None:
    with record(("asyncotp", "actor", "spawn"), ("asyncotp", "actor", "exit")) as rec:
        pid = spawn(idle, name="idler")
        send(pid, "go")
        await wait_for_exit(pid)
    spawned = rec.named("asyncotp", "actor", "spawn")
    exited = [e for e in rec.named("asyncotp", "actor", "exit") if e.metadata["pid"] == pid]
    assert [e.metadata["pid"] for e in spawned] == [pid]
    assert spawned[0].metadata["name"] == "idler"
    assert exited[0].metadata["reason"] is asyncotp.NORMAL
    assert exited[0].metadata["clean"] is True
    assert exited[0].measurements["lifetime"] >= 0


async def test_a_crash_exit_is_not_clean_and_carries_the_exception(node: asyncotp.Node) -> None:
    error = ValueError("bad")

    async def crasher() -> None:
        raise error

    with record(("asyncotp", "actor", "exit")) as rec:
        pid = spawn(crasher)
        await wait_for_exit(pid)
    [event] = [e for e in rec.events if e.metadata["pid"] == pid]
    assert event.metadata["reason"] is error
    assert event.metadata["clean"] is False


async def test_a_call_emits_start_and_stop_with_its_duration_server_and_timeout(
    node: asyncotp.Node,
) -> None:
    server = await Echo.start(name="echo")
    with record(("asyncotp", "call", "start"), ("asyncotp", "call", "stop")) as rec:
        assert await call(server, "hi", timeout=2.0) == "hi"
    start, stop_ = rec.events
    assert start.name == ("asyncotp", "call", "start")
    assert stop_.name == ("asyncotp", "call", "stop")
    assert stop_.metadata["server"] == server
    assert stop_.metadata["name"] == "echo"
    assert stop_.metadata["timeout"] == 2.0
    assert stop_.metadata["request"] == "hi"
    assert 0 <= stop_.measurements["duration"] < 2.0
    await stop(server)


async def test_a_call_that_fails_emits_exception_with_the_error_kind(
    node: asyncotp.Node, crash_reports: Any
) -> None:
    busy = await Echo.start()
    server = await Echo.start()
    names = [("asyncotp", "call", p) for p in ("start", "stop", "exception")]
    with record(*names) as rec:
        with pytest.raises(CallTimeout):
            await call(busy, "hang", timeout=0.01)
        with pytest.raises(asyncotp.ServerExited):
            await call(server, "crash")
    failed = rec.named("asyncotp", "call", "exception")
    assert [e.metadata["kind"] for e in failed] == [CallTimeout, asyncotp.ServerExited]
    assert rec.named("asyncotp", "call", "stop") == []
    assert failed[0].metadata["timeout"] == 0.01
    assert failed[0].metadata["server"] == busy
    await stop(busy, asyncotp.KILL)
    await wait_for_exit(server)


async def test_calls_are_not_timed_when_nobody_listens_to_call_events(node: asyncotp.Node) -> None:
    server = await Echo.start()
    with record(("asyncotp", "actor", "spawn")) as rec:
        await call(server, "hi")
    assert rec.events == []
    await stop(server)


async def test_a_callback_slower_than_the_threshold_emits_a_slow_callback_event(
    node: asyncotp.Node,
) -> None:
    previous = telemetry.set_slow_callback_threshold(0.02)
    try:
        with record(("asyncotp", "callback", "slow")) as rec:
            server = await Echo.start(name="slowpoke")  # started while someone listens
            assert await call(server, ("block", 0.03)) == "done"
            assert await call(server, "fast") == "fast"
        [event] = rec.events
        assert event.metadata["server"] == "Echo"
        assert event.metadata["callback"] == "handle_call"
        assert event.metadata["name"] == "slowpoke"
        assert event.measurements["duration"] >= 0.02
        assert event.measurements["threshold"] == 0.02
        await stop(server)
    finally:
        telemetry.set_slow_callback_threshold(previous)


async def test_a_full_mailbox_emits_overflow_with_its_policy(node: asyncotp.Node) -> None:
    with record(("asyncotp", "mailbox", "overflow")) as rec:
        pid = spawn(idle, mailbox_size=1, overflow=Overflow.DROP_NEWEST)
        send(pid, "kept")
        send(pid, "dropped")
        send(pid, "dropped too")
    assert len(rec.events) == 2
    assert rec.events[0].metadata["policy"] is Overflow.DROP_NEWEST
    assert rec.events[0].metadata["pid"] == pid
    assert rec.events[0].measurements["mailbox_size"] == 1
    await wait_for_exit(pid)


async def test_a_message_to_a_dead_pid_emits_a_dead_letter(node: asyncotp.Node) -> None:
    pid = spawn(idle)
    send(pid, "bye")
    await wait_for_exit(pid)
    with record(("asyncotp", "message", "dead_letter")) as rec:
        send(pid, "too late")
        asyncotp.cast(pid, "also late")
    assert [e.metadata["pid"] for e in rec.events] == [pid, pid]
    assert rec.events[0].metadata["message"] == "too late"


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        raise RuntimeError("crash on request")


async def test_supervisor_events_cover_start_restart_give_up_and_shutdown(
    node: asyncotp.Node, crash_reports: Any
) -> None:
    prefix = ("asyncotp", "supervisor")
    names = [
        (*prefix, e)
        for e in (
            "child_started",
            "child_terminated",
            "child_restarted",
            "gave_up",
            "child_shutdown",
        )
    ]
    with record(*names) as rec:
        sup = await Supervisor.start(
            [Worker.child_spec(id="w", name="w"), Echo.child_spec(id="e")],
            max_restarts=1,
            max_seconds=60.0,
            name="sup",
        )
        first = asyncotp.whereis("w")
        assert first is not None
        with pytest.raises(asyncotp.ServerExited):
            await call(first, "x")
        await wait_for_exit(first)
        second = await _restarted("w", first)
        with pytest.raises(asyncotp.ServerExited):
            await call(second, "x")  # the second restart within the window: it gives up
        await wait_for_exit(sup)
    started = rec.named(*prefix, "child_started")
    assert [e.metadata["child_id"] for e in started] == ["w", "e", "w"]
    assert started[0].metadata["supervisor"] == sup
    assert started[0].metadata["supervisor_name"] == "sup"
    restarted = rec.named(*prefix, "child_restarted")
    assert [e.metadata["child_id"] for e in restarted] == ["w"]
    assert restarted[0].measurements["restarts"] == 1
    assert isinstance(rec.named(*prefix, "child_terminated")[0].metadata["reason"], RuntimeError)
    [gave_up] = rec.named(*prefix, "gave_up")
    assert gave_up.metadata["child_id"] == "w"
    shut = rec.named(*prefix, "child_shutdown")
    assert [e.metadata["child_id"] for e in shut] == ["e"]  # "w" had ended already


async def _restarted(name: str, old: asyncotp.Pid) -> asyncotp.Pid:
    # The supervisor restarts before it answers its next request.
    await asyncotp.which_children("sup")
    pid = asyncotp.whereis(name)
    assert pid is not None
    assert pid != old
    return pid


async def test_the_lag_sampler_emits_the_loop_lag_until_stopped(node: asyncotp.Node) -> None:
    got = anyio.Event()
    with record(("asyncotp", "loop", "lag")) as rec:
        rec_events = rec.events

        def done(*_: Any) -> None:
            if len(rec_events) >= 2:
                got.set()

        telemetry.attach("waiter", ("asyncotp", "loop", "lag"), done)
        try:
            sampler = telemetry.start_lag_sampler(0.005, name="lag")
            await got.wait()
            await stop(sampler)
        finally:
            telemetry.detach("waiter")
    assert all(e.measurements["lag"] >= 0 for e in rec.events)
    assert rec.events[0].measurements["interval"] == 0.005


async def test_the_lag_sampler_runs_under_a_supervisor(node: asyncotp.Node) -> None:
    spec = telemetry.lag_sampler_spec(0.5)
    assert isinstance(spec, ChildSpec)
    assert spec.restart is Restart.PERMANENT
    sup = await Supervisor.start([spec])
    [child] = await asyncotp.which_children(sup)
    assert child.id == "loop_lag_sampler"
    assert child.pid is not None
    await stop(sup, Shutdown("test over"))


def test_the_lag_sampler_refuses_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        telemetry.lag_sampler_spec(0)


async def test_a_raising_handler_on_the_call_path_never_breaks_the_call(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("handler bug")

    server = await Echo.start()
    telemetry.attach_many(
        "broken", [("asyncotp", "call", "stop"), ("asyncotp", "actor", "exit")], broken
    )
    try:
        assert await call(server, "still answered") == "still answered"
        assert telemetry.list_handlers() == []  # detached after its first failure
        assert await call(server, "again") == "again"
    finally:
        telemetry.detach("broken")
    await stop(server)
    assert sum("'broken'" in r.getMessage() for r in caplog.records) == 1


async def test_a_raising_handler_on_exit_does_not_stop_the_exit_from_completing(
    node: asyncotp.Node,
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("handler bug")

    pid = spawn(idle)
    telemetry.attach("broken", ("asyncotp", "actor", "exit"), broken)
    try:
        send(pid, "bye")
        assert await wait_for_exit(pid) is asyncotp.NORMAL
    finally:
        telemetry.detach("broken")
    assert not asyncotp.is_alive(pid)
