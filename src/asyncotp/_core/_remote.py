"""The hook that lets pids name actors on other nodes.

A remote pid is an ordinary ``Pid`` whose directory is a ``RemoteNode``
instead of the local ``Node``. A ``RemoteNode`` has an empty process table,
so every look-up of a remote pid misses, and the runtime's functions ask
``remote_of(pid)`` only on that miss (the path of a dead local pid): a
local actor's send, cast and call pay nothing for distribution, and nothing
at all exists of it until ``asyncotp.distribution`` makes its first
``RemoteNode``.

The ``Transport`` is what the distribution layer installs in each
``RemoteNode``: the runtime hands it the operation, with pids only (never a
``Process``), and the transport takes it over the wire.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable
from typing import Any, Final, Protocol, final

from ._context import calling_process, current_node
from ._pid import Pid
from ._reasons import MonitorRef

_NO_PROCS: Final[dict[Pid, Any]] = {}
"""The process table of every remote directory: always empty, never written."""


class Transport(Protocol):
    """What the runtime asks of the distribution layer for a remote pid.

    Each method is called on the node's event-loop thread, after the
    runtime has validated its arguments; ``me`` is the calling actor.
    """

    def send(self, pid: Pid, message: object) -> None: ...

    def cast(self, pid: Pid, request: object) -> None: ...

    def call(
        self, pid: Pid, request: object, timeout: float | None, me: Pid | None
    ) -> Awaitable[Any]: ...

    def stop(self, pid: Pid, reason: object, timeout: float | None) -> Awaitable[None]: ...

    def link(self, me: Pid, pid: Pid) -> None: ...

    def unlink(self, me: Pid, pid: Pid) -> None: ...

    def monitor(self, me: Pid, ref: MonitorRef, pid: Pid) -> None: ...

    def demonitor(self, me: Pid, ref: MonitorRef, pid: Pid) -> None: ...

    def send_exit(self, sender: Pid | None, pid: Pid, reason: object) -> None: ...


@final
class RemoteNode:
    """The directory of the pids of one incarnation of another node.

    ``thread`` is the local node's thread (a remote pid is used from there
    only), ``procs`` is always empty and ``closed`` always False, so the
    runtime's look-ups treat the pid as not local and hand it to
    ``transport``. ``pid(number)`` gives the one ``Pid`` object of a remote
    actor while anything still refers to it, so pids compare by identity
    across nodes too.
    """

    __slots__ = (
        "__weakref__",
        "_pids",
        "closed",
        "incarnation",
        "name",
        "procs",
        "thread",
        "transport",
    )

    def __init__(self, name: str, incarnation: str, transport: Transport, thread: int) -> None:
        self.name = name
        self.incarnation = incarnation
        self.transport = transport
        self.thread = thread
        self.procs = _NO_PROCS
        self.closed = False
        self._pids: weakref.WeakValueDictionary[int, Pid] = weakref.WeakValueDictionary()

    def pid(self, number: int) -> Pid:
        """The pid of actor ``number`` on this node (the same object each time)."""
        pid = self._pids.get(number)
        if pid is None:
            pid = Pid(number, self)
            self._pids[number] = pid
        return pid

    def name_of(self, pid: Pid) -> str | None:
        return f"on {self.name}"

    def __repr__(self) -> str:
        return f"<RemoteNode {self.name!r} incarnation={self.incarnation!r}>"


def remote_of(pid: Pid) -> RemoteNode | None:
    """The remote directory of ``pid``, or None for a local pid."""
    directory: object = pid._node
    return directory if type(directory) is RemoteNode else None


async def remote_call(remote: RemoteNode, pid: Pid, request: object, timeout: float | None) -> Any:
    """``call`` for a remote pid: the transport's, with the calling actor's pid."""
    me = calling_process()
    return await remote.transport.call(pid, request, timeout, me.pid if me is not None else None)


async def remote_stop(remote: RemoteNode, pid: Pid, reason: object, timeout: float | None) -> None:
    """``stop`` for a remote pid, from the node's thread only."""
    current_node("stop")  # WrongThreadError elsewhere
    await remote.transport.stop(pid, reason, timeout)
