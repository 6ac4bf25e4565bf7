"""GenServer: start/init, call, cast, info, stop, exits, overflow and child specs.

The tests synchronise on futures, events, monitors and replies, never on
sleeps. A callback is held "busy" by awaiting a ``Gate`` the test opens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from asyncotp import (
    KILL,
    KILLED,
    NOREPLY,
    NORMAL,
    SHUTDOWN,
    ActorError,
    Caller,
    CallTimeout,
    ChildSpec,
    Down,
    Exited,
    GenServer,
    MailboxFull,
    NameTaken,
    Node,
    NoProcess,
    Overflow,
    Pid,
    ReceiveTimeout,
    Restart,
    ServerExited,
    StartError,
    Stop,
    call,
    cast,
    is_alive,
    link,
    monitor,
    process_info,
    processes,
    receive,
    registered,
    self_pid,
    send,
    send_after,
    send_exit,
    set_trap_exits,
    spawn,
    stop,
    whereis,
)
from tests.helpers import Gate, in_actor, watch

T = TypeVar("T")


# -- helpers -------------------------------------------------------------------


async def begin(fn: Callable[..., Awaitable[T]], *args: Any) -> asyncio.Task[T]:
    """Run ``fn(*args)`` in a new task; return once the task has started.

    ``call`` and ``stop`` deliver their request before they first suspend, so
    when ``begin`` returns the request is in the target's mailbox (or its stop
    request is recorded) and the task waits for the answer.
    """
    started = asyncio.Event()

    async def run() -> T:
        started.set()
        return await fn(*args)

    task = asyncio.create_task(run())
    await started.wait()
    return task


async def start_call(
    dest: Pid | str, request: object, timeout: float | None = None
) -> asyncio.Task[Any]:
    """A call from a new task, returned once its request is queued."""
    return await begin(call, dest, request, timeout)


def mailbox_length(pid: Pid) -> int:
    info = process_info(pid)
    assert info is not None, f"{pid!r} is not alive"
    return info.mailbox_length


# -- servers under test ----------------------------------------------------------


class Probe(GenServer):
    """A server that logs what happens to it into a list owned by the test."""

    log: list[object]
    held: asyncio.Queue[Caller] | None
    infos: asyncio.Queue[object] | None
    fail_terminate: Exception | None

    async def init(
        self,
        log: list[object],
        *,
        trap_exits: bool = False,
        infos: asyncio.Queue[object] | None = None,
        held: asyncio.Queue[Caller] | None = None,
        fail_terminate: Exception | None = None,
    ) -> None:
        self.log = log
        self.held = held
        self.infos = infos
        self.fail_terminate = fail_terminate
        if trap_exits:
            set_trap_exits(True)

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("echo", value):
                self.log.append(("call", value))
                return value
            case ("hold", Gate() as gate, value):
                self.log.append(("enter", value))
                await gate.pass_through()
                self.log.append(("leave", value))
                return value
            case "hold_caller":
                # Publish the caller; whoever takes it answers with caller.reply().
                assert self.held is not None
                self.held.put_nowait(caller)
                return NOREPLY
            case ("stop", reason, reply):
                raise Stop(reason, reply=reply)
            case ("raise", Exception() as error):
                raise error
            case ("call_self",):
                try:
                    await call(self_pid(), "anything", timeout=None)
                except ActorError as exc:
                    return exc
                return "no error"
            case ("monitor", Pid() as pid):
                return monitor(pid)
            case ("spawn_linked", fn):
                return spawn(fn, link=True)
            case "caller_pid":
                return caller.pid
        raise AssertionError(f"unexpected call {request!r}")

    async def handle_cast(self, request: Any) -> None:
        match request:
            case ("note", value):
                self.log.append(("cast", value))
            case ("hold", Gate() as gate, value):
                self.log.append(("enter", value))
                await gate.pass_through()
                self.log.append(("leave", value))
            case ("stop",):
                raise Stop()
            case ("raise", Exception() as error):
                raise error
            case _:
                raise AssertionError(f"unexpected cast {request!r}")

    async def handle_info(self, message: Any) -> None:
        self.log.append(("info", message))
        if self.infos is not None:
            self.infos.put_nowait(message)

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", reason))
        if self.fail_terminate is not None:
            raise self.fail_terminate


class Args(GenServer):
    """Keeps what ``init`` was given."""

    async def init(self, *args: object, **kwargs: object) -> None:
        self.args = args
        self.kwargs = kwargs

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return (self.args, self.kwargs)


class SlowInit(GenServer):
    """``init`` reports its pid, then passes through a gate."""

    async def init(self, report: asyncio.Future[Pid], gate: Gate, log: list[object]) -> None:
        report.set_result(self_pid())
        try:
            await gate.pass_through()
        except asyncio.CancelledError:
            log.append("init cancelled")
            raise
        self.ready = True

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.ready

    async def terminate(self, reason: Any) -> None:
        raise AssertionError("terminate must not run for a server that never started")


class FailingInit(GenServer):
    """``init`` reports its pid, then raises ``error``."""

    async def init(self, report: asyncio.Future[Pid], error: Exception) -> None:
        report.set_result(self_pid())
        raise error

    async def terminate(self, reason: Any) -> None:
        raise AssertionError("terminate must not run for a server that never started")


class Quiet(GenServer):
    """Answers calls but keeps the default handle_info."""

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


def new_loop_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


# -- start and init --------------------------------------------------------------


async def test_start_passes_positional_and_keyword_arguments_to_init(node: Node) -> None:
    pid = await Args.start(1, "two", three=3, name="args")
    assert await call(pid, "get") == ((1, "two"), {"three": 3})
    assert whereis("args") is pid


async def test_start_returns_only_after_init_has_returned(node: Node) -> None:
    gate = Gate()
    log: list[object] = []
    report: asyncio.Future[Pid] = new_loop_future()
    starting = asyncio.create_task(SlowInit.start(report, gate, log))
    await gate.entered.wait()
    assert not starting.done()
    gate.open()
    pid = await starting
    assert pid is await report
    assert await call(pid, "ready?") is True


async def test_init_raising_gives_start_error_and_leaves_nothing_behind(node: Node) -> None:
    error = ValueError("bad config")
    report: asyncio.Future[Pid] = new_loop_future()
    with pytest.raises(StartError) as info:
        await FailingInit.start(report, error, name="failing")
    assert info.value.__cause__ is error
    pid = report.result()
    assert not is_alive(pid)
    assert process_info(pid) is None
    assert whereis("failing") is None
    assert "failing" not in registered()
    # The name is free again.
    assert await Args.start(name="failing") is whereis("failing")


async def test_init_raising_a_timeout_error_is_reported_as_init_failing_not_as_a_timeout(
    node: Node,
) -> None:
    error = TimeoutError("the database did not answer")
    report: asyncio.Future[Pid] = new_loop_future()
    with pytest.raises(StartError) as info:
        await FailingInit.start(report, error, timeout=30)
    assert info.value.__cause__ is error
    assert "did not finish init" not in str(info.value)
    assert "the database did not answer" in str(info.value)


async def test_init_raising_stop_gives_start_error_with_the_stop_reason(node: Node) -> None:
    report: asyncio.Future[Pid] = new_loop_future()
    with pytest.raises(StartError) as info:
        await FailingInit.start(report, Stop("ignore"))
    assert info.value.reason == "ignore"
    assert not is_alive(report.result())


async def test_init_exceeding_the_timeout_gives_start_error_caused_by_timeout_error(
    node: Node,
) -> None:
    gate = Gate()
    log: list[object] = []
    report: asyncio.Future[Pid] = new_loop_future()
    with pytest.raises(StartError) as info:
        await SlowInit.start(report, gate, log, name="slow", timeout=0.05)
    assert type(info.value.__cause__) is TimeoutError
    pid = report.result()
    assert log == ["init cancelled"]  # killed, not left running
    assert not is_alive(pid)
    assert whereis("slow") is None
    assert "slow" not in registered()


async def test_a_starter_that_linked_survives_a_failed_init_and_gets_start_error(
    node: Node,
) -> None:
    error = RuntimeError("no")
    report: asyncio.Future[Pid] = new_loop_future()

    async def starter() -> tuple[BaseException | None, frozenset[Pid]]:
        try:
            await FailingInit.start(report, error, link=True)
        except StartError as exc:
            caught: BaseException | None = exc.__cause__
        else:
            caught = None
        # Still alive and able to receive: the server's crash did not reach us.
        send(self_pid(), "still here")
        assert await receive(timeout=0) == "still here"
        info = process_info(self_pid())
        assert info is not None
        return caught, info.links

    caught, links = await in_actor(starter)
    assert caught is error
    assert links == frozenset()


async def test_a_starter_that_linked_survives_an_init_timeout_and_gets_start_error(
    node: Node,
) -> None:
    gate = Gate()
    log: list[object] = []
    report: asyncio.Future[Pid] = new_loop_future()

    async def starter() -> tuple[object, frozenset[Pid]]:
        try:
            await SlowInit.start(report, gate, log, link=True, timeout=0.05)
        except StartError as exc:
            cause: object = exc.__cause__
        else:
            cause = None
        send(self_pid(), "still here")
        assert await receive(timeout=0) == "still here"
        info = process_info(self_pid())
        assert info is not None
        return cause, info.links

    cause, links = await in_actor(starter)
    assert type(cause) is TimeoutError
    assert links == frozenset()
    assert not is_alive(report.result())


async def test_start_with_a_taken_name_raises_name_taken_and_starts_nothing(node: Node) -> None:
    first = await Args.start(name="taken")
    before = set(processes())
    with pytest.raises(NameTaken) as info:
        await Args.start(name="taken")
    assert info.value.name == "taken"
    assert info.value.holder is first
    assert whereis("taken") is first
    assert set(processes()) == before


# -- call -----------------------------------------------------------------------------


async def test_handle_call_return_value_is_the_reply(node: Node) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    assert await call(pid, ("echo", 42)) == 42
    assert await call(pid, ("echo", None)) is None
    assert log == [("call", 42), ("call", None)]


async def test_call_by_registered_name(node: Node) -> None:
    await Probe.start([], name="probe")
    assert await call("probe", ("echo", "hi")) == "hi"


async def test_caller_pid_is_the_calling_actor_or_none_from_a_plain_task(node: Node) -> None:
    pid = await Probe.start([])

    async def ask() -> tuple[object, Pid]:
        return await call(pid, "caller_pid"), self_pid()

    seen, me = await in_actor(ask)
    assert seen is me
    assert await call(pid, "caller_pid") is None


async def test_noreply_then_caller_reply_from_another_task_answers_once(node: Node) -> None:
    held: asyncio.Queue[Caller] = asyncio.Queue()
    pid = await Probe.start([], held=held)
    first = await start_call(pid, "hold_caller")
    second = await start_call(pid, "hold_caller")
    # The server keeps serving while those callers wait.
    assert await call(pid, ("echo", 1)) == 1
    first_caller, second_caller = held.get_nowait(), held.get_nowait()
    assert not first.done()
    assert first_caller.waiting
    # Answered from this task, which is not the server.
    assert second_caller.reply("second") is True
    assert first_caller.reply("first") is True
    assert await first == "first"
    assert await second == "second"
    # At most once: a later reply is ignored.
    assert first_caller.reply("again") is False
    assert not first_caller.waiting


async def test_a_helper_actor_holding_the_caller_replies_to_the_waiting_call(node: Node) -> None:
    helpers: asyncio.Queue[Pid] = asyncio.Queue()

    async def replier(caller: Caller) -> None:
        caller.reply(await receive())

    class Delegating(GenServer):
        async def handle_call(self, request: Any, caller: Caller) -> Any:
            helpers.put_nowait(spawn(replier, caller))
            return NOREPLY

    pid = await Delegating.start()
    pending = await start_call(pid, "question")
    helper = await helpers.get()
    assert not pending.done()
    send(helper, "answer")
    assert await pending == "answer"


async def test_stop_with_reply_answers_the_caller_then_stops_and_runs_terminate(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    ended = await watch(pid)
    assert await call(pid, ("stop", "done", "goodbye")) == "goodbye"
    assert await ended == "done"
    assert log == [("terminate", "done")]


async def test_stop_without_arguments_ends_the_server_normally(node: Node) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    ended = await watch(pid)
    cast(pid, ("stop",))
    assert await ended is NORMAL
    assert log == [("terminate", NORMAL)]


async def test_requests_are_handled_one_at_a_time_in_arrival_order(node: Node) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    gate = Gate()
    first = await start_call(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    second = await start_call(pid, ("echo", "B"))
    cast(pid, ("note", "C"))
    third = await start_call(pid, ("echo", "D"))
    assert mailbox_length(pid) == 3
    assert log == [("enter", "A")]  # nothing else starts while A is running
    gate.open()
    assert [await first, await second, await third] == ["A", "B", "D"]
    assert log == [("enter", "A"), ("leave", "A"), ("call", "B"), ("cast", "C"), ("call", "D")]


# -- crashes -----------------------------------------------------------------------


async def test_a_raising_handle_call_ends_the_server_and_its_caller_gets_server_exited(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    ended = await watch(pid)
    error = ValueError("boom")
    # No call timeout: the call can only end through the server's exit.
    with pytest.raises(ServerExited) as info:
        await call(pid, ("raise", error), timeout=None)
    assert info.value.reason is error
    assert info.value.pid is pid
    assert await ended is error
    assert log == [("terminate", error)]


async def test_a_raising_handle_cast_ends_the_server_with_that_exception(node: Node) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    ended = await watch(pid)
    error = KeyError("missing")
    cast(pid, ("raise", error))
    assert await ended is error
    assert log == [("terminate", error)]


async def test_a_crash_is_logged_with_its_traceback(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await Probe.start([])
    error = ValueError("logged crash")
    with pytest.raises(ServerExited):
        await call(pid, ("raise", error))
    crashes = [r for r in caplog.records if r.name == "asyncotp" and r.levelno == logging.ERROR]
    assert len(crashes) == 1
    assert crashes[0].exc_info is not None
    assert crashes[0].exc_info[1] is error


async def test_queued_callers_get_server_exited_when_the_server_crashes(node: Node) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    gate = Gate()
    error = RuntimeError("crash while others wait")
    cast(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    crashing = await start_call(pid, ("raise", error))
    queued = await start_call(pid, ("echo", "never"))
    gate.open()
    for task in (crashing, queued):
        with pytest.raises(ServerExited) as info:
            await task
        assert info.value.reason is error
    assert ("call", "never") not in log


# -- call errors ----------------------------------------------------------------------


async def test_call_timeout_raises_call_timeout_naming_the_server(node: Node) -> None:
    pid = await Probe.start([], name="slowpoke", held=asyncio.Queue())
    with pytest.raises(CallTimeout) as info:
        await call(pid, "hold_caller", timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert repr(pid) in str(info.value)
    assert "slowpoke" in str(info.value)
    assert info.value.pid is pid
    assert info.value.timeout == 0.05


async def test_a_late_reply_reaches_neither_a_later_call_nor_the_callers_mailbox(
    node: Node,
) -> None:
    held: asyncio.Queue[Caller] = asyncio.Queue()
    pid = await Probe.start([], held=held)

    async def client() -> tuple[bool, object, object]:
        with pytest.raises(CallTimeout):
            await call(pid, "hold_caller", timeout=0.05)
        replied = held.get_nowait().reply("late")  # the server answers now, too late
        later = await call(pid, ("echo", "fresh"))
        try:
            leftover: object = await receive(timeout=0)
        except ReceiveTimeout:
            leftover = None
        return replied, later, leftover

    replied, later, leftover = await in_actor(client)
    assert replied is False
    assert later == "fresh"
    assert leftover is None


async def test_call_to_a_dead_pid_or_an_unknown_name_raises_no_process(node: Node) -> None:
    pid = await Probe.start([])
    await stop(pid)
    with pytest.raises(NoProcess) as dead:
        await call(pid, ("echo", 1))
    assert dead.value.dest is pid
    with pytest.raises(NoProcess) as unknown:
        await call("nobody", ("echo", 1))
    assert unknown.value.dest == "nobody"


@pytest.mark.parametrize("overflow", [Overflow.REJECT, Overflow.DROP_NEWEST])
async def test_call_to_a_full_mailbox_fails_at_once_with_mailbox_full(
    node: Node, overflow: Overflow
) -> None:
    log: list[object] = []
    pid = await Probe.start(log, mailbox_size=1, overflow=overflow)
    gate = Gate()
    held = await start_call(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    cast(pid, ("note", "fills the mailbox"))
    with pytest.raises(MailboxFull) as info:
        await call(pid, ("echo", "refused"), timeout=None)
    assert info.value.pid is pid
    gate.open()
    assert await held == "A"
    assert await call(pid, ("echo", "fits now")) == "fits now"
    assert ("call", "refused") not in log


async def test_drop_oldest_evicting_a_queued_call_fails_that_call_with_mailbox_full(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await Probe.start(log, mailbox_size=1, overflow=Overflow.DROP_OLDEST)
    gate = Gate()
    held = await start_call(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    evicted = await start_call(pid, ("echo", "evicted"))
    newer = await start_call(pid, ("echo", "kept"))
    with pytest.raises(MailboxFull):
        await evicted
    gate.open()
    assert await held == "A"
    assert await newer == "kept"
    assert ("call", "evicted") not in log
    info = process_info(pid)
    assert info is not None
    assert info.dropped == 1


async def test_a_server_calling_itself_raises_actor_error_instead_of_deadlocking(
    node: Node,
) -> None:
    pid = await Probe.start([])
    error = await call(pid, ("call_self",), timeout=None)
    assert type(error) is ActorError
    assert repr(pid) in str(error)


async def test_an_actor_calling_itself_raises_actor_error(node: Node) -> None:
    async def self_call() -> object:
        return await call(self_pid(), "hello", timeout=None)

    with pytest.raises(ActorError, match="called itself"):
        await in_actor(self_call)


# -- cast and info -----------------------------------------------------------------------


async def test_cast_is_handled_by_handle_cast(node: Node) -> None:
    log: list[object] = []
    pid = await Probe.start(log, name="caster")
    cast(pid, ("note", 1))
    cast("caster", ("note", 2))
    assert await call(pid, ("echo", "sync")) == "sync"
    assert log == [("cast", 1), ("cast", 2), ("call", "sync")]


async def test_cast_to_a_dead_pid_is_dropped_and_to_an_unknown_name_raises(node: Node) -> None:
    pid = await Probe.start([])
    await stop(pid)
    cast(pid, ("note", "dropped"))  # no error: the request is dropped
    with pytest.raises(NoProcess):
        cast("nobody", ("note", "x"))


async def test_handle_info_gets_plain_messages_down_and_timers(node: Node) -> None:
    infos: asyncio.Queue[object] = asyncio.Queue()
    pid = await Probe.start([], infos=infos)
    send(pid, "plain")
    assert await infos.get() == "plain"

    async def short_lived() -> None:
        await receive()

    watched = spawn(short_lived)
    ref = await call(pid, ("monitor", watched))
    send(watched, "end now")
    assert await infos.get() == Down(ref, watched, NORMAL)

    send_after(0, pid, "tick")
    assert await infos.get() == "tick"


async def test_default_handle_info_logs_a_warning_and_drops_the_message(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await Quiet.start()
    send(pid, "stray message")
    assert await call(pid, "still serving") == "still serving"
    warnings = [r for r in caplog.records if r.name == "asyncotp" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "stray message" in text
    assert repr(pid) in text
    assert mailbox_length(pid) == 0


# -- stop ----------------------------------------------------------------------------------


async def test_stop_waits_until_terminate_has_run(node: Node) -> None:
    recorded: list[object] = []

    class SlowTerminate(GenServer):
        async def init(self, recorder: Pid) -> None:
            self.recorder = recorder

        async def terminate(self, reason: Any) -> None:
            # An await inside terminate: stop must wait past it.
            await call(self.recorder, ("echo", reason))
            recorded.append(reason)

    recorder_log: list[object] = []
    recorder = await Probe.start(recorder_log)
    pid = await SlowTerminate.start(recorder, name="terminating")
    await stop("terminating", "enough")
    assert recorded == ["enough"]
    assert recorder_log == [("call", "enough")]
    assert not is_alive(pid)
    assert whereis("terminating") is None


async def test_stop_of_a_dead_pid_raises_no_process(node: Node) -> None:
    pid = await Probe.start([])
    await stop(pid)
    with pytest.raises(NoProcess):
        await stop(pid)


async def test_stop_waits_for_the_running_callback_then_stops_ahead_of_queued_requests(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    gate = Gate()
    running = await start_call(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    queued = await start_call(pid, ("echo", "B"))
    cast(pid, ("note", "C"))
    stopping = await begin(stop, pid, "halt")
    info = process_info(pid)
    assert info is not None
    assert info.status == "exiting"  # the stop is recorded...
    assert log == [("enter", "A")]  # ...but the callback runs on, and terminate waits
    assert not stopping.done()
    gate.open()
    assert await running == "A"  # the running callback finished and replied
    await stopping
    with pytest.raises(ServerExited) as exited:
        await queued
    assert exited.value.reason == "halt"
    assert log == [("enter", "A"), ("leave", "A"), ("terminate", "halt")]


async def test_stop_timeout_raises_call_timeout_and_leaves_the_busy_server_running(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await Probe.start(log, name="busy")
    gate = Gate()
    running = await start_call(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    with pytest.raises(CallTimeout) as info:
        await stop(pid, "halt", timeout=0.05)
    assert info.value.pid is pid
    assert "busy" in str(info.value)
    assert is_alive(pid)
    assert log == [("enter", "A")]
    assert not running.done()
    # The callback runs to its end; the stop request is still pending, as in OTP
    # (the server handles it once the callback returns).
    ended = await watch(pid)
    gate.open()
    assert await running == "A"
    assert await ended == "halt"
    assert log == [("enter", "A"), ("leave", "A"), ("terminate", "halt")]


async def test_a_shutdown_from_the_parent_waits_for_the_running_callback_then_runs_terminate(
    node: Node,
) -> None:
    log: list[object] = []
    server: asyncio.Future[Pid] = new_loop_future()
    signalled: asyncio.Future[None] = new_loop_future()
    parent_saw: asyncio.Future[Exited] = new_loop_future()

    async def parent() -> None:
        pid = await Probe.start(log, link=True)
        server.set_result(pid)
        assert await receive() == "shut it down"
        send_exit(pid, SHUTDOWN)
        signalled.set_result(None)
        parent_saw.set_result(await receive(lambda m: isinstance(m, Exited)))

    spawn(parent, trap_exits=True)
    pid = await server
    info = process_info(pid)
    assert info is not None
    assert info.parent is not None
    gate = Gate()
    running = await start_call(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    queued = await start_call(pid, ("echo", "B"))
    cast(pid, ("note", "C"))
    send(info.parent, "shut it down")
    await signalled
    assert is_alive(pid)
    assert log == [("enter", "A")]
    gate.open()
    assert await running == "A"
    with pytest.raises(ServerExited) as exited:
        await queued
    assert exited.value.reason is SHUTDOWN
    assert await parent_saw == Exited(pid, SHUTDOWN)
    assert log == [("enter", "A"), ("leave", "A"), ("terminate", SHUTDOWN)]


async def test_kill_cuts_a_blocked_callback_short_and_terminate_does_not_run(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    ended = await watch(pid)
    gate = Gate()
    running = await start_call(pid, ("hold", gate, "A"))
    await gate.entered.wait()
    send_exit(pid, KILL)
    with pytest.raises(ServerExited) as info:
        await running
    assert info.value.reason is KILLED
    assert await ended is KILLED
    assert log == [("enter", "A")]  # neither the rest of the callback nor terminate


async def test_terminate_raising_becomes_the_exit_reason(node: Node) -> None:
    error = RuntimeError("terminate failed")
    log: list[object] = []
    pid = await Probe.start(log, fail_terminate=error)
    ended = await watch(pid)
    # stop() reports that the server did not end as asked (as OTP's gen_server:stop).
    with pytest.raises(ServerExited) as info:
        await stop(pid, "halt")
    assert info.value.reason is error
    assert await ended is error
    assert log == [("terminate", "halt")]


# -- exit signals --------------------------------------------------------------------------


async def test_a_trapping_server_gets_exited_from_a_linked_actor_in_handle_info(
    node: Node,
) -> None:
    log: list[object] = []
    infos: asyncio.Queue[object] = asyncio.Queue()
    pid = await Probe.start(log, trap_exits=True, infos=infos)
    error = ValueError("linked crash")

    async def crasher() -> None:
        await receive()
        raise error

    linked = await call(pid, ("spawn_linked", crasher))
    send(linked, "crash now")
    assert await infos.get() == Exited(linked, error)
    assert await call(pid, ("echo", "alive")) == "alive"
    assert ("terminate", error) not in log


async def test_a_trapping_server_stops_with_terminate_on_its_parents_exit_signal(
    node: Node,
) -> None:
    log: list[object] = []
    server: asyncio.Future[Pid] = new_loop_future()
    error = RuntimeError("parent crashed")

    async def parent() -> None:
        server.set_result(await Probe.start(log, trap_exits=True, link=True))
        await receive()
        raise error

    parent_pid = spawn(parent)
    pid = await server
    ended = await watch(pid)
    send(parent_pid, "crash now")
    assert await ended is error
    assert log == [("terminate", error)]  # no Exited message in handle_info


async def test_a_non_trapping_server_linked_to_a_crashing_actor_stops_and_runs_terminate(
    node: Node,
) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    ended = await watch(pid)
    error = ValueError("linked crash")

    async def crasher() -> None:
        link(pid)
        raise error

    spawn(crasher)
    assert await ended is error
    assert log == [("terminate", error)]


async def test_a_non_trapping_server_ignores_a_linked_actors_normal_exit(node: Node) -> None:
    log: list[object] = []
    pid = await Probe.start(log)
    linked: asyncio.Future[None] = new_loop_future()

    async def friend() -> None:
        link(pid)
        linked.set_result(None)
        await receive()

    friend_pid = spawn(friend)
    await linked
    ended = await watch(friend_pid)
    send(friend_pid, "end normally")
    assert await ended is NORMAL
    assert await call(pid, ("echo", "alive")) == "alive"
    assert log == [("call", "alive")]


# -- child_spec -------------------------------------------------------------------------------


def test_child_spec_id_defaults_to_the_class_name() -> None:
    spec = Probe.child_spec([])
    assert isinstance(spec, ChildSpec)
    assert spec.id == "Probe"
    assert spec.restart is Restart.PERMANENT
    assert spec.shutdown == 5.0


def test_child_spec_takes_id_restart_and_shutdown() -> None:
    spec = Probe.child_spec([], id="probe", restart=Restart.TRANSIENT, shutdown=1.5)
    assert (spec.id, spec.restart, spec.shutdown) == ("probe", Restart.TRANSIENT, 1.5)


async def test_child_spec_start_starts_the_server_linked_to_the_calling_actor(
    node: Node,
) -> None:
    spec = Args.child_spec(1, 2, name="child", key="value")

    async def supervisor_like() -> Pid:
        pid = await spec.start()
        assert isinstance(pid, Pid)  # a start function may also return (pid, info)
        me = self_pid()
        mine = process_info(me)
        theirs = process_info(pid)
        assert mine is not None
        assert theirs is not None
        assert pid in mine.links
        assert me in theirs.links
        assert theirs.parent is me
        return pid

    pid = await in_actor(supervisor_like)
    assert whereis("child") is pid
    # Its parent has ended normally, which does not stop it.
    assert await call("child", "args") == ((1, 2), {"key": "value"})


class Refuser(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        caller.fail(PermissionError(f"refused {request!r}"))
        assert not caller.fail(RuntimeError("twice"))  # at most once
        return NOREPLY


async def test_caller_fail_makes_the_call_raise_that_error_and_the_server_lives_on(
    node: Node,
) -> None:
    pid = await Refuser.start()
    with pytest.raises(PermissionError, match="refused 'x'"):
        await call(pid, "x")
    assert is_alive(pid)
    with pytest.raises(PermissionError):
        await call(pid, "y")
