"""Starting a node in a cluster, and what an actor asks of the cluster."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio

from .._core import (
    Node,
    NoNodeError,
    Pid,
    check_timeout,
    current_node,
    deliver_system,
    fn_name,
    is_async_callable,
    node_of,
    remote_of,
    self_pid,
    whereis_on,
)
from .._core import (
    run as core_run,
)
from ._config import NatsCluster, check_node_name
from ._global import GlobalRegistry
from ._groups import ProcessGroups
from ._handlers import HANDLERS
from ._peers import DistributionStatistics, NodeDown
from ._transport import Distribution

T = TypeVar("T")

_running: dict[Node, tuple[Distribution, GlobalRegistry, ProcessGroups]] = {}

_HINT: Final = (
    "start it with `async with asyncotp.distribution.connect(name, NatsCluster(...))` "
    "inside the node, or `asyncotp.distribution.run(main, node=name, cluster=...)`"
)


def _current(operation: str) -> tuple[Distribution, GlobalRegistry, ProcessGroups]:
    node = current_node(operation)
    found = _running.get(node)
    if found is None:
        raise NoNodeError(f"{operation}: this node is not connected to a cluster; {_HINT}")
    return found


_MIRROR_LOAD_TIMEOUT: Final = 5.0
"""Seconds ``connect`` waits for the global names to load into the node's
mirror (one round trip), when the server announces JetStream."""


def _jetstream_announced(dist: Distribution) -> bool:
    """Whether the server's INFO says it runs JetStream. nats-py keeps INFO in
    a private attribute; if that ever moves, ``connect`` just does not wait
    for the mirror (look-ups right after it may miss names for a moment)."""
    info = getattr(dist.nc, "_server_info", None)
    return isinstance(info, dict) and info.get("jetstream") is True


def current_registry(operation: str) -> GlobalRegistry:
    """The global registry of the calling node's cluster (``NoNodeError`` if
    the node is not connected)."""
    return _current(operation)[1]


def connected_registry(operation: str) -> GlobalRegistry | None:
    """The same, or None if the node is not (or no longer) connected."""
    found = _running.get(current_node(operation))
    return None if found is None else found[1]


@contextlib.asynccontextmanager
async def connect(name: str, cluster: NatsCluster | None = None) -> AsyncIterator[str]:
    """Connect the running node to a cluster as ``name``, for the block.

    The node gets a random incarnation, so pids of a restarted node never
    collide with the old ones; it refuses to start if another running node
    already has ``name`` (``NameTaken``), and raises ``ConnectionError`` if
    no NATS server answers. It yields the node's name.

    On leaving the block it says goodbye (other nodes see it down at once),
    and every link and monitor between its actors and remote ones fires
    with ``NOCONNECTION``. Leave the block before the node's own shutdown
    (nest it inside ``asyncotp.node()``, as ``run`` does).
    """
    where = "connect"
    name = check_node_name(name, where)
    if cluster is None:
        cluster = NatsCluster()
    elif not isinstance(cluster, NatsCluster):
        raise TypeError(f"connect: cluster must be a NatsCluster, not {cluster!r}")
    node = current_node(where)
    if node in _running:
        raise RuntimeError(
            f"connect: this node is already connected as {_running[node][0].name!r}; a node "
            "joins one cluster under one name"
        )
    dist = Distribution(node, name, cluster, HANDLERS)
    await dist.start()
    registry = GlobalRegistry(dist)
    groups = ProcessGroups(dist)
    _running[node] = (dist, registry, groups)
    try:
        registry.start_mirror()
        if _jetstream_announced(dist):
            await registry.mirror_ready(_MIRROR_LOAD_TIMEOUT)
        yield name
    finally:
        with anyio.CancelScope(shield=True):
            del _running[node]
            await registry.close()
            await groups.close()
            await dist.close()


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    node: str,
    cluster: NatsCluster | None = None,
    backend_options: dict[str, Any] | None = None,
) -> T:
    """``asyncotp.run`` for a node of a cluster: start a node, connect it as
    ``node``, run ``async def main(*args)`` as its main actor, and return
    its result; then leave the cluster and shut the node down."""
    check_node_name(node, "run")
    if not is_async_callable(main):
        raise TypeError(
            f"run: {fn_name(main)} is not an async function; define it with `async def`"
        )

    async def main_in_cluster() -> T:
        async with connect(node, cluster):
            return await main(*args)

    return core_run(main_in_cluster, backend_options=backend_options)


def node_name() -> str:
    """This node's name in its cluster."""
    return _current("node_name")[0].name


def incarnation() -> str:
    """This node's incarnation: random, new at every start."""
    return _current("incarnation")[0].incarnation


def nodes() -> list[str]:
    """The names of the other nodes heard from and not lost, sorted."""
    dist = _current("nodes")[0]
    return sorted({p.name for p in dist.peers.values() if p.alive and p.announced})


def node_of_pid(pid: Pid) -> str:
    """The name of the node ``pid`` lives on (this node's name for a local pid)."""
    directory = remote_of(pid)
    if directory is not None:
        return directory.name
    dist = _running.get(node_of(pid))
    if dist is None:
        raise NoNodeError(f"node_of_pid: the node of {pid!r} is not connected to a cluster")
    return dist[0].name


def monitor_node(name: str) -> None:
    """Deliver ``NodeDown(name)`` to the calling actor when node ``name`` is
    lost, once (Erlang's ``monitor_node``). If no node of that name is up
    now, the message comes at once."""
    me = self_pid()
    dist = _current("monitor_node")[0]
    check_node_name(name, "monitor_node")
    peers = [p for p in dist.peers.values() if p.name == name and p.alive and p.announced]
    if not peers:
        deliver_system(me, NodeDown(name))
        return
    for peer in peers:
        peer.node_watchers.add(me)


def demonitor_node(name: str) -> None:
    """Stop watching node ``name`` (a ``NodeDown`` already queued stays)."""
    me = self_pid()
    dist = _current("demonitor_node")[0]
    for peer in dist.peers.values():
        if peer.name == name:
            peer.node_watchers.discard(me)


async def whereis_remote(node: str, name: str, timeout: float | None = 5.0) -> Pid | None:
    """The pid registered (locally, with ``register`` or ``name=``) as
    ``name`` on node ``node``, or None: Erlang's ``{Name, Node}``.

    ``NodeUnreachable`` if that node is not up; ``CallTimeout`` past
    ``timeout`` seconds."""
    dist = _current("whereis_remote")[0]
    check_node_name(node, "whereis_remote")
    seconds = check_timeout(timeout, "whereis_remote")
    if node == dist.name:
        return whereis_on(current_node("whereis_remote"), name)
    return await dist.whereis(node, name, 5.0 if seconds is None else seconds)


def statistics() -> DistributionStatistics:
    """The counters of this node's distribution."""
    dist = _current("statistics")[0]
    return DistributionStatistics(
        node=dist.name,
        incarnation=dist.incarnation,
        sent=dist.outbox.sent,
        received=dist.received,
        malformed=dist.malformed,
        undeliverable=dist.undeliverable + dist.outbox.lost,
        nodes_up=sum(1 for p in dist.peers.values() if p.alive and p.announced),
        nodes_lost=dist.nodes_lost,
    )


async def register_global(name: str, pid: Pid | None = None) -> bool:
    """Register ``pid`` (the calling actor by default) as ``name`` across the
    cluster; True if it now holds it, False if a live actor anywhere does.

    Atomic: of nodes racing for a name, exactly one wins. The name is freed
    when the actor exits, and reaped by the other nodes when its node is
    lost; a name held by a lost node is taken over. Needs JetStream."""
    dist, registry, _groups = _current("register_global")
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_global: the name must be a non-empty str, not {name!r}")
    if pid is None:
        pid = self_pid()
    elif type(pid) is not Pid or remote_of(pid) is not None or node_of(pid) is not dist.node:
        raise ValueError(
            f"register_global: {pid!r} is not an actor of this node; register a name from "
            "the node its actor runs on"
        )
    return await registry.register(name, pid)


async def whereis_global(name: str) -> Pid | None:
    """The pid holding the global ``name``, or None (also when its node is lost)."""
    return await _current("whereis_global")[1].whereis(name)


async def unregister_global(name: str) -> bool:
    """Free the global ``name``; return whether it was held."""
    return await _current("unregister_global")[1].unregister(name, None)


async def registered_global() -> list[str]:
    """Every global name, sorted."""
    return await _current("registered_global")[1].names()


def _own_pid(pid: Pid | None, dist: Distribution, operation: str) -> Pid:
    if pid is None:
        return self_pid()
    if type(pid) is not Pid or remote_of(pid) is not None or node_of(pid) is not dist.node:
        raise ValueError(
            f"{operation}: {pid!r} is not an actor of this node; an actor joins and leaves "
            "groups from its own node"
        )
    return pid


def _group_name(group: object, operation: str) -> str:
    if not isinstance(group, str) or not group:
        raise TypeError(f"{operation}: the group must be a non-empty str, not {group!r}")
    return group


async def join_group(group: str, pid: Pid | None = None) -> None:
    """Make ``pid`` (the calling actor by default) a member of ``group``
    across the cluster (Erlang's ``pg:join``); a member already is one.

    It leaves when it exits; the members of a lost node are removed by the
    others. Needs JetStream."""
    dist, _registry, groups = _current("join_group")
    await groups.join(_group_name(group, "join_group"), _own_pid(pid, dist, "join_group"))


async def leave_group(group: str, pid: Pid | None = None) -> bool:
    """Take ``pid`` (the calling actor by default) out of ``group``; return
    whether it was a member."""
    dist, _registry, groups = _current("leave_group")
    return await groups.leave(_group_name(group, "leave_group"), _own_pid(pid, dist, "leave_group"))


async def group_members(group: str) -> list[Pid]:
    """The live members of ``group`` on every node up (local and remote pids)."""
    groups = _current("group_members")[2]
    return await groups.members(_group_name(group, "group_members"))


async def which_groups() -> list[str]:
    """Every group that has members, sorted."""
    return await _current("which_groups")[2].groups()
