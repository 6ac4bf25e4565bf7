"""DynamicSupervisor: children added at run time, all one_for_one, known by pid.

The tests synchronise on replies, monitors (``Down``) and futures, never on
sleeps. A crash made through ``call`` ends with ``ServerExited`` only after the
child has ended, and by then its exit signal is in the supervisor's mailbox:
the next client call (``which_children``...) is answered after the supervisor
has handled that exit, because a server handles its messages in order.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

import asyncotp
from asyncotp import (
    GAVE_UP,
    NORMAL,
    SHUTDOWN,
    Caller,
    ChildCounts,
    ChildInfo,
    ChildNotFound,
    ChildSpec,
    ChildType,
    DynamicSupervisor,
    GenServer,
    MaxChildren,
    Node,
    NoProcess,
    Pid,
    Restart,
    ServerExited,
    Shutdown,
    StartError,
    Stop,
    call,
    count_children,
    is_alive,
    process_info,
    processes,
    self_pid,
    start_child,
    stop,
    terminate_child,
    whereis,
    which_children,
)
from tests.helpers import watch

Log = list[tuple[Any, ...]]


# -- helpers -------------------------------------------------------------------


class Worker(GenServer):
    """A child that records its starts and terminations in a list the test owns."""

    tag: str
    log: Log
    barrier: asyncio.Barrier | None

    async def init(
        self, tag: str, log: Log, *, fail: bool = False, barrier: asyncio.Barrier | None = None
    ) -> None:
        if fail:
            raise RuntimeError(f"{tag} refuses to start")
        self.tag = tag
        self.log = log
        self.barrier = barrier
        log.append(("start", tag, self_pid()))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case "ping":
                return self.tag
            case "crash":
                raise RuntimeError(f"{self.tag} crashed on purpose")
            case ("stop", reason):
                raise Stop(reason)
        raise AssertionError(f"unexpected call {request!r}")

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", self.tag, reason))
        if self.barrier is not None:
            await self.barrier.wait()
            self.log.append(("terminated", self.tag))


def worker(tag: str, log: Log, restart: Restart = Restart.PERMANENT, **kwargs: Any) -> ChildSpec:
    return Worker.child_spec(tag, log, id=tag, restart=restart, **kwargs)


def starts(log: Log, tag: str) -> list[Pid]:
    """The pids ``tag`` was started as, in order."""
    return [entry[2] for entry in log if entry[0] == "start" and entry[1] == tag]


def terminations(log: Log, tag: str) -> list[object]:
    """The reasons ``tag``'s incarnations terminated with, in order."""
    return [entry[2] for entry in log if entry[0] == "terminate" and entry[1] == tag]


async def crash(pid: Pid) -> None:
    """Crash the child; returns once it has ended (its exit signal is then queued
    at its supervisor)."""
    with pytest.raises(ServerExited) as info:
        await call(pid, "crash")
    assert isinstance(info.value.reason, RuntimeError)


async def end(pid: Pid, reason: object) -> None:
    """End the child with ``reason`` (``raise Stop(reason)``); returns once it has ended."""
    with pytest.raises(ServerExited) as info:
        await call(pid, ("stop", reason))
    assert info.value.reason == reason


async def only_child(dsup: Pid) -> ChildInfo:
    [info] = await which_children(dsup)
    return info


# -- start -----------------------------------------------------------------------


async def test_start_returns_a_live_empty_supervisor_registered_under_its_name(
    node: Node,
) -> None:
    dsup = await DynamicSupervisor.start(name="pool")

    assert is_alive(dsup)
    assert whereis("pool") is dsup
    assert await which_children("pool") == []
    assert await count_children(dsup) == ChildCounts(specs=0, active=0, supervisors=0, workers=0)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_children": -1},
        {"max_children": 1.5},
        {"max_children": True},
        {"max_restarts": -1},
        {"max_restarts": 2.0},
        {"max_seconds": 0},
        {"max_seconds": -1.0},
        {"max_seconds": "5"},
    ],
    ids=repr,
)
async def test_start_rejects_invalid_settings_with_value_error_and_starts_nothing(
    node: Node, settings: dict[str, Any]
) -> None:
    before = processes()
    [(field, value)] = settings.items()

    with pytest.raises(ValueError, match=field) as info:
        await DynamicSupervisor.start(**settings, name="pool")

    assert repr(value) in str(info.value)
    assert processes() == before
    assert whereis("pool") is None


# -- start_child -------------------------------------------------------------------


async def test_start_child_returns_a_live_pid_linked_to_the_dynamic_supervisor(
    node: Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()

    pid = await start_child(dsup, worker("a", log))

    assert is_alive(pid)
    assert await call(pid, "ping") == "a"
    assert starts(log, "a") == [pid]
    child_info = process_info(pid)
    assert child_info is not None
    assert dsup in child_info.links
    assert child_info.parent is dsup
    sup_info = process_info(dsup)
    assert sup_info is not None
    assert pid in sup_info.links
    assert await which_children(dsup) == [ChildInfo("a", pid, ChildType.WORKER, Restart.PERMANENT)]


async def test_children_are_listed_in_start_order_and_counted(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()

    a = await start_child(dsup, worker("a", log))
    b = await start_child(dsup, worker("b", log, Restart.TRANSIENT))
    c = await start_child(dsup, worker("c", log, Restart.TEMPORARY))

    assert await which_children(dsup) == [
        ChildInfo("a", a, ChildType.WORKER, Restart.PERMANENT),
        ChildInfo("b", b, ChildType.WORKER, Restart.TRANSIENT),
        ChildInfo("c", c, ChildType.WORKER, Restart.TEMPORARY),
    ]
    assert await count_children(dsup) == ChildCounts(specs=3, active=3, supervisors=0, workers=3)


async def test_the_same_spec_started_twice_gives_two_distinct_children(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    spec = worker("same", log)

    first = await start_child(dsup, spec)
    second = await start_child(dsup, spec)

    assert first is not second
    assert is_alive(first)
    assert is_alive(second)
    assert [info.pid for info in await which_children(dsup)] == [first, second]


async def test_count_children_tells_supervisors_from_workers(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()

    nested = await start_child(dsup, DynamicSupervisor.child_spec(id="nested"))
    await start_child(dsup, worker("w", log))

    assert await count_children(dsup) == ChildCounts(specs=2, active=2, supervisors=1, workers=1)
    assert (await which_children(dsup))[0] == ChildInfo(
        "nested", nested, ChildType.SUPERVISOR, Restart.PERMANENT
    )


async def test_a_child_whose_init_fails_gives_start_error_and_adds_nothing(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    await start_child(dsup, worker("ok", log))
    before = processes()

    with pytest.raises(StartError, match="bad refuses to start"):
        await start_child(dsup, worker("bad", log, fail=True))

    assert is_alive(dsup)
    assert processes() == before
    assert [i.id for i in await which_children(dsup)] == ["ok"]
    assert await count_children(dsup) == ChildCounts(specs=1, active=1, supervisors=0, workers=1)


async def test_a_start_function_that_raises_or_returns_no_pid_gives_start_error(
    node: Node,
) -> None:
    dsup = await DynamicSupervisor.start()

    async def raises() -> Pid:
        raise OSError("port in use")

    async def returns_a_string() -> Pid:
        return "not a pid"  # type: ignore[return-value]

    with pytest.raises(StartError, match="port in use"):
        await start_child(dsup, ChildSpec("raises", raises))
    with pytest.raises(StartError, match="must return the Pid"):
        await start_child(dsup, ChildSpec("wrong", returns_a_string))

    assert is_alive(dsup)
    assert await which_children(dsup) == []


def root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


async def test_start_child_start_error_has_the_underlying_error_as_its_cause(
    node: Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()

    async def raises() -> Pid:
        raise OSError("port in use")

    with pytest.raises(StartError) as init_failed:
        await start_child(dsup, worker("bad", log, fail=True))
    with pytest.raises(StartError) as start_raised:
        await start_child(dsup, ChildSpec("raises", raises))

    assert isinstance(root_cause(init_failed.value), RuntimeError)
    assert isinstance(root_cause(start_raised.value), OSError)
    assert start_raised.value.reason is start_raised.value.__cause__


# -- max_children ------------------------------------------------------------------


async def test_start_child_beyond_max_children_raises_max_children_and_starts_nothing(
    node: Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start(max_children=2)
    a = await start_child(dsup, worker("a", log))
    await start_child(dsup, worker("b", log))

    with pytest.raises(MaxChildren, match="max_children"):
        await start_child(dsup, worker("c", log))

    assert starts(log, "c") == []
    assert [i.id for i in await which_children(dsup)] == ["a", "b"]

    await terminate_child(dsup, a)
    c = await start_child(dsup, worker("c", log))
    assert [i.pid for i in await which_children(dsup)][-1] is c


async def test_max_children_zero_refuses_every_child(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start(max_children=0)

    with pytest.raises(MaxChildren):
        await start_child(dsup, worker("a", log))

    assert log == []


async def test_a_restarted_child_still_takes_its_place_under_max_children(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start(max_children=1, max_restarts=10)
    pid = await start_child(dsup, worker("a", log))

    await crash(pid)

    assert (await only_child(dsup)).pid is not pid
    with pytest.raises(MaxChildren):
        await start_child(dsup, worker("b", log))


# -- terminate_child -----------------------------------------------------------------


async def test_terminate_child_by_pid_stops_it_with_shutdown_and_forgets_it(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    a = await start_child(dsup, worker("a", log))
    b = await start_child(dsup, worker("b", log))

    await terminate_child(dsup, a)

    assert not is_alive(a)
    assert terminations(log, "a") == [SHUTDOWN]
    assert starts(log, "a") == [a], "a terminated child is not restarted"
    assert await which_children(dsup) == [ChildInfo("b", b, ChildType.WORKER, Restart.PERMANENT)]
    assert is_alive(b)
    assert terminations(log, "b") == []


async def test_terminate_child_with_an_unknown_pid_or_an_id_raises_child_not_found(
    node: Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    other_dsup = await DynamicSupervisor.start()
    mine = await start_child(dsup, worker("mine", log))
    foreign = await start_child(other_dsup, worker("foreign", log))
    gone = await start_child(dsup, worker("gone", log))
    await terminate_child(dsup, gone)

    for unknown in (foreign, gone, "mine", other_dsup):
        with pytest.raises(ChildNotFound) as info:
            await terminate_child(dsup, unknown)
        assert isinstance(info.value, NoProcess)
        assert repr(unknown) in str(info.value)

    assert is_alive(mine)
    assert is_alive(foreign)
    assert [i.pid for i in await which_children(dsup)] == [mine]


async def test_terminate_child_kills_a_child_that_outlives_its_shutdown_time(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    never = asyncio.Barrier(2)  # nobody else ever arrives: terminate blocks
    pid = await start_child(dsup, worker("stuck", log, shutdown=0.05, barrier=never))
    reason = await watch(pid)

    await terminate_child(dsup, pid)

    assert await reason is asyncotp.KILLED
    assert terminations(log, "stuck") == [SHUTDOWN]
    assert ("terminated", "stuck") not in log
    assert await which_children(dsup) == []


# -- restarts -------------------------------------------------------------------------


async def test_a_crashed_permanent_child_is_restarted_with_a_new_pid_and_the_count_holds(
    node: Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start(max_restarts=10)
    bystander = await start_child(dsup, worker("bystander", log))
    pid = await start_child(dsup, worker("a", log))

    for round_ in range(1, 4):
        await crash(pid)
        children = await which_children(dsup)
        assert [c.id for c in children] == ["bystander", "a"]
        assert children[0].pid is bystander
        new = children[1].pid
        assert new is not None
        assert new is not pid
        assert is_alive(new)
        assert await call(new, "ping") == "a"
        assert await count_children(dsup) == ChildCounts(
            specs=2, active=2, supervisors=0, workers=2
        )
        assert len(starts(log, "a")) == round_ + 1
        pid = new

    assert starts(log, "a")[-1] is pid
    assert starts(log, "bystander") == [bystander]
    assert terminations(log, "bystander") == []


async def test_a_restarted_child_is_linked_and_known_by_its_new_pid_only(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    old = await start_child(dsup, worker("a", log))

    await crash(old)
    new = (await only_child(dsup)).pid
    assert new is not None

    info = process_info(new)
    assert info is not None
    assert info.parent is dsup
    assert dsup in info.links
    with pytest.raises(ChildNotFound):
        await terminate_child(dsup, old)
    await terminate_child(dsup, new)
    assert not is_alive(new)
    assert await which_children(dsup) == []


async def test_a_permanent_child_that_ends_normally_is_restarted_too(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    pid = await start_child(dsup, worker("a", log))

    await end(pid, NORMAL)

    info = await only_child(dsup)
    assert info.pid is not None
    assert info.pid is not pid
    assert starts(log, "a") == [pid, info.pid]


@pytest.mark.parametrize("reason", [NORMAL, SHUTDOWN, Shutdown("done")], ids=repr)
async def test_a_transient_child_that_ends_cleanly_is_not_restarted_and_is_removed(
    node: Node, reason: object
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    keep = await start_child(dsup, worker("keep", log))
    pid = await start_child(dsup, worker("t", log, Restart.TRANSIENT))

    await end(pid, reason)

    assert await which_children(dsup) == [
        ChildInfo("keep", keep, ChildType.WORKER, Restart.PERMANENT)
    ]
    assert await count_children(dsup) == ChildCounts(specs=1, active=1, supervisors=0, workers=1)
    assert starts(log, "t") == [pid]


async def test_a_transient_child_that_crashes_is_restarted(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    pid = await start_child(dsup, worker("t", log, Restart.TRANSIENT))

    await crash(pid)

    info = await only_child(dsup)
    assert info.restart is Restart.TRANSIENT
    assert info.pid is not None
    assert info.pid is not pid
    assert is_alive(info.pid)


@pytest.mark.parametrize("ending", ["crash", "normal"])
async def test_a_temporary_child_is_never_restarted_and_is_removed(node: Node, ending: str) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    pid = await start_child(dsup, worker("tmp", log, Restart.TEMPORARY))

    if ending == "crash":
        await crash(pid)
    else:
        await end(pid, NORMAL)

    assert await which_children(dsup) == []
    assert await count_children(dsup) == ChildCounts(specs=0, active=0, supervisors=0, workers=0)
    assert starts(log, "tmp") == [pid]


# -- restart intensity ----------------------------------------------------------------


async def test_more_restarts_than_max_restarts_make_it_stop_its_children_and_exit_with_gave_up(
    node: Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start(max_restarts=2, max_seconds=1000)
    bystander = await start_child(dsup, worker("bystander", log))
    pid = await start_child(dsup, worker("crasher", log))
    sup_reason = await watch(dsup)

    for _ in range(2):  # two restarts are within the intensity
        await crash(pid)
        pid = (await which_children(dsup))[1].pid  # type: ignore[assignment]
        assert is_alive(dsup)
    await crash(pid)  # the third is one too many

    assert await sup_reason == GAVE_UP
    assert len(starts(log, "crasher")) == 3
    assert not is_alive(bystander)
    # SHUTDOWN, not GAVE_UP: the supervisor stopped it before it ended (an exit
    # signal from the supervisor's own end would carry GAVE_UP).
    assert terminations(log, "bystander") == [SHUTDOWN]
    assert not any(is_alive(p) for p in starts(log, "crasher"))


async def test_a_child_that_cannot_be_restarted_makes_it_give_up_instead_of_looping(
    node: Node,
) -> None:
    log: Log = []
    attempts = itertools.count()

    async def start_once() -> Pid:
        if next(attempts) > 0:
            raise RuntimeError("cannot come back")
        return await Worker.start("flaky", log, link=True)

    dsup = await DynamicSupervisor.start(max_restarts=2, max_seconds=1000)
    pid = await start_child(dsup, ChildSpec("flaky", start_once))
    sup_reason = await watch(dsup)

    await crash(pid)

    assert await sup_reason == GAVE_UP
    # The crash counts one restart and each failed attempt one more: after the
    # first start and two failed attempts, the third count is one too many.
    assert next(attempts) == 3


# -- shutdown -----------------------------------------------------------------------------


async def test_stop_stops_every_child_with_shutdown(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    pids = [await start_child(dsup, worker(tag, log)) for tag in ("a", "b", "c")]

    await stop(dsup, SHUTDOWN)

    assert not is_alive(dsup)
    assert not any(is_alive(p) for p in pids)
    for tag in ("a", "b", "c"):
        assert terminations(log, tag) == [SHUTDOWN]


async def test_on_shutdown_every_child_is_told_to_stop_at_once(node: Node) -> None:
    # Each terminate waits for the other's: told one after another, the first
    # would block until its shutdown time ran out and be killed.
    log: Log = []
    dsup = await DynamicSupervisor.start()
    both = asyncio.Barrier(2)
    for tag in ("a", "b"):
        await start_child(dsup, worker(tag, log, shutdown=10.0, barrier=both))

    await stop(dsup, SHUTDOWN, timeout=5.0)

    assert ("terminated", "a") in log
    assert ("terminated", "b") in log


async def test_node_exit_stops_the_dynamic_supervisor_and_all_its_children() -> None:
    log: Log = []
    async with asyncotp.node() as the_node:
        dsup = await DynamicSupervisor.start(name="pool")
        pids = [await start_child(dsup, worker(tag, log)) for tag in ("a", "b", "c")]
        await crash(pids[1])
        restarted = (await which_children(dsup))[1].pid
        assert restarted is not None

    assert not the_node.procs
    for tag in ("a", "b", "c"):
        assert terminations(log, tag)[-1] is SHUTDOWN
    assert not is_alive(restarted)


async def test_a_dynamic_supervisor_under_a_supervisor_is_restarted_empty(node: Node) -> None:
    log: Log = []
    root = await asyncotp.Supervisor.start([DynamicSupervisor.child_spec(id="pool")])
    dsup = (await which_children(root))[0].pid
    assert dsup is not None
    child = await start_child(dsup, worker("a", log))
    dsup_reason = await watch(dsup)
    child_reason = await watch(child)

    asyncotp.send_exit(dsup, asyncotp.KILL)

    assert await dsup_reason is asyncotp.KILLED
    assert await child_reason is asyncotp.KILLED  # the link took it down with its supervisor
    new = (await which_children(root))[0].pid
    assert new is not None
    assert new is not dsup
    assert await which_children(new) == []


async def test_client_functions_on_a_dead_dynamic_supervisor_raise_no_process(
    node: Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    await stop(dsup)

    calls: list[Callable[[], Awaitable[Any]]] = [
        partial(which_children, dsup),
        partial(count_children, dsup),
        partial(start_child, dsup, worker("a", log)),
    ]
    for make_call in calls:
        with pytest.raises(NoProcess):
            await make_call()
    assert log == []
