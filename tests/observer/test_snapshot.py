"""``snapshot`` and ``top``: the node's trees and actors, as a frozen record.

A small tree (``root`` one_for_one: ``a``, ``inner`` one_for_all of ``b`` and
``c``, and a plain actor ``plain``) whose workers tell a ``Probe`` when they
start. Faults come from the kit (``crash``), restarts are waited for with
``wait_for_restart``; nothing sleeps. The only short timeouts are the
snapshot's own, where an unresponsive supervisor is the rule under test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import asyncotp
from asyncotp import (
    Caller,
    ChildSpec,
    ChildType,
    DynamicSupervisor,
    GenServer,
    NoNodeError,
    Pid,
    Restart,
    Strategy,
    Supervisor,
    call,
    cast,
    receive,
    self_pid,
    send,
    spawn,
    start_child,
    whereis,
)
from asyncotp.observer import ChildSnapshot, NodeSnapshot, snapshot, top
from asyncotp.testing import Probe, crash, wait_for_restart
from tests.helpers import Gate, started, wait


class Worker(GenServer):
    """Tells the probe ``("started", label, pid)`` at every start."""

    async def init(self, probe: Pid, label: str) -> None:
        send(probe, ("started", label, self_pid()))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if isinstance(request, Gate):
            await request.pass_through()  # busy until the test opens the gate
        return request

    async def handle_cast(self, request: Any) -> None:
        pass


async def idle_actor() -> None:
    await receive(lambda message: message == "never")


async def start_plain() -> Pid:
    return spawn(idle_actor)


async def start_tree(probe: Probe) -> Pid:
    inner = Supervisor.child_spec(
        [
            Worker.child_spec(probe.pid, "b", id="b", name="bee"),
            Worker.child_spec(probe.pid, "c", id="c", restart=Restart.TRANSIENT),
        ],
        id="inner",
        strategy=Strategy.ONE_FOR_ALL,
        name="inner",
    )
    root = await Supervisor.start(
        [
            Worker.child_spec(probe.pid, "a", id="a"),
            inner,
            ChildSpec(id="plain", start=start_plain),
        ],
        name="root",
        max_restarts=5,
        max_seconds=9.0,
    )
    for _ in range(3):
        await probe.expect(lambda m: m[0] == "started")
    return root


def child(snap: NodeSnapshot, *path: object) -> ChildSnapshot:
    for found, item in snap.walk():
        if found == path:
            return item
    raise AssertionError(f"no child at {path!r}; the tree has {[p for p, _ in snap.walk()]!r}")


async def test_a_snapshot_shows_every_supervisor_and_child_with_names_and_kinds(
    node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    root = await start_tree(probe)
    snap = await snapshot()

    assert [tree.pid for tree in snap.trees] == [root]
    tree = snap.trees[0]
    assert (tree.name, tree.state, tree.strategy, tree.behaviour) == (
        "root",
        "running",
        Strategy.ONE_FOR_ONE,
        "Supervisor",
    )
    assert (tree.max_restarts, tree.max_seconds, tree.restarts_in_window) == (5, 9.0, 0)
    assert [(c.id, c.kind, c.behaviour) for c in tree.children] == [
        ("a", "genserver", "Worker"),
        ("inner", "supervisor", "Supervisor"),
        ("plain", "actor", "idle_actor"),
    ]
    assert [path for path, _ in snap.walk()] == [
        ("root", "a"),
        ("root", "inner"),
        ("root", "inner", "b"),
        ("root", "inner", "c"),
        ("root", "plain"),
    ]
    inner = child(snap, "root", "inner")
    assert inner.type is ChildType.SUPERVISOR
    assert inner.supervisor is not None
    assert inner.supervisor.strategy is Strategy.ONE_FOR_ALL
    b, c = inner.supervisor.children
    assert (b.name, b.pid, b.restart, b.state, b.status) == (
        "bee",
        whereis("bee"),
        Restart.PERMANENT,
        "running",
        "waiting",
    )
    assert (c.name, c.restart, c.restarts) == (None, Restart.TRANSIENT, 0)
    assert snap.restarts == 0

    # Every actor is listed, the probe and the test's helpers included.
    by_pid = {actor.pid: actor for actor in snap.actors}
    assert probe.pid in by_pid
    assert by_pid[probe.pid].kind == "actor"
    assert by_pid[root].kind == "supervisor"
    assert by_pid[root].parent is None
    bee = by_pid[b.pid]  # type: ignore[index]
    assert (bee.name, bee.kind, bee.behaviour, bee.child_id, bee.supervisor) == (
        "bee",
        "genserver",
        "Worker",
        "b",
        inner.pid,
    )
    assert bee.parent is inner.pid
    assert bee.links == 1
    assert bee.uptime >= 0
    assert bee.memory > 0
    assert snap.actor(probe.pid) is by_pid[probe.pid]


async def test_a_crash_shows_as_a_restart_of_that_child_with_a_new_pid(
    node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    await start_tree(probe)
    before = await snapshot()
    old_b = child(before, "root", "inner", "b").pid
    old_c = child(before, "root", "inner", "c").pid
    assert old_b is not None

    await crash(old_b)
    new_b = await wait_for_restart("inner", "b", old_b)
    await probe.expect(("started", "b", new_b))
    await probe.expect(lambda m: m[:2] == ("started", "c"))  # one_for_all restarted c too

    after = await snapshot()
    b = child(after, "root", "inner", "b")
    c = child(after, "root", "inner", "c")
    assert (b.pid, b.restarts, b.state) == (new_b, 1, "running")
    assert c.pid is not old_c
    assert c.restarts == 0  # as in OTP, the restart is the failed child's
    inner = child(after, "root", "inner").supervisor
    assert inner is not None
    assert inner.restarts_in_window == 1
    assert after.restarts == 1
    assert after.actor(old_b) is None
    restarted = after.actor(new_b)
    assert restarted is not None
    assert (restarted.restarts, restarted.child_id) == (1, "b")
    assert after.top(1, by="restarts") == (restarted,)


async def test_top_ranks_actors_by_mailbox_then_age(node: asyncotp.Node) -> None:
    probe = await Probe.start()
    await start_tree(probe)
    a = child(await snapshot(), "root", "a").pid
    assert a is not None
    gate = Gate()
    busy = await started(call(a, gate))
    await wait(gate.entered.wait())
    for n in range(5):
        cast(a, n)  # queued behind the call the server is busy with

    ranked = await top(3, by="mailbox")
    assert ranked[0].pid is a
    assert ranked[0].mailbox_length == 5
    assert all(actor.mailbox_length == 0 for actor in ranked[1:])
    assert ranked[1].pid.number < ranked[2].pid.number  # ties: the older first
    snap = await snapshot()
    assert snap.top(0) == ()
    assert len(snap.top(100, by="uptime")) == len(snap.actors)
    oldest = snap.top(1, by="uptime")[0]
    assert oldest.pid.number == min(actor.pid.number for actor in snap.actors)
    gate.open()
    assert await wait(busy) is gate


async def test_to_dict_is_json_with_pids_as_numbers_and_ids_as_json_or_repr(
    node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    await Supervisor.start(
        [
            Worker.child_spec(probe.pid, "s", id=("shard", 1)),
            Worker.child_spec(probe.pid, "n", id=7),
        ],
        name="shards",
    )
    snap = await snapshot()
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["totals"]["actors"] == len(snap.actors)
    assert data["totals"]["supervisors"] == 1
    assert data["totals"]["restarts"] == 0
    tree = data["trees"][0]
    assert (tree["name"], tree["strategy"], tree["dynamic"]) == ("shards", "one_for_one", False)
    assert [c["id"] for c in tree["children"]] == ["('shard', 1)", 7]
    first = tree["children"][0]
    assert first["pid"] == snap.trees[0].children[0].pid.number  # type: ignore[union-attr]
    assert (first["kind"], first["type"], first["restart"], first["state"]) == (
        "genserver",
        "worker",
        "permanent",
        "running",
    )
    actor = next(a for a in data["actors"] if a["pid"] == first["pid"])
    assert (actor["child_id"], actor["supervisor"], actor["behaviour"]) == (
        "('shard', 1)",
        snap.trees[0].pid.number,
        "Worker",
    )
    assert set(actor) >= {"mailbox_length", "links", "monitors", "uptime", "memory", "parent"}


async def test_a_root_limits_the_trees_to_the_one_under_it(node: asyncotp.Node) -> None:
    probe = await Probe.start()
    await start_tree(probe)
    only = await snapshot(root="inner")
    assert [tree.name for tree in only.trees] == ["inner"]
    assert [c.id for c in only.trees[0].children] == ["b", "c"]
    assert len(only.actors) == len((await snapshot()).actors)
    assert (await snapshot(root="nobody")).trees == ()
    with pytest.raises(TypeError, match="is not a supervisor"):
        await snapshot(root=probe.pid)


async def test_a_dynamic_supervisor_shows_its_children(node: asyncotp.Node) -> None:
    probe = await Probe.start()
    dyn = await DynamicSupervisor.start(name="pool")
    for label in ("x", "y"):
        await start_child(dyn, Worker.child_spec(probe.pid, label, id="job"))
    snap = await snapshot()
    (tree,) = snap.trees
    assert (tree.pid, tree.dynamic, tree.behaviour) == (dyn, True, "DynamicSupervisor")
    assert [(c.id, c.kind) for c in tree.children] == [("job", "genserver"), ("job", "genserver")]


async def test_a_busy_supervisor_is_unresponsive_and_hides_its_subtree(
    node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    deeper = Supervisor.child_spec(
        [Worker.child_spec(probe.pid, "d", id="d")], id="deeper", name="deeper"
    )
    await Supervisor.start([Supervisor.child_spec([deeper], id="inner", name="inner")], name="root")
    await probe.expect(lambda m: m[0] == "started")
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_start() -> Pid:
        entered.set()
        await release.wait()
        return spawn(idle_actor)

    adding = await started(start_child("inner", ChildSpec(id="slow", start=slow_start)))
    await wait(entered.wait())  # inner is busy starting it, and cannot answer
    snap = await snapshot(timeout=0.05)
    assert [tree.name for tree in snap.trees] == ["root"]  # deeper is not a tree of its own
    inner = child(snap, "root", "inner").supervisor
    assert inner is not None
    assert (inner.state, inner.children) == ("unresponsive", ())
    assert snap.actor(whereis("deeper")) is not None  # type: ignore[arg-type]
    release.set()
    await wait(adding)
    assert [path for path, _ in (await snapshot()).walk()][-1] == ("root", "inner", "slow")


async def test_bad_arguments_and_a_stopped_node_are_refused(node: asyncotp.Node) -> None:
    with pytest.raises(ValueError, match="timeout must be seconds > 0"):
        await snapshot(timeout=0)
    with pytest.raises(TypeError, match="node must be a Node"):
        await snapshot("node")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="root must be None or a supervisor"):
        await snapshot(root=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        await top(-1)
    with pytest.raises(ValueError, match="by must be one of 'mailbox'"):
        await top(3, by="cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"NodeSnapshot\.top: n must be"):
        (await snapshot()).top(True)


async def test_a_stopped_node_is_refused() -> None:
    async with asyncotp.node() as stopped:
        pass
    with pytest.raises(NoNodeError, match="the node has stopped"):
        await snapshot(stopped)


def test_a_snapshot_needs_a_node() -> None:
    async def outside() -> None:
        await snapshot()

    with pytest.raises(NoNodeError):
        asyncio.run(outside())


def test_a_snapshot_value_is_frozen() -> None:
    snap = NodeSnapshot(0.0, (), ())
    with pytest.raises(AttributeError):
        snap.taken_at = 1.0  # type: ignore[misc]
    assert snap.top() == ()
    assert snap.restarts == 0
    assert json.loads(json.dumps(snap.to_dict()))["trees"] == []
