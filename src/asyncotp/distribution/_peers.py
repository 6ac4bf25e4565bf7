"""The records a node keeps about other nodes, and what it reports."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from .._core import (
    NOCONNECTION,
    MonitorRef,
    NodeUnreachable,
    Pid,
    RemoteNode,
    deliver_system,
    drop_remote_link,
    remote_down,
    remote_exit,
)


@attrs.frozen
class NodeDown:
    """The message ``monitor_node(name)`` delivers when that node is lost
    (its heartbeats stopped for the window, it said goodbye, or this node
    left the cluster). Erlang's ``{nodedown, Node}``."""

    node: str


@attrs.define(eq=False)
class Peer:
    """One incarnation of another node, and every tie local actors have to it."""

    directory: RemoteNode
    last_seen: float
    alive: bool = True
    """Not declared down. A peer first met through a pid is presumed alive
    for one window; a peer heard from again after being declared down is
    alive again (a healed partition), with none of its old ties."""
    announced: bool = False
    """Heard from at least once (listed by ``nodes()``)."""
    links: set[tuple[Pid, Pid]] = attrs.Factory(set)
    """(local, remote) pairs linked."""
    watching: dict[int, tuple[MonitorRef, Pid, Pid]] = attrs.Factory(dict)
    """Monitors of local actors on this peer's actors: wire id -> (ref, watcher, target)."""
    watched: set[tuple[Pid, Pid, int]] = attrs.Factory(set)
    """Monitors of this peer's actors on local ones: (local target, remote watcher, wire id)."""
    calls: set[asyncio.Future[Any]] = attrs.Factory(set)
    """Replies awaited from it (calls, stops, look-ups)."""
    node_watchers: set[Pid] = attrs.Factory(set)
    """Local actors that called ``monitor_node`` for it."""

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def incarnation(self) -> str:
        return self.directory.incarnation


@attrs.define(eq=False)
class LocalTies:
    """The ties one local actor has to remote ones; cut when it exits."""

    links: set[Pid] = attrs.Factory(set)
    watchers: set[tuple[Pid, int]] = attrs.Factory(set)
    """(remote watcher, wire id) monitoring this actor."""
    watching: set[int] = attrs.Factory(set)
    """Wire ids of this actor's monitors on remote actors."""


@attrs.frozen
class DistributionStatistics:
    """Counters of one node's distribution, from ``statistics()``."""

    node: str
    incarnation: str
    sent: int
    """Messages published (every kind)."""
    received: int
    """Messages taken from the node's subject (every kind)."""
    malformed: int
    """Messages dropped because they did not decode (bad JSON, unknown type
    or shape): never delivered, never a crash."""
    undeliverable: int
    """Messages dropped because their target was not alive, its mailbox
    refused them, or the connection could not take them (at most once)."""
    nodes_up: int
    nodes_lost: int
    """How many times a peer was declared down."""


def cut_ties(
    peer: Peer,
    ties: dict[Pid, LocalTies],
    monitors: dict[int, tuple[MonitorRef, Pid, Pid, Peer]],
    rid_of: dict[MonitorRef, int],
    why: str,
) -> None:
    """Everything that hears of a lost peer, hears of it now: links fire
    with ``NOCONNECTION``, monitors deliver ``Down(..., NOCONNECTION)``,
    awaited replies fail with ``NodeUnreachable``, node monitors get
    ``NodeDown``; and the peer's monitors on local actors are forgotten."""
    for local, remote in peer.links:
        own = ties.get(local)
        if own is not None:
            own.links.discard(remote)
        if drop_remote_link(local, remote):
            remote_exit(local, remote, NOCONNECTION, from_link=True)
    peer.links.clear()
    for rid, (ref, watcher, target) in peer.watching.items():
        monitors.pop(rid, None)
        rid_of.pop(ref, None)
        own = ties.get(watcher)
        if own is not None:
            own.watching.discard(rid)
        remote_down(watcher, ref, target, NOCONNECTION)
    peer.watching.clear()
    for target, watcher, rid in peer.watched:
        own = ties.get(target)
        if own is not None:
            own.watchers.discard((watcher, rid))
    peer.watched.clear()
    for fut in peer.calls:
        if not fut.done():
            fut.set_exception(
                NodeUnreachable(
                    f"node {peer.name} (incarnation {peer.incarnation}) was lost before it "
                    f"answered: {why}",
                    peer.name,
                )
            )
    for watcher in peer.node_watchers:
        deliver_system(watcher, NodeDown(peer.name))
    peer.node_watchers.clear()
