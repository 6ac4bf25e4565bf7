"""Supervision rules taken from OTP (supervisor.erl) and Elixir
(DynamicSupervisor), one test per rule, each named for the rule it states.

Children tell a probe (``asyncotp.testing.Probe``) of each init, refused
start and terminate, so a test asserts the exact order of starts and stops
as the probe received them. Tests synchronise on those messages, on
monitors, on reports and on call round trips to the supervisor, never on
sleeps; the ones that need time itself run on the kit's ``VirtualClock``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import asyncotp
from asyncotp import (
    BRUTAL_KILL,
    GAVE_UP,
    KILLED,
    SHUTDOWN,
    Application,
    Backoff,
    Caller,
    ChildSpec,
    DynamicSupervisor,
    GenServer,
    Pid,
    Restart,
    StartError,
    Strategy,
    Supervisor,
    count_children,
    delete_child,
    restart_child,
    send,
    start_child,
    supervisor_health,
    terminate_child,
    whereis,
    which_children,
)
from asyncotp.testing import (
    Probe,
    VirtualClock,
    capture_reports,
    crash,
    settle,
    wait_for_restart,
)
from tests.helpers import EXIT_TIMEOUT, AppProcess, Gate, wait, watch

# -- children that report to a probe ---------------------------------------------------


def kind(reason: object) -> object:
    """A reason as the probe gets it: exceptions by class name, others as they are."""
    return type(reason).__name__ if isinstance(reason, BaseException) else reason


@attrs.define
class Starts:
    """How many of each child's next starts are refused (its init raises)."""

    refusals: dict[str, int] = attrs.field(factory=dict)

    def refuse_next(self, tag: str, times: int = 1) -> None:
        self.refusals[tag] = self.refusals.get(tag, 0) + times

    def take(self, tag: str) -> bool:
        left = self.refusals.get(tag, 0)
        if left:
            self.refusals[tag] = left - 1
        return bool(left)


class Member(GenServer):
    """A child that sends ("init", tag), ("refused", tag) and ("terminate",
    tag, kind(reason)) to the test's probe; a stubborn one sends
    ("terminating", tag) and then waits in terminate until it is killed; one
    with a ``hold`` gate sends ("starting", tag) and waits in init for it."""

    tag: str
    probe: Pid
    stubborn: bool

    async def init(
        self,
        tag: str,
        probe: Pid,
        starts: Starts | None = None,
        *,
        stubborn: bool = False,
        hold: Gate | None = None,
    ) -> None:
        if starts is not None and starts.take(tag):
            send(probe, ("refused", tag))
            raise RuntimeError(f"{tag} refuses to start")
        if hold is not None:  # stays in init until the gate opens
            send(probe, ("starting", tag))
            await hold.pass_through()
        self.tag = tag
        self.probe = probe
        self.stubborn = stubborn
        send(probe, ("init", tag))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "ping":
            return self.tag
        raise AssertionError(f"unexpected request {request!r}")

    async def terminate(self, reason: Any) -> None:
        if self.stubborn:  # ignores SHUTDOWN: only KILL ends it
            send(self.probe, ("terminating", self.tag))
            await asyncio.Event().wait()
        send(self.probe, ("terminate", self.tag, kind(reason)))


def member(tag: str, probe: Probe, starts: Starts | None = None, **options: Any) -> ChildSpec:
    """A Member child spec whose id is its tag."""
    return Member.child_spec(tag, probe.pid, starts, id=tag, **options)


async def pid_of(sup: Pid | str, child_id: str) -> Pid:
    for info in await which_children(sup):
        if info.id == child_id and info.pid is not None:
            return info.pid
    raise AssertionError(f"child {child_id!r} of {sup!r} is not running")


async def children(sup: Pid | str) -> dict[object, Pid | None]:
    return {info.id: info.pid for info in await which_children(sup)}


async def started(probe: Probe, *tags: str) -> None:
    """Take the probe's ("init", tag) messages, in that order."""
    for tag in tags:
        await probe.expect(("init", tag))


# -- 1. a group restart that fails part way ------------------------------------------------


async def test_one_for_all_restart_failing_part_way_stops_the_restarted_and_restarts_all(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    starts = Starts()
    sup = await Supervisor.start(
        [member(t, probe, starts) for t in "abc"],
        Strategy.ONE_FOR_ALL,
        max_restarts=5,
        max_seconds=60,
    )
    await started(probe, "a", "b", "c")
    starts.refuse_next("b")

    await crash(await pid_of(sup, "a"))
    await started(probe, "a", "b", "c")

    assert probe.received[3:] == [
        ("terminate", "a", "InjectedFault"),
        ("terminate", "c", SHUTDOWN),
        ("terminate", "b", SHUTDOWN),
        ("init", "a"),
        ("refused", "b"),  # the restart fails part way: OTP starts the whole group again
        ("terminate", "a", SHUTDOWN),
        ("init", "a"),
        ("init", "b"),
        ("init", "c"),
    ]
    health = await supervisor_health(sup)
    assert health["restarts_in_window"] == 2  # the crash and the retry
    assert all(c["state"] == "running" for c in health["children"])


async def test_a_group_restart_that_keeps_failing_counts_toward_the_restart_intensity(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    starts = Starts()
    sup = await Supervisor.start(
        [member(t, probe, starts) for t in "abc"], Strategy.ONE_FOR_ALL, max_restarts=2
    )
    await started(probe, "a", "b", "c")
    ended = await watch(sup)
    starts.refuse_next("b", 2)

    await crash(await pid_of(sup, "a"))

    assert await wait(ended) == GAVE_UP  # the crash, one retry, and one more is too many
    assert probe.received[3:] == [
        ("terminate", "a", "InjectedFault"),
        ("terminate", "c", SHUTDOWN),
        ("terminate", "b", SHUTDOWN),
        ("init", "a"),
        ("refused", "b"),
        ("terminate", "a", SHUTDOWN),
        ("init", "a"),
        ("refused", "b"),
        ("terminate", "a", SHUTDOWN),  # giving up stops what runs
    ]


async def test_rest_for_one_retry_restarts_the_failed_child_and_those_after_it_as_a_group(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    virtual_clock.autojump = False  # the retry waits for c's backoff, until the test moves time
    probe = await Probe.start()
    starts = Starts()
    sup = await Supervisor.start(
        [
            member("a", probe),
            member("b", probe),
            member("c", probe, starts, backoff=SLOW),
            member("d", probe),
        ],
        Strategy.REST_FOR_ONE,
        max_restarts=5,
    )
    await started(probe, "a", "b", "c", "d")
    a = await pid_of(sup, "a")
    starts.refuse_next("c")

    await crash(await pid_of(sup, "b"))
    await probe.expect(("refused", "c"))
    b = await pid_of(sup, "b")
    health = await supervisor_health(sup)
    assert [c["state"] for c in health["children"]] == [
        "running",
        "running",
        "restarting",
        "restarting",
    ]
    # A temporary child added meanwhile comes after c: c's group restart
    # stops it and forgets it, as OTP's rest_for_one does.
    await start_child(sup, member("t", probe, restart=Restart.TEMPORARY))
    await virtual_clock.advance(10.0)
    await started(probe, "t", "c", "d")

    assert probe.received[4:] == [
        ("terminate", "b", "InjectedFault"),
        ("terminate", "d", SHUTDOWN),
        ("terminate", "c", SHUTDOWN),
        ("init", "b"),
        ("refused", "c"),
        ("init", "t"),
        ("terminate", "t", SHUTDOWN),
        ("init", "c"),
        ("init", "d"),
    ]
    now = await children(sup)
    assert list(now) == ["a", "b", "c", "d"]
    assert (now["a"], now["b"]) == (a, b)  # before the failed child: untouched


# -- 2. a child in a restart loop ----------------------------------------------------------

SLOW = Backoff(initial=10.0, max=10.0, jitter=0)
"""A backoff long enough for a test to act while the child waits it out."""


async def test_restart_child_and_delete_child_refuse_a_restarting_child_as_otp_does(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    virtual_clock.autojump = False  # the restart waits until the test moves time
    probe = await Probe.start()
    starts = Starts()
    sup = await Supervisor.start(
        [member("waits", probe, backoff=SLOW), member("retries", probe, starts, backoff=SLOW)],
        max_restarts=10,
    )
    await started(probe, "waits", "retries")
    await crash(await pid_of(sup, "waits"))  # waiting out its backoff
    starts.refuse_next("retries", 5)
    await crash(await pid_of(sup, "retries"))
    await virtual_clock.advance(10.0)  # its restart fails: it retries after the backoff
    await probe.expect(("refused", "retries"))
    await started(probe, "waits")
    await crash(await pid_of(sup, "waits"))

    for child_id in ("waits", "retries"):
        for operation in (restart_child, delete_child):
            with pytest.raises(asyncotp.ActorError, match="restarting") as info:
                await operation(sup, child_id)
            assert "terminate_child" in str(info.value)  # what to do instead
    assert await children(sup) == {"waits": None, "retries": None}

    await terminate_child(sup, "waits")  # stops the restart loop ...
    await delete_child(sup, "waits")  # ... so the child can be deleted
    await terminate_child(sup, "retries")
    starts.refusals.clear()
    pid = await restart_child(sup, "retries")
    await virtual_clock.advance(60.0)  # no restart was left pending
    assert await children(sup) == {"retries": pid}


async def test_terminate_child_under_rest_for_one_stops_only_that_child(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    sup = await Supervisor.start([member(t, probe) for t in "abc"], Strategy.REST_FOR_ONE)
    await started(probe, "a", "b", "c")
    before = await children(sup)

    await terminate_child(sup, "b")
    await probe.expect(("terminate", "b", SHUTDOWN))
    assert await children(sup) == {**before, "b": None}
    new_b = await restart_child(sup, "b")
    await started(probe, "b")

    assert await children(sup) == {**before, "b": new_b}
    assert probe.received[3:] == [("terminate", "b", SHUTDOWN), ("init", "b")]


async def test_a_dynamic_child_that_is_restarting_is_removed_by_terminate_child_of_its_last_pid(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    virtual_clock.autojump = False
    probe = await Probe.start()
    starts = Starts()
    dsup = await DynamicSupervisor.start(max_restarts=10)
    waits = await start_child(dsup, member("waits", probe, backoff=SLOW))
    retries = await start_child(dsup, member("retries", probe, starts, backoff=SLOW))
    stays = await start_child(dsup, member("stays", probe))
    await started(probe, "waits", "retries", "stays")
    await crash(retries)
    starts.refuse_next("retries", 5)
    await virtual_clock.advance(10.0)  # its restart fails: it retries after the backoff
    await probe.expect(("refused", "retries"))
    await crash(waits)
    assert [info.pid for info in await which_children(dsup)] == [None, None, stays]

    await terminate_child(dsup, waits)
    await terminate_child(dsup, retries)

    assert [info.pid for info in await which_children(dsup)] == [stays]
    with pytest.raises(asyncotp.ChildNotFound):
        await terminate_child(dsup, waits)  # gone for good
    await virtual_clock.advance(60.0)
    assert [info.pid for info in await which_children(dsup)] == [stays]
    assert probe.take(("init", "waits")) is None
    assert probe.take(("init", "retries")) is None


# -- 3. a start that returns None (OTP's ignore) -------------------------------------------


async def ignored() -> Pid | None:
    return None


async def test_a_temporary_child_ignored_at_start_is_forgotten_and_a_permanent_one_is_kept(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    sup = await Supervisor.start(
        [
            ChildSpec("temporary", ignored, Restart.TEMPORARY),
            member("a", probe),
            ChildSpec("permanent", ignored),
        ]
    )
    await started(probe, "a")

    assert await children(sup) == {"a": await pid_of(sup, "a"), "permanent": None}
    counts = await count_children(sup)
    assert (counts.specs, counts.active) == (2, 1)


async def test_a_child_ignored_on_restart_is_stopped_not_left_restarting(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    answers: list[bool] = []  # the start function starts the child once, then ignores it

    async def once() -> Pid | None:
        if answers:
            return None
        answers.append(True)
        return await Member.start("a", probe.pid, link=True)

    sup = await Supervisor.start([ChildSpec("a", once)])
    await started(probe, "a")

    with capture_reports() as reports:
        await crash(await pid_of(sup, "a"))
        assert await children(sup) == {"a": None}  # queued behind the Exited

    health = await supervisor_health(sup)
    assert [c["state"] for c in health["children"]] == ["stopped"]
    assert reports.events("child_restarted") == []
    answers.clear()
    assert await restart_child(sup, "a") == await pid_of(sup, "a")


# -- 4. StartError keeps its cause ---------------------------------------------------------


class Refuses(GenServer):
    async def init(self, error: Exception) -> None:
        raise error


async def test_start_child_raises_start_error_whose_cause_is_the_underlying_error(
    otp_node: asyncotp.Node,
) -> None:
    in_start = TypeError("not a start function after all")

    async def broken() -> Pid:
        raise in_start

    sup = await Supervisor.start([])
    dsup = await DynamicSupervisor.start()
    for target in (sup, dsup):
        in_init = ValueError("bad config")
        with pytest.raises(StartError) as info:
            await start_child(target, Refuses.child_spec(in_init, id="r"))
        assert info.value.__cause__ is in_init  # the server's own StartError is unwrapped
        assert info.value.reason is in_init

        with pytest.raises(StartError) as info:
            await start_child(target, ChildSpec("b", broken))
        assert info.value.__cause__ is in_start
    assert await which_children(sup) == []
    assert await which_children(dsup) == []


async def test_restart_child_raises_start_error_whose_cause_is_the_underlying_error(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    starts = Starts()
    sup = await Supervisor.start([member("a", probe, starts)])
    await started(probe, "a")
    await terminate_child(sup, "a")
    starts.refuse_next("a")

    with pytest.raises(StartError) as info:
        await restart_child(sup, "a")

    assert isinstance(info.value.__cause__, RuntimeError)
    assert "a refuses to start" in str(info.value.__cause__)
    assert await children(sup) == {"a": None}
    assert await restart_child(sup, "a") == await pid_of(sup, "a")


# -- 5. a supervisor's child spec takes its name as its id ---------------------------------


async def test_two_named_dynamic_supervisors_sit_under_one_parent_with_their_names_as_ids(
    otp_node: asyncotp.Node,
) -> None:
    root = await Supervisor.start(
        [
            DynamicSupervisor.child_spec(name="pool_a"),
            DynamicSupervisor.child_spec(name="pool_b", max_children=1),
            Supervisor.child_spec([], name="inner_a"),
            Supervisor.child_spec([], name="inner_b"),
        ]
    )

    assert await children(root) == {
        name: whereis(name) for name in ("pool_a", "pool_b", "inner_a", "inner_b")
    }
    assert DynamicSupervisor.child_spec().id == "DynamicSupervisor"
    assert DynamicSupervisor.child_spec(id="x", name="pool").id == "x"
    assert Supervisor.child_spec([]).id == "Supervisor"
    assert Supervisor.child_spec([], id="y", name="sup").id == "y"


def test_a_supervisor_child_spec_with_a_bad_name_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="name"):
        DynamicSupervisor.child_spec(name=3)
    with pytest.raises(TypeError, match="name"):
        Supervisor.child_spec([], name="")


def test_a_dynamic_supervisor_child_spec_takes_a_backoff_like_the_others() -> None:
    backoff = Backoff(initial=1.0)
    spec = DynamicSupervisor.child_spec(name="pool", backoff=backoff)
    assert spec.backoff is backoff
    assert isinstance(spec.start, functools.partial)
    assert "backoff" not in spec.start.keywords


# -- 6. validation -------------------------------------------------------------------------

HUGE = 10**400
"""An int too large for a float."""

BAD_PERIODS = [math.inf, -math.inf, math.nan, 0, -1.0, HUGE, True, "5"]


def shown(value: object) -> str:
    return "HUGE" if value is HUGE else repr(value)


async def make_with_period(where: str, max_seconds: Any) -> object:
    """Make a supervisor, a supervisor's child spec or an application with ``max_seconds``."""
    match where:
        case "Supervisor.start":
            return await Supervisor.start([], max_seconds=max_seconds)
        case "DynamicSupervisor.start":
            return await DynamicSupervisor.start(max_seconds=max_seconds)
        case "Supervisor.child_spec":
            return Supervisor.child_spec([], max_seconds=max_seconds)
        case "DynamicSupervisor.child_spec":
            return DynamicSupervisor.child_spec(max_seconds=max_seconds)
    return Application("app", [], max_seconds=max_seconds)


@pytest.mark.parametrize(
    "where",
    [
        "Supervisor.start",
        "DynamicSupervisor.start",
        "Supervisor.child_spec",
        "DynamicSupervisor.child_spec",
        "Application",
    ],
)
@pytest.mark.parametrize("max_seconds", BAD_PERIODS, ids=shown)
async def test_max_seconds_must_be_a_finite_positive_period_as_otp_refuses_an_invalid_period(
    otp_node: asyncotp.Node, where: str, max_seconds: object
) -> None:
    with pytest.raises(ValueError) as info:
        await make_with_period(where, max_seconds)
    assert "max_seconds" in str(info.value)
    assert repr(max_seconds) in str(info.value)
    assert asyncotp.processes() == []


async def test_shutdown_zero_is_accepted_and_sends_shutdown_then_kills_at_once(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    probe = await Probe.start()
    sup = await Supervisor.start([member("s", probe, stubborn=True, shutdown=0)])
    await started(probe, "s")
    pid = await pid_of(sup, "s")
    ended = await watch(pid)

    with capture_reports() as reports:
        before = virtual_clock.elapsed
        await terminate_child(sup, "s")
        assert virtual_clock.elapsed == before  # no time given to stop

    assert await wait(ended) is KILLED
    [killed] = reports.events("child_killed", child_id="s")
    assert killed.pid is pid
    assert ("terminate", "s", SHUTDOWN) not in probe.received
    assert ChildSpec("s", ignored, shutdown=0.0).shutdown == 0.0


async def test_an_invalid_request_is_refused_before_the_supervisor_is_looked_up(
    otp_node: asyncotp.Node,
) -> None:
    not_a_spec: Any = object()
    unhashable: list[Any] = [["a"], {"a": 1}, {1}]
    with pytest.raises(TypeError, match="ChildSpec"):
        await start_child("nobody", not_a_spec)
    with pytest.raises(TypeError, match=r"\['a'\]"):
        await terminate_child("nobody", unhashable[0])
    with pytest.raises(TypeError, match="restart_child"):
        await restart_child("nobody", unhashable[1])
    with pytest.raises(TypeError, match="delete_child"):
        await delete_child("nobody", unhashable[2])
    with pytest.raises(ValueError, match="timeout"):
        await supervisor_health("nobody", timeout=math.nan)
    with pytest.raises(asyncotp.NoProcess):
        await start_child("nobody", ChildSpec("a", ignored))  # a good spec: then the lookup


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial", math.inf),
        ("multiplier", math.inf),
        ("jitter", math.inf),
        ("initial", HUGE),
        ("max", HUGE),
        ("reset_after", HUGE),
        ("multiplier", math.nan),
        ("max", math.nan),
    ],
    ids=shown,
)
def test_backoff_refuses_nan_overflow_and_inf_except_where_inf_means_no_limit(
    field: str, value: object
) -> None:
    with pytest.raises(ValueError) as info:
        Backoff(**{field: value})  # type: ignore[arg-type]  # a wrong value on purpose
    assert f"Backoff.{field}" in str(info.value)
    assert repr(value) in str(info.value)


def test_backoff_max_and_reset_after_take_inf_as_no_limit() -> None:
    backoff = Backoff(initial=1.0, max=math.inf, reset_after=math.inf, jitter=0)
    assert backoff.delay(10, 0.5) == 1024.0  # never capped


@pytest.mark.parametrize("shutdown", [HUGE, -1, -math.inf, math.nan], ids=shown)
def test_child_spec_shutdown_refuses_negative_nan_and_overflowing_seconds(
    shutdown: float,
) -> None:
    with pytest.raises(ValueError) as info:
        ChildSpec("a", ignored, shutdown=shutdown)
    assert "ChildSpec.shutdown" in str(info.value)
    assert repr(shutdown) in str(info.value)


def test_application_shutdown_timeout_takes_inf_as_no_limit_and_refuses_overflow() -> None:
    assert Application("app", [], shutdown_timeout=math.inf).shutdown_timeout == math.inf
    for bad in (HUGE, math.nan, 0, -1.0):
        with pytest.raises(ValueError, match="shutdown_timeout"):
            Application("app", [], shutdown_timeout=bad)


# -- 7. a stopping DynamicSupervisor stops its children together ---------------------------


async def test_a_stopping_dynamic_supervisor_stops_its_slow_children_together_not_one_by_one(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    probe = await Probe.start()
    dsup = await DynamicSupervisor.start()
    tags = [f"w{i}" for i in range(5)]
    pids = [await start_child(dsup, member(t, probe, stubborn=True, shutdown=0.3)) for t in tags]
    await started(probe, *tags)
    ended = [await watch(pid) for pid in pids]

    before = virtual_clock.elapsed
    await asyncotp.stop(dsup, timeout=None)

    assert virtual_clock.elapsed - before == pytest.approx(0.3)  # not 5 x 0.3 s
    assert [await wait(e) for e in ended] == [KILLED] * 5
    # Each got SHUTDOWN before the first was killed.
    assert sorted(probe.received[5:]) == sorted(("terminating", t) for t in tags)


async def test_each_child_of_a_stopping_dynamic_supervisor_is_killed_when_its_own_time_runs_out(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    probe = await Probe.start()
    dsup = await DynamicSupervisor.start()
    shutdowns = {"long": 2.0, "short": 0.5, "quick": 1.0, "brutal": BRUTAL_KILL}
    pids = {
        tag: await start_child(dsup, member(tag, probe, stubborn=tag != "quick", shutdown=shutdown))
        for tag, shutdown in shutdowns.items()
    }
    await started(probe, *shutdowns)
    for pid in pids.values():
        await probe.monitor(pid)
    start = virtual_clock.elapsed
    stopping = asyncio.ensure_future(asyncotp.stop(dsup, timeout=None))

    ended_at = {}
    for _ in pids:
        down = await probe.expect(asyncotp.Down)
        [tag] = [t for t, p in pids.items() if p is down.pid]
        ended_at[tag] = (virtual_clock.elapsed - start, down.reason)
    await wait(stopping)

    assert ended_at == {
        "brutal": (0.0, KILLED),
        "quick": (0.0, SHUTDOWN),  # it stops at once when told
        "short": (pytest.approx(0.5), KILLED),
        "long": (pytest.approx(2.0), KILLED),
    }


# -- 8. a start that is cancelled, or that times out ---------------------------------------


async def test_cancelling_supervisor_start_stops_what_it_started_and_frees_its_name(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    held = Gate()
    starting = asyncio.ensure_future(
        Supervisor.start(
            [member("a", probe), member("b", probe), member("c", probe, hold=held, name="c")],
            name="root",
        )
    )
    await probe.expect(("starting", "c"))
    root, c = whereis("root"), whereis("c")
    assert root is not None
    assert c is not None
    ended = {"root": await watch(root), "c": await watch(c)}

    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait(starting)

    # By the time the cancellation comes through, nothing is left:
    assert whereis("root") is None
    assert whereis("c") is None
    assert asyncotp.processes() == [probe.pid]
    assert await wait(ended["c"]) is KILLED  # cut off in its init: nobody else can stop it
    assert await wait(ended["root"]) is KILLED
    assert probe.received == [
        ("init", "a"),
        ("init", "b"),
        ("starting", "c"),
        ("terminate", "b", SHUTDOWN),  # the others stop in reverse start order
        ("terminate", "a", SHUTDOWN),
    ]
    held.open()


async def test_a_supervisor_start_past_its_timeout_kills_the_half_started_child_too(
    otp_node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    probe = await Probe.start()
    held = Gate()

    with pytest.raises(StartError) as info:
        await Supervisor.start(
            [member("a", probe), member("b", probe, hold=held, name="b")],
            name="root",
            timeout=1.0,
        )

    assert isinstance(info.value.__cause__, TimeoutError)
    assert whereis("root") is None
    assert whereis("b") is None
    assert asyncotp.processes() == [probe.pid]
    assert probe.received == [("init", "a"), ("starting", "b"), ("terminate", "a", SHUTDOWN)]
    held.open()


async def test_cancelling_the_start_of_a_tree_stops_the_nested_supervisors_too(
    otp_node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    held = Gate()
    inner = Supervisor.child_spec([member("x", probe), member("y", probe, hold=held)], id="in")
    starting = asyncio.ensure_future(
        Supervisor.start([member("a", probe), inner, member("z", probe)], name="root")
    )
    await probe.expect(("starting", "y"))

    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait(starting)

    assert asyncotp.processes() == [probe.pid]
    assert probe.received == [
        ("init", "a"),
        ("init", "x"),
        ("starting", "y"),
        ("terminate", "x", SHUTDOWN),
        ("terminate", "a", SHUTDOWN),
    ]
    held.open()


@pytest.mark.parametrize("kind", [Supervisor, DynamicSupervisor], ids=lambda k: k.__name__)
@pytest.mark.parametrize("steps", range(6))
async def test_a_supervisor_start_cancelled_at_any_point_leaves_nothing_nobody_knows_of(
    otp_node: asyncotp.Node, kind: type[Supervisor] | type[DynamicSupervisor], steps: int
) -> None:
    probe = await Probe.start()
    if kind is Supervisor:
        starting = asyncio.ensure_future(Supervisor.start([member("a", probe)], name="sup"))
    else:
        starting = asyncio.ensure_future(DynamicSupervisor.start(name="sup"))
    for _ in range(steps):
        await asyncio.sleep(0)  # one scheduling step: the cancellation lands further on
    asyncio.get_running_loop().call_soon(starting.cancel)
    await asyncio.wait({starting})

    if starting.cancelled():
        assert whereis("sup") is None
        assert asyncotp.processes() == [probe.pid]
        await settle()  # the probe has taken every message sent to it
        # a either never ran, or ended in its init (its start was cut short),
        # or was started and then stopped: with SHUTDOWN by its supervisor,
        # or with KILLED over the link when the half-started supervisor was
        # killed (as OTP kills a start that is given up).
        assert probe.received in (
            [],
            [("init", "a")],
            [("init", "a"), ("terminate", "a", SHUTDOWN)],
            [("init", "a"), ("terminate", "a", KILLED)],
        )
    else:  # the cancellation came after start had returned: the caller has the pid
        assert whereis("sup") is starting.result()


# The same as a program: an Application told to stop while its tree starts.

APP_SCRIPT = """
import asyncio
import sys

from asyncotp import Application, GenServer


class Worker(GenServer):
    async def init(self, tag, hang=False, block=False):
        self.tag = tag
        self.block = block
        if hang:
            print(f"starting {tag}", flush=True)
            await asyncio.sleep(3600)
        print(f"ready {tag}", flush=True)

    async def terminate(self, reason):
        print(f"terminated {self.tag} {reason!r}", flush=True)
        if self.block:
            await asyncio.sleep(3600)


def worker(tag, **options):
    return Worker.child_spec(tag, id=tag, timeout=3600, **options)


TREES = {
    "hangs-in-init": dict(
        children=[worker("a"), worker("b"), worker("c", hang=True), worker("d")],
    ),
    "hangs-in-init-and-terminate": dict(
        children=[worker("a", block=True, shutdown=3600.0), worker("b", hang=True)],
        shutdown_timeout=3600,
    ),
    "hangs-past-shutdown-timeout": dict(
        children=[worker("a", block=True, shutdown=3600.0), worker("b", hang=True)],
        shutdown_timeout=0.5,
    ),
}

Application("demo", **TREES[sys.argv[1]]).run()
print("run returned", flush=True)
"""


@pytest.fixture
def launch_app(tmp_path: Path) -> Iterator[Callable[[str], AppProcess]]:
    """Start the script above in a mode; kill whatever is left at the end."""
    script = tmp_path / "app.py"
    script.write_text(APP_SCRIPT)
    launched: list[AppProcess] = []

    def launch(mode: str) -> AppProcess:
        app = AppProcess(script, mode, tmp_path / f"stderr-{len(launched)}.txt")
        launched.append(app)
        return app

    yield launch
    for app in launched:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait(timeout=EXIT_TIMEOUT)
        if app.proc.stdout is not None:
            app.proc.stdout.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_while_the_tree_starts_stops_what_started_and_exits_non_zero(
    launch_app: Callable[[str], AppProcess], signum: signal.Signals
) -> None:
    app = launch_app("hangs-in-init")
    app.expect("ready b")
    app.expect("starting c")  # c's init takes an hour

    app.send(signum)
    code = app.finish()

    assert code == 1, app.stderr()
    assert app.lines == [
        "ready a",
        "ready b",
        "starting c",
        "terminated b SHUTDOWN",  # what started stops in reverse order; c is killed in init
        "terminated a SHUTDOWN",
    ]
    assert "stopped before its supervision tree had started" in app.stderr()


@pytest.mark.timeout(60)
def test_a_second_signal_while_the_tree_starts_kills_it_at_once(
    launch_app: Callable[[str], AppProcess],
) -> None:
    app = launch_app("hangs-in-init-and-terminate")  # shutdown_timeout is an hour
    app.expect("ready a")
    app.expect("starting b")
    app.send(signal.SIGTERM)
    app.expect("terminated a SHUTDOWN")  # a now blocks in terminate, for an hour

    app.send(signal.SIGTERM)
    code = app.finish()

    assert code == 1, app.stderr()
    assert app.lines == ["ready a", "starting b", "terminated a SHUTDOWN"]
    assert "forcing" in app.stderr()


@pytest.mark.timeout(60)
def test_shutdown_timeout_bounds_the_stop_of_a_partly_started_tree(
    launch_app: Callable[[str], AppProcess],
) -> None:
    app = launch_app("hangs-past-shutdown-timeout")  # shutdown_timeout=0.5
    app.expect("ready a")
    app.expect("starting b")

    app.send(signal.SIGTERM)
    code = app.finish()

    assert code == 1, app.stderr()
    assert app.lines == ["ready a", "starting b", "terminated a SHUTDOWN"]
    assert "within 0.5 s" in app.stderr()


# -- 9. reports never call a user's repr unguarded -----------------------------------------


class Unprintable(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("this repr is broken")


class UnprintableReason:
    def __repr__(self) -> str:
        raise RuntimeError("this repr is broken")


UNPRINTABLE = [Unprintable("boom"), UnprintableReason()]


def placeholder(value: object) -> str:
    """The part of the runtime's placeholder for ``value`` that names it."""
    return f"{type(value).__qualname__} object at {id(value):#x}: repr() raised"


@pytest.mark.parametrize("reason", UNPRINTABLE, ids=lambda r: type(r).__name__)
async def test_an_unprintable_exit_reason_is_reported_with_a_placeholder_and_the_child_restarted(
    otp_node: asyncotp.Node, caplog: pytest.LogCaptureFixture, reason: object
) -> None:
    caplog.set_level(logging.INFO, logger="asyncotp")  # pytest's handler formats every record
    probe = await Probe.start()
    sup = await Supervisor.start([member("a", probe)])
    dsup = await DynamicSupervisor.start()
    await started(probe, "a")
    old = await pid_of(sup, "a")
    dyn_old = await start_child(dsup, member("d", probe))
    await started(probe, "d")

    with capture_reports() as reports:
        assert await crash(old, reason) is reason
        new = await wait_for_restart(sup, "a", old)
        assert await crash(dyn_old, reason) is reason
        await started(probe, "d")

    assert await asyncotp.call(new, "ping") == "a"
    [dyn_new] = [info.pid for info in await which_children(dsup)]
    assert dyn_new not in (None, dyn_old)
    for child_id in ("a", "d"):
        [terminated] = reports.events("child_terminated", child_id=child_id)
        assert terminated.reason is reason
        assert placeholder(reason) in terminated.message
        assert reports.events("child_restarted", child_id=child_id)
    assert any(placeholder(reason) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("reason", UNPRINTABLE, ids=lambda r: type(r).__name__)
async def test_a_supervisor_giving_up_over_an_unprintable_reason_still_stops_its_children(
    otp_node: asyncotp.Node, reason: object
) -> None:
    probe = await Probe.start()
    sup = await Supervisor.start([member("a", probe), member("b", probe)], max_restarts=0)
    await started(probe, "a", "b")
    ended = await watch(sup)

    with capture_reports() as reports:
        await crash(await pid_of(sup, "b"), reason)
        assert await wait(ended) == GAVE_UP

    await probe.expect(("terminate", "a", SHUTDOWN))
    [gave_up] = reports.events("supervisor_gave_up")
    assert placeholder(reason) in gave_up.message


async def test_an_unprintable_start_error_is_refused_with_a_placeholder(
    otp_node: asyncotp.Node,
) -> None:
    error = Unprintable("no")

    async def refuses() -> Pid:
        raise error

    sup = await Supervisor.start([])
    dsup = await DynamicSupervisor.start()
    for target in (sup, dsup):
        with pytest.raises(StartError) as info:
            await start_child(target, ChildSpec("x", refuses))
        assert placeholder(error) in str(info.value)
        assert info.value.reason is error
    assert await which_children(sup) == []
