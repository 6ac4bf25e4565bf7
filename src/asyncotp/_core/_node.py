"""The node: processes, mailboxes, links, monitors, the registry and timers.

Design notes (see PITFALLS.md):

* A mailbox is a ``collections.deque`` plus at most one waiter future. The
  waiter exists only while the actor is blocked on an empty (or non-matching)
  mailbox, so a burst of messages costs one ``append`` each and the receiver
  drains them without going back to the event loop for every one.
* A process is one slotted object and one asyncio task; links, monitors and
  timers are created lazily, so an idle actor holds few GC-tracked objects.
* Pids compare and hash by identity: the node makes exactly one per actor.
* Exit signals follow Erlang: ``KILL`` cannot be trapped, ``NORMAL`` is
  ignored by an actor that does not trap exits, and everything else ends the
  target (plain actors at once, by cancelling their task; behaviours such as
  GenServer after their running callback returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import inspect
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Final, TypeVar, final

import anyio
import attrs

from ._errors import MailboxFull, NameTaken, NoNodeError, NoProcess, NotAnActorError, ReceiveTimeout
from ._pid import Pid
from ._reasons import (
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Down,
    Exited,
    MonitorRef,
    Stop,
    is_clean_exit,
)

__all__ = [
    "Node",
    "Overflow",
    "ProcessInfo",
    "TimerRef",
    "cancel_timer",
    "demonitor",
    "is_alive",
    "link",
    "monitor",
    "node",
    "process_info",
    "read_timer",
    "receive",
    "register",
    "registered",
    "run",
    "self_pid",
    "send",
    "send_after",
    "send_exit",
    "set_trap_exits",
    "spawn",
    "unlink",
    "unregister",
    "whereis",
]

logger = logging.getLogger("asyncotp")

T = TypeVar("T")

_NO_NODE_HINT = (
    "start one with asyncotp.run(main) or, inside an async program, `async with asyncotp.node():`"
)


class Overflow(enum.Enum):
    """What a full bounded mailbox does with one more message."""

    REJECT = "reject"
    """Refuse it: the sender gets ``MailboxFull``."""
    DROP_NEWEST = "drop_newest"
    """Drop the new message (counted in ``process_info(pid).dropped``)."""
    DROP_OLDEST = "drop_oldest"
    """Evict the oldest message to make room (counted as dropped)."""

    def __repr__(self) -> str:
        return f"Overflow.{self.name}"


class _Unset(enum.Enum):
    TOKEN = 0


_UNSET: Final = _Unset.TOKEN

# Process states.
_NEW: Final = 0
_RUNNING: Final = 1
_EXITING: Final = 2
_DEAD: Final = 3

# A receiving actor goes back to the event loop after this many messages taken
# without blocking, so one busy actor cannot starve the others.
_BUDGET: Final = 1000

_node_var: ContextVar[Node | None] = ContextVar("asyncotp.node", default=None)
_proc_var: ContextVar[Process | None] = ContextVar("asyncotp.process", default=None)


class Droppable:
    """A message that must be told when an overflow policy drops it.

    A ``call``'s request is one: its caller fails at once with ``MailboxFull``
    instead of waiting out its timeout.
    """

    __slots__ = ()

    def dropped(self, proc: Process) -> None:
        raise NotImplementedError

    def abandon(self, proc: Process, reason: object) -> None:
        """``proc`` ended with ``reason`` before it handled this message."""


@final
class Process:
    """The runtime state of one actor. Internal: users hold its ``Pid``."""

    __slots__ = (
        "budget",
        "callers",
        "current",
        "defers_exits",
        "dropped",
        "evicted",
        "forced_reason",
        "is_supervisor",
        "killed",
        "links",
        "mailbox",
        "maxlen",
        "monitored_by",
        "monitors",
        "name",
        "node",
        "on_exit",
        "overflow",
        "parent",
        "pending_exit",
        "pid",
        "rejected",
        "reported",
        "state",
        "task",
        "timers",
        "trap_exits",
        "waiter",
    )

    def __init__(
        self, pid: Pid, node: Node, maxlen: int | None, overflow: Overflow, trap_exits: bool
    ) -> None:
        self.pid = pid
        self.node = node
        self.name: str | None = None
        self.mailbox: deque[Any] = deque()
        self.waiter: asyncio.Future[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.state = _NEW
        self.maxlen = maxlen
        self.overflow = overflow
        self.trap_exits = trap_exits
        self.links: set[Pid] | None = None
        self.monitors: dict[MonitorRef, Pid] | None = None
        self.monitored_by: dict[MonitorRef, Pid] | None = None
        self.timers: set[TimerRef] | None = None
        self.callers: set[Droppable] | None = None  # owed a reply (NOREPLY)
        self.current: Droppable | None = None  # the call being handled
        self.on_exit: list[Callable[[object], None]] | None = None
        self.parent: Pid | None = None
        self.forced_reason: object = _UNSET
        self.pending_exit: object = _UNSET
        self.killed = False
        self.defers_exits = False
        self.is_supervisor = False
        self.reported = False
        self.dropped = 0
        self.rejected = 0
        self.evicted = 0
        self.budget = 0

    # -- mailbox -----------------------------------------------------------

    def deliver(self, message: object) -> None:
        """Append a user message, applying the overflow policy."""
        mailbox = self.mailbox
        if self.maxlen is not None and len(mailbox) >= self.maxlen and not self._overflow(message):
            return
        mailbox.append(message)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def deliver_system(self, message: object) -> None:
        """Append a message that bounds never refuse (``Down``, ``Exited``)."""
        self.mailbox.append(message)
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _overflow(self, message: object) -> bool:
        """Apply the overflow policy; return whether to append ``message``."""
        policy = self.overflow
        if policy is Overflow.REJECT:
            self.rejected += 1
            if isinstance(message, Droppable):
                message.dropped(self)
                return False
            raise MailboxFull(
                f"the mailbox of {self.pid!r} is full (mailbox_size={self.maxlen}) and refuses "
                "more (Overflow.REJECT); slow down, retry later, or give it a larger "
                "mailbox_size",
                self.pid,
            )
        self.dropped += 1
        if policy is Overflow.DROP_NEWEST:
            if isinstance(message, Droppable):
                message.dropped(self)
            return False
        old = self.mailbox.popleft()
        self.evicted += 1
        if isinstance(old, Droppable):
            old.dropped(self)
        return True

    # -- exits ----------------------------------------------------------------

    def add_on_exit(self, callback: Callable[[object], None]) -> None:
        if self.on_exit is None:
            self.on_exit = [callback]
        else:
            self.on_exit.append(callback)

    def exit_future(self) -> asyncio.Future[object]:
        """A future resolved with this actor's exit reason."""
        fut: asyncio.Future[object] = self.node.loop.create_future()
        if self.state == _DEAD:
            fut.set_result(NOPROC)  # already gone: its reason is not kept
            return fut

        def resolve(reason: object) -> None:
            if not fut.done():
                fut.set_result(reason)

        self.add_on_exit(resolve)
        return fut

    def request_stop(self, reason: object) -> None:
        """Ask a behaviour to stop once its running callback returns.

        Plain actors (which do not defer exits) end at once instead.
        """
        if self.state >= _EXITING:
            return
        if not self.defers_exits:
            self.force_exit(reason)
            return
        if self.pending_exit is _UNSET:
            self.pending_exit = reason
            self.wake()

    def force_exit(self, reason: object) -> None:
        """End the actor now with ``reason``, cancelling its task."""
        if self.state == _DEAD:
            return
        if self.forced_reason is _UNSET or reason is KILLED:
            self.forced_reason = reason
        if reason is KILLED:
            self.killed = True
        if self.state == _NEW:
            # The task has not run a single step: its body would never see a
            # cancellation, so finish the bookkeeping here. The task's first
            # step then sees the actor dead and closes its coroutine (cancelling
            # the task instead would leave that coroutine never awaited).
            self.node.exit_process(self, self.forced_reason)
            return
        self.state = _EXITING
        task = self.task
        if task is not None and not task.done():
            task.cancel()

    def kill(self) -> None:
        self.force_exit(KILLED)


@final
class TimerRef:
    """A pending ``send_after`` timer; pass it to ``cancel_timer``."""

    __slots__ = ("_handle", "_node", "_owner")

    def __init__(self, node: Node, owner: Process | None) -> None:
        self._node = node
        self._owner = owner
        self._handle: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> bool:
        """Whether the message has not been delivered nor cancelled yet."""
        return self._handle is not None

    def _forget(self) -> None:
        self._handle = None
        owner = self._owner
        if owner is not None:
            if owner.timers is not None:
                owner.timers.discard(self)
        else:
            self._node.timers.discard(self)

    def __repr__(self) -> str:
        state = "pending" if self._handle is not None else "done"
        return f"<TimerRef {state}>"


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


class Node:
    """One running actor system: its processes, names and timers.

    Made by ``run`` or ``async with node()``; users rarely touch it.
    """

    def __init__(self, shutdown_timeout: float = 5.0) -> None:
        self.loop = asyncio.get_running_loop()
        self.procs: dict[Pid, Process] = {}
        self.names: dict[str, Pid] = {}
        self.timers: set[TimerRef] = set()
        self.closed = False
        self.shutting_down = False
        self.shutdown_timeout = shutdown_timeout
        self.intercept: Callable[[Pid | None, Pid, object], bool] | None = None
        """Fault injection (asyncotp.testing): called as ``intercept(sender,
        dest, message)`` for every user message (send, cast, call); False
        means the interceptor took the message (to drop or delay it)."""
        self.on_dead_letter: Callable[[Pid, object], None] | None = None
        """Called as ``on_dead_letter(pid, message)`` for a message sent (send,
        cast, timer) to an actor that is no longer alive; a ``call`` to a dead
        actor raises ``NoProcess`` in the caller instead."""
        self._counter = 0
        self.pid = Pid(0, self)  # the node itself, as the sender of its own exit signals
        from ._deadlines import Deadlines

        self.deadlines = Deadlines(self.loop)

    def __repr__(self) -> str:
        return f"<Node {len(self.procs)} actors>"

    # -- processes ---------------------------------------------------------

    def spawn_process(
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        name: str | None,
        link_to: Process | None,
        trap_exits: bool,
        mailbox_size: int | None,
        overflow: Overflow,
    ) -> Process:
        if self.closed:
            coro.close()
            raise NoNodeError(f"the node has stopped; cannot start more actors; {_NO_NODE_HINT}")
        if name is not None:
            holder = self.names.get(name)
            if holder is not None:
                coro.close()
                raise NameTaken(
                    f"the name {name!r} is already registered to {holder!r}; choose another "
                    "name, or stop that actor first",
                    name,
                    holder,
                )
        self._counter += 1
        pid = Pid(self._counter, self)
        proc = Process(pid, self, mailbox_size, overflow, trap_exits)
        self.procs[pid] = proc
        if name is not None:
            self.names[name] = pid
            proc.name = name
        if link_to is not None:
            proc.links = {link_to.pid}
            if link_to.links is None:
                link_to.links = {pid}
            else:
                link_to.links.add(pid)
        proc.task = self.loop.create_task(_run_process(proc, coro))
        return proc

    def exit_process(self, proc: Process, reason: object) -> None:
        """Everything that happens when an actor ends: names, timers, callers,
        links, monitors, exit callbacks and the crash report."""
        if proc.state == _DEAD:
            return
        proc.state = _DEAD
        pid = proc.pid
        procs = self.procs
        procs.pop(pid, None)
        if proc.name is not None and self.names.get(proc.name) is pid:
            del self.names[proc.name]
        if proc.waiter is not None:
            proc.waiter = None
        if proc.timers:
            for timer in proc.timers:
                if timer._handle is not None:
                    timer._handle.cancel()
                    timer._handle = None
            proc.timers = None
        # Everybody still waiting for a reply hears of the end at once: the
        # call being handled, the calls answered later (NOREPLY), and the calls
        # still queued in the mailbox.
        owed: list[Droppable] = []
        if proc.current is not None:
            owed.append(proc.current)
            proc.current = None
        if proc.callers:
            owed.extend(proc.callers)
            proc.callers = None
        if proc.mailbox:
            owed.extend(m for m in proc.mailbox if isinstance(m, Droppable))
            proc.mailbox.clear()
        for message in owed:
            message.abandon(proc, reason)
        linked = bool(proc.links) or bool(proc.monitored_by)
        if proc.monitors:
            for ref, target_pid in proc.monitors.items():
                target = procs.get(target_pid)
                if target is not None and target.monitored_by is not None:
                    target.monitored_by.pop(ref, None)
            proc.monitors = None
        signal_reason = KILLED if reason is KILL else reason
        if proc.links:
            links = proc.links
            proc.links = None
            for other_pid in links:
                other = procs.get(other_pid)
                if other is not None:
                    if other.links is not None:
                        other.links.discard(pid)
                    self.signal(other, pid, signal_reason, from_link=True)
        if proc.monitored_by:
            watchers = proc.monitored_by
            proc.monitored_by = None
            for ref, watcher_pid in watchers.items():
                watcher = procs.get(watcher_pid)
                if watcher is not None:
                    if watcher.monitors is not None:
                        watcher.monitors.pop(ref, None)
                    watcher.deliver_system(Down(ref, pid, reason))
        if proc.on_exit:
            callbacks = proc.on_exit
            proc.on_exit = None
            for callback in callbacks:
                callback(reason)
        if not proc.reported and not is_clean_exit(reason):
            self._crash_report(proc, reason, linked)

    def _crash_report(self, proc: Process, reason: object, linked: bool) -> None:
        # An actor that raised is always reported (unless its supervisor
        # reports it); an actor ended by a signal only when nobody would hear
        # of it otherwise.
        if proc.parent is not None:
            parent = self.procs.get(proc.parent)
            if parent is not None and parent.is_supervisor:
                return
        own_crash = isinstance(reason, BaseException) and proc.forced_reason is _UNSET
        if not own_crash and linked:
            return
        extra = {"actor_pid": proc.pid, "actor_name": proc.name, "reason": reason}
        who = _label(proc)
        if isinstance(reason, BaseException):
            logger.error(
                "actor %s crashed: %r",
                who,
                reason,
                exc_info=(type(reason), reason, reason.__traceback__),
                extra=extra,
            )
        else:
            logger.error("actor %s exited with reason %r", who, reason, extra=extra)

    def signal(self, target: Process, sender: Pid, reason: object, *, from_link: bool) -> None:
        """Deliver an exit signal from ``sender`` to ``target``."""
        if target.state >= _EXITING:
            return
        if reason is KILL:
            if not from_link:
                target.kill()
                return
            reason = KILLED
        if target.defers_exits and sender is target.parent and sender is not None:
            # A behaviour told by its parent to go: an order, not a message.
            if target.trap_exits or reason is not NORMAL:
                target.request_stop(reason)
            return
        if target.trap_exits:
            target.deliver_system(Exited(sender, reason))
            return
        if reason is NORMAL:
            if sender is target.pid:
                target.request_stop(NORMAL)
            return
        target.request_stop(reason)

    # -- shutdown ----------------------------------------------------------

    async def wait_exit(self, proc: Process, timeout: float | None) -> bool:
        """Wait until ``proc`` has ended; return False past ``timeout``."""
        if proc.state == _DEAD:
            return True
        fut = proc.exit_future()
        if timeout is None:
            await fut
            return True
        with anyio.move_on_after(timeout):
            await fut
            return True
        return False

    def order_shutdown(self, proc: Process, reason: object) -> None:
        """Tell an actor to shut down as its supervisor would."""
        if proc.defers_exits or not proc.trap_exits:
            proc.request_stop(reason)
        else:
            self.signal(proc, proc.parent or self.pid, reason, from_link=False)

    async def _stop_batch(self, batch: list[Process]) -> None:
        if not batch:
            return
        deadline = self.loop.time() + self.shutdown_timeout
        for proc in batch:
            left = max(0.0, deadline - self.loop.time())
            if not await self.wait_exit(proc, left):
                logger.warning(
                    "actor %r did not stop within %.1f s of the node's shutdown; killing it",
                    proc.pid,
                    self.shutdown_timeout,
                    extra={"actor_pid": proc.pid, "actor_name": proc.name},
                )
                proc.kill()
        for proc in batch:
            if not await self.wait_exit(proc, self.shutdown_timeout):
                logger.error(
                    "actor %r survived KILL (it shields itself from cancellation); abandoning it",
                    proc.pid,
                    extra={"actor_pid": proc.pid, "actor_name": proc.name},
                )
                self.exit_process(proc, KILLED)

    async def shutdown(self) -> None:
        """Stop every actor: reverse start order, supervisors one at a time."""
        self.shutting_down = True
        for _round in range(10):
            if not self.procs:
                break
            batch: list[Process] = []
            for proc in reversed(list(self.procs.values())):
                if proc.state == _DEAD:
                    continue
                if proc.parent is not None and proc.parent in self.procs:
                    continue  # its parent stops it
                if proc.is_supervisor:
                    await self._stop_batch(batch)
                    batch = []
                    self.order_shutdown(proc, SHUTDOWN)
                    await self.wait_exit(proc, None)
                else:
                    self.order_shutdown(proc, SHUTDOWN)
                    batch.append(proc)
            await self._stop_batch(batch)
        for proc in list(self.procs.values()):
            proc.kill()
            await self.wait_exit(proc, self.shutdown_timeout)
            self.exit_process(proc, KILLED)
        for timer in self.timers:
            if timer._handle is not None:
                timer._handle.cancel()
                timer._handle = None  # no longer pending: read_timer None, cancel False
        self.timers.clear()
        self.deadlines.close()
        self.closed = True


def _label(proc: Process) -> str:
    """``repr(pid)`` with the actor's name, even once the name has been freed
    (messages written while an actor ends)."""
    if proc.name is None:
        return repr(proc.pid)
    return f"<Pid {proc.pid.number} {proc.name!r}>"


@final
class ExitWith:
    """Returned by a behaviour's main coroutine to end with ``reason``
    (cheaper than raising ``Stop``)."""

    __slots__ = ("reason",)

    def __init__(self, reason: object) -> None:
        self.reason = KILLED if reason is KILL else reason


async def _run_process(proc: Process, coro: Coroutine[Any, Any, Any]) -> None:
    if proc.state == _DEAD:  # ended before its first step (force_exit)
        coro.close()
        return
    _proc_var.set(proc)
    proc.state = _RUNNING
    reason: object
    try:
        result = await coro
        reason = result.reason if type(result) is ExitWith else NORMAL
    except Stop as stop:
        reason = KILLED if stop.reason is KILL else stop.reason
    except asyncio.CancelledError:
        reason = KILLED
    except Exception as exc:  # noqa: BLE001 - an actor's crash is its exit reason
        reason = exc
    except BaseException as exc:
        # KeyboardInterrupt, SystemExit: end the actor, then let it through.
        proc.node.exit_process(proc, exc)
        raise
    if proc.forced_reason is not _UNSET:
        reason = proc.forced_reason
    proc.node.exit_process(proc, reason)


# -- helpers used by the public functions ------------------------------------


def current_node() -> Node:
    node = _node_var.get()
    if node is None or node.closed:
        node = _loop_node()
        if node is None:
            raise NoNodeError(f"no asyncotp node is running here; {_NO_NODE_HINT}")
    return node


# The nodes running on each event loop. A task that did not inherit a node's
# context (a web framework's request task, when the node runs in the app's
# lifespan task) still finds the node of its loop, if there is exactly one.
_loop_nodes: dict[asyncio.AbstractEventLoop, list[Node]] = {}


def _loop_node() -> Node | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    nodes = _loop_nodes.get(loop)
    if nodes is None or len(nodes) != 1 or nodes[0].closed:
        return None
    return nodes[0]


def current_process(operation: str) -> Process:
    proc = _proc_var.get()
    if proc is None or proc.state == _DEAD:
        raise NotAnActorError(
            f"{operation} must be called from inside an actor (it needs the caller's pid "
            "and mailbox); wrap the code in an actor with asyncotp.spawn(fn)"
        )
    return proc


def resolve(dest: Pid | str, operation: str) -> Process | None:
    """The live process behind ``dest``; None for a dead pid; NoProcess for an
    unknown name."""
    if type(dest) is Pid:
        node = dest._node
        if node.closed:
            raise NoNodeError(f"{operation}: the node of {dest!r} has stopped; {_NO_NODE_HINT}")
        return node.procs.get(dest)
    if isinstance(dest, str):
        node = current_node()
        pid = node.names.get(dest)
        if pid is None:
            raise NoProcess(
                f"{operation}: no actor is registered as {dest!r}; check the name, or that "
                "the actor has started (registered() lists the names in use)",
                dest,
            )
        return node.procs.get(pid)
    raise TypeError(
        f"{operation}: the destination must be a Pid or a registered name, not {dest!r}"
    )


def _is_async_callable(fn: object) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _fn_name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _check_name(name: object, operation: str) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{operation}: a name must be a non-empty str, not {name!r}")


def _check_mailbox(mailbox_size: int | None, overflow: Overflow, operation: str) -> None:
    if mailbox_size is not None and (
        not isinstance(mailbox_size, int) or isinstance(mailbox_size, bool) or mailbox_size < 1
    ):
        raise ValueError(
            f"{operation}: mailbox_size must be None (unbounded) or an int >= 1, "
            f"not {mailbox_size!r}"
        )
    if not isinstance(overflow, Overflow):
        raise TypeError(f"{operation}: overflow must be an Overflow member, not {overflow!r}")


# -- public API ---------------------------------------------------------------


def spawn(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    name: str | None = None,
    link: bool = False,
    trap_exits: bool = False,
    mailbox_size: int | None = None,
    overflow: Overflow = Overflow.REJECT,
) -> Pid:
    """Start ``async def fn(*args)`` as a new actor and return its pid at once.

    ``link=True`` links it to the calling actor; ``name`` registers it;
    ``mailbox_size`` bounds its mailbox and ``overflow`` says what a full one
    does. ``fn`` must be an async function (or an object with an async
    ``__call__``, or a ``functools.partial`` of one).
    """
    node = current_node()
    if not _is_async_callable(fn):
        raise TypeError(
            f"spawn: {_fn_name(fn)} is not an async function; an actor runs "
            "`async def fn(*args)`; define it with `async def`"
        )
    if name is not None:
        _check_name(name, "spawn")
    _check_mailbox(mailbox_size, overflow, "spawn")
    link_to = current_process("spawn(..., link=True)") if link else None
    coro = fn(*args)
    if not inspect.iscoroutine(coro):
        raise TypeError(f"spawn: {_fn_name(fn)}(*args) returned {coro!r}, not a coroutine")
    proc = node.spawn_process(
        coro,
        name=name,
        link_to=link_to,
        trap_exits=trap_exits,
        mailbox_size=mailbox_size,
        overflow=overflow,
    )
    if link_to is not None:
        proc.parent = link_to.pid
    return proc.pid


def send(dest: Pid | str, message: object) -> None:
    """Put ``message`` in the mailbox of ``dest`` (a pid or a registered name).

    Never waits. A dead pid drops the message; an unknown name raises
    ``NoProcess``; a full bounded mailbox applies its overflow policy
    (``MailboxFull`` with ``Overflow.REJECT``).
    """
    if type(dest) is Pid:
        node = dest._node
        proc = node.procs.get(dest)
        if proc is None:
            if node.closed:
                raise NoNodeError(f"send: the node of {dest!r} has stopped; {_NO_NODE_HINT}")
            if node.on_dead_letter is not None:
                node.on_dead_letter(dest, message)
            return
    else:
        proc = resolve(dest, "send")
        if proc is None:
            return
        node = proc.node
    if node.intercept is not None and intercepted(node, proc, message):
        return
    # Process.deliver, inlined: this is the hottest path of the runtime.
    mailbox = proc.mailbox
    if proc.maxlen is not None and len(mailbox) >= proc.maxlen and not proc._overflow(message):
        return
    mailbox.append(message)
    waiter = proc.waiter
    if waiter is not None:
        proc.waiter = None
        if not waiter.done():
            waiter.set_result(None)


def intercepted(node: Node, proc: Process, message: object) -> bool:
    """Whether the node's interceptor took ``message`` (testing only)."""
    assert node.intercept is not None
    sender = _proc_var.get()
    return not node.intercept(sender.pid if sender is not None else None, proc.pid, message)


def _timeout_wake(proc: Process, expired: list[bool]) -> None:
    # Record the expiry even when the actor is not parked on its waiter (a
    # non-matching message woke it just before): it must still time out.
    expired.append(True)
    waiter = proc.waiter
    if waiter is not None:
        proc.waiter = None
        if not waiter.done():
            waiter.set_result(None)


async def receive(match: Callable[[Any], bool] | None = None, timeout: float | None = None) -> Any:
    """Take the oldest message of the calling actor's mailbox that ``match``
    accepts (any message when ``match`` is None).

    Messages that do not match stay where they are, in order. Past
    ``timeout`` seconds, ``ReceiveTimeout``; ``timeout=0`` takes a message that
    is already there or raises at once.
    """
    proc = _proc_var.get()
    if proc is None:
        raise NotAnActorError(
            "receive must be called from inside an actor (only actors have a mailbox); "
            "start one with asyncotp.spawn(fn)"
        )
    mailbox = proc.mailbox
    if match is None and mailbox:
        budget = proc.budget
        if budget < _BUDGET:
            proc.budget = budget + 1
            return mailbox.popleft()
        proc.budget = 0
        await asyncio.sleep(0)
        return mailbox.popleft()
    return await _receive_slow(proc, match, timeout)


async def _receive_slow(
    proc: Process, match: Callable[[Any], bool] | None, timeout: float | None
) -> Any:
    mailbox = proc.mailbox
    loop = proc.node.loop
    start = 0
    evicted = proc.evicted
    handle: asyncio.TimerHandle | None = None
    expired: list[bool] | None = None  # made with the timer, which appends to it on firing
    try:
        while True:
            if match is None:
                if mailbox:
                    return mailbox.popleft()
            else:
                if proc.evicted != evicted:
                    evicted = proc.evicted
                    start = 0
                index = start
                # Only the messages not yet looked at (a copy: ``match`` may
                # send to this very mailbox).
                for message in list(itertools.islice(mailbox, start, None)):
                    if match(message):
                        del mailbox[index]
                        return message
                    index += 1
                start = len(mailbox)
            if timeout is not None:
                if handle is None:
                    if timeout <= 0:
                        raise ReceiveTimeout(f"{proc.pid!r}: no matching message (timeout=0)")
                    expired = []
                    handle = loop.call_later(timeout, _timeout_wake, proc, expired)
                elif expired:
                    raise ReceiveTimeout(
                        f"{proc.pid!r}: no matching message arrived within {timeout} s"
                    )
            proc.budget = 0
            waiter = loop.create_future()
            proc.waiter = waiter
            try:
                await waiter
            finally:
                if proc.waiter is waiter:
                    proc.waiter = None
    finally:
        if handle is not None:
            handle.cancel()


def self_pid() -> Pid:
    """The calling actor's pid; ``NotAnActorError`` outside an actor."""
    return current_process("self_pid()").pid


def is_alive(pid: Pid) -> bool:
    """Whether the actor behind ``pid`` is still running."""
    if type(pid) is not Pid:
        raise TypeError(f"is_alive: expected a Pid, not {pid!r}")
    proc = pid._node.procs.get(pid)
    return proc is not None and proc.state < _DEAD


def link(pid: Pid) -> None:
    """Link the calling actor and ``pid`` both ways.

    When either ends with a reason other than ``NORMAL``, the other gets an
    exit signal with that reason. Linking to a dead actor sends the caller an
    exit signal with reason ``NOPROC``.
    """
    proc = current_process("link")
    if type(pid) is not Pid:
        raise TypeError(f"link: expected a Pid, not {pid!r}")
    if pid is proc.pid:
        return
    other = proc.node.procs.get(pid)
    if other is None or other.state == _DEAD:
        proc.node.signal(proc, pid, NOPROC, from_link=True)
        return
    if proc.links is None:
        proc.links = {pid}
    else:
        proc.links.add(pid)
    if other.links is None:
        other.links = {proc.pid}
    else:
        other.links.add(proc.pid)


def unlink(pid: Pid) -> None:
    """Remove the link between the calling actor and ``pid``, if any."""
    proc = current_process("unlink")
    if type(pid) is not Pid:
        raise TypeError(f"unlink: expected a Pid, not {pid!r}")
    if proc.links is not None:
        proc.links.discard(pid)
    other = proc.node.procs.get(pid)
    if other is not None and other.links is not None:
        other.links.discard(proc.pid)


def set_trap_exits(flag: bool) -> bool:
    """Trap exit signals (but ``KILL``) as ``Exited`` messages while set.

    Returns the previous setting.
    """
    proc = current_process("set_trap_exits")
    old = proc.trap_exits
    proc.trap_exits = bool(flag)
    return old


def send_exit(pid: Pid | str, reason: object) -> None:
    """Send an exit signal to ``pid``.

    ``KILL`` ends the target whatever it traps (reason ``KILLED``); ``NORMAL``
    is ignored by an actor that does not trap exits.
    """
    target = resolve(pid, "send_exit")
    if target is None:
        return
    sender_proc = _proc_var.get()
    sender = sender_proc.pid if sender_proc is not None else target.node.pid
    target.node.signal(target, sender, reason, from_link=False)


def monitor(pid: Pid | str) -> MonitorRef:
    """Monitor ``pid``: when it ends, the caller receives ``Down(ref, pid, reason)``.

    A dead pid gives ``Down(ref, pid, NOPROC)`` at once.
    """
    proc = current_process("monitor")
    ref = MonitorRef()
    if type(pid) is Pid:
        target = proc.node.procs.get(pid)
        target_pid = pid
    else:
        target = resolve(pid, "monitor")
        assert target is not None
        target_pid = target.pid
    if target is None or target.state == _DEAD:
        proc.deliver_system(Down(ref, target_pid, NOPROC))
        return ref
    if proc.monitors is None:
        proc.monitors = {ref: target_pid}
    else:
        proc.monitors[ref] = target_pid
    if target.monitored_by is None:
        target.monitored_by = {ref: proc.pid}
    else:
        target.monitored_by[ref] = proc.pid
    return ref


def demonitor(ref: MonitorRef, flush: bool = False) -> bool:
    """Remove a monitor; return whether it was still active.

    ``flush=True`` also removes a ``Down`` for it already in the mailbox.
    """
    proc = current_process("demonitor")
    active = False
    if proc.monitors is not None:
        target_pid = proc.monitors.pop(ref, None)
        if target_pid is not None:
            active = True
            target = proc.node.procs.get(target_pid)
            if target is not None and target.monitored_by is not None:
                target.monitored_by.pop(ref, None)
    if flush:
        remaining = [m for m in proc.mailbox if not (type(m) is Down and m.ref is ref)]
        if len(remaining) != len(proc.mailbox):
            proc.mailbox.clear()
            proc.mailbox.extend(remaining)
    return active


def register(name: str, pid: Pid) -> None:
    """Register ``name`` for ``pid``; the name is freed when the actor ends.

    ``NameTaken`` if another actor holds it; ``NoProcess`` for a dead pid.
    """
    _check_name(name, "register")
    if type(pid) is not Pid:
        raise TypeError(f"register: expected a Pid, not {pid!r}")
    node = pid._node
    proc = node.procs.get(pid)
    if proc is None:
        raise NoProcess(f"register({name!r}): {pid!r} is not alive", pid)
    holder = node.names.get(name)
    if holder is not None:
        raise NameTaken(
            f"the name {name!r} is already registered to {holder!r}; choose another name, "
            "or unregister it first",
            name,
            holder,
        )
    if proc.name is not None:
        raise ValueError(
            f"register({name!r}): {pid!r} is already registered as {proc.name!r}; an actor "
            "has at most one name (unregister the old one first)"
        )
    node.names[name] = pid
    proc.name = name


def unregister(name: str) -> None:
    """Free ``name``; ``NoProcess`` if nobody holds it."""
    node = current_node()
    pid = node.names.pop(name, None)
    if pid is None:
        raise NoProcess(f"unregister: no actor is registered as {name!r}", name)
    proc = node.procs.get(pid)
    if proc is not None:
        proc.name = None


def whereis(name: str) -> Pid | None:
    """The pid registered as ``name``, or None."""
    return current_node().names.get(name)


def registered() -> list[str]:
    """The names registered in the node, sorted."""
    return sorted(current_node().names)


def _fire_timer(timer: TimerRef, node: Node, dest: Pid | str, message: object) -> None:
    timer._forget()
    if node.closed:
        return
    if type(dest) is Pid:
        proc = node.procs.get(dest)
    else:
        pid = node.names.get(dest)
        proc = node.procs.get(pid) if pid is not None else None
    if proc is None:
        if type(dest) is Pid and node.on_dead_letter is not None:
            node.on_dead_letter(dest, message)
        return
    with contextlib.suppress(MailboxFull):  # counted in `rejected`; a timer has nobody to tell
        proc.deliver(message)


def send_after(delay: float, dest: Pid | str, message: object) -> TimerRef:
    """Deliver ``message`` to ``dest`` after ``delay`` seconds.

    A timer set by an actor is cancelled when that actor ends. A name is
    looked up when the timer fires.
    """
    node = current_node()
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
        raise ValueError(f"send_after: delay must be a number of seconds >= 0, not {delay!r}")
    if type(dest) is not Pid and not isinstance(dest, str):
        raise TypeError(f"send_after: the destination must be a Pid or a name, not {dest!r}")
    owner = _proc_var.get()
    if owner is not None and owner.state == _DEAD:
        owner = None
    timer = TimerRef(node, owner)
    timer._handle = node.loop.call_later(delay, _fire_timer, timer, node, dest, message)
    if owner is not None:
        if owner.timers is None:
            owner.timers = {timer}
        else:
            owner.timers.add(timer)
    else:
        node.timers.add(timer)
    return timer


def cancel_timer(ref: TimerRef) -> bool:
    """Cancel a timer; return whether it was still pending."""
    handle = ref._handle
    if handle is None:
        return False
    handle.cancel()
    ref._forget()
    return True


def read_timer(ref: TimerRef) -> float | None:
    """Seconds left before the timer fires, or None if it is no longer pending."""
    handle = ref._handle
    if handle is None:
        return None
    return max(0.0, handle.when() - ref._node.loop.time())


def process_info(pid: Pid) -> ProcessInfo | None:
    """A frozen snapshot of the actor, or None if it is dead."""
    if type(pid) is not Pid:
        raise TypeError(f"process_info: expected a Pid, not {pid!r}")
    proc = pid._node.procs.get(pid)
    if proc is None or proc.state == _DEAD:
        return None
    if proc.state == _EXITING or proc.pending_exit is not _UNSET:
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
    return list(current_node().procs)


# -- node ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def node(*, shutdown_timeout: float = 5.0) -> AsyncIterator[Node]:
    """Run a node inside an existing async program (a web app's lifespan, a test).

    On leaving the block every actor is shut down with ``SHUTDOWN``: top-level
    supervisors one after another in reverse start order, other actors given
    ``shutdown_timeout`` seconds before ``KILL``. The shutdown runs shielded,
    so a cancellation around the block still cleans up.
    """
    if _node_var.get() is not None and not _node_var.get().closed:  # type: ignore[union-attr]
        raise RuntimeError(
            "a node is already running in this task; nest actors inside it instead of "
            "starting a second node"
        )
    if shutdown_timeout <= 0:
        raise ValueError(f"node: shutdown_timeout must be > 0, not {shutdown_timeout!r}")
    the_node = Node(shutdown_timeout)
    token = _node_var.set(the_node)
    on_loop = _loop_nodes.setdefault(the_node.loop, [])
    on_loop.append(the_node)
    try:
        yield the_node
    finally:
        try:
            with anyio.CancelScope(shield=True):
                await the_node.shutdown()
        finally:
            _node_var.reset(token)
            on_loop.remove(the_node)
            if not on_loop:
                _loop_nodes.pop(the_node.loop, None)


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
) -> T:
    """Start a node, run ``async def main(*args)`` as an actor, return its result.

    When ``main`` returns, every actor still alive is shut down (exit signal
    ``SHUTDOWN``, supervisors in reverse start order), then the node stops.
    If ``main`` raises, the exception propagates from ``run`` after the
    shutdown. ``backend_options={"use_uvloop": True}`` runs on uvloop.
    """
    if backend != "asyncio":
        raise ValueError(
            f"run: asyncotp runs on anyio's asyncio backend (optionally with uvloop via "
            f"backend_options={{'use_uvloop': True}}), not {backend!r}"
        )
    if not _is_async_callable(main):
        raise TypeError(
            f"run: {_fn_name(main)} is not an async function; define it with `async def`"
        )

    async def entry() -> T:
        async with node():
            box: list[Any] = []

            async def main_actor() -> None:
                box.append(await main(*args))

            pid = spawn(main_actor)
            proc = pid._node.procs[pid]
            proc.reported = True  # run() raises the error itself
            reason = await proc.exit_future()
        if box:
            return box[0]  # type: ignore[no-any-return]
        if isinstance(reason, BaseException):
            raise reason
        if reason is NORMAL:
            return None  # type: ignore[return-value]  # main raised Stop()
        raise RuntimeError(f"the main actor ended with reason {reason!r}")

    return anyio.run(entry, backend=backend, backend_options=backend_options)
