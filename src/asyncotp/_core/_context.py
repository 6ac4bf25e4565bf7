"""Which node and which actor the running code belongs to.

An actor's task carries its ``Process`` and its ``Node`` in context
variables. A task that did not inherit a node's context (a web framework's
request task, when the node runs in the app's lifespan task) still finds the
node of its event loop, if exactly one node runs there.

Two rules keep the context variables honest:

* **A task is an actor only if it is that actor's own task.** A task an
  actor starts (``asyncio.create_task`` in ``init``) inherits the actor's
  context, but it is not the actor: ``current_process`` (``self_pid``,
  ``link``, ``monitor``, ...) and ``receive`` refuse it with
  ``NotAnActorError``, and ``call`` treats it as a plain task. It may still
  ``send``, ``cast``, ``call`` and ``spawn``, like any task of the node.
* **The runtime runs on its node's event-loop thread.** Called from another
  thread, its functions raise ``WrongThreadError`` at once; other threads
  use ``asyncotp.from_thread``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Final, NoReturn

try:
    import _asyncio
except ImportError:  # pragma: no cover - an interpreter without asyncio's C accelerator
    _asyncio = None  # type: ignore[assignment]

from ._errors import NoNodeError, NoProcess, NotAnActorError, WrongThreadError
from ._pid import Pid
from ._safe import safe_repr
from ._state import DEAD, NO_NODE_HINT, Node, Process, node_var, proc_var
from ._via import Name, Via, whereis_via

_loop_nodes: dict[asyncio.AbstractEventLoop, list[Node]] = {}

get_ident: Final = threading.get_ident

THREAD_HINT: Final = (
    "asyncotp's functions run on the node's event-loop thread; from another thread use "
    "asyncotp.from_thread (send, cast, call, run) with the Node that `async with "
    "asyncotp.node() as node` gives"
)


def _task_lookup() -> Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]:
    """The task running on a loop, looked up directly in asyncio's table of
    current tasks: a dict look-up, several times cheaper than
    ``asyncio.current_task`` (which asks the OS for the process id). Used
    only where the table is verifiably the one asyncio's tasks update;
    ``asyncio.current_task`` otherwise."""
    table: Any = getattr(_asyncio, "_current_tasks", None)
    enter: Any = getattr(_asyncio, "_enter_task", None)
    leave: Any = getattr(_asyncio, "_leave_task", None)
    if not isinstance(table, dict) or enter is None or leave is None:
        return asyncio.current_task
    key, task = object(), object()
    try:
        enter(key, task)
        found = table.get(key) is task
        leave(key, task)
    except Exception:  # noqa: BLE001 - another implementation: use the public function
        return asyncio.current_task
    return table.get if found else asyncio.current_task


task_on: Final = _task_lookup()
"""``task_on(loop)``: the task running on ``loop`` now (None between tasks)."""


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


def wrong_thread(node: Node, operation: str) -> NoReturn:
    """Raise ``WrongThreadError`` for ``operation`` called off ``node``'s thread."""
    raise WrongThreadError(
        f"{operation} was called from thread {threading.current_thread().name!r}, not from "
        f"the node's event-loop thread; {THREAD_HINT}"
    )


def check_thread(node: Node, operation: str) -> None:
    """``WrongThreadError`` unless called on ``node``'s event-loop thread."""
    if node.thread != get_ident():
        wrong_thread(node, operation)


def _loop_node() -> Node | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    nodes = _loop_nodes.get(loop)
    if nodes is None or len(nodes) != 1 or nodes[0].closed:
        return None
    return nodes[0]


def _no_node(operation: str) -> NoReturn:
    me = get_ident()
    elsewhere = any(
        not node.closed and node.thread != me for nodes in _loop_nodes.values() for node in nodes
    )
    if elsewhere:
        raise WrongThreadError(
            f"{operation}: no asyncotp node runs on this thread, but one runs on another "
            f"thread; {THREAD_HINT}"
        )
    raise NoNodeError(f"no asyncotp node is running here; {NO_NODE_HINT}")


def current_node(operation: str = "this function") -> Node:
    """The running node of this task; ``NoNodeError`` if there is none,
    ``WrongThreadError`` if it runs on another thread."""
    node = node_var.get()
    if node is None or node.closed:
        node = _loop_node()
        if node is None:
            _no_node(operation)
    elif node.thread != get_ident():
        wrong_thread(node, operation)
    return node


def current_process(operation: str) -> Process:
    """The calling actor; ``NotAnActorError`` naming ``operation`` outside one
    (in a plain task, including a task that an actor started)."""
    proc = proc_var.get()
    if proc is not None and proc.state != DEAD:
        if proc.node.thread != get_ident():
            wrong_thread(proc.node, operation)
        if proc.task is task_on(proc.node.loop):
            return proc
        raise NotAnActorError(
            f"{operation} was called from a task that {proc.pid!r} started, not from the "
            "actor itself: a task an actor starts is not that actor (it has no pid nor "
            "mailbox of its own); send the result to the actor, or spawn an actor instead"
        )
    me = get_ident()
    running = [node for nodes in _loop_nodes.values() for node in nodes if not node.closed]
    if running and all(node.thread != me for node in running):
        wrong_thread(running[0], operation)
    raise NotAnActorError(
        f"{operation} must be called from inside an actor (it needs the caller's pid "
        "and mailbox); wrap the code in an actor with asyncotp.spawn(fn)"
    )


def calling_process() -> Process | None:
    """The calling actor, or None in a plain task (a task an actor started
    included). Assumes the node's thread (checked by the caller)."""
    proc = proc_var.get()
    if proc is None or proc.task is not task_on(proc.node.loop):
        return None
    return proc


def via_pid(dest: Via, operation: str) -> Pid:
    """The pid a ``Via`` name's registry holds (maybe a remote one: the
    caller takes the pid path, which knows remote pids); ``NoProcess`` if
    none."""
    pid = whereis_via(dest)
    if pid is None:
        raise NoProcess(
            f"{operation}: no actor is registered as {safe_repr(dest)}; check the key, or "
            "that the actor has started",
            dest,
        )
    return pid


def resolve(dest: Pid | Name, operation: str) -> Process | None:
    """The live process behind ``dest``; None for a dead pid; ``NoProcess``
    for an unknown name (local or ``Via``)."""
    if type(dest) is Pid:
        node: Node = dest._node  # type: ignore[assignment]  # a pid's directory is its node
        if node.thread != get_ident():
            wrong_thread(node, operation)
        if node.closed:
            raise NoNodeError(f"{operation}: the node of {dest!r} has stopped; {NO_NODE_HINT}")
        return node.procs.get(dest)
    if isinstance(dest, str):
        node = current_node(operation)
        pid = node.names.get(dest)
        if pid is None:
            raise NoProcess(
                f"{operation}: no actor is registered as {safe_repr(dest)}; check the name, "
                "or that "
                "the actor has started (registered() lists the names in use)",
                dest,
            )
        return node.procs.get(pid)
    if type(dest) is Via:
        node = current_node(operation)
        pid = whereis_via(dest)
        if pid is None:
            raise NoProcess(
                f"{operation}: no actor is registered as {safe_repr(dest)}; check the key, or "
                "that the actor has started",
                dest,
            )
        return node.procs.get(pid)
    raise TypeError(
        f"{operation}: the destination must be a Pid, a registered name or a via(registry, "
        f"key) name, not {safe_repr(dest)}"
    )


def process_of(pid: Pid) -> Process | None:
    """The live process behind ``pid``, or None."""
    node: Node = pid._node  # type: ignore[assignment]
    return node.procs.get(pid)


def node_of(pid: Pid) -> Node:
    """The node that made ``pid``."""
    node: Node = pid._node  # type: ignore[assignment]
    return node
