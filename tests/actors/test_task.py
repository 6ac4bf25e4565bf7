"""Task: a function run concurrently as an actor, awaited by its caller.

The tasks here wait on events the test controls (``Gate``, ``asyncio.Event``)
and the timeouts run on the kit's ``VirtualClock``: nothing sleeps to
synchronise.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, assert_type

import pytest

from asyncotp import (
    BRUTAL_KILL,
    KILLED,
    NORMAL,
    SHUTDOWN,
    ActorError,
    Down,
    Exited,
    GenServer,
    Node,
    Pid,
    Stop,
    Task,
    TaskExited,
    TaskReply,
    TaskTimeout,
    cast,
    is_alive,
    process_info,
    receive,
    self_pid,
    send,
    set_trap_exits,
    spawn,
)
from asyncotp.testing import Probe, VirtualClock, kill, wait_for_exit
from tests.helpers import Gate, drain, in_actor, wait, watch


async def double(x: int) -> int:
    return 2 * x


async def fail(message: str) -> int:
    raise ValueError(message)


async def held(gate: Gate, value: str = "done") -> str:
    """Returns ``value`` once the test opens the gate."""
    await gate.pass_through()
    return value


async def forever() -> str:
    await asyncio.Event().wait()
    return "never"


async def stubborn(entered: asyncio.Event) -> str:
    """Traps exits, so SHUTDOWN arrives as a message it ignores."""
    set_trap_exits(True)
    entered.set()
    await asyncio.Event().wait()
    return "never"


# -- start ---------------------------------------------------------------------------


async def test_await_gives_the_result_of_the_function(otp_node: Node) -> None:
    task = Task.start(double, 21)
    assert await task == 42


async def test_start_returns_at_once_and_the_function_runs_concurrently(otp_node: Node) -> None:
    gate = Gate()
    task = Task.start(held, gate, "late")
    assert not gate.entered.is_set()  # start did not wait for the function
    await wait(gate.entered.wait())
    assert is_alive(task.pid)
    gate.open()
    assert await Task.await_(task) == "late"


async def test_a_task_started_by_an_actor_is_linked_to_it_and_monitored_by_it(
    otp_node: Node,
) -> None:
    gate = Gate()

    async def body() -> tuple[Task[str], Any, Any]:
        task = Task.start(held, gate)
        mine = process_info(self_pid())
        gate.open()
        await task
        return task, mine, process_info(self_pid())

    task, before, after = await in_actor(body)
    assert task.owner is not None
    assert task.pid in before.links
    assert task.pid in before.monitors
    assert task.pid not in after.monitors  # await took the monitor down


async def test_a_task_started_by_a_plain_task_is_not_linked_and_has_no_owner(
    otp_node: Node,
) -> None:
    gate = Gate()
    task = Task.start(held, gate)
    assert task.owner is None
    info = process_info(task.pid)
    assert info is not None
    assert info.links == frozenset()
    gate.open()
    assert await task == "done"


async def test_start_refuses_what_is_not_an_async_function(otp_node: Node) -> None:
    def sync(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"Task\.start: fn must be an async function"):
        Task.start(sync, 1)  # type: ignore[arg-type]
    coroutine = double(1)
    with pytest.raises(TypeError, match="not a coroutine"):
        Task.start(coroutine)  # type: ignore[arg-type]


def test_task_is_generic_in_its_result_and_start_checks_the_arguments() -> None:
    # Checked by mypy (strict, over the tests): no event loop needed.
    def typed() -> None:
        task = Task.start(double, 2)
        assert_type(task, Task[int])
        Task.start(double, "two")  # type: ignore[arg-type]
        Task.start(double)  # type: ignore[arg-type]

    assert callable(typed)


# -- crashes and links ---------------------------------------------------------------


async def test_await_reraises_the_exception_the_task_raised(otp_node: Node) -> None:
    task = Task.start(fail, "boom")
    with pytest.raises(ValueError, match="boom") as info:
        await task
    assert any("in the task" in note for note in getattr(info.value, "__notes__", []))


async def test_a_crashing_task_takes_its_caller_down_with_the_same_reason(
    otp_node: Node,
) -> None:
    error = ValueError("task failed")
    gate = Gate()

    async def raise_it() -> None:
        await gate.pass_through()
        raise error

    async def caller() -> None:
        await Task.start(raise_it)

    pid = spawn(caller)
    reason = await watch(pid)
    await wait(gate.entered.wait())
    gate.open()
    assert await wait(reason) is error


async def test_a_caller_that_traps_exits_gets_the_error_from_await_and_an_exited(
    otp_node: Node,
) -> None:
    async def body() -> tuple[str, list[object]]:
        set_trap_exits(True)
        task = Task.start(fail, "boom")
        try:
            await task
        except ValueError as exc:
            caught = str(exc)
        exited = await receive(lambda m: isinstance(m, Exited), timeout=5.0)
        return caught, [exited, *await drain()]

    caught, messages = await in_actor(body)
    assert caught == "boom"
    assert len(messages) == 1  # the Exited, and neither the Down nor anything else
    assert isinstance(messages[0], Exited)


async def test_a_caller_that_crashes_takes_its_running_tasks_down(otp_node: Node) -> None:
    started: asyncio.Future[Pid] = asyncio.get_running_loop().create_future()

    async def caller() -> None:
        task = Task.start(forever)
        started.set_result(task.pid)
        await receive()  # until the test crashes it
        raise RuntimeError("caller crashed")

    pid = spawn(caller)
    task_pid = await started
    task_end = await watch(task_pid)
    send(pid, "crash")
    assert isinstance(await task_end, RuntimeError)


async def test_a_task_that_ends_without_a_result_raises_task_exited_with_its_reason(
    otp_node: Node,
) -> None:
    async def stops() -> int:
        raise Stop("bad_config")

    with pytest.raises(TaskExited) as info:
        await Task.start(stops)
    assert info.value.reason == "bad_config"

    task = Task.start(forever)
    await kill(task.pid)
    with pytest.raises(TaskExited) as killed:
        await task
    assert killed.value.reason is KILLED
    assert killed.value.pid is task.pid


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


async def test_a_reason_whose_repr_raises_still_gives_task_exited(otp_node: Node) -> None:
    reason = Unprintable()

    async def stops() -> int:
        raise Stop(reason)

    async def body() -> TaskExited:
        set_trap_exits(True)  # linked, so the runtime logs no report with that reason
        with pytest.raises(TaskExited, match="Unprintable object") as info:
            await Task.start(stops)
        return info.value

    error = await in_actor(body)
    assert error.reason is reason


# -- await and timeouts ----------------------------------------------------------------


async def test_await_past_its_timeout_raises_task_timeout_and_the_task_keeps_running(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    gate = Gate()
    task = Task.start(held, gate)
    with pytest.raises(TaskTimeout) as info:
        await Task.await_(task, timeout=2.0)
    assert isinstance(info.value, TimeoutError)
    assert info.value.pid is task.pid
    assert info.value.timeout == 2.0
    assert virtual_clock.elapsed == 2.0
    assert is_alive(task.pid)
    assert await Task.shutdown(task) is None


async def test_await_defaults_to_a_five_second_timeout(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    task = Task.start(forever)
    with pytest.raises(TaskTimeout):
        await task
    assert virtual_clock.elapsed == 5.0
    await Task.shutdown(task, BRUTAL_KILL)


async def test_after_a_timeout_a_late_result_never_reaches_the_callers_mailbox(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    gate = Gate()

    async def body() -> list[object]:
        task = Task.start(held, gate)
        with pytest.raises(TaskTimeout):
            await Task.await_(task, timeout=1.0)
        end = await watch(task.pid)
        gate.open()  # the task replies now, too late
        assert await wait(end) is NORMAL
        return await drain()

    assert await in_actor(body) == []


async def test_after_await_neither_the_reply_nor_the_down_is_left_in_the_mailbox(
    otp_node: Node,
) -> None:
    gate = Gate()

    async def body() -> list[object]:
        task = Task.start(held, gate)
        end = await watch(task.pid)
        gate.open()
        assert await wait(end) is NORMAL  # both the reply and the Down are queued now
        assert await task == "done"
        return await drain()

    assert await in_actor(body) == []


async def test_a_task_gives_its_result_once(otp_node: Node) -> None:
    task = Task.start(double, 1)
    assert await task == 2
    with pytest.raises(ActorError, match="already been awaited"):
        await task


async def test_only_the_actor_that_started_a_task_can_await_it(otp_node: Node) -> None:
    async def owner() -> Task[int]:
        return Task.start(double, 1)

    task = await in_actor(owner)
    with pytest.raises(ActorError, match="only that actor can await"):
        await task
    with pytest.raises(ActorError, match="only that actor"):
        await Task.shutdown(task)


async def test_timeouts_are_validated_before_anything_happens(otp_node: Node) -> None:
    task = Task.start(double, 1)
    for bad in (math.nan, -1.0, "5"):
        with pytest.raises(ValueError, match="timeout"):
            await Task.await_(task, timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shutdown"):
        await Task.shutdown(task, -1.0)
    assert await Task.await_(task, timeout=math.inf) == 2  # inf: no limit


# -- yield -----------------------------------------------------------------------------


async def test_yield_returns_none_while_the_task_runs_and_then_its_result(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    gate = Gate()
    task = Task.start(held, gate, "ready")
    assert await Task.yield_(task, timeout=1.0) is None
    assert await Task.yield_(task, timeout=0) is None
    assert is_alive(task.pid)  # still running, still awaitable
    gate.open()
    assert await Task.yield_(task) == "ready"
    with pytest.raises(ActorError, match="already"):
        await Task.yield_(task)


async def test_yield_default_tells_not_finished_from_a_result_of_none(
    otp_node: Node,
) -> None:
    gate = Gate()

    async def nothing(gate: Gate) -> None:
        await gate.pass_through()

    task = Task.start(nothing, gate)
    pending = object()
    assert await Task.yield_(task, 0, default=pending) is pending
    gate.open()
    assert await Task.yield_(task, 5.0, default=pending) is None


async def test_yield_reraises_the_error_of_a_failed_task(otp_node: Node) -> None:
    task = Task.start(fail, "no")
    with pytest.raises(ValueError, match="no"):
        await Task.yield_(task)


# -- shutdown --------------------------------------------------------------------------


async def test_shutdown_stops_a_running_task_and_returns_none(otp_node: Node) -> None:
    task = Task.start(forever)
    end = await watch(task.pid)
    assert await Task.shutdown(task) is None
    assert await wait(end) is SHUTDOWN
    assert not is_alive(task.pid)


async def test_shutdown_returns_the_result_that_came_in_first(otp_node: Node) -> None:
    task = Task.start(double, 4)
    assert await wait_for_exit(task.pid) is NORMAL  # done before the shutdown
    assert await Task.shutdown(task) == 8


async def test_shutdown_raises_the_error_of_a_task_that_failed_first(otp_node: Node) -> None:
    task = Task.start(fail, "earlier")
    await wait_for_exit(task.pid)
    with pytest.raises(ValueError, match="earlier"):
        await Task.shutdown(task)


async def test_shutdown_kills_a_task_that_does_not_stop_within_its_timeout(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    entered = asyncio.Event()
    task = Task.start(stubborn, entered)
    await entered.wait()
    end = await watch(task.pid)
    assert await Task.shutdown(task, 3.0) is None
    assert await wait(end) is KILLED
    assert virtual_clock.elapsed == 3.0


async def test_shutdown_with_brutal_kill_kills_at_once(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    entered = asyncio.Event()
    task = Task.start(stubborn, entered)
    await entered.wait()
    end = await watch(task.pid)
    assert await Task.shutdown(task, BRUTAL_KILL) is None
    assert await wait(end) is KILLED
    assert virtual_clock.elapsed == 0


async def test_shutdown_unlinks_first_so_the_caller_survives_and_no_message_is_left(
    otp_node: Node,
) -> None:
    async def body() -> tuple[object, list[object], bool]:
        set_trap_exits(True)  # an Exited would show in the mailbox
        task = Task.start(forever)
        result = await Task.shutdown(task)
        return result, await drain(), is_alive(self_pid())

    assert await in_actor(body) == (None, [], True)


async def test_shutdown_of_a_task_that_already_timed_out_stops_it(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    task = Task.start(forever)
    with pytest.raises(TaskTimeout):
        await Task.await_(task, 1.0)
    assert await Task.shutdown(task, default="gone") == "gone"
    assert not is_alive(task.pid)


# -- many tasks ------------------------------------------------------------------------


async def test_await_many_returns_the_results_in_the_order_of_the_tasks(
    otp_node: Node,
) -> None:
    gates = [Gate() for _ in range(3)]
    tasks = [Task.start(held, gate, str(i)) for i, gate in enumerate(gates)]
    for gate in reversed(gates):  # they finish in reverse order
        gate.open()
    assert await Task.await_many(tasks) == ["0", "1", "2"]

    async def in_an_actor() -> list[int]:
        return await Task.await_many([Task.start(double, i) for i in range(4)])

    assert await in_actor(in_an_actor) == [0, 2, 4, 6]


async def test_await_many_of_no_tasks_is_an_empty_list(otp_node: Node) -> None:
    assert await Task.await_many([]) == []


async def test_await_many_raises_the_first_failure_without_waiting_for_the_others(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    async def body() -> None:
        set_trap_exits(True)
        slow = Task.start(forever)
        with pytest.raises(ValueError, match="fast failure"):
            await Task.await_many([slow, Task.start(fail, "fast failure")])
        assert virtual_clock.elapsed == 0
        assert is_alive(slow.pid)
        await Task.shutdown(slow)
        await receive(lambda m: isinstance(m, Exited), timeout=1.0)
        assert await drain() == []

    await in_actor(body)


async def test_await_many_times_out_as_a_whole(virtual_clock: VirtualClock, otp_node: Node) -> None:
    gate = Gate()
    tasks = [Task.start(double, 1), Task.start(held, gate)]
    with pytest.raises(TaskTimeout, match="1 of 2"):
        await Task.await_many(tasks, timeout=2.0)
    assert virtual_clock.elapsed == 2.0
    with pytest.raises(ActorError, match="already"):
        await tasks[1]
    gate.open()
    await wait_for_exit(tasks[1].pid)


# -- inside a GenServer ----------------------------------------------------------------


class Fetcher(GenServer):
    """Starts tasks without awaiting them; their outcomes come to handle_info,
    and it reports each to ``observer``."""

    async def init(self, observer: Pid) -> None:
        self.observer = observer
        self.labels: dict[object, str] = {}
        set_trap_exits(True)  # a failing task must not take the server down

    async def handle_cast(self, request: Any) -> None:
        label, fn, arg = request
        task = Task.start(fn, arg)
        self.labels[task.ref] = label

    async def handle_info(self, message: Any) -> None:
        match message:
            case TaskReply(ref, value) if ref in self.labels:
                send(self.observer, ("reply", self.labels[ref], value))
            case Down(ref, _pid, reason) if ref in self.labels:
                send(self.observer, ("down", self.labels.pop(ref), reason))
            case Exited():
                pass


async def test_a_genserver_gets_the_reply_then_the_down_in_handle_info(
    otp_node: Node,
) -> None:
    probe = await Probe.start()
    server = await Fetcher.start(probe.pid)
    cast(server, ("ok", double, 5))
    assert await probe.expect() == ("reply", "ok", 10)
    assert await probe.expect() == ("down", "ok", NORMAL)
    cast(server, ("bad", fail, "nope"))
    kind, label, reason = await probe.expect()
    assert (kind, label) == ("down", "bad")  # a Down without a reply: it failed
    assert isinstance(reason, ValueError)
