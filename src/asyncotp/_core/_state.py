"""The runtime's state records: ``Process`` (one actor) and ``Node``.

These are plain slotted records. The behaviour lives in the modules that own
each concern (``_mailbox``: delivery and receive; ``_exits``: exit signals,
links, monitors and the end of an actor; ``_actor``: spawn and the actor's
task; ``_node``: the node's lifetime). Nothing outside ``asyncotp._core``
reads or writes these fields: the rest of the package goes through the
functions that ``asyncotp._core`` exports.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final, final

from ._deadlines import Deadlines
from ._pid import Pid
from ._reasons import KILL, KILLED, MonitorRef

NO_NODE_HINT: Final = (
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


UNSET: Final = _Unset.TOKEN
"""No value yet (a process's forced or pending exit reason)."""

# Process states, in the order a process goes through them.
NEW: Final = 0
RUNNING: Final = 1
EXITING: Final = 2
DEAD: Final = 3

BUDGET: Final = 1000
"""A receiving actor goes back to the event loop after this many messages
taken without blocking, so one busy actor cannot starve the others."""

node_var: ContextVar[Node | None] = ContextVar("asyncotp.node", default=None)
proc_var: ContextVar[Process | None] = ContextVar("asyncotp.process", default=None)


class Droppable:
    """A message that must be told when it is not handled.

    A ``call``'s request is one: its caller fails at once with ``MailboxFull``
    when an overflow policy drops it, and with ``ServerExited`` when the server
    ends before handling it.
    """

    __slots__ = ()

    def dropped(self, proc: Process) -> None:
        raise NotImplementedError

    def abandon(self, proc: Process, reason: object) -> None:
        """``proc`` ended with ``reason`` before it handled this message."""


@final
class ExitWith:
    """Returned by a behaviour's main coroutine to end with ``reason``
    (cheaper than raising ``Stop``). ``detail`` says, for the crash report,
    what the behaviour was and what it handled last: the text, or a function
    that formats it, called only if a crash report is written (most crashes
    are reported by a supervisor instead, or dropped by the logger's level)."""

    __slots__ = ("detail", "reason")

    def __init__(self, reason: object, detail: str | Callable[[], str] | None = None) -> None:
        self.reason = KILLED if reason is KILL else reason
        self.detail = detail


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
        "handles_sys",
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
        "started_at",
        "state",
        "system",
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
        """The actor's own task: the only task that is this actor (a task it
        starts inherits its context, not its identity)."""
        self.system: list[object] | None = None
        """System messages in a bounded ``DROP_OLDEST`` mailbox, which
        eviction skips (possibly stale: only the ones still queued count)."""
        self.state = NEW
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
        self.forced_reason: object = UNSET
        self.pending_exit: object = UNSET
        self.killed = False
        self.defers_exits = False
        self.is_supervisor = False
        self.handles_sys = False  # runs a loop that answers asyncotp.sys requests
        self.reported = False
        self.dropped = 0
        self.rejected = 0
        self.evicted = 0
        self.budget = 0
        self.started_at = node.loop.time()  # for uptime (asyncotp.observer)


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


class Node:
    """One running actor system: its processes, names and timers.

    Made by ``run`` or ``async with node() as node``. Its use for users: it
    is what another thread holds to reach the node. asyncotp's functions
    run on the node's event-loop thread (from any other they raise
    ``WrongThreadError``); a thread calls ``asyncotp.from_thread.send(node,
    dest, message)``, ``from_thread.cast(node, dest, request)``,
    ``from_thread.call(node, dest, request, timeout)`` or
    ``from_thread.run(node, async_fn, *args)`` instead, which run on the
    node's loop and block the thread until done.
    """

    def __init__(self, shutdown_timeout: float = 5.0) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        """The event loop's thread: the runtime's functions refuse others."""
        self.host: asyncio.Task[Any] | None = asyncio.current_task()
        """The task that runs the node (``async with node()``)."""
        self.fatal: BaseException | None = None
        """A ``SystemExit`` or ``KeyboardInterrupt`` raised in an actor: the
        node shuts down in order, then raises it from ``node()``/``run()``."""
        self.host_cancelled = False
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
        self.counter = 0
        self.pid = Pid(0, self)  # the node itself, as the sender of its own exit signals
        self.deadlines = Deadlines(self.loop)

    def __repr__(self) -> str:
        return f"<Node {len(self.procs)} actors>"

    def name_of(self, pid: Pid) -> str | None:
        """The name ``pid``'s actor holds, if it is alive and has one."""
        proc = self.procs.get(pid)
        return None if proc is None else proc.name
