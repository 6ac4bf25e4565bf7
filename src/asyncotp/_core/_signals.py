"""Links, monitors and exit signals between actors.

A link is two-way: when one end ends with a reason other than ``NORMAL``,
the other gets an exit signal (``_exits.signal``). A monitor is one-way: the
watcher receives ``Down(ref, pid, reason)``.
"""

from __future__ import annotations

from ._context import (
    calling_process,
    current_node,
    current_process,
    process_of,
    resolve,
    via_pid,
)
from ._exits import link_pair, signal, unlink_pair
from ._mailbox import deliver_system, drop_messages
from ._pid import Pid
from ._reasons import NOPROC, Down, Exited, MonitorRef
from ._remote import remote_of
from ._safe import safe_repr
from ._state import DEAD
from ._via import Name, Via


def link(pid: Pid) -> None:
    """Link the calling actor and ``pid`` both ways.

    When either ends with a reason other than ``NORMAL``, the other gets an
    exit signal with that reason. Linking to a dead actor sends the caller an
    exit signal with reason ``NOPROC``.
    """
    proc = current_process("link")
    if type(pid) is not Pid:
        raise TypeError(f"link: expected a Pid, not {safe_repr(pid)}")
    if pid is proc.pid:
        return
    other = proc.node.procs.get(pid)
    if other is None and (remote := remote_of(pid)) is not None:
        if proc.links is None:
            proc.links = {pid}
        elif pid in proc.links:
            return
        else:
            proc.links.add(pid)
        remote.transport.link(proc.pid, pid)
        return
    if other is None or other.state == DEAD:
        signal(proc, pid, NOPROC, from_link=True)
        return
    link_pair(proc, other)


def unlink(pid: Pid) -> None:
    """Remove the link between the calling actor and ``pid``, if any."""
    proc = current_process("unlink")
    if type(pid) is not Pid:
        raise TypeError(f"unlink: expected a Pid, not {safe_repr(pid)}")
    remote = remote_of(pid)
    if remote is not None:
        if proc.links is not None and pid in proc.links:
            proc.links.discard(pid)
            remote.transport.unlink(proc.pid, pid)
        return
    unlink_pair(proc, pid)


def adopt(pid: Pid) -> bool:
    """Link the calling actor to ``pid`` and make it ``pid``'s parent (a
    supervisor taking a child it started). False, and an ``Exited(pid,
    NOPROC)`` message to the caller, if ``pid`` is already gone."""
    proc = current_process("adopt")
    target = proc.node.procs.get(pid)
    if target is None or target.state == DEAD:
        deliver_system(proc, Exited(pid, NOPROC))
        return False
    target.parent = proc.pid
    link_pair(proc, target)
    return True


def set_trap_exits(flag: bool) -> bool:
    """Trap exit signals (but ``KILL``) as ``Exited`` messages while set.

    Returns the previous setting.
    """
    proc = current_process("set_trap_exits")
    old = proc.trap_exits
    proc.trap_exits = bool(flag)
    return old


def send_exit(pid: Pid | Name, reason: object) -> None:
    """Send an exit signal to ``pid``.

    ``KILL`` ends the target whatever it traps (reason ``KILLED``); ``NORMAL``
    is ignored by an actor that does not trap exits.
    """
    if type(pid) is Via:  # its holder may be remote: take the pid path
        pid = via_pid(pid, "send_exit")
    if type(pid) is Pid and (remote := remote_of(pid)) is not None:
        node = current_node("send_exit")
        sender_proc = calling_process()
        remote.transport.send_exit(sender_proc.pid if sender_proc else node.pid, pid, reason)
        return
    target = resolve(pid, "send_exit")
    if target is None:
        return
    sender_proc = calling_process()
    sender = sender_proc.pid if sender_proc is not None else target.node.pid
    signal(target, sender, reason, from_link=False)


def monitor(pid: Pid | Name) -> MonitorRef:
    """Monitor ``pid``: when it ends, the caller receives ``Down(ref, pid, reason)``.

    A dead pid gives ``Down(ref, pid, NOPROC)`` at once.
    """
    proc = current_process("monitor")
    ref = MonitorRef()
    if type(pid) is Via:  # its holder may be remote: take the pid path
        pid = via_pid(pid, "monitor")
    if type(pid) is Pid:
        target = process_of(pid)
        target_pid = pid
        if target is None and (remote := remote_of(pid)) is not None:
            if proc.monitors is None:
                proc.monitors = {ref: pid}
            else:
                proc.monitors[ref] = pid
            remote.transport.monitor(proc.pid, ref, pid)
            return ref
    else:
        target = resolve(pid, "monitor")
        assert target is not None
        target_pid = target.pid
    if target is None or target.state == DEAD:
        deliver_system(proc, Down(ref, target_pid, NOPROC))
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
            remote = remote_of(target_pid)
            if remote is not None:
                remote.transport.demonitor(proc.pid, ref, target_pid)
            target = proc.node.procs.get(target_pid)
            if target is not None and target.monitored_by is not None:
                target.monitored_by.pop(ref, None)
    if flush:
        drop_messages(proc, lambda m: type(m) is Down and m.ref is ref)
    return active
