"""The runtime: ``run``, ``async with node()`` and its shutdown, ``NoNodeError``."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import asyncotp
from asyncotp import (
    SHUTDOWN,
    Down,
    Exited,
    NoNodeError,
    Pid,
    is_alive,
    monitor,
    process_info,
    receive,
    self_pid,
    send,
    spawn,
)
from asyncotp._core import exit_future
from tests.helpers import WAIT, wait


def no_task_outlives(before: set[asyncio.Task[Any]]) -> None:
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if not t.done() and t is not current}
    assert not left, f"tasks left running after the node stopped: {left}"


async def waits_forever(log: list[object], name: object, started: anyio.Event) -> None:
    """A plain actor that records ``name`` in ``log`` when it is stopped."""
    try:
        started.set()
        await receive(lambda m: m == "never")
    finally:
        log.append(name)


async def complies_with_shutdown(log: list[object], started: anyio.Event) -> None:
    """A trapping actor that, told to shut down, cleans up (yielding a few
    times) and ends."""
    started.set()
    exited = await receive(lambda m: isinstance(m, Exited))
    log.append(exited)
    for _ in range(3):
        await anyio.lowlevel.checkpoint()
    log.append("cleaned up")


# -- run ------------------------------------------------------------------------


def test_run_returns_the_result_of_main() -> None:
    async def main(a: int, b: int) -> int:
        return a + b

    assert asyncotp.run(main, 2, 3) == 5


def test_run_runs_main_as_an_actor_with_a_pid_and_a_mailbox() -> None:
    async def main() -> tuple[Pid, bool, object, str | None]:
        me = self_pid()
        send(me, "to myself")
        info = process_info(me)
        return me, is_alive(me), await receive(timeout=0), info.status if info else None

    pid, alive, message, status = asyncotp.run(main)
    assert isinstance(pid, Pid)
    assert alive
    assert message == "to myself"
    assert status == "running"


def test_run_stops_the_actors_main_left_running_before_it_returns() -> None:
    log: list[object] = []

    async def main() -> str:
        started = anyio.Event()
        spawn(waits_forever, log, "worker", started)
        await started.wait()
        return "done"

    assert asyncotp.run(main) == "done"
    assert log == ["worker"]


def test_an_error_raised_by_main_propagates_from_run_after_the_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    error = ValueError("main failed")
    log: list[object] = []

    async def main() -> None:
        started = anyio.Event()
        spawn(waits_forever, log, "worker", started)
        await started.wait()
        raise error

    with pytest.raises(ValueError, match="main failed") as caught:
        asyncotp.run(main)
    assert caught.value is error
    assert log == ["worker"]  # the worker was stopped before run raised
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []  # raised, not logged


def test_run_on_another_backend_raises_a_clear_value_error() -> None:
    ran = []

    async def main() -> None:
        ran.append(True)

    with pytest.raises(ValueError, match="asyncio") as caught:
        asyncotp.run(main, backend="trio")
    assert "trio" in str(caught.value)
    assert "uvloop" in str(caught.value)
    assert ran == []


def test_run_rejects_a_main_that_is_not_async_and_names_it() -> None:
    def sync_main() -> None:
        pass

    with pytest.raises(TypeError, match="sync_main"):
        asyncotp.run(sync_main)  # type: ignore[arg-type]


def test_run_with_use_uvloop_runs_the_node_on_uvloop() -> None:
    async def echo() -> None:
        while True:
            sender, message = await receive()
            send(sender, message)

    async def main(greeting: str) -> tuple[str, object, bool]:
        loop_module = type(asyncio.get_running_loop()).__module__
        server = spawn(echo)
        send(server, (self_pid(), greeting))
        echoed = await receive(timeout=WAIT)
        asyncotp.send_after(0.001, self_pid(), "tick")
        ticked = await receive(lambda m: m == "tick", timeout=WAIT) == "tick"
        with pytest.raises(asyncotp.ReceiveTimeout):
            await receive(timeout=0.001)
        return loop_module, echoed, ticked

    loop_module, echoed, ticked = asyncotp.run(main, "hello", backend_options={"use_uvloop": True})
    assert loop_module.startswith("uvloop")
    assert echoed == "hello"
    assert ticked


# -- async with node() ----------------------------------------------------------


async def test_leaving_the_node_block_stops_every_actor_in_reverse_start_order() -> None:
    before = asyncio.all_tasks()
    stopped: list[object] = []
    downs: list[tuple[Pid, object]] = []

    async def watcher(count: int, ready: anyio.Event) -> None:
        # Traps exits, so the node's SHUTDOWN reaches it as a message; it first
        # collects the Down of every member, then ends.
        pids = [await receive(lambda m: isinstance(m, Pid)) for _ in range(count)]
        refs = {monitor(pid): pid for pid in pids}
        ready.set()
        for _ in range(count):
            down = await receive(lambda m: isinstance(m, Down) and m.ref in refs)
            downs.append((down.pid, down.reason))

    async with asyncotp.node() as the_node:
        ready = anyio.Event()
        watching = spawn(watcher, 5, ready, trap_exits=True)
        members = []
        for i in range(5):
            started = anyio.Event()
            members.append(spawn(waits_forever, stopped, i, started))
            await wait(started.wait())
            send(watching, members[-1])
        await wait(ready.wait())
    assert stopped == [4, 3, 2, 1, 0]
    assert downs == [(pid, SHUTDOWN) for pid in reversed(members)]
    assert the_node.procs == {}
    assert not any(is_alive(pid) for pid in [*members, watching])
    await asyncio.sleep(0)  # one step for tasks of actors stopped before they ever ran
    no_task_outlives(before)


async def test_leaving_the_node_block_sends_shutdown_to_a_trapping_actor_and_waits_for_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    log: list[object] = []
    async with asyncotp.node() as the_node:
        started = anyio.Event()
        spawn(complies_with_shutdown, log, started, trap_exits=True)
        await wait(started.wait())
    assert log == [Exited(the_node.pid, SHUTDOWN), "cleaned up"]
    assert the_node.procs == {}
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_trapping_actor_that_ignores_shutdown_is_killed_after_the_shutdown_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncotp")
    timeout = 0.05
    log: list[object] = []

    async def stubborn(started: anyio.Event) -> None:
        try:
            started.set()
            while True:
                log.append(await receive())
        finally:
            log.append("ended")

    loop = asyncio.get_running_loop()
    async with asyncotp.node(shutdown_timeout=timeout) as the_node:
        started = anyio.Event()
        pid = spawn(stubborn, started, trap_exits=True)
        await wait(started.wait())
        leaving = loop.time()
    assert loop.time() - leaving >= timeout * 0.9
    assert log == [Exited(the_node.pid, SHUTDOWN), "ended"]
    assert the_node.procs == {}
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "did not stop" in warning.getMessage()
    assert warning.actor_pid == pid  # type: ignore[attr-defined]


@pytest.mark.parametrize("cancel", ["move_on_after", "fail_after"])
async def test_a_cancellation_around_the_node_block_still_shuts_every_actor_down(
    cancel: str,
) -> None:
    before = asyncio.all_tasks()
    log: list[object] = []
    scope_factory: Callable[[float], Any] = getattr(anyio, cancel)
    expect = pytest.raises(TimeoutError) if cancel == "fail_after" else contextlib.nullcontext()
    with expect, scope_factory(0.01):
        async with asyncotp.node() as the_node:
            trapping_started, plain_started = anyio.Event(), anyio.Event()
            spawn(complies_with_shutdown, log, trapping_started, trap_exits=True)
            spawn(waits_forever, log, "plain", plain_started)
            await wait(trapping_started.wait())
            await wait(plain_started.wait())
            await anyio.sleep_forever()
    assert log == ["plain", Exited(the_node.pid, SHUTDOWN), "cleaned up"]
    assert the_node.procs == {}
    assert the_node.closed
    await asyncio.sleep(0)  # one step for tasks of actors stopped before they ever ran
    no_task_outlives(before)


async def test_an_error_in_the_node_block_still_shuts_every_actor_down() -> None:
    log: list[object] = []
    nodes: list[asyncotp.Node] = []

    async def failing_block() -> None:
        async with asyncotp.node() as the_node:
            nodes.append(the_node)
            started = anyio.Event()
            spawn(waits_forever, log, "worker", started)
            await wait(started.wait())
            raise KeyError("in the block")

    with pytest.raises(KeyError, match="in the block"):
        await failing_block()
    assert log == ["worker"]
    assert nodes[0].procs == {}


async def test_a_node_inside_a_running_node_raises() -> None:
    async with asyncotp.node():
        with pytest.raises(RuntimeError, match="already running"):
            async with asyncotp.node():
                pass


async def test_a_new_node_can_start_after_the_previous_one_stopped() -> None:
    async def main_like() -> None:
        await receive()

    async with asyncotp.node():
        first = spawn(main_like)
    async with asyncotp.node():
        second = spawn(main_like)
        assert is_alive(second)
        assert not is_alive(first)
        assert first != second


async def test_node_rejects_a_shutdown_timeout_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="shutdown_timeout"):
        async with asyncotp.node(shutdown_timeout=0):
            pass


# -- NoNodeError ----------------------------------------------------------------


async def _noop() -> None:
    pass


NODE_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("spawn", lambda: spawn(_noop)),
    ("send to a name", lambda: send("someone", "hello")),
    ("whereis", lambda: asyncotp.whereis("someone")),
    ("registered", asyncotp.registered),
    ("send_after", lambda: asyncotp.send_after(1.0, "someone", "hello")),
    ("processes", asyncotp.processes),
]


@pytest.mark.parametrize(("operation", "call"), NODE_CALLS, ids=[op for op, _ in NODE_CALLS])
def test_calls_outside_a_node_raise_no_node_error_saying_how_to_start_one(
    operation: str, call: Callable[[], object]
) -> None:
    with pytest.raises(NoNodeError) as caught:
        call()
    message = str(caught.value)
    assert "asyncotp.run(main)" in message
    assert "asyncotp.node()" in message
    assert isinstance(caught.value, asyncotp.ActorError)
    assert isinstance(caught.value, RuntimeError)


async def test_calls_in_a_task_outside_any_node_raise_no_node_error() -> None:
    with pytest.raises(NoNodeError, match=r"asyncotp\.run"):
        spawn(_noop)


async def test_sending_to_a_pid_of_a_stopped_node_raises_no_node_error() -> None:
    async with asyncotp.node():
        pid = spawn(_noop)
    with pytest.raises(NoNodeError, match="stopped"):
        send(pid, "too late")


async def test_an_actor_spawned_during_the_shutdown_is_stopped_too() -> None:
    before = asyncio.all_tasks()
    log: list[object] = []

    async def spawns_on_the_way_out(started: anyio.Event) -> None:
        try:
            started.set()
            await receive(lambda m: m == "never")
        finally:
            child_started = anyio.Event()
            spawn(waits_forever, log, "late child", child_started)

    async with asyncotp.node() as the_node:
        started = anyio.Event()
        spawn(spawns_on_the_way_out, started)
        await wait(started.wait())
    assert the_node.procs == {}
    await asyncio.sleep(0)  # one step for tasks of actors stopped before they ever ran
    no_task_outlives(before)


async def test_the_exit_future_of_an_actor_already_gone_resolves_at_once(
    node: asyncotp.Node,
) -> None:
    async def quick() -> None:
        return None

    pid = asyncotp.spawn(quick)
    await exit_future(pid)  # it ends normally
    assert await asyncio.wait_for(exit_future(pid), 1.0) is asyncotp.NOPROC


async def test_a_task_that_did_not_inherit_the_node_context_still_finds_the_node_of_its_loop(
    node: asyncotp.Node,
) -> None:
    # As a web framework's request task does when the node runs in the app's
    # lifespan task: a fresh context, same event loop.
    class Named(asyncotp.GenServer):
        async def handle_call(self, request: object, caller: asyncotp.Caller) -> object:
            return ("pong", request)

    await Named.start(name="named")
    loop = asyncio.get_running_loop()
    task = loop.create_task(asyncotp.call("named", 1), context=contextvars.Context())
    assert await task == ("pong", 1)


async def test_outside_any_node_a_fresh_context_still_raises_no_node_error() -> None:
    async def orphan() -> None:
        asyncotp.whereis("anything")

    loop = asyncio.get_running_loop()
    with pytest.raises(asyncotp.NoNodeError, match=r"asyncotp\.run"):
        await loop.create_task(orphan(), context=contextvars.Context())
