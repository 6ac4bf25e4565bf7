"""What the distribution layer may do to local actors on behalf of remote ones.

Each function takes pids (a local one and a remote one) and does one thing
the runtime owns: start a call whose reply goes over the wire, keep the
local half of a link to a remote actor, deliver an exit signal or a
``Down`` that came from another node.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._context import process_of
from ._errors import NoProcess
from ._exits import signal
from ._mailbox import deliver, deliver_system, intercepted
from ._pid import Pid
from ._reasons import Down, MonitorRef
from ._server import Caller
from ._state import DEAD, EXITING


def begin_call(
    pid: Pid, request: object, timeout: float | None, caller: Pid | None
) -> asyncio.Future[Any]:
    """Queue a call to the local actor ``pid`` now, in order with the
    messages queued before and after it, and return the future of its reply
    (``caller`` is the remote caller, which ``Caller.pid`` shows).

    ``NoProcess`` if ``pid`` is dead. ``timeout`` arms the server-side
    deadline, so an abandoned reply slot never outlives the caller's wait.
    """
    proc = process_of(pid)
    if proc is None or proc.state == DEAD:
        raise NoProcess(f"call: {pid!r} is not alive; nothing to call", pid)
    node = proc.node
    fut: asyncio.Future[Any] = node.loop.create_future()
    envelope = Caller(request, fut, proc, caller, timeout)
    if node.intercept is None or not intercepted(node, proc, envelope):
        deliver(proc, envelope)
    if timeout is not None and not fut.done():
        node.deadlines.add(envelope, timeout)
    return fut


def add_remote_link(local: Pid, remote: Pid) -> bool:
    """Record the local half of a link between ``local`` and a remote actor;
    False if ``local`` is no longer alive."""
    proc = process_of(local)
    if proc is None or proc.state >= EXITING:
        return False
    if proc.links is None:
        proc.links = {remote}
    else:
        proc.links.add(remote)
    return True


def drop_remote_link(local: Pid, remote: Pid) -> bool:
    """Remove the local half of a link with a remote actor; return whether
    it was there (an exit signal over a link that was undone is ignored)."""
    proc = process_of(local)
    if proc is None or proc.links is None or remote not in proc.links:
        return False
    proc.links.discard(remote)
    return True


def remote_exit(target: Pid, sender: Pid, reason: object, *, from_link: bool) -> None:
    """Deliver an exit signal from a remote ``sender`` to the local ``target``
    (as a link's exit when ``from_link``, as ``send_exit`` otherwise)."""
    proc = process_of(target)
    if proc is not None:
        signal(proc, sender, reason, from_link=from_link)


def remote_down(watcher: Pid, ref: MonitorRef, pid: Pid, reason: object) -> bool:
    """Deliver ``Down(ref, pid, reason)`` to the local ``watcher`` if its
    monitor ``ref`` is still active; return whether it was."""
    proc = process_of(watcher)
    if proc is None or proc.monitors is None or proc.monitors.pop(ref, None) is None:
        return False
    deliver_system(proc, Down(ref, pid, reason))
    return True
