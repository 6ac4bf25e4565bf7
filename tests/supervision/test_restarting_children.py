"""``ChildInfo.restarting``: a child the supervisor is bringing back (waiting
out its backoff, or retrying a start that failed) shows as restarting, as
OTP shows ``restarting`` in place of its pid; ``count_children`` agrees.

A backoff of an hour keeps the child restarting for the whole test; the
test never waits for it, and the node's shutdown cancels the timer.
"""

from __future__ import annotations

from typing import Any

import pytest

from asyncotp import (
    Backoff,
    Caller,
    ChildCounts,
    ChildInfo,
    ChildSpec,
    ChildType,
    DynamicSupervisor,
    GenServer,
    Node,
    Pid,
    Restart,
    ServerExited,
    Strategy,
    Supervisor,
    call,
    count_children,
    start_child,
    terminate_child,
    which_children,
)

AN_HOUR = Backoff(initial=3600.0, max=3600.0, jitter=0.0)


class Worker(GenServer):
    async def init(self) -> None:
        pass

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        raise RuntimeError("crashed on purpose")


def slow_to_come_back(child_id: str) -> ChildSpec:
    return ChildSpec(child_id, Worker.child_spec().start, backoff=AN_HOUR)


async def crash(pid: Pid | None) -> None:
    assert pid is not None
    with pytest.raises(ServerExited):
        await call(pid, "crash")


async def test_a_child_waiting_out_its_backoff_shows_as_restarting_and_not_active(
    node: Node,
) -> None:
    sup = await Supervisor.start([slow_to_come_back("a"), Worker.child_spec(id="b")])
    a, b = await which_children(sup)
    assert not a.restarting
    await crash(a.pid)
    a_now, b_now = await which_children(sup)
    assert a_now == ChildInfo("a", None, ChildType.WORKER, Restart.PERMANENT, restarting=True)
    assert not b_now.restarting
    assert b_now.pid is b.pid
    assert await count_children(sup) == ChildCounts(specs=2, active=1, supervisors=0, workers=2)


async def test_a_group_waiting_for_a_backoff_shows_every_member_as_restarting(
    node: Node,
) -> None:
    sup = await Supervisor.start(
        [slow_to_come_back("a"), Worker.child_spec(id="b")], strategy=Strategy.ONE_FOR_ALL
    )
    a, _ = await which_children(sup)
    await crash(a.pid)
    assert [(c.pid, c.restarting) for c in await which_children(sup)] == [
        (None, True),
        (None, True),
    ]
    assert (await count_children(sup)).active == 0


async def test_terminate_child_ends_the_restarts_and_the_child_shows_as_stopped(
    node: Node,
) -> None:
    sup = await Supervisor.start([slow_to_come_back("a")])
    [a] = await which_children(sup)
    await crash(a.pid)
    await terminate_child(sup, "a")
    assert await which_children(sup) == [
        ChildInfo("a", None, ChildType.WORKER, Restart.PERMANENT, restarting=False)
    ]


async def test_a_transient_child_that_ended_cleanly_is_stopped_not_restarting(
    node: Node,
) -> None:
    sup = await Supervisor.start([])
    spec = ChildSpec("t", Worker.child_spec().start, Restart.TRANSIENT)
    pid = await start_child(sup, spec)
    await terminate_child(sup, "t")
    [info] = await which_children(sup)
    assert (info.pid, info.restarting) == (None, False)
    assert pid is not None


async def test_a_dynamic_supervisors_child_in_backoff_shows_as_restarting(node: Node) -> None:
    pool = await DynamicSupervisor.start()
    pid = await start_child(pool, slow_to_come_back("a"))
    other = await start_child(pool, Worker.child_spec(id="b"))
    await crash(pid)
    infos = await which_children(pool)
    assert [(c.id, c.pid, c.restarting) for c in infos] == [("a", None, True), ("b", other, False)]
    counts = await count_children(pool)
    assert (counts.specs, counts.active) == (2, 1)
    await terminate_child(pool, pid)  # known by the pid it last ran as
    assert [c.id for c in await which_children(pool)] == ["b"]
