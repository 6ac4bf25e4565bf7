"""Significant children and ``auto_shutdown`` (OTP 24): a supervisor shuts
itself down, cleanly, when significant children end by themselves.

The tests end children through ``call`` (the child raises ``Stop``); the
supervisor has handled that exit by the time the next call to it returns
(it handles its messages in order), and ``watch`` gives the supervisor's
own exit reason, with a monitor in place before it can end.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from asyncotp import (
    NORMAL,
    SHUTDOWN,
    Application,
    AutoShutdown,
    Caller,
    ChildSpec,
    DynamicSupervisor,
    GenServer,
    Node,
    Pid,
    Restart,
    ServerExited,
    Stop,
    Strategy,
    Supervisor,
    call,
    is_alive,
    receive,
    send,
    spawn,
    start_child,
    terminate_child,
    which_children,
)
from tests.helpers import wait, watch

Log = list[tuple[str, str, object]]


class Job(GenServer):
    """A child that ends when told to, with the reason it is told."""

    async def init(self, tag: str, log: Log) -> None:
        self.tag = tag
        self.log = log

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        raise Stop(request)

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", self.tag, reason))


def job(
    tag: str, log: Log, restart: Restart = Restart.TRANSIENT, *, significant: bool = True
) -> ChildSpec:
    return Job.child_spec(tag, log, id=tag, restart=restart, significant=significant)


async def end(sup: Pid, child_id: str, reason: object) -> None:
    """End child ``child_id`` with ``reason``; return once ``sup`` has seen it
    (or has ended)."""
    (pid,) = [c.pid for c in await which_children(sup) if c.id == child_id]
    assert pid is not None
    with pytest.raises(ServerExited):
        await call(pid, reason)
    if is_alive(sup):
        with contextlib.suppress(ServerExited):  # it shut down while the call waited
            await which_children(sup)


async def pid_of(sup: Pid, child_id: str) -> Pid | None:
    (pid,) = [c.pid for c in await which_children(sup) if c.id == child_id]
    return pid


# -- validation -------------------------------------------------------------------


def test_a_permanent_child_cannot_be_significant() -> None:
    with pytest.raises(ValueError, match=r"significant=True needs restart=Restart\.TRANSIENT"):
        ChildSpec("db", spawn_start, significant=True)


def test_significant_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"ChildSpec\.significant must be True or False"):
        ChildSpec("job", spawn_start, Restart.TEMPORARY, significant=1)  # type: ignore[arg-type]


def test_a_significant_child_is_refused_where_auto_shutdown_is_never() -> None:
    spec = ChildSpec("job", spawn_start, Restart.TRANSIENT, significant=True)
    with pytest.raises(ValueError, match="'job' is significant, but auto_shutdown is"):
        Supervisor.child_spec([spec])
    with pytest.raises(ValueError, match="'job' is significant, but auto_shutdown is"):
        Application("batch", [spec])


def test_auto_shutdown_must_be_an_auto_shutdown_member() -> None:
    with pytest.raises(TypeError, match="auto_shutdown must be an AutoShutdown member"):
        Supervisor.child_spec([], auto_shutdown="any_significant")


async def test_start_refuses_a_significant_child_under_never_before_starting_anything(
    node: Node,
) -> None:
    log: Log = []
    with pytest.raises(ValueError, match=r"auto_shutdown is AutoShutdown\.NEVER"):
        await Supervisor.start([job("a", log)])
    sup = await Supervisor.start([])
    with pytest.raises(ValueError, match="start_child: child 'a' is significant"):
        await start_child(sup, job("a", log))
    assert await which_children(sup) == []


async def test_a_dynamic_supervisor_refuses_significant_children(node: Node) -> None:
    log: Log = []
    dsup = await DynamicSupervisor.start()
    with pytest.raises(ValueError, match="a DynamicSupervisor has no auto_shutdown"):
        await start_child(dsup, job("a", log))


async def spawn_start() -> Pid:
    return spawn(receive)


# -- any_significant ----------------------------------------------------------------


async def test_any_significant_shuts_down_with_shutdown_when_a_transient_one_ends_normally(
    node: Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [job("other", log, significant=False), job("a", log), job("b", log)],
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    exited = await watch(sup)
    await end(sup, "a", NORMAL)
    assert await wait(exited) is SHUTDOWN
    # The others were stopped in reverse start order.
    assert log[1:] == [("terminate", "b", SHUTDOWN), ("terminate", "other", SHUTDOWN)]


async def test_a_temporary_significant_child_counts_even_when_it_crashes(node: Node) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [job("a", log, Restart.TEMPORARY)], auto_shutdown=AutoShutdown.ANY_SIGNIFICANT
    )
    exited = await watch(sup)
    await end(sup, "a", RuntimeError("boom"))
    assert await wait(exited) is SHUTDOWN


async def test_a_transient_significant_child_that_crashes_is_restarted_not_a_shutdown(
    node: Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([job("a", log)], auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    old = await pid_of(sup, "a")
    await end(sup, "a", RuntimeError("boom"))
    new = await pid_of(sup, "a")
    assert is_alive(sup)
    assert new is not None
    assert new is not old


async def test_a_non_significant_child_ending_never_shuts_the_supervisor_down(
    node: Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [job("a", log), job("b", log, significant=False)],
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    await end(sup, "b", NORMAL)
    assert is_alive(sup)
    assert await pid_of(sup, "a") is not None


async def test_terminate_child_of_a_significant_child_does_not_shut_the_supervisor_down(
    node: Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start([job("a", log)], auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    await terminate_child(sup, "a")
    assert is_alive(sup)
    assert await which_children(sup) != []


async def test_a_group_restart_that_stops_a_significant_child_does_not_count(
    node: Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [job("a", log), job("w", log, Restart.PERMANENT, significant=False)],
        strategy=Strategy.ONE_FOR_ALL,
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    await end(sup, "w", RuntimeError("boom"))  # a is stopped and restarted with it
    assert is_alive(sup)
    assert await pid_of(sup, "a") is not None


# -- all_significant ----------------------------------------------------------------


async def test_all_significant_shuts_down_only_when_the_last_significant_child_ends(
    node: Node,
) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [job("a", log), job("b", log, Restart.TEMPORARY), job("w", log, significant=False)],
        auto_shutdown=AutoShutdown.ALL_SIGNIFICANT,
    )
    exited = await watch(sup)
    await end(sup, "a", NORMAL)
    assert is_alive(sup)
    await end(sup, "b", SHUTDOWN)
    assert await wait(exited) is SHUTDOWN
    assert ("terminate", "w", SHUTDOWN) in log


async def test_all_significant_counts_a_child_terminated_by_hand_as_gone(node: Node) -> None:
    log: Log = []
    sup = await Supervisor.start(
        [job("a", log), job("b", log)], auto_shutdown=AutoShutdown.ALL_SIGNIFICANT
    )
    exited = await watch(sup)
    await terminate_child(sup, "a")  # not a shutdown by itself...
    assert is_alive(sup)
    await end(sup, "b", NORMAL)  # ...but the last one still running ends: shut down
    assert await wait(exited) is SHUTDOWN


# -- up the tree ------------------------------------------------------------------


async def test_a_nested_supervisor_that_shuts_down_is_a_clean_end_for_its_transient_spec(
    node: Node,
) -> None:
    log: Log = []
    inner = Supervisor.child_spec(
        [job("a", log)],
        id="inner",
        restart=Restart.TRANSIENT,
        significant=True,
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    root = await Supervisor.start([inner], auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    exited = await watch(root)
    inner_pid = await pid_of(root, "inner")
    assert inner_pid is not None
    await end(inner_pid, "a", NORMAL)
    # inner ends with SHUTDOWN: not restarted (transient), and significant,
    # so the root shuts down in turn.
    assert await wait(exited) is SHUTDOWN


async def finished_job() -> None:
    await receive()  # "go", sent once the whole tree has started


async def start_finished_job() -> Pid:
    return spawn(finished_job, name="batch_job")


async def start_trigger() -> None:
    send("batch_job", "go")


def test_an_application_whose_root_shuts_down_by_itself_exits_0() -> None:
    app = Application(
        "batch",
        [
            ChildSpec("job", start_finished_job, Restart.TRANSIENT, significant=True),
            ChildSpec("trigger", start_trigger, Restart.TEMPORARY),
        ],
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    assert app.run(exit=False, configure_logging=False) == 0


def test_child_spec_takes_significant_for_the_spec_not_for_init() -> None:
    spec = Job.child_spec("a", [], id="a", restart=Restart.TEMPORARY, significant=True)
    assert spec.significant
    assert not Job.child_spec("a", [], id="a").significant
    with pytest.raises(ValueError, match="significant=True needs restart"):
        Job.child_spec("a", [], id="a", significant=True)
