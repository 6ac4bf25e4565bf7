"""Read-only introspection of a node's actors, for ``asyncotp.observer``.

The observer draws the live tree and the busiest actors; what it needs to
know about an actor that ``process_info`` does not say lives here: what kind
of actor it is (a supervisor, a GenServer, a plain actor) and which class or
function it runs, how long it has run, how many actors monitor it, and a
memory estimate. Nothing here writes to a ``Process`` or a ``Node``, and
nothing runs unless somebody asks: no per-message work is added anywhere.
"""

from __future__ import annotations

import gc
import inspect
import itertools
import sys
from collections.abc import Iterable
from types import FrameType
from typing import Any, Final, Literal, TypeAlias, cast

import attrs

from ._actor import _run_process
from ._context import process_of
from ._pid import Pid
from ._state import DEAD, EXITING, UNSET, Node, Process, proc_var

ActorKind: TypeAlias = Literal["supervisor", "genserver", "actor"]

_SAMPLE: Final = 64
"""How many queued messages ``memory`` measures one by one; the rest of a
longer mailbox is estimated from their mean size."""
_ITEMS: Final = 16
"""How many items of a tuple, list or dict message are measured."""
_RUN_PROCESS: Final = _run_process.__code__
"""The code of an actor's task: the frame below it runs the actor's own coroutine."""


@attrs.frozen
class ProcessFacts:
    """One live actor, as ``describe`` saw it at one instant."""

    pid: Pid
    name: str | None
    kind: ActorKind
    """``"supervisor"`` (marked by ``mark_supervisor``), ``"genserver"`` (runs
    the server loop: GenServer, Agent and every behaviour built on them) or
    ``"actor"`` (a plain ``spawn``)."""
    behaviour: str
    """The GenServer's class name, or the plain actor's function name; ``"?"``
    when it cannot be told (the actor has not started yet, or is ending)."""
    status: str
    """``"running"``, ``"waiting"`` (blocked on its mailbox) or ``"exiting"``."""
    mailbox_length: int
    links: int
    monitors: int
    """How many monitors this actor holds on others."""
    monitored_by: int
    """How many monitors others hold on this actor."""
    parent: Pid | None
    trap_exits: bool
    dropped: int
    started_at: float
    """Loop time (the ``now()`` clock) when it was spawned."""
    memory: int
    """An estimate in bytes: see ``memory``."""


def _status(proc: Process) -> str:
    if proc.state == EXITING or proc.pending_exit is not UNSET:
        return "exiting"
    if proc.waiter is not None:
        return "waiting"
    return "running"


def _size(obj: object) -> int:
    """``sys.getsizeof``, guarded: a user's ``__sizeof__`` may raise."""
    try:
        return sys.getsizeof(obj)
    except Exception:  # noqa: BLE001 - user objects must not break introspection
        return 0


def _message_size(message: object) -> int:
    """A message's own size and, for a tuple, list or dict, its direct items'
    (the first 16): one level deep, as messages are usually small tuples."""
    total = _size(message)
    kind = type(message)  # exact types only: a subclass may run user code
    items: Iterable[object]
    if kind is tuple or kind is list:
        items = itertools.islice(cast("Iterable[object]", message), _ITEMS)
    elif kind is dict:
        pairs = itertools.islice(cast("dict[object, object]", message).items(), _ITEMS)
        items = (part for pair in pairs for part in pair)
    else:
        return total
    return total + sum(_size(item) for item in items)


def memory(proc: Process) -> int:
    """A shallow estimate of the bytes an actor holds in the runtime.

    The sum of ``sys.getsizeof`` of its ``Process`` record, its task, its
    mailbox deque and each queued message with its direct items when it is a
    tuple, list or dict (the first 64 messages measured, the rest estimated
    at their mean size), and its link, monitor and timer tables. Shallow
    beyond that: what the items refer to, and the actor's own state (a
    GenServer's attributes, its coroutine's locals), are not counted. Use it
    to compare actors with each other (which mailbox is growing), not as an
    exact figure.
    """
    total = _size(proc) + _size(proc.mailbox)
    if proc.task is not None:
        total += _size(proc.task)
    queued = len(proc.mailbox)
    if queued:
        sample = 0
        for index, message in enumerate(proc.mailbox):
            if index == _SAMPLE:
                break
            sample += _message_size(message)
        measured = min(queued, _SAMPLE)
        total += sample + (sample // measured) * (queued - measured)
    for table in (proc.links, proc.monitors, proc.monitored_by, proc.timers):
        if table:
            total += _size(table)
    return total


def _held_coroutine(coro: Any) -> Any:
    """The coroutine that ``coro`` awaits, or else the one it holds in a local
    (an actor's task before its first step)."""
    awaited = getattr(coro, "cr_await", None)
    if inspect.iscoroutine(awaited):
        return awaited
    for held in gc.get_referents(coro):
        if inspect.iscoroutine(held):
            return held
    return None


def _running_behaviour(proc: Process) -> str:
    """``_behaviour`` for the calling actor itself, whose coroutines are
    running (they refer to nothing ``gc`` can see): read from the stack, the
    frame that ``_run_process`` runs (one dict of locals for the server loop's
    own frame, on the caller only)."""
    callee: FrameType | None = None
    frame: FrameType | None = sys._getframe()
    while frame is not None and frame.f_code is not _RUN_PROCESS:
        callee, frame = frame, frame.f_back
    if frame is None or callee is None:
        return "?"
    if proc.defers_exits:
        server = callee.f_locals.get("server")
        return "?" if server is None else type(server).__qualname__
    return callee.f_code.co_qualname.rpartition("<locals>.")[2]


def _behaviour(proc: Process) -> str:
    """The class a server runs, or a plain actor's function name.

    The actor's task runs ``_run_process``, which awaits the actor's own
    coroutine: a plain actor's function, or the server loop that holds the
    GenServer instance. They are read from what the suspended coroutines
    refer to (``gc.get_referents``), never through ``frame.f_locals``, which
    would leave a dict of the locals attached to every frame it reads.
    """
    task = proc.task
    if task is None or task.done():
        return "?"
    try:
        if proc_var.get() is proc:
            return _running_behaviour(proc)
        inner = _held_coroutine(task.get_coro())
        if inner is None:
            return "?"
        if proc.defers_exits:
            for held in gc.get_referents(inner):
                if not isinstance(held, type) and callable(
                    getattr(type(held), "handle_call", None)
                ):
                    return type(held).__qualname__
            return "?"
        name = getattr(inner, "__qualname__", None)
        # ``outer.<locals>.worker`` reads better as ``worker``.
        return name.rpartition("<locals>.")[2] if isinstance(name, str) else "?"
    except Exception:  # noqa: BLE001 - introspection is best effort, never a crash
        return "?"


def _facts(proc: Process) -> ProcessFacts:
    kind: ActorKind
    if proc.is_supervisor:
        kind = "supervisor"
    elif proc.defers_exits:
        kind = "genserver"
    else:
        kind = "actor"
    return ProcessFacts(
        pid=proc.pid,
        name=proc.name,
        kind=kind,
        behaviour=_behaviour(proc),
        status=_status(proc),
        mailbox_length=len(proc.mailbox),
        links=len(proc.links) if proc.links else 0,
        monitors=len(proc.monitors) if proc.monitors else 0,
        monitored_by=len(proc.monitored_by) if proc.monitored_by else 0,
        parent=proc.parent,
        trap_exits=proc.trap_exits,
        dropped=proc.dropped,
        started_at=proc.started_at,
        memory=memory(proc),
    )


def describe(pid: Pid) -> ProcessFacts | None:
    """What the observer shows of ``pid``'s actor, or None if it has ended."""
    if type(pid) is not Pid:
        raise TypeError(f"describe: expected a Pid, not {pid!r}")
    proc = process_of(pid)
    if proc is None or proc.state == DEAD:
        return None
    return _facts(proc)


def describe_all(node: Node) -> list[ProcessFacts]:
    """Every live actor of ``node`` in start order, in one pass (no await:
    one instant of the node)."""
    return [_facts(proc) for proc in list(node.procs.values()) if proc.state != DEAD]


def supervisor_pids(node: Node) -> list[Pid]:
    """Every live supervisor of ``node``, in start order."""
    return [
        pid for pid, proc in list(node.procs.items()) if proc.is_supervisor and proc.state != DEAD
    ]
