"""Timers: ``send_after``, ``cancel_timer``, ``read_timer``.

A timer is one loop ``call_later``. As in Erlang, a timer to a pid belongs
to its destination: it is kept in that actor's timer set and cancelled when
the destination ends, whoever set it (a short-lived helper may set a
server's ticks). A timer to a name, or to a pid that is already dead (it
fires into the dead-letter hook), belongs to the node and is cancelled when
the node stops.
"""

from __future__ import annotations

import contextlib

from . import _telemetry
from ._context import check_thread, current_node
from ._errors import MailboxFull
from ._mailbox import deliver
from ._pid import Pid
from ._safe import safe_repr
from ._state import DEAD, Node, TimerRef
from ._validate import check_delay
from ._via import Name, Via, holder_of


def _fire_timer(timer: TimerRef, node: Node, dest: Pid | Name, message: object) -> None:
    timer._forget()
    if node.closed:
        return
    if type(dest) is Pid:
        proc = node.procs.get(dest)
    else:
        pid = node.names.get(dest) if type(dest) is str else holder_of(dest)  # type: ignore[arg-type]
        proc = node.procs.get(pid) if pid is not None else None
    if proc is None:
        if type(dest) is Pid and node.on_dead_letter is not None:
            node.on_dead_letter(dest, message)
        if type(dest) is Pid and _telemetry.ANY:
            _telemetry.dead_letter(dest, message)
        return
    with contextlib.suppress(MailboxFull):  # counted in `rejected`; a timer has nobody to tell
        deliver(proc, message)


def send_after(delay: float, dest: Pid | Name, message: object) -> TimerRef:
    """Deliver ``message`` to ``dest`` after ``delay`` seconds (finite, >= 0).

    A timer to a pid belongs to that destination: it is cancelled when the
    destination ends, not when the actor that set it ends. A name (local or
    ``Via``) is looked up when the timer fires; such a timer is cancelled
    when the node stops.
    """
    node = current_node("send_after")
    delay = check_delay(delay, "send_after")
    if type(dest) is Pid:
        dest_node: Node = dest._node  # type: ignore[assignment]  # a pid's directory is its node
        check_thread(dest_node, "send_after")
        node = dest_node
        owner = node.procs.get(dest)
        if owner is not None and owner.state == DEAD:
            owner = None
    elif isinstance(dest, str) or type(dest) is Via:
        owner = None
    else:
        raise TypeError(
            f"send_after: the destination must be a Pid or a name, not {safe_repr(dest)}"
        )
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
    check_thread(ref._node, "cancel_timer")
    handle = ref._handle
    if handle is None:
        return False
    handle.cancel()
    ref._forget()
    return True


def read_timer(ref: TimerRef) -> float | None:
    """Seconds left before the timer fires, or None if it is no longer pending."""
    check_thread(ref._node, "read_timer")
    handle = ref._handle
    if handle is None:
        return None
    return max(0.0, handle.when() - ref._node.loop.time())


def cancel_node_timers(node: Node) -> None:
    """Cancel the timers that belong to the node itself (at its shutdown)."""
    for timer in node.timers:
        if timer._handle is not None:
            timer._handle.cancel()
            timer._handle = None  # no longer pending: read_timer None, cancel False
    node.timers.clear()
