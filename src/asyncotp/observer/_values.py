"""The values of a snapshot: what ``snapshot`` returns.

All frozen, with a ``to_dict()`` that gives the JSON the dashboard serves
(pids as their numbers, child ids as themselves when JSON has them, else
their ``repr``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, Final, Literal, TypeAlias

import attrs

from .._core import ActorKind, ChildType, Pid, Restart, Strategy

ChildKind: TypeAlias = Literal["supervisor", "genserver", "actor", "worker"]
ChildState: TypeAlias = Literal["running", "restarting", "stopped"]
SupervisorState: TypeAlias = Literal["running", "unresponsive", "down"]
TopKey: TypeAlias = Literal[
    "mailbox", "restarts", "memory", "uptime", "links", "monitors", "monitored_by", "dropped"
]

TOP_KEYS: Final[tuple[TopKey, ...]] = (
    "mailbox",
    "restarts",
    "memory",
    "uptime",
    "links",
    "monitors",
    "monitored_by",
    "dropped",
)
"""What ``top`` can sort by."""


def json_id(value: Hashable) -> Any:
    """A child id as JSON: itself if JSON has it, else its ``repr``."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a user's __repr__ must not break the snapshot
        return f"<{type(value).__name__}>"


def _number(pid: Pid | None) -> int | None:
    return None if pid is None else pid.number


@attrs.frozen
class ActorSnapshot:
    """One live actor at the instant of the snapshot.

    ``kind`` is ``"supervisor"``, ``"genserver"`` (GenServer, Agent and the
    behaviours built on them) or ``"actor"`` (a plain ``spawn``);
    ``behaviour`` the server's class or the plain actor's function name.
    ``status`` is ``"running"``, ``"waiting"`` (blocked on its mailbox,
    idle) or ``"exiting"``. ``links``, ``monitors`` (monitors it holds) and
    ``monitored_by`` are counts. ``uptime`` is seconds since it was spawned.
    ``memory`` is an estimate in bytes: ``sys.getsizeof`` of the runtime's
    record of the actor, its task, its mailbox with each queued message
    (shallow; beyond 64 messages, estimated from their mean size) and its
    link and monitor tables; neither what messages refer to nor the actor's
    own state is counted, so use it to compare actors, not as a total.

    When the actor is a supervisor's child, ``supervisor``, ``child_id`` and
    ``restarts`` (the restarts of that child since its supervisor started)
    say so; otherwise they are None, None and 0.
    """

    pid: Pid
    name: str | None
    kind: ActorKind
    behaviour: str
    status: str
    mailbox_length: int
    links: int
    monitors: int
    monitored_by: int
    parent: Pid | None
    trap_exits: bool
    dropped: int
    uptime: float
    memory: int
    supervisor: Pid | None = None
    child_id: Hashable | None = None
    restarts: int = 0

    def sort_value(self, by: TopKey) -> float:
        """The figure ``top(by=...)`` sorts on."""
        if by == "mailbox":
            return self.mailbox_length
        if by == "uptime":
            return self.uptime
        value: int = getattr(self, by)
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "pid": self.pid.number,
            "name": self.name,
            "kind": self.kind,
            "behaviour": self.behaviour,
            "status": self.status,
            "mailbox_length": self.mailbox_length,
            "links": self.links,
            "monitors": self.monitors,
            "monitored_by": self.monitored_by,
            "parent": _number(self.parent),
            "trap_exits": self.trap_exits,
            "dropped": self.dropped,
            "uptime": round(self.uptime, 3),
            "memory": self.memory,
            "supervisor": _number(self.supervisor),
            "child_id": json_id(self.child_id),
            "restarts": self.restarts,
        }


@attrs.frozen
class ChildSnapshot:
    """One child of a supervisor.

    ``state`` is the supervisor's view of the child: ``"running"``,
    ``"restarting"`` (waiting for a delayed restart) or ``"stopped"``.
    ``status`` is the actor's own (``"running"``, ``"waiting"``,
    ``"exiting"``), None when it is not running. ``kind`` is the running
    actor's (``"supervisor"``, ``"genserver"``, ``"actor"``); a child that is
    not running is ``"supervisor"`` or ``"worker"``, as its spec says.
    ``restarts`` counts its restarts since its supervisor started it;
    ``supervisor`` is the nested snapshot of a running child supervisor.
    """

    id: Hashable
    pid: Pid | None
    name: str | None
    kind: ChildKind
    behaviour: str | None
    type: ChildType
    restart: Restart
    restarts: int
    state: ChildState
    status: str | None
    mailbox_length: int = 0
    supervisor: SupervisorSnapshot | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out: dict[str, Any] = {
            "id": json_id(self.id),
            "pid": _number(self.pid),
            "name": self.name,
            "kind": self.kind,
            "behaviour": self.behaviour,
            "type": self.type.value,
            "restart": self.restart.value,
            "restarts": self.restarts,
            "state": self.state,
            "status": self.status,
            "mailbox_length": self.mailbox_length,
        }
        if self.supervisor is not None:
            out["supervisor"] = self.supervisor.to_dict()
        return out


@attrs.frozen
class SupervisorSnapshot:
    """One supervisor and its children, in start order.

    ``state`` is ``"running"``, ``"unresponsive"`` (it did not answer within
    the snapshot's timeout: busy, or restarting a child with a slow
    ``init``; its children are then unknown) or ``"down"`` (it ended while
    the snapshot was made). ``dynamic`` tells a ``DynamicSupervisor``.
    ``restarts_in_window`` counts the restarts inside its current window of
    ``max_seconds``: it gives up when that would exceed ``max_restarts``.
    """

    pid: Pid
    name: str | None
    state: SupervisorState
    behaviour: str = "Supervisor"
    dynamic: bool = False
    strategy: Strategy | None = None
    restarts_in_window: int = 0
    max_restarts: int | None = None
    max_seconds: float | None = None
    children: tuple[ChildSnapshot, ...] = ()

    def walk(self) -> Iterator[tuple[tuple[Hashable, ...], ChildSnapshot]]:
        """Every child of the tree, depth first in start order, with its path
        of child ids from this supervisor."""
        for child in self.children:
            yield (child.id,), child
            if child.supervisor is not None:
                for path, grandchild in child.supervisor.walk():
                    yield (child.id, *path), grandchild

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "pid": self.pid.number,
            "name": self.name,
            "state": self.state,
            "behaviour": self.behaviour,
            "dynamic": self.dynamic,
            "strategy": None if self.strategy is None else self.strategy.value,
            "restarts_in_window": self.restarts_in_window,
            "max_restarts": self.max_restarts,
            "max_seconds": self.max_seconds,
            "children": [child.to_dict() for child in self.children],
        }


def check_top(n: object, by: object, where: str) -> tuple[int, TopKey]:
    """Validate ``top``'s arguments."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{where}: n must be an int >= 0, not {n!r}")
    if by not in TOP_KEYS:
        raise ValueError(f"{where}: by must be one of {', '.join(map(repr, TOP_KEYS))}, not {by!r}")
    key: TopKey = by
    return n, key


@attrs.frozen
class NodeSnapshot:
    """The whole node at one moment: what ``snapshot()`` returns.

    ``trees`` holds every root supervisor (a supervisor not started by
    another one) with its tree, in start order; ``actors`` every live actor
    of the node, in start order, supervisors included. ``taken_at`` is the
    wall-clock time (``time.time()``) the snapshot was made.

    The tree is read from the supervisors (one ``call`` each, answered
    between their other messages) and the actor table at one instant just
    after: an actor that started or ended in between may show in one and not
    the other.
    """

    taken_at: float
    trees: tuple[SupervisorSnapshot, ...]
    actors: tuple[ActorSnapshot, ...]

    def actor(self, pid: Pid) -> ActorSnapshot | None:
        """The actor ``pid``, if it was alive."""
        for actor in self.actors:
            if actor.pid is pid:
                return actor
        return None

    def walk(self) -> Iterator[tuple[tuple[Hashable, ...], ChildSnapshot]]:
        """Every child of every tree, depth first, with its path of ids from
        its root supervisor (the root's name, or its pid, first)."""
        for tree in self.trees:
            head: Hashable = tree.name if tree.name is not None else tree.pid
            for path, child in tree.walk():
                yield (head, *path), child

    @property
    def restarts(self) -> int:
        """The restarts of every child of every tree, added up."""
        return sum(child.restarts for _path, child in self.walk())

    def top(self, n: int = 10, by: TopKey = "mailbox") -> tuple[ActorSnapshot, ...]:
        """The ``n`` actors with the most of ``by`` (as recon's ``proc_count``):
        ``"mailbox"`` (queued messages), ``"restarts"``, ``"memory"``,
        ``"uptime"``, ``"links"``, ``"monitors"``, ``"monitored_by"`` or
        ``"dropped"``. Ties go to the older actor (lower pid number)."""
        count, key = check_top(n, by, "NodeSnapshot.top")
        ranked = sorted(self.actors, key=lambda a: (-a.sort_value(key), a.pid.number))
        return tuple(ranked[:count])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``DashboardApp`` serves at ``/api/snapshot``)."""
        return {
            "taken_at": self.taken_at,
            "totals": {
                "actors": len(self.actors),
                "supervisors": sum(1 for a in self.actors if a.kind == "supervisor"),
                "restarts": self.restarts,
                "mailbox": sum(a.mailbox_length for a in self.actors),
                "memory": sum(a.memory for a in self.actors),
            },
            "trees": [tree.to_dict() for tree in self.trees],
            "actors": [actor.to_dict() for actor in self.actors],
        }
