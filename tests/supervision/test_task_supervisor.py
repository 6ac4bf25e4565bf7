"""TaskSupervisor: tasks started at run time under a DynamicSupervisor, and
``async_stream``, a bounded concurrent map over an iterable.

Tasks wait on events the test controls; timeouts and slow consumers run on
the kit's ``VirtualClock``. Nothing sleeps to synchronise: a virtual sleep
inside a task or a consumer is part of the scenario (how long it works).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, assert_type

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncotp
from asyncotp import (
    NORMAL,
    SHUTDOWN,
    ChildSpec,
    ChildType,
    MaxChildren,
    Node,
    Pid,
    Restart,
    Supervisor,
    Task,
    TaskSupervisor,
    TaskTimeout,
    count_children,
    is_alive,
    process_info,
    receive,
    self_pid,
    set_trap_exits,
    spawn,
    start_child,
    stop,
    whereis,
    which_children,
)
from asyncotp.testing import ReportCapture, VirtualClock, kill
from tests.helpers import Gate, drain, in_actor, started, wait, watch


async def double(x: int) -> int:
    return 2 * x


async def fail(message: str) -> int:
    raise ValueError(message)


async def held(gate: Gate, value: str = "done") -> str:
    await gate.pass_through()
    return value


async def forever() -> str:
    await asyncio.Event().wait()
    return "never"


# -- the supervisor --------------------------------------------------------------------


async def test_start_gives_an_empty_task_supervisor_registered_under_its_name(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start(name="tasks")
    assert whereis("tasks") is sup
    assert await TaskSupervisor.children("tasks") == []
    assert (await count_children(sup)).active == 0


async def test_child_spec_puts_it_in_a_tree_as_a_supervisor_with_its_name_as_id(
    otp_node: Node,
) -> None:
    spec = TaskSupervisor.child_spec(name="tasks", max_children=2)
    assert spec.id == "tasks"
    assert spec.type is ChildType.SUPERVISOR
    assert TaskSupervisor.child_spec().id == "TaskSupervisor"
    root = await Supervisor.start([spec])
    [child] = await which_children(root)
    assert child.pid is whereis("tasks")
    task = await TaskSupervisor.async_nolink("tasks", double, 4)
    assert await task == 8


async def test_start_child_runs_the_function_unlinked_and_forgets_it_when_done(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    gate = Gate()
    pid = await TaskSupervisor.start_child(sup, held, gate)
    assert await TaskSupervisor.children(sup) == [pid]
    info = process_info(pid)
    assert info is not None
    assert info.parent is sup  # supervised, not linked to the caller
    assert info.links == frozenset({sup})
    end = await watch(pid)
    gate.open()
    assert await wait(end) is NORMAL
    assert await TaskSupervisor.children(sup) == []


async def test_start_child_with_restart_transient_runs_again_after_a_crash(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    runs: list[Pid] = []
    second_run = asyncio.Event()

    async def flaky() -> None:
        runs.append(self_pid())
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        second_run.set()

    await TaskSupervisor.start_child(sup, flaky, restart=Restart.TRANSIENT)
    await second_run.wait()
    assert len(set(runs)) == 2


async def test_a_crashed_task_is_reported_by_its_supervisor_and_not_restarted(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    sup = await TaskSupervisor.start()
    pid = await TaskSupervisor.start_child(sup, fail, "reported")
    report = await crash_reports.wait_for("child_terminated", pid=pid)
    assert report.level == logging.ERROR
    assert isinstance(report.reason, ValueError)
    assert await TaskSupervisor.children(sup) == []
    assert crash_reports.events("child_restarted") == []


async def test_beyond_max_children_starting_a_task_raises_max_children_and_runs_nothing(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start(max_children=1)
    gate = Gate()
    first = await TaskSupervisor.async_nolink(sup, held, gate)
    ran: list[str] = []

    async def note() -> None:
        ran.append("ran")

    with pytest.raises(MaxChildren):
        await TaskSupervisor.async_nolink(sup, note)
    with pytest.raises(MaxChildren):
        await TaskSupervisor.start_child(sup, note)
    gate.open()
    assert await first == "done"
    assert ran == []


async def test_the_supervisor_stops_its_tasks_with_shutdown_when_it_stops(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    task = await TaskSupervisor.async_nolink(sup, forever)
    await stop(sup)
    assert not is_alive(task.pid)
    assert await Task.shutdown(task, default="stopped") == "stopped"


async def test_a_caller_that_gives_up_while_its_start_waits_leaves_no_task_behind(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    # The supervisor is busy starting another child, so the request waits in
    # its mailbox; the caller is cancelled meanwhile. The task the supervisor
    # spawns later ends at once, without running its function.
    sup = await TaskSupervisor.start()
    busy = Gate()

    async def slow_start() -> Pid:
        await busy.pass_through()
        return spawn(forever)

    blocker = await started(start_child(sup, ChildSpec("slow", slow_start, Restart.TEMPORARY)))
    await wait(busy.entered.wait())
    ran: list[str] = []

    async def note() -> None:
        ran.append("ran")

    attempt = await started(TaskSupervisor.async_nolink(sup, note))  # queued behind it
    attempt.cancel()
    busy.open()
    await blocker
    report = await crash_reports.wait_for("child_terminated", child_id=note.__qualname__)
    assert report.reason is NORMAL
    assert ran == []
    assert attempt.cancelled()


def test_task_functions_are_typed_by_the_function_they_run() -> None:
    # Checked by mypy (strict, over the tests): no event loop needed.
    async def typed(sup: Pid) -> None:
        task = await TaskSupervisor.async_nolink(sup, double, 1)
        assert_type(task, Task[int])
        await TaskSupervisor.async_(sup, double, "one")  # type: ignore[arg-type]
        await TaskSupervisor.start_child(sup, double)  # type: ignore[arg-type]
        async for result in TaskSupervisor.async_stream(sup, [1, 2], double):
            match result:
                case ("ok", value):
                    assert_type(value, int)
                case ("exit", reason):
                    assert_type(reason, object)
        TaskSupervisor.async_stream(sup, ["a"], double)  # type: ignore[arg-type]

    assert callable(typed)


# -- async_ and async_nolink -------------------------------------------------------------


async def test_async_gives_a_supervised_task_linked_to_the_calling_actor(otp_node: Node) -> None:
    sup = await TaskSupervisor.start()
    gate = Gate()

    async def body() -> tuple[Task[str], frozenset[Pid], str]:
        task = await TaskSupervisor.async_(sup, held, gate)
        info = process_info(self_pid())
        assert info is not None
        gate.open()
        return task, info.links, await task

    task, links, result = await in_actor(body)
    assert task.pid in links
    assert result == "done"


async def test_a_crash_in_an_async_task_takes_the_calling_actor_down(otp_node: Node) -> None:
    sup = await TaskSupervisor.start()
    gate = Gate()
    error = ValueError("linked crash")

    async def raise_it() -> None:
        await gate.pass_through()
        raise error

    async def caller() -> None:
        task = await TaskSupervisor.async_(sup, raise_it)
        await task

    pid = spawn(caller)
    end = await watch(pid)
    await wait(gate.entered.wait())
    gate.open()
    assert await wait(end) is error
    assert is_alive(sup)  # the supervisor carries on


async def test_async_nolink_raises_the_crash_from_await_and_the_caller_lives_on(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()

    async def body() -> tuple[str, list[object], bool]:
        task = await TaskSupervisor.async_nolink(sup, fail, "isolated")
        info = process_info(self_pid())
        assert info is not None
        assert task.pid not in info.links
        try:
            await task
        except ValueError as exc:
            caught = str(exc)
        return caught, await drain(), is_alive(self_pid())

    assert await in_actor(body) == ("isolated", [], True)


async def test_async_nolink_from_a_plain_task_gives_its_result_through_await(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    tasks = [await TaskSupervisor.async_nolink(sup, double, i) for i in range(3)]
    assert await Task.await_many(tasks) == [0, 2, 4]


async def test_shutdown_of_a_supervised_task_stops_it_and_its_supervisor_forgets_it(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()

    async def body() -> tuple[object, list[object]]:
        set_trap_exits(True)
        task = await TaskSupervisor.async_(sup, forever)
        end = await watch(task.pid)
        result = await Task.shutdown(task)
        assert await wait(end) is SHUTDOWN
        return result, await drain()

    assert await in_actor(body) == (None, [])
    assert await TaskSupervisor.children(sup) == []


async def test_start_functions_check_their_arguments(otp_node: Node) -> None:
    sup = await TaskSupervisor.start()

    def sync() -> int:
        return 1

    with pytest.raises(TypeError, match="async function"):
        await TaskSupervisor.async_nolink(sup, sync)  # type: ignore[arg-type]
    for bad in (-1.0, float("nan"), 10**400):
        with pytest.raises(ValueError, match="shutdown"):
            await TaskSupervisor.start_child(sup, double, 1, shutdown=bad)
    assert await TaskSupervisor.children(sup) == []


# -- async_stream ------------------------------------------------------------------------


async def collect(results: AsyncIterator[Any]) -> list[Any]:
    return [result async for result in results]


async def test_async_stream_yields_ok_results_in_input_order(otp_node: Node) -> None:
    sup = await TaskSupervisor.start()
    gates = {i: Gate() for i in range(4)}

    async def work(i: int) -> int:
        await gates[i].pass_through()
        return i * 10

    for gate in reversed(gates.values()):  # the last one finishes first
        gate.open()
    stream = TaskSupervisor.async_stream(sup, range(4), work, max_concurrency=4)
    assert await collect(stream) == [("ok", 0), ("ok", 10), ("ok", 20), ("ok", 30)]


async def test_async_stream_unordered_yields_results_as_they_come(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    sup = await TaskSupervisor.start()

    async def work(delay: int) -> int:
        await asyncio.sleep(delay)  # virtual: how long this item works
        return delay

    stream = TaskSupervisor.async_stream(sup, [3, 1, 2], work, max_concurrency=3, ordered=False)
    assert await collect(stream) == [("ok", 1), ("ok", 2), ("ok", 3)]
    assert virtual_clock.elapsed == 3


async def test_async_stream_reports_a_crashed_item_as_exit_and_goes_on(otp_node: Node) -> None:
    sup = await TaskSupervisor.start()

    async def work(i: int) -> int:
        if i == 1:
            raise ValueError("item 1")
        return i

    results = await collect(TaskSupervisor.async_stream(sup, range(3), work, max_concurrency=2))
    assert results[0] == ("ok", 0)
    assert results[1][0] == "exit"
    assert isinstance(results[1][1], ValueError)
    assert results[2] == ("ok", 2)


async def test_async_stream_kill_task_reports_a_timed_out_item_as_exit_timeout(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    sup = await TaskSupervisor.start()
    pids: dict[int, Pid] = {}

    async def work(i: int) -> int:
        pids[i] = self_pid()
        if i == 1:
            await asyncio.Event().wait()  # never finishes
        return i

    stream = TaskSupervisor.async_stream(
        sup, range(3), work, max_concurrency=3, timeout=2.0, on_timeout="kill_task"
    )
    assert await collect(stream) == [("ok", 0), ("exit", "timeout"), ("ok", 2)]
    assert virtual_clock.elapsed == 2.0
    assert not is_alive(pids[1])


async def test_async_stream_on_timeout_exit_raises_task_timeout_and_stops_its_tasks(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    sup = await TaskSupervisor.start()
    pids: list[Pid] = []

    async def work(i: int) -> int:
        pids.append(self_pid())
        await asyncio.sleep(1.0 if i == 0 else 10.0)
        return i

    results: list[Any] = []

    async def consume() -> None:
        stream = TaskSupervisor.async_stream(sup, range(3), work, max_concurrency=3, timeout=5.0)
        async for result in stream:
            results.append(result)  # noqa: PERF401 - what came before the error must stay

    with pytest.raises(TaskTimeout, match="item #1") as info:
        await consume()
    assert results == [("ok", 0)]
    assert info.value.timeout == 5.0
    assert virtual_clock.elapsed == 5.0
    assert not any(is_alive(pid) for pid in pids)
    assert await TaskSupervisor.children(sup) == []


async def test_async_stream_pulls_at_most_max_concurrency_items_ahead_of_its_consumer(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    pulled = 0

    async def million() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield i

    taken = 0
    async with contextlib.aclosing(
        TaskSupervisor.async_stream(sup, million(), double, max_concurrency=5)
    ) as stream:
        async for result in stream:
            assert result == ("ok", 2 * taken)
            taken += 1
            assert pulled - taken <= 5
            if taken == 20:
                break
    assert pulled <= 20 + 5
    assert await TaskSupervisor.children(sup) == []


async def test_async_stream_takes_sync_iterables_too_and_checks_nothing_before_it_runs(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    pulled: list[int] = []

    def numbers() -> Iterator[int]:
        for i in range(3):
            pulled.append(i)
            yield i

    stream = TaskSupervisor.async_stream(sup, numbers(), double, max_concurrency=2)
    assert pulled == []  # nothing runs until the first result is asked for
    assert await collect(stream) == [("ok", 0), ("ok", 2), ("ok", 4)]


async def test_closing_the_stream_stops_its_running_tasks_and_closes_the_input(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    blocked: asyncio.Queue[Pid] = asyncio.Queue()
    closed = False

    async def source() -> AsyncIterator[int]:
        nonlocal closed
        try:
            for i in itertools.count():
                yield i
        finally:
            closed = True

    async def work(i: int) -> int:
        if i > 0:
            blocked.put_nowait(self_pid())
            await asyncio.Event().wait()
        return i

    stream = TaskSupervisor.async_stream(sup, source(), work, max_concurrency=3)
    assert await anext(stream) == ("ok", 0)
    ends = [await watch(await wait(blocked.get())) for _ in range(2)]
    await stream.aclose()
    assert closed
    assert [await wait(end) for end in ends] == [SHUTDOWN, SHUTDOWN]
    assert await TaskSupervisor.children(sup) == []


async def test_the_tasks_of_a_stream_stop_when_its_consumer_is_killed(otp_node: Node) -> None:
    sup = await TaskSupervisor.start()
    started: asyncio.Queue[Pid] = asyncio.Queue()

    async def work(i: int) -> int:
        started.put_nowait(self_pid())
        await asyncio.Event().wait()
        return i

    async def consumer() -> None:
        async for _ in TaskSupervisor.async_stream(sup, range(10), work, max_concurrency=2):
            pass

    pid = spawn(consumer)
    tasks = [await wait(started.get()), await wait(started.get())]
    ends = [await watch(task) for task in tasks]
    await kill(pid)
    assert [await wait(end) for end in ends] == [SHUTDOWN, SHUTDOWN]
    assert await TaskSupervisor.children(sup) == []


async def test_the_tasks_of_a_stream_stop_when_its_consumer_dies_between_two_results(
    otp_node: Node,
) -> None:
    # The consumer is killed in its own code, not inside the stream: the
    # stream, dropped, is closed by the event loop's async-generator hook.
    sup = await TaskSupervisor.start()
    blocked: asyncio.Queue[Pid] = asyncio.Queue()

    async def work(i: int) -> int:
        if i > 0:
            blocked.put_nowait(self_pid())
            await asyncio.Event().wait()
        return i

    async def consumer() -> None:
        async for _ in TaskSupervisor.async_stream(sup, range(10), work, max_concurrency=3):
            await receive()  # busy with the first result until killed

    pid = spawn(consumer)
    ends = [await watch(await wait(blocked.get())) for _ in range(2)]
    await kill(pid)
    assert [await wait(end) for end in ends] == [SHUTDOWN, SHUTDOWN]


async def test_an_error_from_the_input_is_raised_in_the_consumer_after_its_tasks_stop(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()
    running: asyncio.Future[Pid] = asyncio.get_running_loop().create_future()

    async def numbers() -> AsyncIterator[int]:
        yield 0
        await running  # the first task runs its function now
        raise OSError("input broke")

    async def work(i: int) -> int:
        running.set_result(self_pid())
        await asyncio.Event().wait()
        return i

    with pytest.raises(OSError, match="input broke"):
        await collect(TaskSupervisor.async_stream(sup, numbers(), work, max_concurrency=2))
    assert not is_alive(running.result())
    assert await TaskSupervisor.children(sup) == []


async def test_async_stream_beyond_max_children_raises_max_children(otp_node: Node) -> None:
    sup = await TaskSupervisor.start(max_children=1)
    stream = TaskSupervisor.async_stream(sup, range(3), forever, max_concurrency=2)  # type: ignore[arg-type]
    with pytest.raises(MaxChildren, match="max_concurrency=2"):
        await collect(stream)
    assert await TaskSupervisor.children(sup) == []


async def test_async_stream_checks_its_arguments_at_once(otp_node: Node) -> None:
    sup = await TaskSupervisor.start()
    with pytest.raises(ValueError, match="max_concurrency"):
        TaskSupervisor.async_stream(sup, range(3), double, max_concurrency=0)
    with pytest.raises(ValueError, match="on_timeout"):
        TaskSupervisor.async_stream(sup, range(3), double, on_timeout="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        TaskSupervisor.async_stream(sup, range(3), double, timeout=-1)
    with pytest.raises(TypeError, match="items"):
        TaskSupervisor.async_stream(sup, 3, double)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fn"):
        TaskSupervisor.async_stream(sup, range(3), "double")  # type: ignore[arg-type]


async def test_a_stream_consumed_in_an_actor_leaves_nothing_in_its_mailbox(
    otp_node: Node,
) -> None:
    sup = await TaskSupervisor.start()

    async def body() -> tuple[list[Any], list[object]]:
        set_trap_exits(True)
        results = await collect(TaskSupervisor.async_stream(sup, range(4), fail_odd))
        return results, await drain()

    results, left = await in_actor(body)
    assert [kind for kind, _ in results] == ["ok", "exit", "ok", "exit"]
    assert left == []


async def fail_odd(i: int) -> int:
    if i % 2:
        raise ValueError(i)
    return i


# -- the concurrency bound, as a property ---------------------------------------------------

Behaviour = tuple[Literal["ok", "crash", "hang"], int]

behaviours = st.lists(
    st.one_of(
        st.tuples(st.just("ok"), st.integers(min_value=0, max_value=3)),
        st.tuples(st.just("crash"), st.integers(min_value=0, max_value=3)),
        st.tuples(st.just("hang"), st.just(0)),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    items=behaviours,
    max_concurrency=st.integers(min_value=1, max_value=4),
    ordered=st.booleans(),
    on_timeout=st.sampled_from(["kill_task", "exit"]),
    pauses=st.lists(st.integers(min_value=0, max_value=3), max_size=12),
)
def test_async_stream_never_runs_more_than_max_concurrency_tasks_under_crashes_and_timeouts(
    items: list[Behaviour],
    max_concurrency: int,
    ordered: bool,
    on_timeout: Literal["kill_task", "exit"],
    pauses: list[int],
) -> None:
    # Each item works for a few virtual seconds and returns, or crashes, or
    # hangs until its timeout kills it; the consumer pauses between results.
    # The supervisor allows exactly max_concurrency children, so a task
    # started one too early would also fail with MaxChildren.
    timeout = 5.0
    running = 0
    peak = 0
    pulled = 0
    delivered = 0
    ahead: list[int] = []

    async def work(index: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            kind, seconds = items[index]
            if kind == "hang":
                await asyncio.Event().wait()
            await asyncio.sleep(seconds)
            if kind == "crash":
                raise ValueError(index)
            return index
        finally:
            running -= 1

    async def source() -> AsyncIterator[int]:
        nonlocal pulled
        for index in range(len(items)):
            ahead.append(pulled - delivered)  # before this pull
            pulled += 1
            yield index

    async def main() -> tuple[list[Any], bool]:
        nonlocal delivered
        results: list[Any] = []
        with VirtualClock(), anyio.fail_after(3600):  # a hang fails fast, in virtual time
            sup = await TaskSupervisor.start(max_children=max_concurrency)
            stream = TaskSupervisor.async_stream(
                sup,
                source(),
                work,
                max_concurrency=max_concurrency,
                ordered=ordered,
                timeout=timeout,
                on_timeout=on_timeout,
            )
            try:
                async with contextlib.aclosing(stream):
                    async for result in stream:
                        results.append(result)
                        delivered += 1
                        await asyncio.sleep(pauses[delivered % len(pauses)] if pauses else 0)
            except TaskTimeout:
                assert running == 0
                return results, True
            assert running == 0
            assert await TaskSupervisor.children(sup) == []
        return results, False

    previous = logging.getLogger("asyncotp").level
    logging.getLogger("asyncotp").setLevel(logging.CRITICAL)  # crash reports: expected here
    try:
        results, timed_out = asyncotp.run(main)
    finally:
        logging.getLogger("asyncotp").setLevel(previous)

    assert peak <= max_concurrency
    assert all(before < max_concurrency for before in ahead)
    hangs = [i for i, (kind, _) in enumerate(items) if kind == "hang"]
    if on_timeout == "exit" and hangs:
        assert timed_out
        return
    assert not timed_out
    expected: list[Any] = []
    for index, (kind, _) in enumerate(items):
        if kind == "ok":
            expected.append(("ok", index))
        elif kind == "hang":
            expected.append(("exit", "timeout"))
        else:
            expected.append(("exit", f"ValueError({index})"))
    shown = [(k, v if k == "ok" or v == "timeout" else repr(v)) for k, v in results]
    if ordered:
        assert shown == expected
    else:
        assert sorted(shown, key=repr) == sorted(expected, key=repr)
