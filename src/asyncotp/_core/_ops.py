"""Operations on pids and nodes, for the layers above the core.

Supervision, health, resilience and the testing kit never hold a
``Process`` or read a node's tables: they call these functions with pids.
Each one checks what it is given and does one thing the runtime owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from ._childspec import START_USAGE, ChildSpec
from ._context import calling_process, current_process, node_of, process_of, resolve
from ._exits import add_on_exit
from ._exits import exit_future as _exit_future
from ._exits import kill as _kill
from ._exits import link_pair as _link_pair
from ._exits import request_stop as _request_stop
from ._exits import unlink_pair as _unlink_pair
from ._exits import wait_exit as _wait_exit
from ._mailbox import deliver as _deliver
from ._mailbox import deliver_system as _deliver_system
from ._mailbox import drop_messages as _drop_messages
from ._pid import Pid
from ._reasons import NOPROC
from ._safe import safe_repr
from ._state import DEAD, EXITING, UNSET, Node, node_var
from ._validate import check_timeout, not_async_hint
from ._via import Name


def exit_future(pid: Pid) -> asyncio.Future[object]:
    """A future resolved with ``pid``'s exit reason (``NOPROC`` if it is gone)."""
    proc = process_of(pid)
    if proc is None:
        fut: asyncio.Future[object] = node_of(pid).loop.create_future()
        fut.set_result(NOPROC)
        return fut
    return _exit_future(proc)


def on_exit(pid: Pid, callback: Callable[[object], None]) -> bool:
    """Call ``callback(reason)`` when ``pid`` ends; False (and no call) if it
    has already ended."""
    proc = process_of(pid)
    if proc is None or proc.state == DEAD:
        return False
    add_on_exit(proc, callback)
    return True


def link_pids(a: Pid, b: Pid) -> bool:
    """Link two live actors both ways (neither need be the caller: a
    registry linking an actor it names). True if this made a new link;
    False if they were linked already (by anyone), are the same actor, or
    either has ended or is on its way out, so that a caller undoes only the
    links it made."""
    first, second = process_of(a), process_of(b)
    if first is None or second is None or first.state >= EXITING or second.state >= EXITING:
        return False
    if first is second or (first.links is not None and b in first.links):
        return False
    _link_pair(first, second)
    return True


def unlink_pids(a: Pid, b: Pid) -> None:
    """Remove the link between two actors, if any (either may be gone)."""
    first = process_of(a)
    if first is not None:
        _unlink_pair(first, b)


async def wait_exit(pid: Pid, timeout: float | None) -> bool:
    """Wait until ``pid`` has ended; return False past ``timeout`` seconds
    (None or ``math.inf``: no limit)."""
    timeout = check_timeout(timeout, "wait_exit")
    proc = process_of(pid)
    if proc is None:
        return True
    return await _wait_exit(proc, timeout)


def request_stop(pid: Pid, reason: object) -> None:
    """Stop ``pid`` with ``reason``: a behaviour once its running callback
    returns, a plain actor at once. Nothing if it is gone."""
    proc = process_of(pid)
    if proc is not None:
        _request_stop(proc, reason)


def kill(pid: Pid) -> None:
    """End ``pid`` with ``KILLED`` whatever it does. Nothing if it is gone."""
    proc = process_of(pid)
    if proc is not None:
        _kill(proc)


async def start_child_process(spec: ChildSpec, start: Callable[[], object] | None = None) -> object:
    """Run ``spec.start()`` (or ``start()``, the same function with a
    dynamic supervisor's extra arguments): what a supervisor awaits to start
    the child. Returns what the start function returned: a pid, ``(pid,
    info)`` or None (``ignore``).

    A start function that is not async (its result cannot be awaited)
    raises a ``TypeError`` naming the child and saying what to do, instead
    of Python's "object Pid can't be used in 'await' expression"; an actor
    it started anyway (a sync ``lambda: spawn(worker)``) is killed, so that
    nothing is left running outside the tree."""
    started: object = spec.start() if start is None else start()
    if not inspect.isawaitable(started):
        if type(started) is Pid:
            kill(started)
        what, todo = not_async_hint(spec.start)
        raise TypeError(
            f"the start function of child {safe_repr(spec.id)} must be {START_USAGE}, "
            f"not {what}: it returned {safe_repr(started)} instead of an awaitable; {todo} "
            "(`async def start(): return spawn(worker)`)"
        )
    return await started


def deliver(pid: Pid, message: object) -> bool:
    """Put a user message in ``pid``'s mailbox, past the node's interceptor
    (the testing kit re-delivering what it held). False if ``pid`` is gone."""
    proc = process_of(pid)
    if proc is None or node_of(pid).closed:
        return False
    _deliver(proc, message)
    return True


def deliver_system(pid: Pid, message: object) -> bool:
    """Put a runtime message (never dropped by a bound) in ``pid``'s mailbox.
    False if ``pid`` is gone."""
    proc = process_of(pid)
    if proc is None:
        return False
    _deliver_system(proc, message)
    return True


def drop_messages(match: Callable[[Any], bool]) -> int:
    """Remove from the calling actor's mailbox every message ``match``
    accepts; return how many went."""
    return _drop_messages(current_process("drop_messages"), match)


def mark_supervisor() -> None:
    """Mark the calling actor as a supervisor: the node stops supervisors one
    at a time at shutdown, and their children's crashes are theirs to report."""
    current_process("mark_supervisor").is_supervisor = True


def is_supervisor(pid: Pid) -> bool:
    """Whether ``pid`` is a live supervisor."""
    proc = process_of(pid)
    return proc is not None and proc.is_supervisor


def is_waiting(pid: Pid) -> bool:
    """Whether ``pid`` is alive and blocked on its mailbox."""
    proc = process_of(pid)
    return proc is not None and proc.waiter is not None


def is_exiting(pid: Pid) -> bool:
    """Whether ``pid`` has ended or is on its way out."""
    proc = process_of(pid)
    return proc is None or proc.state >= EXITING or proc.pending_exit is not UNSET


def calling_pid() -> Pid | None:
    """The calling actor's pid, or None in a plain task (a task an actor
    started included)."""
    proc = calling_process()
    return None if proc is None else proc.pid


def lookup(dest: Pid | Name, operation: str) -> Pid | None:
    """The live pid behind ``dest`` (a pid or a name), or None if it is dead;
    ``NoProcess`` for a name nobody holds."""
    proc = resolve(dest, operation)
    return None if proc is None else proc.pid


def live_pids(node: Node) -> list[Pid]:
    """Every live actor of ``node``, in start order."""
    return list(node.procs)


def whereis_on(node: Node, name: str) -> Pid | None:
    """The pid registered as ``name`` on ``node``, or None."""
    return node.names.get(name)


def node_running(node: Node) -> bool:
    """Whether ``node`` has not stopped."""
    return not node.closed


def node_pid(node: Node) -> Pid:
    """The pid the node uses as the sender of its own exit signals."""
    return node.pid


def running_node() -> Node | None:
    """The running node whose context the calling task inherited, or None.

    Unlike ``current_node`` it does not fall back to the one node of the
    event loop: code that binds itself to a node (``HealthApp``) asks this."""
    node = node_var.get()
    return node if node is not None and not node.closed else None


def set_dead_letter_hook(
    node: Node, hook: Callable[[Pid, object], None] | None
) -> Callable[[Pid, object], None] | None:
    """Install ``hook(pid, message)`` for messages sent to dead actors;
    return the hook it replaces (to chain to, or to put back)."""
    previous = node.on_dead_letter
    node.on_dead_letter = hook
    return previous


def dead_letter_hook(node: Node) -> Callable[[Pid, object], None] | None:
    """The node's current dead-letter hook."""
    return node.on_dead_letter


def set_interceptor(
    node: Node, interceptor: Callable[[Pid | None, Pid, object], bool] | None
) -> Callable[[Pid | None, Pid, object], bool] | None:
    """Install the fault-injection hook (``asyncotp.testing``); return the one
    it replaces."""
    previous = node.intercept
    node.intercept = interceptor
    return previous


def interceptor(node: Node) -> Callable[[Pid | None, Pid, object], bool] | None:
    """The node's current fault-injection hook."""
    return node.intercept


def loop_of(node: Node) -> asyncio.AbstractEventLoop:
    """The event loop ``node`` runs on."""
    return node.loop


def registered_name(pid: Pid) -> str | None:
    """The name ``pid``'s actor holds, or None (also for a dead pid)."""
    return node_of(pid).name_of(pid)


@contextlib.contextmanager
def using_node(node: Node) -> Iterator[None]:
    """Run the block as if in ``node``'s context (names resolve on it), for
    code in a task that did not inherit it (a web framework's request)."""
    if node_var.get() is node:
        yield
        return
    token = node_var.set(node)
    try:
        yield
    finally:
        node_var.reset(token)
