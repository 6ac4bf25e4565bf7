"""The runtime core's hardening rules (API.md, "Rules every function keeps").

Each test's name states the rule. The GenServer and Agent side of the same
rules is in tests/actors/test_hardening.py. Tests synchronise on messages,
monitors, futures and events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import asyncotp
from asyncotp import (
    KILL,
    KILLED,
    NORMAL,
    SHUTDOWN,
    Backoff,
    Caller,
    CallTimeout,
    Cast,
    ChildSpec,
    Down,
    Exited,
    NoProcess,
    NotAnActorError,
    Overflow,
    Pid,
    Shutdown,
    Stop,
    TimerRef,
    WrongThreadError,
    call,
    cancel_timer,
    cast,
    from_thread,
    is_alive,
    link,
    monitor,
    process_info,
    read_timer,
    receive,
    self_pid,
    send,
    send_after,
    send_exit,
    set_trap_exits,
    spawn,
    stop,
    whereis,
)
from asyncotp._core import exit_future, on_exit, safe_repr
from tests.helpers import WAIT, down_of, drain, in_actor, wait, watch

# -- user objects that refuse to be formatted, compared or hashed --------------------


class Hostile:
    """A message, request or reason whose repr, str, == and hash all raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    def __str__(self) -> str:
        raise RuntimeError("str refused")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("== refused")

    def __hash__(self) -> int:
        raise RuntimeError("hash refused")


class HostileError(Exception):
    """An exception whose repr, str, == and hash all raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    def __str__(self) -> str:
        raise RuntimeError("str refused")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("== refused")

    def __hash__(self) -> int:
        raise RuntimeError("hash refused")


class Sly(Hostile):
    """Refuses even to say what it is: ``isinstance`` asks ``__class__``."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("__class__ refused")


async def idle() -> None:
    """An actor that waits for ``"stop"``."""
    await receive(lambda m: m == "stop")


def records_of(caplog: pytest.LogCaptureFixture, pid: Pid) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "actor_pid", None) is pid]


# -- 1. the runtime never formats, compares or hashes user data unguarded ----------


def test_safe_repr_shows_a_placeholder_naming_the_type_when_repr_raises() -> None:
    shown = safe_repr(Hostile())
    assert shown.startswith("<tests.core.test_hardening.Hostile object at 0x")
    assert "repr() raised RuntimeError" in shown
    assert safe_repr([1, "a"]) == "[1, 'a']"


async def test_the_reprs_of_down_exited_stop_shutdown_cast_survive_a_reason_whose_repr_raises(
    node: asyncotp.Node,
) -> None:
    reason = Hostile()
    pid = spawn(idle)
    for value in (
        Down(asyncotp.MonitorRef(), pid, reason),
        Exited(pid, reason),
        Stop(reason),
        Stop(NORMAL, reply=reason),
        Shutdown(reason),
        Cast(reason),
    ):
        assert "repr() raised RuntimeError" in repr(value)
    send(pid, "stop")


async def test_a_crash_whose_error_cannot_be_formatted_still_reaches_links_monitors_and_the_log(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    error = HostileError()

    async def crasher() -> None:
        await receive(lambda m: m == "go")
        raise error

    async def scenario() -> tuple[Pid, Down, Exited]:
        set_trap_exits(True)
        pid = spawn(crasher, link=True)
        ref = monitor(pid)
        send(pid, "go")
        down = await down_of(ref)
        exited = await receive(lambda m: type(m) is Exited, timeout=WAIT)
        return pid, down, exited

    pid, down, exited = await in_actor(scenario)
    assert down.reason is error
    assert exited.reason is error
    assert exited.pid is pid
    [record] = records_of(caplog, pid)
    assert record.levelno == logging.ERROR
    assert "repr() raised RuntimeError" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[1] is error


async def test_an_exit_reason_that_cannot_be_compared_hashed_or_formatted_goes_through_links(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    reason = Sly()
    buddy_pid: asyncio.Future[Pid] = asyncio.get_running_loop().create_future()

    async def buddy() -> None:
        await receive(lambda m: m == "never")

    async def stopper() -> None:
        buddy_pid.set_result(spawn(buddy, link=True))  # does not trap: ends with the reason
        await receive(lambda m: m == "go")
        raise Stop(reason)

    pid = spawn(stopper)
    ended = await watch(pid)
    buddy_ended = await watch(await wait(buddy_pid))
    send(pid, "go")
    assert await wait(ended) is reason
    assert await wait(buddy_ended) is reason
    [record] = records_of(caplog, pid)  # its own abnormal end: reported
    assert "repr() raised RuntimeError" in record.getMessage()


async def test_a_timer_delivers_a_message_whose_repr_eq_and_hash_raise(node: asyncotp.Node) -> None:
    message = Hostile()

    async def scenario() -> object:
        send_after(0, self_pid(), message)
        return await receive(timeout=WAIT)

    assert await in_actor(scenario) is message


async def test_a_failing_exit_callback_is_logged_and_the_exit_still_completes(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    pid = spawn(idle)
    seen: list[object] = []

    def broken(reason: object) -> None:
        raise RuntimeError("callback broke")

    assert on_exit(pid, broken)  # the core's API for the layers above
    assert on_exit(pid, seen.append)
    ended = await watch(pid)
    send(pid, "stop")
    assert await wait(ended) is NORMAL
    assert seen == [NORMAL]
    assert any("exit callback" in r.getMessage() for r in caplog.records)


# -- 2. time arguments are validated before anything happens -----------------------

BAD_SECONDS: list[object] = [math.nan, -1, -0.5, -math.inf, 10**400, "1", True]
"""Refused wherever a time is expected."""
BAD_FINITE: list[object] = [*BAD_SECONDS, math.inf, 1e300]
"""Refused where the time must be finite (a delay, a shutdown time)."""


def assert_names(error: BaseException, argument: str, value: object) -> None:
    message = str(error)
    assert argument in message, message
    assert safe_repr(value) in message, message


@pytest.mark.parametrize("bad", BAD_SECONDS, ids=safe_repr)
async def test_call_refuses_a_bad_timeout_before_it_delivers_the_request(
    node: asyncotp.Node, bad: object
) -> None:
    pid = spawn(idle)
    with pytest.raises(ValueError) as info:
        await call(pid, "request", timeout=bad)  # type: ignore[call-overload]
    assert_names(info.value, "call: timeout", bad)
    info_now = process_info(pid)
    assert info_now is not None
    assert info_now.mailbox_length == 0


@pytest.mark.parametrize("bad", BAD_SECONDS, ids=safe_repr)
async def test_stop_refuses_a_bad_timeout_before_it_asks_the_actor_to_stop(
    node: asyncotp.Node, bad: object
) -> None:
    pid = spawn(idle)
    with pytest.raises(ValueError) as info:
        await stop(pid, timeout=bad)  # type: ignore[arg-type]
    assert_names(info.value, "stop: timeout", bad)
    info_now = process_info(pid)
    assert info_now is not None
    assert info_now.status != "exiting"


@pytest.mark.parametrize("bad", BAD_SECONDS, ids=safe_repr)
async def test_receive_refuses_a_bad_timeout_before_it_takes_a_message(
    node: asyncotp.Node, bad: object
) -> None:
    async def scenario() -> tuple[str, list[object]]:
        send(self_pid(), "waiting")
        try:
            await receive(timeout=bad)  # type: ignore[arg-type]
        except ValueError as exc:
            return str(exc), await drain()
        raise AssertionError("receive accepted a bad timeout")

    message, left = await in_actor(scenario)
    assert "receive: timeout" in message
    assert safe_repr(bad) in message
    assert left == ["waiting"]


@pytest.mark.parametrize("bad", BAD_FINITE, ids=safe_repr)
async def test_send_after_refuses_a_bad_or_infinite_delay(node: asyncotp.Node, bad: object) -> None:
    pid = spawn(idle)
    with pytest.raises(ValueError) as info:
        send_after(bad, pid, "m")  # type: ignore[arg-type]
    assert_names(info.value, "send_after: delay", bad)


async def test_send_after_says_to_set_no_timer_for_an_infinite_delay(node: asyncotp.Node) -> None:
    with pytest.raises(ValueError, match="set no timer"):
        send_after(math.inf, "anyone", "m")


@pytest.mark.parametrize("bad", [*BAD_FINITE, 0, 0.0], ids=safe_repr)
async def test_node_refuses_a_bad_shutdown_timeout_before_it_starts(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        async with asyncotp.node(shutdown_timeout=bad):  # type: ignore[arg-type]
            raise AssertionError("the node started")
    assert_names(info.value, "shutdown_timeout", bad)


async def test_a_nan_call_timeout_is_refused_and_later_call_deadlines_still_fire(
    node: asyncotp.Node,
) -> None:
    pid = spawn(idle)  # never replies
    with pytest.raises(ValueError):
        await call(pid, "first", timeout=math.nan)
    with pytest.raises(CallTimeout):
        await wait(call(pid, "second", timeout=0.01))
    with pytest.raises(CallTimeout):
        await wait(call(pid, "third", timeout=0.02))


async def test_inf_means_no_limit_for_call_stop_and_receive_timeouts(node: asyncotp.Node) -> None:
    async def server() -> None:
        while True:
            message = await receive(timeout=math.inf)
            if isinstance(message, Caller):
                message.reply(message.timeout)

    pid = spawn(server)
    assert await wait(call(pid, "your timeout?", timeout=math.inf)) is None  # no limit
    assert await wait(call(pid, "and now?", timeout=2)) == 2.0  # a plain float
    await wait(stop(pid, timeout=math.inf))
    assert not is_alive(pid)


@pytest.mark.parametrize("bad", [math.nan, 10**400, 1e300], ids=safe_repr)
def test_a_child_spec_refuses_a_shutdown_time_that_overflows(bad: object) -> None:
    async def start() -> Pid:
        raise AssertionError("never started")

    with pytest.raises(ValueError) as info:
        ChildSpec("a", start, shutdown=bad)  # type: ignore[arg-type]
    assert_names(info.value, "ChildSpec.shutdown", bad)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("initial", 10**400),
        ("initial", math.inf),
        ("max", 1e300),
        ("reset_after", 10**400),
        ("multiplier", 10**400),
        ("multiplier", math.inf),
    ],
)
def test_a_backoff_refuses_times_and_factors_that_overflow(field: str, bad: object) -> None:
    with pytest.raises(ValueError) as info:
        Backoff(**{field: bad})  # type: ignore[arg-type]
    assert_names(info.value, f"Backoff.{field}", bad)


def test_a_backoff_may_never_start_over() -> None:
    assert Backoff(reset_after=math.inf).reset_after == math.inf


# -- 3. overflow policies apply to user messages only --------------------------------


async def test_drop_oldest_never_evicts_a_monitors_down(node: asyncotp.Node) -> None:
    async def scenario() -> tuple[list[object], int]:
        me = self_pid()
        victim = spawn(idle)
        ref = monitor(victim)
        ended = await watch(victim)
        send(victim, "stop")
        await wait(ended)  # our Down is queued too (unread)
        for message in ("a", "b", "c"):
            send(me, message)
        info = process_info(me)
        assert info is not None
        messages = await drain()
        assert isinstance(messages[0], Down)
        assert messages[0].ref is ref
        return messages[1:], info.dropped

    rest, dropped = await in_actor(scenario, mailbox_size=2, overflow=Overflow.DROP_OLDEST)
    assert rest == ["c"]  # "a" then "b" were evicted, never the Down
    assert dropped == 2


async def test_drop_oldest_drops_the_new_message_when_only_system_messages_are_queued(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[list[object], int]:
        set_trap_exits(True)
        me = self_pid()
        victim = spawn(idle, link=True)
        ended = await watch(victim)
        send_exit(victim, KILL)
        await wait(ended)
        send(me, "user")  # the mailbox holds one Exited: "user" has nothing to evict
        info = process_info(me)
        assert info is not None
        return await drain(), info.dropped

    messages, dropped = await in_actor(scenario, mailbox_size=1, overflow=Overflow.DROP_OLDEST)
    assert len(messages) == 1
    assert isinstance(messages[0], Exited)
    assert messages[0].reason is KILLED
    assert dropped == 1


@pytest.mark.parametrize("overflow", [Overflow.REJECT, Overflow.DROP_NEWEST])
async def test_a_full_mailbox_still_takes_exit_signals_and_downs(
    node: asyncotp.Node, overflow: Overflow
) -> None:
    async def scenario() -> list[object]:
        set_trap_exits(True)
        me = self_pid()
        send(me, "filler")  # full now
        victim = spawn(idle, link=True)
        ref = monitor(victim)
        ended = await watch(victim)
        send(victim, "stop")
        await wait(ended)
        messages = await drain()
        assert any(isinstance(m, Down) and m.ref is ref for m in messages)
        return messages

    messages = await in_actor(scenario, mailbox_size=1, overflow=overflow)
    assert messages[0] == "filler"
    assert len(messages) == 3  # filler, Exited(NORMAL) (it traps), Down


# -- 5. a task that an actor starts is not that actor --------------------------------


async def test_a_task_an_actor_starts_is_not_that_actor_and_cannot_take_its_messages(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[dict[str, str], list[object]]:
        me = self_pid()
        send(me, "mine")  # queued: a stolen receive would take it
        outcome: dict[str, str] = {}

        async def child() -> None:
            checks: dict[str, Callable[[], Any]] = {
                "self_pid": self_pid,
                "link": lambda: link(me),
                "monitor": lambda: monitor(me),
                "set_trap_exits": lambda: set_trap_exits(True),
            }
            for name, check in checks.items():
                try:
                    check()
                    outcome[name] = "allowed"
                except NotAnActorError:
                    outcome[name] = "refused"
            for name, timeout in (("receive", None), ("receive(timeout=0)", 0.0)):
                try:
                    await receive(timeout=timeout)
                    outcome[name] = "allowed"
                except NotAnActorError:
                    outcome[name] = "refused"
            # What any task of the node may do still works.
            send(me, "from the child")
            outcome["spawn"] = "allowed" if is_alive(spawn(idle, name="spawned")) else "?"

        await asyncio.create_task(child())
        send(whereis("spawned"), "stop")  # type: ignore[arg-type]
        return outcome, await drain()

    outcome, messages = await in_actor(scenario)
    assert outcome == {
        "self_pid": "refused",
        "link": "refused",
        "monitor": "refused",
        "set_trap_exits": "refused",
        "receive": "refused",
        "receive(timeout=0)": "refused",
        "spawn": "allowed",
    }
    assert messages == ["mine", "from the child"]


async def test_a_call_from_a_task_an_actor_started_is_a_plain_tasks_call(
    node: asyncotp.Node,
) -> None:
    # The task's call to its own actor is not "the actor calling itself".
    async def scenario() -> object:
        me = self_pid()
        task = asyncio.create_task(call(me, "question", timeout=WAIT))
        caller = await receive(lambda m: isinstance(m, Caller), timeout=WAIT)
        assert caller.pid is None  # a plain task's call
        caller.reply("answer")
        return await task

    assert await in_actor(scenario) == "answer"


# -- 6. the runtime is for the node's thread; threads use from_thread -----------------


async def run_in_thread(target: Callable[[], None]) -> None:
    """Run ``target`` in a real ``threading.Thread``; wait for it (bounded)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    failure: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:
            failure.append(exc)
        finally:
            loop.call_soon_threadsafe(done.set_result, None)

    thread = threading.Thread(target=body, name="worker")
    thread.start()
    await wait(done)
    thread.join()
    if failure:
        raise failure[0]


async def test_every_function_called_from_another_thread_raises_wrong_thread_error(
    node: asyncotp.Node,
) -> None:
    pid = spawn(idle, name="svc")
    outcome: dict[str, object] = {}

    def attempts() -> None:
        checks: dict[str, Callable[[], object]] = {
            "send": lambda: send(pid, "x"),
            "send by name": lambda: send("svc", "x"),
            "cast": lambda: cast(pid, "x"),
            "cast by name": lambda: cast("svc", "x"),
            "call": lambda: asyncio.run(call(pid, "x")),
            "stop": lambda: asyncio.run(stop(pid)),
            "spawn": lambda: spawn(idle),
            "send_exit": lambda: send_exit(pid, KILL),
            "is_alive": lambda: is_alive(pid),
            "process_info": lambda: process_info(pid),
            "whereis": lambda: whereis("svc"),
            "send_after": lambda: send_after(0, pid, "x"),
            "self_pid": self_pid,
        }
        for name, check in checks.items():
            try:
                check()
                outcome[name] = "allowed"
            except WrongThreadError as exc:
                outcome[name] = "WrongThreadError" if "from_thread" in str(exc) else str(exc)
            except Exception as exc:  # reported by the assertion below
                outcome[name] = exc

    await run_in_thread(attempts)
    assert set(outcome.values()) == {"WrongThreadError"}, outcome
    info = process_info(pid)
    assert info is not None
    assert info.mailbox_length == 0
    assert info.status == "waiting"


async def test_a_thread_that_copied_an_actors_context_is_still_another_thread(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> list[str]:
        me = self_pid()
        refused = []
        for fn in (self_pid, lambda: send(me, "x"), lambda: send_after(0, me, "x")):
            try:
                await asyncio.to_thread(fn)  # copies the actor's context
            except WrongThreadError:
                refused.append("refused")
        assert await drain() == []
        return refused

    assert await in_actor(scenario) == ["refused"] * 3


async def test_from_thread_send_cast_call_and_run_reach_the_node_from_a_real_thread(
    node: asyncotp.Node,
) -> None:
    log: list[object] = []

    async def server() -> None:
        while True:
            message = await receive()
            if isinstance(message, Caller):
                message.reply(("echo", message.request))
            elif isinstance(message, Cast):
                log.append(("cast", message.request))
            else:
                log.append(message)

    async def silent() -> None:
        await receive(lambda m: m == "stop")

    pid = spawn(server, name="echo")
    quiet = spawn(silent)
    outcome: dict[str, object] = {}

    async def in_the_node(x: int) -> tuple[int, Pid]:
        # A plain task of the node: it may spawn, it is not an actor.
        try:
            self_pid()
        except NotAnActorError:
            pass
        else:
            raise AssertionError("from_thread.run ran as an actor")
        return x * 2, spawn(idle)

    def work() -> None:  # the thread holds the Node
        from_thread.send(node, pid, "hello")
        from_thread.cast(node, "echo", "a cast")
        outcome["call"] = from_thread.call(node, "echo", "ping", timeout=WAIT)
        outcome["run"] = from_thread.run(node, in_the_node, 21)
        attempts: dict[str, Callable[[], object]] = {
            "unknown name": lambda: from_thread.send(node, "nobody", "x"),
            "call unknown": lambda: from_thread.call(node, "nobody", "x"),
            "timeout": lambda: from_thread.call(node, quiet, "x", timeout=0.01),
            "bad timeout": lambda: from_thread.call(node, pid, "x", timeout=math.nan),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
            except Exception as exc:
                outcome[name] = type(exc)

    await run_in_thread(work)
    assert outcome["call"] == ("echo", "ping")
    ran = outcome["run"]
    assert isinstance(ran, tuple)
    doubled, spawned = ran
    assert doubled == 42
    assert is_alive(spawned)
    send(spawned, "stop")
    assert outcome["unknown name"] is NoProcess
    assert outcome["call unknown"] is NoProcess
    assert outcome["timeout"] is CallTimeout
    assert outcome["bad timeout"] is ValueError
    assert log == ["hello", ("cast", "a cast")]  # the call came after them in the mailbox
    send(quiet, "stop")


async def test_from_thread_refuses_the_nodes_own_thread_where_it_would_deadlock(
    node: asyncotp.Node,
) -> None:
    pid = spawn(idle)
    with pytest.raises(WrongThreadError, match="deadlock"):
        from_thread.call(node, pid, "x")
    with pytest.raises(WrongThreadError):
        from_thread.send(node, pid, "x")
    with pytest.raises(TypeError, match="Node"):
        from_thread.send("not a node", pid, "x")  # type: ignore[arg-type]


# -- 7. a timer to a pid belongs to its destination ---------------------------------


async def test_a_timer_to_a_pid_outlives_the_actor_that_set_it(node: asyncotp.Node) -> None:
    async def sets_timer(target: Pid) -> TimerRef:
        return send_after(0.01, target, "tick")

    async def scenario() -> tuple[float | None, object]:
        me = self_pid()
        timer = await in_actor(lambda: sets_timer(me))  # that helper has ended now
        return read_timer(timer), await receive(timeout=WAIT)

    left, message = await in_actor(scenario)
    assert left is not None  # still pending after its setter ended
    assert message == "tick"


async def test_a_timer_to_a_name_belongs_to_the_node_not_to_the_actor_that_set_it() -> None:
    async def sets_timer() -> TimerRef:
        return send_after(10.0, "late", "m")

    async with asyncotp.node():
        timer = await in_actor(sets_timer)
        assert read_timer(timer) is not None  # its setter has ended
    assert read_timer(timer) is None  # the node's end cancelled it
    assert cancel_timer(timer) is False


# -- 8. KILL ends an actor that swallows the cancellation -----------------------------


async def test_a_plain_actor_that_swallows_a_kill_is_cancelled_again_at_its_next_receive(
    node: asyncotp.Node,
) -> None:
    entered = asyncio.Event()
    after: list[str] = []

    async def stubborn() -> None:
        try:
            entered.set()
            await receive()
        except asyncio.CancelledError:
            after.append("swallowed")
        await receive()  # a killed actor is cancelled here again
        after.append("never")

    pid = spawn(stubborn)
    await entered.wait()
    ended = await watch(pid)
    send_exit(pid, KILL)
    assert await wait(ended) is KILLED
    assert after == ["swallowed"]


# -- 9. SystemExit and KeyboardInterrupt stop the node in order -------------------------


def never_retrieved(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]


@pytest.mark.parametrize("fatal", [SystemExit(3), KeyboardInterrupt()], ids=repr)
async def test_system_exit_in_an_actor_shuts_every_actor_down_then_is_raised_from_node(
    fatal: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []
    ready = asyncio.Event()

    async def bystander() -> None:
        set_trap_exits(True)
        ready.set()
        seen.append(await receive())

    async def quitter() -> None:
        await receive(lambda m: m == "go")
        raise fatal

    ended: asyncio.Future[object] | None = None
    with pytest.raises(type(fatal)) as info:  # noqa: PT012 - the whole node's life
        async with asyncotp.node():
            spawn(bystander)
            await ready.wait()
            quitting = spawn(quitter)
            ended = exit_future(quitting)  # resolved by the exit itself, not by an actor
            send(quitting, "go")
            await asyncio.Event().wait()  # the node cancels the block to stop
    assert ended is not None
    assert info.value is fatal
    assert ended.result() == Shutdown(fatal)
    assert len(seen) == 1
    assert isinstance(seen[0], Exited)
    assert seen[0].reason is SHUTDOWN
    assert never_retrieved(caplog) == []


SYSTEM_EXIT_PROGRAM = """
import asyncotp
from asyncotp import GenServer, spawn


class Bystander(GenServer):
    async def terminate(self, reason):
        print("terminate", reason, flush=True)


async def quitter():
    raise SystemExit(3)


async def main():
    await Bystander.start()
    spawn(quitter)
    await asyncotp.receive()  # the node stops this actor too


asyncotp.run(main)
print("not reached")
"""


def test_system_exit_in_an_actor_stops_run_in_order_and_exits_with_its_code(
    tmp_path: Path,
) -> None:
    program = tmp_path / "quits.py"
    program.write_text(SYSTEM_EXIT_PROGRAM)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run(
        [sys.executable, "-X", "dev", str(program)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == ["terminate SHUTDOWN"]
    assert "never retrieved" not in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
