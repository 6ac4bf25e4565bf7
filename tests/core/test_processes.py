"""Processes: spawn, send, receive, bounded mailboxes, process_info, crash reports."""

from __future__ import annotations

import asyncio
import copy
import functools
import gc
import logging
import pickle
import time
import weakref
from typing import Any

import anyio
import attrs
import pytest

import asyncotp
from asyncotp import (
    NORMAL,
    SHUTDOWN,
    Down,
    MailboxFull,
    NameTaken,
    NoProcess,
    NotAnActorError,
    Overflow,
    ReceiveTimeout,
    Shutdown,
    Stop,
    is_alive,
    monitor,
    process_info,
    processes,
    receive,
    self_pid,
    send,
    spawn,
    whereis,
)
from tests.helpers import WAIT, drain, in_actor, wait, watch


def is_down_of(ref: asyncotp.MonitorRef, message: object) -> bool:
    return isinstance(message, Down) and message.ref is ref


class Gated:
    """An actor that does not touch its mailbox until ``open()``, then reports
    everything in it (so a test can fill a bounded mailbox at leisure)."""

    def __init__(self, **spawn_options: Any) -> None:
        self.gate = anyio.Event()
        self.contents: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
        self.pid = spawn(self._body, **spawn_options)

    async def _body(self) -> None:
        await self.gate.wait()
        self.contents.set_result(await drain())

    async def open(self) -> list[object]:
        self.gate.set()
        with anyio.fail_after(WAIT):
            return await self.contents


# -- spawn ---------------------------------------------------------------------


async def test_spawn_rejects_a_function_that_is_not_async_and_names_it(node: asyncotp.Node) -> None:
    def plain_function() -> None:
        pass

    before = processes()
    with pytest.raises(TypeError, match="plain_function"):
        spawn(plain_function)  # type: ignore[arg-type]
    assert processes() == before


async def test_spawn_passes_its_arguments_to_the_actor(node: asyncotp.Node) -> None:
    got: asyncio.Future[tuple[object, ...]] = asyncio.get_running_loop().create_future()

    async def actor(a: int, b: str, c: list[int]) -> None:
        got.set_result((a, b, c))

    spawn(actor, 1, "two", [3])
    with anyio.fail_after(WAIT):
        assert await got == (1, "two", [3])


async def test_spawn_returns_a_new_pid_before_the_actor_runs(node: asyncotp.Node) -> None:
    started = anyio.Event()

    async def actor() -> None:
        started.set()
        await receive()

    first = spawn(actor)
    assert not started.is_set()
    second = spawn(actor)
    assert first != second
    assert is_alive(first)
    assert is_alive(second)


async def test_pids_are_hashable_never_reused_and_not_picklable(node: asyncotp.Node) -> None:
    async def short_lived() -> None:
        pass

    async def spawn_and_outlive() -> list[asyncotp.Pid]:
        pids = [spawn(short_lived) for _ in range(50)]
        for ref in [monitor(pid) for pid in pids]:
            await receive(functools.partial(is_down_of, ref))
        return pids

    pids = await in_actor(spawn_and_outlive)
    assert not any(is_alive(pid) for pid in pids)
    assert len(set(pids)) == 50
    assert [p.number for p in pids] == sorted({p.number for p in pids})
    assert copy.copy(pids[0]) is pids[0]
    assert copy.deepcopy({"pid": pids[0]})["pid"] is pids[0]
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(pids[0])
    later = spawn(short_lived)
    assert later not in pids
    assert all(later.number > p.number for p in pids)


async def test_spawn_with_a_name_registers_it(node: asyncotp.Node) -> None:
    async def actor() -> None:
        await receive()

    pid = spawn(actor, name="worker")
    assert whereis("worker") == pid
    assert process_info(pid).name == "worker"  # type: ignore[union-attr]
    assert "worker" in repr(pid)
    assert str(pid.number) in repr(pid)


async def test_spawn_with_a_taken_name_raises_name_taken_and_starts_nothing(
    node: asyncotp.Node,
) -> None:
    async def actor() -> None:
        await receive()

    holder = spawn(actor, name="taken")
    before = processes()
    with pytest.raises(NameTaken, match="taken") as caught:
        spawn(actor, name="taken")
    assert caught.value.name == "taken"
    assert caught.value.holder == holder
    assert processes() == before
    assert whereis("taken") == holder


@pytest.mark.parametrize("size", [0, -1, True, 2.5, "3"])
async def test_spawn_rejects_a_mailbox_size_that_is_not_a_positive_int(
    node: asyncotp.Node, size: object
) -> None:
    async def actor() -> None:
        pass

    before = processes()
    with pytest.raises(ValueError, match="mailbox_size"):
        spawn(actor, mailbox_size=size)  # type: ignore[arg-type]
    assert processes() == before


async def test_spawn_rejects_an_overflow_that_is_not_an_overflow_member(
    node: asyncotp.Node,
) -> None:
    async def actor() -> None:
        pass

    with pytest.raises(TypeError, match="overflow"):
        spawn(actor, mailbox_size=1, overflow="drop_oldest")  # type: ignore[arg-type]


async def test_spawn_link_outside_an_actor_raises_not_an_actor(node: asyncotp.Node) -> None:
    async def actor() -> None:
        pass

    with pytest.raises(NotAnActorError):
        spawn(actor, link=True)


# -- send -----------------------------------------------------------------------


async def test_messages_between_one_sender_and_one_receiver_keep_their_order(
    node: asyncotp.Node,
) -> None:
    count = 2000

    async def scenario() -> list[object]:
        me = self_pid()

        async def sender() -> None:
            for i in range(count):
                send(me, i)
                if i % 97 == 0:
                    await anyio.lowlevel.checkpoint()

        spawn(sender)
        return [await receive() for _ in range(count)]

    assert await in_actor(scenario) == list(range(count))


async def test_send_to_a_dead_pid_drops_the_message_silently(node: asyncotp.Node) -> None:
    async def short_lived() -> None:
        await receive()

    pid = spawn(short_lived)
    ended = await watch(pid)
    send(pid, "end")
    assert await wait(ended) is NORMAL
    assert not is_alive(pid)
    send(pid, "into the void")  # no error
    assert process_info(pid) is None


async def test_send_to_a_name_nobody_holds_raises_no_process(node: asyncotp.Node) -> None:
    with pytest.raises(NoProcess, match="nobody-here") as caught:
        send("nobody-here", "hello")
    assert caught.value.dest == "nobody-here"


async def test_send_to_a_registered_name_delivers_to_its_holder(node: asyncotp.Node) -> None:
    async def scenario() -> object:
        asyncotp.register("me", self_pid())
        send("me", "by name")
        return await receive(timeout=WAIT)

    assert await in_actor(scenario) == "by name"


# -- receive --------------------------------------------------------------------


async def test_receive_takes_messages_oldest_first(node: asyncotp.Node) -> None:
    async def scenario() -> list[object]:
        for message in ["a", "b", "c"]:
            send(self_pid(), message)
        return [await receive(), await receive(), await receive()]

    assert await in_actor(scenario) == ["a", "b", "c"]


async def test_selective_receive_takes_the_oldest_match_and_keeps_the_rest_in_order(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[object, list[object]]:
        for message in [1, "x", 2, "y", 3]:
            send(self_pid(), message)
        taken = await receive(lambda m: isinstance(m, str))
        return taken, await drain()

    assert await in_actor(scenario) == ("x", [1, 2, "y", 3])


async def test_selective_receive_waits_for_a_matching_message_and_keeps_the_others(
    node: asyncotp.Node,
) -> None:
    ready: asyncio.Future[asyncotp.Pid] = asyncio.get_running_loop().create_future()

    async def scenario() -> tuple[object, list[object]]:
        ready.set_result(self_pid())  # receive below parks before any other task runs
        taken = await receive(lambda m: m == "wanted", timeout=WAIT)
        return taken, await drain()

    result = asyncio.ensure_future(in_actor(scenario))
    with anyio.fail_after(WAIT):
        pid = await ready
    for message in ["a", "b", "c", "wanted"]:
        send(pid, message)
        await anyio.lowlevel.checkpoint()
    assert await result == ("wanted", ["a", "b", "c"])


async def test_receive_timeout_raises_receive_timeout_which_is_a_timeout_error(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(ReceiveTimeout) as caught:
            await receive(timeout=0.05)
        assert isinstance(caught.value, TimeoutError)
        assert isinstance(caught.value, asyncotp.ActorError)
        assert repr(self_pid()) in str(caught.value)  # names the actor: pid and name
        assert "patient" in str(caught.value)
        return loop.time() - start

    assert await in_actor(scenario, name="patient") >= 0.045


async def test_receive_timeout_keeps_non_matching_messages(node: asyncotp.Node) -> None:
    async def scenario() -> list[object]:
        send(self_pid(), "other")
        with pytest.raises(ReceiveTimeout):
            await receive(lambda m: m == "wanted", timeout=0.02)
        return await drain()

    assert await in_actor(scenario) == ["other"]


async def test_selective_receive_times_out_even_if_a_non_matching_message_arrives_with_the_deadline(
    node: asyncotp.Node,
) -> None:
    # A busy loop makes the "noise" timer and the receive deadline fire in the
    # same loop iteration, noise first: the actor is woken by noise, and the
    # deadline must not be lost because the actor was not parked at that moment.
    async def scenario() -> object:
        loop = asyncio.get_running_loop()
        asyncotp.send_after(0.005, self_pid(), "noise")
        loop.call_later(0.001, time.sleep, 0.03)  # blocks the loop
        with pytest.raises(ReceiveTimeout):
            await receive(lambda m: m == "wanted", timeout=0.01)
        return await receive(timeout=0)

    assert await in_actor(scenario) == "noise"


async def test_receive_with_timeout_zero_takes_a_message_already_there(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[object, object]:
        send(self_pid(), "here")
        send(self_pid(), "there")
        return await receive(timeout=0), await receive(lambda m: m == "there", timeout=0)

    assert await in_actor(scenario) == ("here", "there")


async def test_receive_with_timeout_zero_raises_at_once_when_nothing_matches(
    node: asyncotp.Node,
) -> None:
    async def scenario() -> tuple[float, list[object]]:
        loop = asyncio.get_running_loop()
        send(self_pid(), "not it")
        start = loop.time()
        with pytest.raises(ReceiveTimeout):
            await receive(lambda m: m == "it", timeout=0)
        with pytest.raises(ReceiveTimeout):
            await receive(lambda m: m == "it", timeout=0)
        elapsed = loop.time() - start
        return elapsed, await drain()

    elapsed, rest = await in_actor(scenario)
    assert elapsed < 0.01
    assert rest == ["not it"]


async def test_receive_outside_an_actor_raises_not_an_actor(node: asyncotp.Node) -> None:
    with pytest.raises(NotAnActorError, match="spawn"):
        await receive(timeout=0)


async def test_self_pid_outside_an_actor_raises_not_an_actor(node: asyncotp.Node) -> None:
    with pytest.raises(NotAnActorError, match="spawn"):
        self_pid()


# -- bounded mailboxes ----------------------------------------------------------


async def test_a_full_reject_mailbox_raises_mailbox_full_in_the_sender(
    node: asyncotp.Node,
) -> None:
    target = Gated(mailbox_size=2, overflow=Overflow.REJECT)
    send(target.pid, 1)
    send(target.pid, 2)
    with pytest.raises(MailboxFull) as caught:
        send(target.pid, 3)
    assert caught.value.pid == target.pid
    assert repr(target.pid) in str(caught.value)
    info = process_info(target.pid)
    assert info is not None
    assert (info.mailbox_length, info.rejected, info.dropped) == (2, 1, 0)
    assert info.mailbox_size == 2
    assert await target.open() == [1, 2]


async def test_reject_is_the_default_overflow_of_a_bounded_mailbox(node: asyncotp.Node) -> None:
    target = Gated(mailbox_size=1)
    send(target.pid, "first")
    with pytest.raises(MailboxFull):
        send(target.pid, "second")
    assert await target.open() == ["first"]


async def test_a_full_drop_newest_mailbox_drops_new_messages_and_counts_them(
    node: asyncotp.Node,
) -> None:
    target = Gated(mailbox_size=2, overflow=Overflow.DROP_NEWEST)
    for i in range(5):
        send(target.pid, i)
    info = process_info(target.pid)
    assert info is not None
    assert (info.mailbox_length, info.dropped, info.rejected) == (2, 3, 0)
    assert await target.open() == [0, 1]


async def test_a_full_drop_oldest_mailbox_evicts_old_messages_and_counts_them(
    node: asyncotp.Node,
) -> None:
    target = Gated(mailbox_size=2, overflow=Overflow.DROP_OLDEST)
    for i in range(5):
        send(target.pid, i)
    info = process_info(target.pid)
    assert info is not None
    assert (info.mailbox_length, info.dropped, info.rejected) == (2, 3, 0)
    assert await target.open() == [3, 4]


async def test_selective_receive_finds_a_match_after_drop_oldest_evicted_scanned_messages(
    node: asyncotp.Node,
) -> None:
    ready: asyncio.Future[asyncotp.Pid] = asyncio.get_running_loop().create_future()

    async def scenario() -> tuple[object, list[object]]:
        ready.set_result(self_pid())
        taken = await receive(lambda m: m == "x", timeout=WAIT)
        return taken, await drain()

    result = asyncio.ensure_future(
        in_actor(scenario, mailbox_size=2, overflow=Overflow.DROP_OLDEST)
    )
    with anyio.fail_after(WAIT):
        pid = await ready
    for message in ["a", "b", "c", "x"]:
        send(pid, message)
        await anyio.lowlevel.checkpoint()
    assert await result == ("x", ["c"])


async def test_a_full_mailbox_still_receives_down_messages(node: asyncotp.Node) -> None:
    async def short_lived() -> None:
        await receive()

    async def scenario() -> object:
        other = spawn(short_lived)
        ref = monitor(other)
        send(self_pid(), "fills the mailbox")
        send(other, "end")
        down = await receive(lambda m: isinstance(m, Down), timeout=WAIT)
        assert down.ref is ref
        return down.reason

    assert await in_actor(scenario, mailbox_size=1) is NORMAL


# -- process_info, self_pid, is_alive ------------------------------------------


async def test_process_info_reports_the_fields_of_a_live_actor(node: asyncotp.Node) -> None:
    async def idle() -> None:
        await receive(lambda m: m == "never")

    async def scenario() -> asyncotp.ProcessInfo | None:
        me = self_pid()
        linked = spawn(idle, link=True)
        watched = spawn(idle)
        monitor(watched)
        send(me, "m1")
        send(me, "m2")
        asyncotp.set_trap_exits(True)
        info = process_info(me)
        assert info is not None
        assert process_info(linked).links == frozenset({me})  # type: ignore[union-attr]
        assert info.links == frozenset({linked})
        assert info.monitors == frozenset({watched})
        return info

    info = await in_actor(scenario, name="inspected", mailbox_size=10)
    assert info is not None
    assert info.name == "inspected"
    assert info.status == "running"
    assert info.mailbox_length == 2
    assert info.dropped == 0
    assert info.rejected == 0
    assert info.mailbox_size == 10
    assert info.trap_exits is True
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.status = "waiting"  # type: ignore[misc]


async def test_process_info_of_an_actor_blocked_on_its_mailbox_says_waiting(
    node: asyncotp.Node,
) -> None:
    ready = anyio.Event()

    async def waiter() -> None:
        ready.set()  # receive below parks before any other task runs
        await receive()

    pid = spawn(waiter)
    with anyio.fail_after(WAIT):
        await ready.wait()
    info = process_info(pid)
    assert info is not None
    assert info.pid == pid
    assert info.name is None
    assert info.status == "waiting"
    assert info.mailbox_length == 0
    assert info.links == frozenset()
    assert info.monitors == frozenset()
    assert info.trap_exits is False


async def test_process_info_of_an_actor_told_to_exit_says_exiting(node: asyncotp.Node) -> None:
    ready = anyio.Event()

    async def waiter() -> None:
        ready.set()
        await receive()

    pid = spawn(waiter)
    with anyio.fail_after(WAIT):
        await ready.wait()
    ended = await watch(pid)
    asyncotp.send_exit(pid, "go away")
    assert process_info(pid).status == "exiting"  # type: ignore[union-attr]
    assert await wait(ended) == "go away"


async def test_process_info_of_a_dead_pid_is_none(node: asyncotp.Node) -> None:
    async def short_lived() -> None:
        await receive()

    pid = spawn(short_lived)
    ended = await watch(pid)
    send(pid, "end")
    assert await wait(ended) is NORMAL
    assert process_info(pid) is None


async def test_self_pid_is_the_pid_spawn_returned_and_is_alive_follows_the_actor(
    node: asyncotp.Node,
) -> None:
    seen: asyncio.Future[tuple[asyncotp.Pid, bool]] = asyncio.get_running_loop().create_future()

    async def actor() -> None:
        seen.set_result((self_pid(), is_alive(self_pid())))
        await receive()

    pid = spawn(actor)
    with anyio.fail_after(WAIT):
        assert await seen == (pid, True)
    assert is_alive(pid)
    ended = await watch(pid)
    send(pid, "end")
    await wait(ended)
    assert not is_alive(pid)


# -- exit reasons ---------------------------------------------------------------


async def test_an_actor_that_returns_ends_normal_and_one_that_raises_ends_with_the_exception(
    node: asyncotp.Node,
) -> None:
    error = ValueError("boom")

    async def returns() -> None:
        await receive()

    async def raises() -> None:
        await receive()
        raise error

    async def stops() -> None:
        await receive()
        raise Stop("bad_config")

    async def stops_plain() -> None:
        await receive()
        raise Stop

    async def scenario() -> list[object]:
        pids = [spawn(fn) for fn in (returns, raises, stops, stops_plain)]
        refs = [monitor(pid) for pid in pids]
        for pid in pids:
            send(pid, "go")
        reasons = []
        for ref in refs:
            down = await receive(functools.partial(is_down_of, ref))
            reasons.append(down.reason)
        return reasons

    assert await in_actor(scenario) == [NORMAL, error, "bad_config", NORMAL]


# -- crash reports --------------------------------------------------------------


class RecordQueue(logging.Handler):
    """Puts every record of the ``asyncotp`` logger on a queue, so a test can
    wait for a log line instead of guessing when it was written."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queue: asyncio.Queue[logging.LogRecord] = asyncio.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        self.queue.put_nowait(record)

    async def next(self) -> logging.LogRecord:
        with anyio.fail_after(WAIT):
            return await self.queue.get()


@pytest.fixture
def asyncotp_records() -> Any:
    handler = RecordQueue()
    logger = logging.getLogger("asyncotp")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_an_unlinked_crash_is_logged_at_error_with_traceback_pid_and_name(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture, asyncotp_records: RecordQueue
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncotp")

    async def crasher() -> None:
        await receive()
        raise ValueError("kaput")

    pid = spawn(crasher, name="crashy")
    send(pid, "go")
    await asyncotp_records.next()
    [record] = [r for r in caplog.records if r.name == "asyncotp"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError
    assert "kaput" in caplog.text
    assert "Traceback" in caplog.text
    assert "crasher" in caplog.text  # the frame that raised
    assert record.actor_pid == pid  # type: ignore[attr-defined]
    assert record.actor_name == "crashy"  # type: ignore[attr-defined]
    assert f"<Pid {pid.number} 'crashy'>" in record.getMessage()


async def test_a_crash_does_not_take_the_node_down(
    node: asyncotp.Node, asyncotp_records: RecordQueue
) -> None:
    async def crasher() -> None:
        await receive()
        raise RuntimeError("only me")

    async def echo() -> None:
        while True:
            sender, message = await receive()
            send(sender, message)

    survivor = spawn(echo)
    pid = spawn(crasher)
    send(pid, "go")
    record = await asyncotp_records.next()
    assert record.levelno == logging.ERROR
    assert not is_alive(pid)
    assert is_alive(survivor)

    async def ping() -> object:
        send(survivor, (self_pid(), "ping"))
        return await receive(timeout=WAIT)

    assert await in_actor(ping) == "ping"
    assert await in_actor(ping) == "ping"  # spawning still works too


@pytest.mark.parametrize("reason", [NORMAL, SHUTDOWN, Shutdown("done")])
async def test_a_clean_end_is_not_logged_as_a_crash(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture, reason: object
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")

    async def ends() -> None:
        await receive()
        raise Stop(reason)

    pid = spawn(ends)
    ended = await watch(pid)
    send(pid, "go")
    assert await wait(ended) == reason
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_an_actor_told_to_exit_before_its_first_step_ends_without_running(
    node: asyncotp.Node,
) -> None:
    ran = anyio.Event()

    async def never_runs() -> None:
        ran.set()

    async def scenario() -> object:
        target = spawn(never_runs)
        ref = monitor(target)
        asyncotp.send_exit(target, "too early")
        assert not is_alive(target)
        down = await receive(lambda m: isinstance(m, Down) and m.ref is ref, timeout=WAIT)
        await anyio.lowlevel.checkpoint()  # the target's task has had its first step
        gc.collect()  # an unawaited coroutine would warn here (an error under -W error)
        return down.reason

    assert await in_actor(scenario) == "too early"
    assert not ran.is_set()


class _Marker:
    """Something an actor holds while it runs."""


@pytest.mark.parametrize("crashes", [False, True], ids=["returns", "crashes"])
async def test_an_actor_that_ended_is_freed_at_once_not_left_to_the_garbage_collector(
    node: asyncotp.Node, crashes: bool
) -> None:
    held: list[weakref.ref[object]] = []

    async def body() -> None:
        marker = _Marker()
        held.extend((weakref.ref(marker), weakref.ref(asyncio.current_task())))
        await receive()
        if crashes:
            raise RuntimeError("crash")

    logger = logging.getLogger("asyncotp")
    old_level = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # no crash report holding the exception
    gc.collect()
    gc.disable()
    try:
        pid = spawn(body)
        ended = await watch(pid)
        send(pid, "go")
        reason = await wait(ended)
        assert isinstance(reason, RuntimeError) if crashes else reason is NORMAL
        del reason, ended  # the crash's traceback holds the actor's frame: let it go
        await anyio.lowlevel.checkpoint()  # the actor's task has finished its last step
        assert [ref() for ref in held] == [None, None]  # freed without a collection
    finally:
        gc.enable()
        logger.setLevel(old_level)
