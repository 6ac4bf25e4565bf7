"""Which node and which actor the running code belongs to.

An actor's task carries its ``Process`` and its ``Node`` in context
variables. A task that did not inherit a node's context (a web framework's
request task, when the node runs in the app's lifespan task) still finds the
node of its event loop, if exactly one node runs there.
"""

from __future__ import annotations

import asyncio

from ._errors import NoNodeError, NoProcess, NotAnActorError
from ._pid import Pid
from ._safe import safe_repr
from ._state import DEAD, NO_NODE_HINT, Node, Process, node_var, proc_var

_loop_nodes: dict[asyncio.AbstractEventLoop, list[Node]] = {}


def enter_loop(node: Node) -> None:
    """Record ``node`` as running on its event loop."""
    _loop_nodes.setdefault(node.loop, []).append(node)


def leave_loop(node: Node) -> None:
    on_loop = _loop_nodes.get(node.loop)
    if on_loop is None:
        return
    on_loop.remove(node)
    if not on_loop:
        del _loop_nodes[node.loop]


def _loop_node() -> Node | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    nodes = _loop_nodes.get(loop)
    if nodes is None or len(nodes) != 1 or nodes[0].closed:
        return None
    return nodes[0]


def current_node() -> Node:
    """The running node of this task; ``NoNodeError`` if there is none."""
    node = node_var.get()
    if node is None or node.closed:
        node = _loop_node()
        if node is None:
            raise NoNodeError(f"no asyncotp node is running here; {NO_NODE_HINT}")
    return node


def current_process(operation: str) -> Process:
    """The calling actor; ``NotAnActorError`` naming ``operation`` outside one."""
    proc = proc_var.get()
    if proc is None or proc.state == DEAD:
        raise NotAnActorError(
            f"{operation} must be called from inside an actor (it needs the caller's pid "
            "and mailbox); wrap the code in an actor with asyncotp.spawn(fn)"
        )
    return proc


def resolve(dest: Pid | str, operation: str) -> Process | None:
    """The live process behind ``dest``; None for a dead pid; ``NoProcess``
    for an unknown name."""
    if type(dest) is Pid:
        node: Node = dest._node  # type: ignore[assignment]  # a pid's directory is its node
        if node.closed:
            raise NoNodeError(f"{operation}: the node of {dest!r} has stopped; {NO_NODE_HINT}")
        return node.procs.get(dest)
    if isinstance(dest, str):
        node = current_node()
        pid = node.names.get(dest)
        if pid is None:
            raise NoProcess(
                f"{operation}: no actor is registered as {safe_repr(dest)}; check the name, "
                "or that "
                "the actor has started (registered() lists the names in use)",
                dest,
            )
        return node.procs.get(pid)
    raise TypeError(
        f"{operation}: the destination must be a Pid or a registered name, not {safe_repr(dest)}"
    )


def process_of(pid: Pid) -> Process | None:
    """The live process behind ``pid``, or None."""
    node: Node = pid._node  # type: ignore[assignment]
    return node.procs.get(pid)


def node_of(pid: Pid) -> Node:
    """The node that made ``pid``."""
    node: Node = pid._node  # type: ignore[assignment]
    return node
