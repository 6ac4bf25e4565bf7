"""Plain actors: ``spawn``, ``send``, the actor's task, and what can be
asked of a pid (``self_pid``, ``is_alive``, ``process_info``, ``processes``).

A process is one slotted ``Process`` record and one asyncio task; links,
monitors and timers are created lazily, so an idle actor holds few
GC-tracked objects. Pids compare and hash by identity: the node makes
exactly one per actor.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVarTuple

import attrs

from . import _telemetry
from ._context import (
    current_node,
    current_process,
    get_ident,
    process_of,
    resolve,
    via_pid,
    wrong_thread,
)
from ._errors import NameTaken, NoNodeError
from ._exits import add_on_exit, exit_process, fatal, link_pair
from ._mailbox import deliver, intercepted
from ._pid import Pid
from ._reasons import KILL, KILLED, NORMAL, Stop
from ._remote import remote_of
from ._safe import safe_repr
from ._state import (
    DEAD,
    EXITING,
    NO_NODE_HINT,
    RUNNING,
    UNSET,
    ExitWith,
    Node,
    Overflow,
    Process,
    proc_var,
)
from ._validate import async_entry, check_mailbox, check_name, fn_name, is_async_callable
from ._via import Name, Via, claim_via, holder_of, release_via

Ts = TypeVarTuple("Ts")


@attrs.frozen
class ProcessInfo:
    """A snapshot of one actor, from ``process_info(pid)``."""

    pid: Pid
    name: str | None
    status: str
    """``"running"``, ``"waiting"`` (blocked on its mailbox) or ``"exiting"``."""
    mailbox_length: int
    dropped: int
    """Messages lost to the overflow policy (dropped or evicted)."""
    links: frozenset[Pid]
    monitors: frozenset[Pid]
    """The actors this one monitors."""
    trap_exits: bool
    rejected: int = 0
    """Messages refused with ``MailboxFull`` (``Overflow.REJECT``)."""
    mailbox_size: int | None = None
    """The mailbox bound, or None when unbounded."""
    parent: Pid | None = None
    """The actor that started this one linked (a supervisor, usually)."""


def spawn_process(
    node: Node,
    coro: Coroutine[Any, Any, Any],
    *,
    name: Name | None,
    link_to: Process | None,
    trap_exits: bool,
    mailbox_size: int | None,
    overflow: Overflow,
) -> Process:
    """Make the process record and the task that runs ``coro`` as an actor.

    A ``Via`` name is claimed from its registry once the pid exists and
    before anything else (links, the task): a refusal undoes the record."""
    if node.closed:
        coro.close()
        raise NoNodeError(f"the node has stopped; cannot start more actors; {NO_NODE_HINT}")
    if type(name) is Via:
        return _spawn_via(node, coro, name, link_to, trap_exits, mailbox_size, overflow)
    if name is not None:
        assert type(name) is str
        holder = node.names.get(name)
        if holder is not None:
            coro.close()
            raise NameTaken(
                f"the name {name!r} is already registered to {holder!r}; choose another "
                "name, or stop that actor first",
                name,
                holder,
            )
    node.counter += 1
    pid = Pid(node.counter, node)
    proc = Process(pid, node, mailbox_size, overflow, trap_exits)
    node.procs[pid] = proc
    if name is not None:
        node.names[name] = pid
        proc.name = name
    if link_to is not None:
        link_pair(proc, link_to)
        proc.parent = link_to.pid
    proc.task = node.loop.create_task(_run_process(proc, coro))
    if _telemetry.ACTORS:
        _telemetry.actor_spawned(proc)
    return proc


def _spawn_via(
    node: Node,
    coro: Coroutine[Any, Any, Any],
    name: Via,
    link_to: Process | None,
    trap_exits: bool,
    mailbox_size: int | None,
    overflow: Overflow,
) -> Process:
    """``spawn_process`` for a ``Via`` name: the registry records the new
    pid before its task exists, and forgets it when the actor ends."""
    node.counter += 1
    pid = Pid(node.counter, node)
    proc = Process(pid, node, mailbox_size, overflow, trap_exits)
    node.procs[pid] = proc
    try:
        claimed = claim_via(name, pid)
    except BaseException:
        del node.procs[pid]
        coro.close()
        raise
    if not claimed:
        del node.procs[pid]
        coro.close()
        holder = holder_of(name)
        raise NameTaken(
            f"the name {safe_repr(name)} is already registered to {holder!r}; choose another "
            "key, or stop that actor first",
            name,
            holder,
        )
    add_on_exit(proc, lambda _reason: release_via(name, pid))
    if link_to is not None:
        link_pair(proc, link_to)
        proc.parent = link_to.pid
    proc.task = node.loop.create_task(_run_process(proc, coro))
    return proc


async def _run_process(proc: Process, coro: Coroutine[Any, Any, Any]) -> None:
    if proc.state == DEAD:  # ended before its first step (force_exit)
        coro.close()
        return
    proc_var.set(proc)
    proc.state = RUNNING
    reason: object
    detail: str | Callable[[], str] | None = None
    try:
        result = await coro
        if type(result) is ExitWith:
            reason = result.reason
            detail = result.detail
        else:
            reason = NORMAL
    except Stop as stop:
        reason = KILLED if stop.reason is KILL else stop.reason
    except asyncio.CancelledError:
        reason = KILLED
    except Exception as exc:  # noqa: BLE001 - an actor's crash is its exit reason
        reason = exc
    except BaseException as exc:  # noqa: BLE001 - never re-raised into the event loop
        # SystemExit, KeyboardInterrupt: the node shuts down in order and
        # raises it from node()/run(); raising it here would stop the loop
        # under every other actor.
        reason = fatal(proc, exc)
    if proc.forced_reason is not UNSET:
        reason = proc.forced_reason
    exit_process(proc, reason, detail)
    # No cycles left behind, so that a dead actor is freed at once rather
    # than by the garbage collector: a crash raised through this frame has
    # the frame in its traceback, and the task's context refers to ``proc``.
    del reason
    proc.task = None


def spawn(
    fn: Callable[[*Ts], Awaitable[object]],
    *args: *Ts,
    name: Name | None = None,
    link: bool = False,
    trap_exits: bool = False,
    mailbox_size: int | None = None,
    overflow: Overflow = Overflow.REJECT,
) -> Pid:
    """Start ``async def fn(*args)`` as a new actor and return its pid at once.

    ``link=True`` links it to the calling actor; ``name`` registers it (a
    local ``str`` name, or a ``Via`` name held by a registry);
    ``mailbox_size`` bounds its mailbox and ``overflow`` says what a full one
    does. ``fn`` must be an async function (or an object with an async
    ``__call__``, or a ``functools.partial`` of one); anything else (a
    class, a sync function, a coroutine object ``fn(x)`` instead of ``fn,
    x``) raises ``TypeError`` saying what to pass instead.

    Typed: mypy checks ``args`` against ``fn``'s parameters (positional
    ones, as ``fn(*args)`` passes them), so ``spawn(worker, "x")`` for an
    ``async def worker(n: int)`` fails the type check, not the actor.
    """
    node = current_node("spawn")
    if not is_async_callable(fn):
        async_entry(fn, "fn", where="spawn", usage="an async function")
    if name is not None:
        check_name(name, "spawn")
    check_mailbox(mailbox_size, overflow, "spawn")
    link_to = current_process("spawn(..., link=True)") if link else None
    coro = fn(*args)
    if not inspect.iscoroutine(coro):
        raise TypeError(f"spawn: {fn_name(fn)}(*args) returned {safe_repr(coro)}, not a coroutine")
    proc = spawn_process(
        node,
        coro,
        name=name,
        link_to=link_to,
        trap_exits=trap_exits,
        mailbox_size=mailbox_size,
        overflow=overflow,
    )
    return proc.pid


def send(dest: Pid | Name, message: object) -> None:
    """Put ``message`` in the mailbox of ``dest`` (a pid, a registered name or
    a ``Via`` name).

    Never waits. A dead pid drops the message; an unknown name raises
    ``NoProcess``; a full bounded mailbox applies its overflow policy
    (``MailboxFull`` with ``Overflow.REJECT``). From another thread than the
    node's: ``WrongThreadError`` (use ``asyncotp.from_thread.send``).
    """
    if type(dest) is Pid:
        node: Node = dest._node  # type: ignore[assignment]  # a pid's directory is its node
        if node.thread != get_ident():
            wrong_thread(node, "send")
        proc = node.procs.get(dest)
        if proc is None:
            remote = remote_of(dest)
            if remote is not None:
                remote.transport.send(dest, message)
                return
            if node.closed:
                raise NoNodeError(f"send: the node of {dest!r} has stopped; {NO_NODE_HINT}")
            if node.on_dead_letter is not None:
                node.on_dead_letter(dest, message)
            if _telemetry.ANY:
                _telemetry.dead_letter(dest, message)
            return
    else:
        if type(dest) is Via:  # its holder may be remote: take the pid path
            send(via_pid(dest, "send"), message)
            return
        proc = resolve(dest, "send")
        if proc is None:
            return
        node = proc.node
    if node.intercept is not None and intercepted(node, proc, message):
        return
    if proc.maxlen is not None:
        deliver(proc, message)
        return
    # deliver()'s unbounded case, inlined on this hot path (it pays for the
    # thread check above).
    proc.mailbox.append(message)
    waiter = proc.waiter
    if waiter is not None:
        proc.waiter = None
        if not waiter.done():
            waiter.set_result(None)


def self_pid() -> Pid:
    """The calling actor's pid; ``NotAnActorError`` outside an actor."""
    return current_process("self_pid()").pid


def is_alive(pid: Pid) -> bool:
    """Whether the actor behind ``pid`` is still running."""
    if type(pid) is not Pid:
        raise TypeError(f"is_alive: expected a Pid, not {safe_repr(pid)}")
    _check_pid_thread(pid, "is_alive")
    proc = process_of(pid)
    return proc is not None and proc.state < DEAD


def process_info(pid: Pid) -> ProcessInfo | None:
    """A frozen snapshot of the actor, or None if it is dead."""
    if type(pid) is not Pid:
        raise TypeError(f"process_info: expected a Pid, not {safe_repr(pid)}")
    _check_pid_thread(pid, "process_info")
    proc = process_of(pid)
    if proc is None or proc.state == DEAD:
        return None
    if proc.state == EXITING or proc.pending_exit is not UNSET:
        status = "exiting"
    elif proc.waiter is not None:
        status = "waiting"
    else:
        status = "running"
    return ProcessInfo(
        pid=pid,
        name=proc.name,
        status=status,
        mailbox_length=len(proc.mailbox),
        dropped=proc.dropped,
        links=frozenset(proc.links or ()),
        monitors=frozenset((proc.monitors or {}).values()),
        trap_exits=proc.trap_exits,
        rejected=proc.rejected,
        mailbox_size=proc.maxlen,
        parent=proc.parent,
    )


def processes() -> list[Pid]:
    """The pids of every live actor of the node, in start order."""
    return list(current_node("processes").procs)


def _check_pid_thread(pid: Pid, operation: str) -> None:
    node: Node = pid._node  # type: ignore[assignment]  # a pid's directory is its node
    if node.thread != get_ident():
        wrong_thread(node, operation)
