"""``snapshot``: the whole node, its supervision trees and its actors, at once.

The trees are read from the supervisors themselves (one
``supervisor_health`` call each, nested supervisors concurrently, all within
one deadline), each child described by the runtime right after its
supervisor answered; the actor table is read in one pass, without awaiting,
once the trees are in. Nothing is added to the runtime's hot paths: all the
work happens when somebody asks.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any, Final

import anyio
import attrs

from .._core import (
    CallTimeout,
    ChildType,
    Node,
    NoNodeError,
    NoProcess,
    Pid,
    ProcessFacts,
    ServerExited,
    current_node,
    describe,
    describe_all,
    is_supervisor,
    node_running,
    now,
    registered_name,
    using_node,
    validate,
    whereis_on,
)
from ..supervision import supervisor_health
from ._values import (
    ActorSnapshot,
    ChildKind,
    ChildSnapshot,
    NodeSnapshot,
    SupervisorSnapshot,
    TopKey,
    check_top,
)

_MIN_WAIT: Final = 0.001  # the least time left for a call, so that it can answer at all


async def snapshot(
    node: Node | None = None, *, root: Pid | str | None = None, timeout: float = 1.0
) -> NodeSnapshot:
    """A frozen record of the node: every supervision tree and every actor.

    ``node`` defaults to the calling task's node. ``root`` (a supervisor's
    pid or registered name) limits the trees to the one under it (no tree
    when it is not running); the actors are always all of them. Every
    supervisor is asked for its children within one deadline, ``timeout``
    seconds from now: one that does not answer by then is reported
    ``"unresponsive"`` (with its children unknown), so a snapshot never takes
    much longer than ``timeout``.

    Example::

        snap = await snapshot()
        for path, child in snap.walk():
            print("/".join(map(str, path)), child.state, child.restarts)
        for actor in snap.top(5, by="mailbox"):
            print(actor.pid, actor.behaviour, actor.mailbox_length)
        json.dumps(snap.to_dict())

    Raises ``TypeError`` when ``root`` is alive but not a supervisor, and
    ``NoNodeError`` when the node has stopped.
    """
    seconds = validate.duration(timeout, "timeout", where="snapshot")
    if root is not None:
        validate.pid_or_name(
            root, "root", where="snapshot", expected="None or a supervisor's Pid or name"
        )
    if node is None:
        node = current_node()
    else:
        validate.instance(node, Node, "node", where="snapshot")
    if not node_running(node):
        raise NoNodeError(
            "snapshot: the node has stopped; take snapshots while it runs (inside "
            "asyncotp.run(main) or `async with asyncotp.node():`)"
        )
    with using_node(node):
        return await _take(node, root, seconds)


async def top(
    n: int = 10, by: TopKey = "mailbox", *, node: Node | None = None
) -> tuple[ActorSnapshot, ...]:
    """The ``n`` actors of the node with the most of ``by``, as recon's
    ``proc_count``: ``"mailbox"``, ``"restarts"``, ``"memory"``, ``"uptime"``,
    ``"links"``, ``"monitors"``, ``"monitored_by"`` or ``"dropped"``
    (``snapshot(node).top(n, by)``)."""
    count, key = check_top(n, by, "top")
    return (await snapshot(node)).top(count, key)


@attrs.define(eq=False)
class _Walk:
    """What one snapshot's walk has seen."""

    deadline: float
    visited: set[Pid] = attrs.Factory(set)
    unresponsive: set[Pid] = attrs.Factory(set)

    def left(self) -> float:
        return max(_MIN_WAIT, self.deadline - now())


async def _take(node: Node, root: Pid | str | None, timeout: float) -> NodeSnapshot:
    walk = _Walk(now() + timeout)
    trees: list[SupervisorSnapshot] = []
    if root is not None:
        pid = root if type(root) is Pid else whereis_on(node, root)
        if pid is not None and describe(pid) is not None:
            if not is_supervisor(pid):
                raise TypeError(
                    f"snapshot: {pid!r} is not a supervisor; pass the pid or name of a "
                    "supervisor as root (or None for every tree of the node)"
                )
            trees.append(await _walk_supervisor(walk, pid))
    else:
        supervisors = {f.pid: f for f in describe_all(node) if f.kind == "supervisor"}
        for pid in supervisors:  # in start order: a parent before its children
            if pid in walk.visited or _hidden(pid, supervisors, walk):
                continue
            if describe(pid) is not None:
                trees.append(await _walk_supervisor(walk, pid))
    slots: dict[Pid, tuple[Pid, Hashable, int]] = {}
    for tree in trees:
        _slots(tree, slots)
    clock = now()
    actors = []
    for facts in describe_all(node):
        slot = slots.get(facts.pid)
        actors.append(
            ActorSnapshot(
                pid=facts.pid,
                name=facts.name,
                kind=facts.kind,
                behaviour=facts.behaviour,
                status=facts.status,
                mailbox_length=facts.mailbox_length,
                links=facts.links,
                monitors=facts.monitors,
                monitored_by=facts.monitored_by,
                parent=facts.parent,
                trap_exits=facts.trap_exits,
                dropped=facts.dropped,
                uptime=max(0.0, clock - facts.started_at),
                memory=facts.memory,
                supervisor=None if slot is None else slot[0],
                child_id=None if slot is None else slot[1],
                restarts=0 if slot is None else slot[2],
            )
        )
    return NodeSnapshot(time.time(), tuple(trees), tuple(actors))


def _hidden(pid: Pid, supervisors: dict[Pid, ProcessFacts], walk: _Walk) -> bool:
    """Whether ``pid`` sits under a supervisor that did not answer (its place
    in the tree is unknown: it is not shown as a tree of its own)."""
    seen: set[Pid] = set()
    parent = supervisors[pid].parent
    while parent is not None and parent in supervisors and parent not in seen:
        if parent in walk.unresponsive:
            return True
        seen.add(parent)
        parent = supervisors[parent].parent
    return False


def _slots(tree: SupervisorSnapshot, into: dict[Pid, tuple[Pid, Hashable, int]]) -> None:
    for child in tree.children:
        if child.pid is not None:
            into[child.pid] = (tree.pid, child.id, child.restarts)
        if child.supervisor is not None:
            _slots(child.supervisor, into)


async def _walk_supervisor(walk: _Walk, pid: Pid) -> SupervisorSnapshot:
    walk.visited.add(pid)
    name = registered_name(pid)
    facts = describe(pid)
    behaviour = "Supervisor" if facts is None else facts.behaviour
    try:
        raw = await supervisor_health(pid, timeout=walk.left())
    except CallTimeout:
        walk.unresponsive.add(pid)
        return SupervisorSnapshot(pid, name, "unresponsive", behaviour)
    except (NoProcess, ServerExited):
        return SupervisorSnapshot(pid, name, "down", behaviour)
    raw_children: list[dict[str, Any]] = raw["children"]
    nested: dict[int, SupervisorSnapshot] = {}

    async def fill(index: int, child_pid: Pid) -> None:
        nested[index] = await _walk_supervisor(walk, child_pid)

    async with anyio.create_task_group() as tg:
        for index, item in enumerate(raw_children):
            child_pid = item["pid"]
            if child_pid is not None and is_supervisor(child_pid) and child_pid not in walk.visited:
                walk.visited.add(child_pid)
                tg.start_soon(fill, index, child_pid)
    children = []
    for index, item in enumerate(raw_children):
        child_pid = item["pid"]
        child_facts = describe(child_pid) if child_pid is not None else None
        kind: ChildKind
        if child_facts is not None:
            kind = child_facts.kind
        else:
            kind = "supervisor" if item["type"] is ChildType.SUPERVISOR else "worker"
        children.append(
            ChildSnapshot(
                id=item["id"],
                pid=child_pid,
                name=None if child_facts is None else child_facts.name,
                kind=kind,
                behaviour=None if child_facts is None else child_facts.behaviour,
                type=item["type"],
                restart=item["restart"],
                restarts=item["restarts"],
                state=item["state"],
                status=None if child_facts is None else child_facts.status,
                mailbox_length=0 if child_facts is None else child_facts.mailbox_length,
                supervisor=nested.get(index),
            )
        )
    return SupervisorSnapshot(
        pid=pid,
        name=raw["name"],
        state="running",
        behaviour=behaviour,
        dynamic=raw["kind"] == "dynamic",
        strategy=raw["strategy"],
        restarts_in_window=raw["restarts_in_window"],
        max_restarts=raw["max_restarts"],
        max_seconds=raw["max_seconds"],
        children=tuple(children),
    )
