"""How actors end: exit signals, the bookkeeping of an exit, crash reports.

Exit signals follow Erlang: ``KILL`` cannot be trapped, ``NORMAL`` is
ignored by an actor that does not trap exits, and everything else ends the
target (plain actors at once, by cancelling their task; behaviours such as
GenServer after their running callback returns). When an actor ends,
``exit_process`` frees its name and timers, fails the calls it still owes,
signals its links, tells its monitors and runs its exit callbacks, in that
order, and logs a crash report when nobody else will.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

import anyio

from . import _telemetry
from ._mailbox import deliver_system, wake
from ._pid import Pid
from ._reasons import KILL, KILLED, NOPROC, NORMAL, Down, Exited, Shutdown, is_clean_exit
from ._safe import safe_repr
from ._state import DEAD, EXITING, NEW, UNSET, Droppable, Process

logger = logging.getLogger("asyncotp")


def label(proc: Process) -> str:
    """``repr(pid)`` with the actor's name, even once the name has been freed
    (messages written while an actor ends)."""
    if proc.name is None:
        return repr(proc.pid)
    return f"<Pid {proc.pid.number} {proc.name!r}>"


def add_on_exit(proc: Process, callback: Callable[[object], None]) -> None:
    """Call ``callback(reason)`` when ``proc`` ends."""
    if proc.on_exit is None:
        proc.on_exit = [callback]
    else:
        proc.on_exit.append(callback)


def exit_future(proc: Process) -> asyncio.Future[object]:
    """A future resolved with ``proc``'s exit reason (``NOPROC`` if it is
    already gone: its reason is not kept)."""
    fut: asyncio.Future[object] = proc.node.loop.create_future()
    if proc.state == DEAD:
        fut.set_result(NOPROC)
        return fut

    def resolve(reason: object) -> None:
        if not fut.done():
            fut.set_result(reason)

    add_on_exit(proc, resolve)
    return fut


async def wait_exit(proc: Process, timeout: float | None) -> bool:
    """Wait until ``proc`` has ended; return False past ``timeout``."""
    if proc.state == DEAD:
        return True
    fut = exit_future(proc)
    if timeout is None:
        await fut
        return True
    with anyio.move_on_after(timeout):
        await fut
        return True
    return False


def request_stop(proc: Process, reason: object) -> None:
    """Ask a behaviour to stop once its running callback returns.

    Plain actors (which do not defer exits) end at once instead.
    """
    if proc.state >= EXITING:
        return
    if not proc.defers_exits:
        force_exit(proc, reason)
        return
    if proc.pending_exit is UNSET:
        proc.pending_exit = reason
        wake(proc)


def force_exit(proc: Process, reason: object) -> None:
    """End the actor now with ``reason``, cancelling its task."""
    if proc.state == DEAD:
        return
    if proc.forced_reason is UNSET or reason is KILLED:
        proc.forced_reason = reason
    if reason is KILLED:
        proc.killed = True
        if proc.defers_exits:
            # A behaviour's loop looks at its pending exit after every
            # callback and every wait: a callback that swallows the
            # cancellation still ends the server, with KILLED.
            proc.pending_exit = KILLED
    if proc.state == NEW:
        # The task has not run a single step: its body would never see a
        # cancellation, so finish the bookkeeping here. The task's first
        # step then sees the actor dead and closes its coroutine (cancelling
        # the task instead would leave that coroutine never awaited).
        exit_process(proc, proc.forced_reason)
        return
    proc.state = EXITING
    task = proc.task
    if task is not None and not task.done():
        task.cancel()


def kill(proc: Process) -> None:
    """End the actor with ``KILLED``, whatever it is doing."""
    force_exit(proc, KILLED)


def signal(target: Process, sender: Pid, reason: object, *, from_link: bool) -> None:
    """Deliver an exit signal from ``sender`` to ``target``."""
    if target.state >= EXITING:
        return
    if reason is KILL:
        if not from_link:
            kill(target)
            return
        reason = KILLED
    if target.defers_exits and sender is target.parent and sender is not None:
        # A behaviour told by its parent to go: an order, not a message.
        if target.trap_exits or reason is not NORMAL:
            request_stop(target, reason)
        return
    if target.trap_exits:
        deliver_system(target, Exited(sender, reason))
        return
    if reason is NORMAL:
        if sender is target.pid:
            request_stop(target, NORMAL)
        return
    request_stop(target, reason)


def link_pair(a: Process, b: Process) -> None:
    """Link two live processes both ways."""
    if a.links is None:
        a.links = {b.pid}
    else:
        a.links.add(b.pid)
    if b.links is None:
        b.links = {a.pid}
    else:
        b.links.add(a.pid)


def unlink_pair(a: Process, b_pid: Pid) -> None:
    """Remove the link between ``a`` and ``b_pid`` both ways, if any."""
    if a.links is not None:
        a.links.discard(b_pid)
    other = a.node.procs.get(b_pid)
    if other is not None and other.links is not None:
        other.links.discard(a.pid)


def fatal(proc: Process, exc: BaseException) -> object:
    """The exit reason of an actor that raised ``exc``, not an ``Exception``.

    ``SystemExit`` and ``KeyboardInterrupt`` stop the whole node in order:
    the node records the first one, its host task (``async with node()``) is
    cancelled so that the shutdown begins, and ``node()`` (or ``run()``)
    raises it once every actor has been shut down. The actor itself ends
    with ``Shutdown(exc)``. Any other ``BaseException`` is a crash like any
    other (the exception is the reason)."""
    if not isinstance(exc, (SystemExit, KeyboardInterrupt)):
        return exc
    node = proc.node
    if node.fatal is None:
        node.fatal = exc
        host = node.host
        if not node.shutting_down and host is not None and not host.done():
            node.host_cancelled = True
            host.cancel(f"asyncotp: {label(proc)} raised {type(exc).__name__}; stopping the node")
    return Shutdown(exc)


def exit_process(proc: Process, reason: object, detail: str | None = None) -> None:
    """Everything that happens when an actor ends: names, timers, callers,
    links, monitors, exit callbacks and the crash report (``detail``: what
    the actor was doing, for the report).

    No user object is formatted, compared or hashed here, and an exit
    callback that fails is logged and skipped: an exit always completes."""
    if proc.state == DEAD:
        return
    proc.state = DEAD
    node = proc.node
    pid = proc.pid
    procs = node.procs
    procs.pop(pid, None)
    if proc.name is not None and node.names.get(proc.name) is pid:
        del node.names[proc.name]
    if proc.waiter is not None:
        proc.waiter = None
    proc.system = None
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
        owed.extend(m for m in proc.mailbox if issubclass(type(m), Droppable))
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
                signal(other, pid, signal_reason, from_link=True)
    if proc.monitored_by:
        watchers = proc.monitored_by
        proc.monitored_by = None
        for ref, watcher_pid in watchers.items():
            watcher = procs.get(watcher_pid)
            if watcher is not None:
                if watcher.monitors is not None:
                    watcher.monitors.pop(ref, None)
                deliver_system(watcher, Down(ref, pid, reason))
    if proc.on_exit:
        callbacks = proc.on_exit
        proc.on_exit = None
        for callback in callbacks:
            try:
                callback(reason)
            except Exception:
                logger.exception(
                    "an exit callback of %s failed; the other callbacks still ran",
                    label(proc),
                    extra={"actor_pid": pid, "actor_name": proc.name},
                )
    if _telemetry.ACTORS:
        _telemetry.actor_exited(proc, reason)
    if not proc.reported and not is_clean_exit(reason):
        _crash_report(proc, reason, linked, detail)


def _crash_report(proc: Process, reason: object, linked: bool, detail: str | None) -> None:
    # An actor that ended by itself (it raised, or raised Stop with a
    # reason that is not clean) is always reported, unless its supervisor
    # reports it; an actor ended by a signal only when nobody would hear
    # of it otherwise (as OTP's crash reports).
    if proc.parent is not None:
        parent = proc.node.procs.get(proc.parent)
        if parent is not None and parent.is_supervisor:
            return
    own = proc.forced_reason is UNSET and reason is not KILLED
    if not own and linked:
        return
    # The record carries formatted text only (and the reason as an extra
    # field): a handler formatting it later cannot meet a failing repr.
    extra = {"actor_pid": proc.pid, "actor_name": proc.name, "reason": reason}
    who = label(proc) if detail is None else f"{label(proc)} ({detail})"
    if issubclass(type(reason), BaseException):  # by type: __class__ is not asked
        error = cast(BaseException, reason)
        logger.error(
            "actor %s crashed: %s",
            who,
            safe_repr(reason),
            exc_info=(type(error), error, error.__traceback__),
            extra=extra,
        )
    else:
        logger.error("actor %s exited with reason %s", who, safe_repr(reason), extra=extra)
