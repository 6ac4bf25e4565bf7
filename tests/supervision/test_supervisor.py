"""Supervisor and DynamicSupervisor with real actors.

Every worker writes what happens to it (init, terminate and its reason) into
a list owned by the test, so a test asserts the exact order of starts and
stops. Tests synchronise on monitors (``Down``, through ``watch``), on
``ServerExited`` from a crashing call, on events and on call round trips to
the supervisor, not on sleeps: a supervisor handles the ``Exited`` of a
child before any call queued after that child's death. Tests that need
time itself (restart windows, backoff) run on ``asyncotp.testing``'s virtual
clock and wait for restarts with ``wait_for_restart``, so delays are exact
and cost no real time; only the ``INFINITY`` test checks in real time that
nothing is killed while it waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import Any

import anyio
import pytest

import asyncotp
from asyncotp import (
    BRUTAL_KILL,
    GAVE_UP,
    INFINITY,
    KILL,
    KILLED,
    NORMAL,
    SHUTDOWN,
    ActorError,
    Backoff,
    Caller,
    ChildCounts,
    ChildInfo,
    ChildNotFound,
    ChildSpec,
    ChildType,
    DuplicateChild,
    DynamicSupervisor,
    Exited,
    GenServer,
    MaxChildren,
    NoProcess,
    Pid,
    Restart,
    ServerExited,
    Shutdown,
    StartError,
    Stop,
    Strategy,
    Supervisor,
    call,
    count_children,
    delete_child,
    is_alive,
    processes,
    receive,
    restart_child,
    send_exit,
    spawn,
    start_child,
    supervisor_health,
    terminate_child,
    whereis,
    which_children,
)
from asyncotp.testing import VirtualClock, wait_for_restart
from tests.helpers import Gate, watch

Log = list[tuple[object, ...]]

# -- helpers -------------------------------------------------------------------


def crash_kind(reason: object) -> object:
    """A reason as the log keeps it: exceptions by their class, others as they are."""
    return type(reason) if isinstance(reason, BaseException) else reason


class Worker(GenServer):
    """A server that logs its init and terminate and crashes on request."""

    log: Log
    tag: str
    gate: Gate | None

    async def init(
        self,
        log: Log,
        tag: str,
        *,
        fail: Exception | None = None,
        gate: Gate | None = None,
        hold_init: Gate | None = None,
    ) -> None:
        if fail is not None:
            raise fail
        if hold_init is not None:
            await hold_init.pass_through()
        self.log = log
        self.tag = tag
        self.gate = gate
        log.append(("init", tag))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case "ping":
                return self.tag
            case "crash":
                raise RuntimeError(f"{self.tag} crashed on request")
            case ("stop", reason):
                raise Stop(reason, reply="stopping")
        raise AssertionError(f"unexpected request {request!r}")

    async def terminate(self, reason: Any) -> None:
        if self.gate is not None:
            self.log.append(("terminating", self.tag))
            await self.gate.pass_through()
        self.log.append(("terminate", self.tag, crash_kind(reason)))


def worker(log: Log, tag: str, **kwargs: Any) -> ChildSpec:
    """A Worker child spec whose id is its tag."""
    return Worker.child_spec(log, tag, id=tag, **kwargs)


def inits(*tags: str) -> Log:
    return [("init", tag) for tag in tags]


def stops(*tags: str, reason: object = SHUTDOWN) -> Log:
    return [("terminate", tag, reason) for tag in tags]


def crashed(tag: str) -> tuple[object, ...]:
    return ("terminate", tag, RuntimeError)


async def children(sup: Pid | str) -> dict[Hashable, Pid | None]:
    return {info.id: info.pid for info in await which_children(sup)}


async def child_pid(sup: Pid | str, child_id: Hashable) -> Pid:
    pid = (await children(sup))[child_id]
    assert pid is not None, f"child {child_id!r} is not running"
    return pid


async def crash(sup: Pid | str, child_id: Hashable, *, settle: bool = True) -> Pid:
    """Crash a running Worker child; return its old pid once the supervisor
    has handled the crash (with ``settle=False``: once the child is dead, for a
    supervisor that is expected to give up)."""
    pid = await child_pid(sup, child_id)
    with pytest.raises(ServerExited) as info:
        await call(pid, "crash")
    assert isinstance(info.value.reason, RuntimeError)
    if settle:
        await count_children(sup)  # queued behind the child's Exited
    return pid


async def end_with(sup: Pid | str, child_id: Hashable, reason: object) -> Pid:
    """Make a Worker child stop itself with ``reason``; return its old pid once
    the supervisor has handled its end."""
    pid = await child_pid(sup, child_id)
    ended = await watch(pid)
    assert await call(pid, ("stop", reason)) == "stopping"
    assert await ended == reason
    await count_children(sup)  # queued behind the child's Exited
    return pid


def reports(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "asyncotp" and getattr(r, "event", None) == event
    ]


# -- strategies ------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_failed_child(node: asyncotp.Node) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, t) for t in "abc"], Strategy.ONE_FOR_ONE)
    before = await children(sup)
    assert log == inits("a", "b", "c")
    log.clear()

    old = await crash(sup, "b")

    after = await children(sup)
    assert log == [crashed("b"), ("init", "b")]
    assert after["a"] is before["a"]
    assert after["c"] is before["c"]
    assert after["b"] not in (None, old)
    assert await call(after["b"], "ping") == "b"


async def test_one_for_all_stops_the_others_in_reverse_order_and_restarts_all_in_order(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, t) for t in "abcd"], Strategy.ONE_FOR_ALL)
    before = await children(sup)
    log.clear()

    await crash(sup, "b")

    after = await children(sup)
    assert log == [crashed("b"), *stops("d", "c", "a"), *inits("a", "b", "c", "d")]
    assert list(after) == list("abcd")
    for tag in "abcd":
        assert after[tag] is not None
        assert after[tag] is not before[tag]
        assert not is_alive(before[tag])  # type: ignore[arg-type]


async def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, t) for t in "abcd"], Strategy.REST_FOR_ONE)
    before = await children(sup)
    log.clear()

    await crash(sup, "b")

    after = await children(sup)
    assert log == [crashed("b"), *stops("d", "c"), *inits("b", "c", "d")]
    assert after["a"] is before["a"]
    assert all(after[t] is not before[t] for t in "bcd")


async def test_rest_for_one_failure_of_the_last_child_restarts_only_it(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, t) for t in "abc"], Strategy.REST_FOR_ONE)
    before = await children(sup)
    log.clear()

    await crash(sup, "c")

    after = await children(sup)
    assert log == [crashed("c"), ("init", "c")]
    assert (after["a"], after["b"]) == (before["a"], before["b"])


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_a_temporary_child_caught_in_a_group_restart_is_stopped_and_forgotten(
    node: asyncotp.Node, strategy: Strategy
) -> None:
    log: Log = []
    specs = [worker(log, "a"), worker(log, "t", restart=Restart.TEMPORARY), worker(log, "c")]
    sup = await Supervisor.start(specs, strategy)
    temporary = await child_pid(sup, "t")
    log.clear()

    await crash(sup, "a")

    assert log == [crashed("a"), *stops("c", "t"), *inits("a", "c")]
    assert list(await children(sup)) == ["a", "c"]
    assert not is_alive(temporary)


# -- restart types -------------------------------------------------------------------

CLEAN_REASONS = [NORMAL, SHUTDOWN, Shutdown("done")]


@pytest.mark.parametrize("reason", [*CLEAN_REASONS, "bad_state"], ids=repr)
async def test_permanent_child_is_restarted_whatever_its_exit_reason(
    node: asyncotp.Node, reason: object
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "p")])
    log.clear()

    old = await end_with(sup, "p", reason)

    new = await child_pid(sup, "p")
    assert new is not old
    assert log == [("terminate", "p", reason), ("init", "p")]


@pytest.mark.parametrize("reason", CLEAN_REASONS, ids=repr)
async def test_transient_child_is_not_restarted_after_a_clean_end_and_keeps_its_spec(
    node: asyncotp.Node, reason: object
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "t", restart=Restart.TRANSIENT)])
    log.clear()

    await end_with(sup, "t", reason)

    assert await which_children(sup) == [ChildInfo("t", None, ChildType.WORKER, Restart.TRANSIENT)]
    assert log == [("terminate", "t", reason)]
    with pytest.raises(DuplicateChild) as info:
        await start_child(sup, worker(log, "t"))
    assert info.value.child_id == "t"
    assert log == [("terminate", "t", reason)]  # the duplicate was not started

    await delete_child(sup, "t")
    assert await which_children(sup) == []
    pid = await start_child(sup, worker(log, "t"))
    assert await children(sup) == {"t": pid}


async def test_transient_child_is_restarted_after_a_crash(node: asyncotp.Node) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "t", restart=Restart.TRANSIENT)])
    log.clear()

    old = await crash(sup, "t")

    assert log == [crashed("t"), ("init", "t")]
    assert await child_pid(sup, "t") is not old


@pytest.mark.parametrize("how", ["crash", NORMAL, SHUTDOWN], ids=repr)
async def test_temporary_child_is_never_restarted_and_is_forgotten(
    node: asyncotp.Node, how: object
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a"), worker(log, "tmp", restart=Restart.TEMPORARY)])
    log.clear()

    if how == "crash":
        await crash(sup, "tmp")
    else:
        await end_with(sup, "tmp", how)

    assert list(await children(sup)) == ["a"]
    assert [entry[0] for entry in log] == ["terminate"]
    assert await count_children(sup) == ChildCounts(specs=1, active=1, supervisors=0, workers=1)


# -- restart intensity --------------------------------------------------------------


async def test_more_than_max_restarts_in_the_window_make_the_supervisor_stop_all_and_give_up(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, t) for t in "abc"], max_restarts=2, max_seconds=60.0)
    ended = await watch(sup)
    await crash(sup, "b")
    await crash(sup, "b")
    assert is_alive(sup)  # two restarts are allowed
    survivors = await children(sup)
    log.clear()

    await crash(sup, "b", settle=False)  # the third restart within the window is one too many

    assert await ended == GAVE_UP
    assert Shutdown("reached_max_restart_intensity") == GAVE_UP
    assert log == [crashed("b"), *stops("c", "a")]
    assert not any(is_alive(pid) for pid in survivors.values() if pid is not None)


async def test_restart_intensity_zero_gives_up_on_the_first_failure(node: asyncotp.Node) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a"), worker(log, "b")], max_restarts=0)
    ended = await watch(sup)
    log.clear()

    await crash(sup, "a", settle=False)

    assert await ended == GAVE_UP
    assert log == [crashed("a"), *stops("b")]


async def test_a_one_for_all_restart_of_three_children_counts_as_one_restart(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [worker(log, t) for t in "abc"], Strategy.ONE_FOR_ALL, max_restarts=1, max_seconds=60.0
    )
    ended = await watch(sup)
    before = await children(sup)

    await crash(sup, "a")  # restarts a, b and c: one restart

    after = await children(sup)
    assert all(after[t] is not None and after[t] is not before[t] for t in "abc")
    assert (await supervisor_health(sup))["restarts_in_window"] == 1

    await crash(sup, "c", settle=False)  # the second restart in the window is one too many
    assert await ended == GAVE_UP


async def test_restarts_older_than_max_seconds_no_longer_count(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a")], max_restarts=1, max_seconds=5.0)
    ended = await watch(sup)

    await crash(sup, "a")
    await virtual_clock.advance(5.0)  # the first restart leaves the window
    await crash(sup, "a")
    assert is_alive(sup)
    await virtual_clock.advance(4.9)  # the second one is still in it
    await crash(sup, "a", settle=False)

    assert await ended == GAVE_UP


# -- nested supervisors ----------------------------------------------------------------


async def test_a_nested_supervisor_that_gives_up_is_restarted_by_its_parent(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    inner = Supervisor.child_spec([worker(log, "x"), worker(log, "y")], id="inner", max_restarts=0)
    outer = await Supervisor.start(
        [worker(log, "a"), inner, worker(log, "c")], max_restarts=1, max_seconds=60.0
    )
    outer_ended = await watch(outer)
    before = await children(outer)
    inner_pid = await child_pid(outer, "inner")
    inner_ended = await watch(inner_pid)
    log.clear()

    await crash(inner_pid, "x", settle=False)

    assert await inner_ended == GAVE_UP
    after = await children(outer)
    assert after["inner"] not in (None, inner_pid)
    assert (after["a"], after["c"]) == (before["a"], before["c"])
    assert log == [crashed("x"), *stops("y"), *inits("x", "y")]
    assert list(await children(after["inner"])) == ["x", "y"]

    # Once more: the parent's own intensity (1 restart) is exceeded in turn.
    inner_pid = after["inner"]
    inner_ended = await watch(inner_pid)
    log.clear()

    await crash(inner_pid, "x", settle=False)

    assert await inner_ended == GAVE_UP
    assert await outer_ended == GAVE_UP
    assert log == [crashed("x"), *stops("y", "c", "a")]


async def test_a_supervisor_child_is_counted_and_listed_as_a_supervisor(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [worker(log, "a"), Supervisor.child_spec([worker(log, "x")], id="inner")]
    )
    infos = await which_children(sup)
    assert [(i.id, i.type, i.restart) for i in infos] == [
        ("a", ChildType.WORKER, Restart.PERMANENT),
        ("inner", ChildType.SUPERVISOR, Restart.PERMANENT),
    ]
    assert all(type(i.pid) is Pid for i in infos)
    assert await count_children(sup) == ChildCounts(specs=2, active=2, supervisors=1, workers=1)


# -- start failures -------------------------------------------------------------------


async def test_a_child_that_fails_to_start_rolls_back_the_started_ones_in_reverse_order(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    specs = [
        worker(log, "a", name="a"),
        worker(log, "b", name="b"),
        worker(log, "c", fail=ValueError("no config")),
        worker(log, "d", name="d"),
    ]

    with pytest.raises(StartError) as info:
        await Supervisor.start(specs, name="root")

    assert "'c'" in str(info.value)
    assert log == [*inits("a", "b"), *stops("b", "a")]
    assert processes() == []
    assert [whereis(n) for n in ("root", "a", "b", "d")] == [None] * 4


async def test_a_start_function_that_raises_makes_supervisor_start_fail(
    node: asyncotp.Node,
) -> None:
    log: Log = []

    async def broken() -> Pid:
        raise OSError("port in use")

    with pytest.raises(StartError) as info:
        await Supervisor.start([worker(log, "a"), ChildSpec("api", broken), worker(log, "z")])

    assert "'api'" in str(info.value)
    assert log == [("init", "a"), *stops("a")]
    assert processes() == []


async def test_start_child_that_fails_to_start_raises_start_error_and_adds_nothing(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a")])

    with pytest.raises(StartError):
        await start_child(sup, worker(log, "b", fail=ValueError("nope")))

    assert list(await children(sup)) == ["a"]
    assert log == inits("a")


async def test_a_start_function_returning_none_keeps_the_spec_without_a_pid(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    started: list[str] = []

    async def ignore() -> None:
        started.append("ignore")

    sup = await Supervisor.start([worker(log, "a"), ChildSpec("ignored", ignore), worker(log, "c")])

    assert await which_children(sup) == [
        ChildInfo("a", await child_pid(sup, "a"), ChildType.WORKER, Restart.PERMANENT),
        ChildInfo("ignored", None, ChildType.WORKER, Restart.PERMANENT),
        ChildInfo("c", await child_pid(sup, "c"), ChildType.WORKER, Restart.PERMANENT),
    ]
    assert await count_children(sup) == ChildCounts(specs=3, active=2, supervisors=0, workers=3)
    assert started == ["ignore"]
    with pytest.raises(DuplicateChild):
        await start_child(sup, ChildSpec("ignored", ignore))


async def test_a_supervisor_killed_while_starting_a_child_dies_at_once(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a")])
    ended = await watch(sup)
    a_ended = await watch(await child_pid(sup, "a"))
    held = Gate()
    starting = asyncio.create_task(start_child(sup, worker(log, "slow", hold_init=held)))
    await held.entered.wait()

    send_exit(sup, KILL)

    with anyio.fail_after(5):
        assert await ended == KILLED
        assert await a_ended == KILLED  # over the link
    with pytest.raises(ServerExited):
        await starting
    held.opened.set()  # the half-started child finds its starter gone and ends


async def test_a_child_killed_during_its_init_makes_start_child_fail_at_once(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([])
    held = Gate()
    spec = worker(log, "slow", hold_init=held, name="slow", timeout=1.0)
    starting = asyncio.create_task(start_child(sup, spec))
    await held.entered.wait()

    send_exit("slow", KILL)

    with anyio.fail_after(0.5), pytest.raises(StartError) as info:
        await starting
    assert not isinstance(info.value.__cause__, TimeoutError)
    assert await children(sup) == {}


# -- shutdown -------------------------------------------------------------------------


async def test_a_child_slower_than_its_shutdown_time_is_killed_and_reported(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    never = Gate()
    sup = await Supervisor.start([worker(log, "slow", gate=never, shutdown=0.05)])
    pid = await child_pid(sup, "slow")
    ended = await watch(pid)
    log.clear()

    with caplog.at_level(logging.ERROR, logger="asyncotp"):
        await terminate_child(sup, "slow")

    assert await ended == KILLED
    assert log == [("terminating", "slow")]  # terminate was cut short
    [record] = reports(caplog, "child_killed")
    assert record.levelno == logging.ERROR
    assert record.child_id == "slow"  # type: ignore[attr-defined]
    assert record.child_pid is pid  # type: ignore[attr-defined]
    assert record.reason is KILLED  # type: ignore[attr-defined]
    assert record.supervisor is sup  # type: ignore[attr-defined]
    assert await children(sup) == {"slow": None}


async def test_brutal_kill_kills_the_child_at_once_without_terminate(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "b", shutdown=BRUTAL_KILL)])
    ended = await watch(await child_pid(sup, "b"))
    log.clear()

    await terminate_child(sup, "b")

    assert await ended == KILLED
    assert log == []
    assert reports(caplog, "child_killed") == []


async def test_infinity_shutdown_waits_for_terminate_however_long_it_takes(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    gate = Gate()
    sup = await Supervisor.start([worker(log, "patient", gate=gate, shutdown=INFINITY)])
    pid = await child_pid(sup, "patient")
    ended = await watch(pid)

    stopping = asyncio.create_task(terminate_child(sup, "patient"))
    await gate.entered.wait()
    # Well past any shutdown time short enough to matter here, nothing is killed.
    done, _ = await asyncio.wait({stopping}, timeout=0.2)
    assert not done
    assert is_alive(pid)

    gate.opened.set()
    await stopping

    assert await ended == SHUTDOWN
    assert log[-1] == ("terminate", "patient", SHUTDOWN)
    assert reports(caplog, "child_killed") == []


async def test_stopping_a_supervisor_stops_its_children_in_reverse_start_order(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, t) for t in "abc"])
    pids = await children(sup)
    log.clear()

    await asyncotp.stop(sup)

    assert log == stops("c", "b", "a")
    assert not any(is_alive(p) for p in pids.values() if p is not None)


async def test_node_exit_stops_supervision_trees_in_reverse_start_order() -> None:
    log: Log = []
    async with asyncotp.node() as the_node:
        inner = Supervisor.child_spec([worker(log, "b1"), worker(log, "b2")], id="inner")
        await Supervisor.start([worker(log, "a"), inner, worker(log, "c")])
        await Supervisor.start([worker(log, "late1"), worker(log, "late2")])
        assert log == inits("a", "b1", "b2", "c", "late1", "late2")
        log.clear()

    assert log == stops("late2", "late1", "c", "b2", "b1", "a")
    assert not the_node.procs


async def _trapping_child(seen: asyncio.Queue[object], obey: bool) -> None:
    while True:
        message = await receive()
        seen.put_nowait(message)
        if obey and isinstance(message, Exited):
            raise Stop(message.reason)


async def test_a_trapping_child_gets_shutdown_as_exited_from_its_parent_and_exits(
    node: asyncotp.Node,
) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()

    async def start() -> Pid:
        return spawn(_trapping_child, seen, True, trap_exits=True)

    sup = await Supervisor.start([ChildSpec("trapper", start, shutdown=5.0)])
    pid = await child_pid(sup, "trapper")
    ended = await watch(pid)

    await terminate_child(sup, "trapper")

    assert seen.get_nowait() == Exited(sup, SHUTDOWN)
    assert await ended == SHUTDOWN


async def test_a_trapping_child_that_ignores_shutdown_is_killed_at_its_deadline(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()

    async def start() -> Pid:
        return spawn(_trapping_child, seen, False, trap_exits=True)

    sup = await Supervisor.start([ChildSpec("stubborn", start, shutdown=0.05)])
    pid = await child_pid(sup, "stubborn")
    ended = await watch(pid)

    await terminate_child(sup, "stubborn")

    assert seen.get_nowait() == Exited(sup, SHUTDOWN)
    assert await ended == KILLED
    assert [r.child_id for r in reports(caplog, "child_killed")] == ["stubborn"]  # type: ignore[attr-defined]


# -- the API functions ------------------------------------------------------------------


async def test_which_children_lists_children_in_start_order(node: asyncotp.Node) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [worker(log, "a"), worker(log, "b", restart=Restart.TRANSIENT)], name="sup"
    )
    infos = await which_children("sup")
    assert [(i.id, i.type, i.restart) for i in infos] == [
        ("a", ChildType.WORKER, Restart.PERMANENT),
        ("b", ChildType.WORKER, Restart.TRANSIENT),
    ]
    assert [await call(i.pid, "ping") for i in infos] == ["a", "b"]  # type: ignore[arg-type]
    assert await which_children(sup) == infos


async def test_count_children_counts_specs_running_children_and_types(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [
            worker(log, "a"),
            worker(log, "b"),
            Supervisor.child_spec([], id="inner"),
        ]
    )
    assert await count_children(sup) == ChildCounts(specs=3, active=3, supervisors=1, workers=2)
    await terminate_child(sup, "b")
    assert await count_children(sup) == ChildCounts(specs=3, active=2, supervisors=1, workers=2)


async def test_start_child_adds_a_child_at_the_end_and_refuses_a_taken_id(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a")], Strategy.REST_FOR_ONE)
    pid = await start_child(sup, worker(log, "b"))
    assert await children(sup) == {"a": await child_pid(sup, "a"), "b": pid}
    assert await call(pid, "ping") == "b"

    with pytest.raises(DuplicateChild) as info:
        await start_child(sup, worker(log, "a"))
    assert info.value.child_id == "a"
    assert log == inits("a", "b")

    # The added child takes part in the strategy at its place in the order.
    log.clear()
    await crash(sup, "a")
    assert log == [crashed("a"), *stops("b"), *inits("a", "b")]


async def test_terminate_child_stops_it_keeps_its_spec_and_does_not_restart_it(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a"), worker(log, "b")])
    ended = await watch(await child_pid(sup, "a"))
    log.clear()

    await terminate_child(sup, "a")

    assert await ended == SHUTDOWN
    assert log == stops("a")
    assert (await children(sup))["a"] is None
    await terminate_child(sup, "a")  # already stopped: nothing to do
    assert log == stops("a")


async def test_terminate_child_forgets_a_temporary_child(node: asyncotp.Node) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "tmp", restart=Restart.TEMPORARY)])
    await terminate_child(sup, "tmp")
    assert await which_children(sup) == []


async def test_restart_child_refuses_a_running_child_and_restarts_a_stopped_one(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a")])
    old = await child_pid(sup, "a")

    with pytest.raises(ActorError, match="running"):
        await restart_child(sup, "a")
    assert await child_pid(sup, "a") is old

    await terminate_child(sup, "a")
    new = await restart_child(sup, "a")

    assert new is not old
    assert await children(sup) == {"a": new}
    assert await call(new, "ping") == "a"
    assert log == [("init", "a"), *stops("a"), ("init", "a")]


async def test_delete_child_refuses_a_running_child_and_forgets_a_stopped_one(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a"), worker(log, "b")])

    with pytest.raises(ActorError, match="running"):
        await delete_child(sup, "a")
    assert list(await children(sup)) == ["a", "b"]

    await terminate_child(sup, "a")
    await delete_child(sup, "a")

    assert list(await children(sup)) == ["b"]
    with pytest.raises(ChildNotFound):
        await restart_child(sup, "a")


@pytest.mark.parametrize("operation", [terminate_child, restart_child, delete_child])
async def test_an_unknown_child_id_raises_child_not_found(
    node: asyncotp.Node, operation: Any
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a")])
    with pytest.raises(ChildNotFound, match="'ghost'") as info:
        await operation(sup, "ghost")
    assert isinstance(info.value, NoProcess)
    assert list(await children(sup)) == ["a"]


async def test_supervisor_start_refuses_two_children_with_the_same_id(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    with pytest.raises(DuplicateChild):
        await Supervisor.start([worker(log, "a"), worker(log, "a")])
    assert log == []
    assert processes() == []


# -- backoff ---------------------------------------------------------------------------


async def test_a_child_with_backoff_is_not_running_until_its_delay_has_passed(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    log: Log = []
    backoff = Backoff(initial=0.05, max=0.2, jitter=0)
    sup = await Supervisor.start([worker(log, "a"), worker(log, "b", backoff=backoff)])
    a = await child_pid(sup, "a")
    log.clear()

    crashed_at = virtual_clock.elapsed
    old = await crash(sup, "b")
    assert await children(sup) == {"a": a, "b": None}
    health = await supervisor_health(sup)
    assert [c["state"] for c in health["children"]] == ["running", "restarting"]

    new = await wait_for_restart(sup, "b", old)
    assert virtual_clock.elapsed - crashed_at == pytest.approx(0.05)
    assert log == [crashed("b"), ("init", "b")]
    assert (await children(sup))["b"] is new


async def test_backoff_delay_grows_with_each_restart(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    log: Log = []
    backoff = Backoff(initial=0.03, max=0.2, multiplier=3.0, jitter=0)
    sup = await Supervisor.start([worker(log, "b", backoff=backoff)], max_restarts=10)

    delays = []
    for _ in range(3):
        start = virtual_clock.elapsed
        old = await crash(sup, "b")
        assert (await children(sup))["b"] is None
        await wait_for_restart(sup, "b", old)
        delays.append(virtual_clock.elapsed - start)

    assert delays == pytest.approx([0.03, 0.09, 0.2])  # x3 each time, capped at max


async def test_backoff_of_a_group_restart_holds_every_affected_child(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    log: Log = []
    backoff = Backoff(initial=0.05, max=0.2, jitter=0)
    sup = await Supervisor.start(
        [worker(log, "a"), worker(log, "b", backoff=backoff), worker(log, "c")],
        Strategy.REST_FOR_ONE,
    )
    a = await child_pid(sup, "a")
    old_c = await child_pid(sup, "c")
    log.clear()

    await crash(sup, "b")
    assert await children(sup) == {"a": a, "b": None, "c": None}

    await wait_for_restart(sup, "c", old_c)
    assert log == [crashed("b"), *stops("c"), *inits("b", "c")]


# -- reports ---------------------------------------------------------------------------


async def test_a_restart_is_reported_with_supervisor_child_reason_and_restart_count(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    caplog.set_level(logging.INFO, logger="asyncotp")
    sup = await Supervisor.start([worker(log, "a")], name="root")

    await crash(sup, "a")
    await crash(sup, "a")
    await which_children(sup)  # both restarts are done

    terminated = reports(caplog, "child_terminated")
    restarted = reports(caplog, "child_restarted")
    assert [r.levelno for r in terminated] == [logging.ERROR] * 2
    assert [r.levelno for r in restarted] == [logging.INFO] * 2
    for record in (*terminated, *restarted):
        assert record.supervisor is sup  # type: ignore[attr-defined]
        assert record.supervisor_name == "root"  # type: ignore[attr-defined]
        assert record.child_id == "a"  # type: ignore[attr-defined]
        assert isinstance(record.reason, RuntimeError)  # type: ignore[attr-defined]
        assert "crashed on request" in str(record.reason)  # type: ignore[attr-defined]
    assert [r.restart_count for r in terminated] == [0, 1]  # type: ignore[attr-defined]
    assert [r.restart_count for r in restarted] == [1, 2]  # type: ignore[attr-defined]
    assert terminated[0].exc_info is not None  # the crash's traceback is in the report


async def test_a_give_up_is_reported_with_supervisor_child_reason_and_restart_count(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    sup = await Supervisor.start([worker(log, "a"), worker(log, "b")], max_restarts=1)
    ended = await watch(sup)

    with caplog.at_level(logging.ERROR, logger="asyncotp"):
        await crash(sup, "b")
        await crash(sup, "b", settle=False)
        assert await ended == GAVE_UP

    [record] = reports(caplog, "supervisor_gave_up")
    assert record.levelno == logging.ERROR
    assert record.supervisor is sup  # type: ignore[attr-defined]
    assert record.child_id == "b"  # type: ignore[attr-defined]
    assert isinstance(record.reason, RuntimeError)  # type: ignore[attr-defined]
    assert record.restart_count == 1  # type: ignore[attr-defined]


async def test_a_clean_end_of_a_transient_child_is_reported_at_debug_not_as_a_crash(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    sup = await Supervisor.start([worker(log, "t", restart=Restart.TRANSIENT)])

    await end_with(sup, "t", SHUTDOWN)
    await which_children(sup)

    [record] = reports(caplog, "child_terminated")
    assert record.levelno == logging.DEBUG
    assert record.reason is SHUTDOWN  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- DynamicSupervisor -----------------------------------------------------------------


async def test_dynamic_supervisor_restarts_a_crashed_child_and_terminates_by_pid(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    first = await start_child(dsup, worker(log, "w"))
    other = await start_child(dsup, worker(log, "v"))
    log.clear()

    with pytest.raises(ServerExited):
        await call(first, "crash")
    [w, v] = await which_children(dsup)
    assert w.pid not in (None, first)
    assert v.pid is other
    assert log == [crashed("w"), ("init", "w")]

    await terminate_child(dsup, other)
    assert [i.id for i in await which_children(dsup)] == ["w"]
    with pytest.raises(ChildNotFound):
        await terminate_child(dsup, other)


async def test_dynamic_supervisor_refuses_children_beyond_max_children(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start(max_children=2)
    await start_child(dsup, worker(log, "a"))
    await start_child(dsup, worker(log, "b"))
    with pytest.raises(MaxChildren):
        await start_child(dsup, worker(log, "c"))
    assert log == inits("a", "b")


async def test_dynamic_supervisor_forgets_a_temporary_child_that_ends(
    node: asyncotp.Node,
) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    pid = await start_child(dsup, worker(log, "tmp", restart=Restart.TEMPORARY))
    with pytest.raises(ServerExited):
        await call(pid, "crash")
    assert await which_children(dsup) == []
    assert log == [("init", "tmp"), crashed("tmp")]


async def test_dynamic_supervisor_restart_report_carries_the_reason(
    node: asyncotp.Node, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    caplog.set_level(logging.INFO, logger="asyncotp")
    dsup = await DynamicSupervisor.start()
    pid = await start_child(dsup, worker(log, "w"))
    with pytest.raises(ServerExited):
        await call(pid, "crash")
    await which_children(dsup)

    [record] = reports(caplog, "child_restarted")
    assert record.supervisor is dsup  # type: ignore[attr-defined]
    assert record.child_id == "w"  # type: ignore[attr-defined]
    assert isinstance(record.reason, RuntimeError)  # type: ignore[attr-defined]
    assert record.restart_count == 1  # type: ignore[attr-defined]


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "mentions"),
    [
        ({"strategy": "one_for_one"}, TypeError, "strategy"),
        ({"max_restarts": -1}, ValueError, "max_restarts"),
        ({"max_restarts": 1.5}, ValueError, "max_restarts"),
        ({"max_seconds": 0}, ValueError, "max_seconds"),
        ({"children": "abc"}, TypeError, "children"),
        ({"children": [object()]}, TypeError, "ChildSpec"),
    ],
)
async def test_supervisor_start_refuses_bad_arguments_before_starting_anything(
    node: asyncotp.Node, kwargs: dict[str, Any], error: type[Exception], mentions: str
) -> None:
    log: Log = []
    arguments: dict[str, Any] = {"children": [worker(log, "a")], **kwargs}
    with pytest.raises(error, match=mentions):
        await Supervisor.start(**arguments)
    assert log == []
    assert processes() == []
