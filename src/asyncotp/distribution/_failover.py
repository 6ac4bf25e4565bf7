"""Failover of a globally registered server: one active copy in the
cluster, standbys on the other nodes, and a standby takes the name over
when the holder is gone.

``global_child_spec(Server, "orders", ...)`` is a child spec for any
supervisor. Its child is a small ``GlobalStandby`` GenServer; on every
node that runs the spec the standby tries to claim the global name:

* the name is free: it starts ``Server`` linked to itself and registers it
  under the name (JetStream's atomic create: of several standbys racing,
  exactly one wins; a loser stops the server it started and stands by);
* the name is held: it monitors the holder and waits. When the holder ends
  (its node lost: ``Down(..., NOCONNECTION)`` within the heartbeat window;
  or the holder stopped or crashed), it claims again. A name held by a
  lost node is taken over at once (the registry compares and sets on the
  dead holder's entry), so failover does not wait for the reaping.

The active server is linked to its standby: when the server ends, the
standby ends with the same reason and its supervisor applies its restart
rules (the restarted standby claims again, and may lose the name to a
standby elsewhere, which is fine: the name moved). When the standby is
shut down it stops the server first (``shutdown`` seconds), and the name is
freed for the next standby.

The supervisor sees the standby's pid, not the server's: reach the server
by its global name (``whereis_global`` or ``via_global``).
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Final

import nats.errors

from .._core import (
    SHUTDOWN,
    ChildSpec,
    Continue,
    Down,
    Exited,
    MonitorRef,
    Pid,
    Restart,
    Shutdown,
    Stop,
    check_delay,
    check_timeout,
    is_alive,
    monitor,
    safe_repr,
    self_pid,
    send_after,
    set_trap_exits,
    stop,
    unlink,
    whereis,
)
from ..actors import NOREPLY, Caller, GenServer
from ._api import register_global, whereis_global
from ._vianame import via_global

logger = logging.getLogger("asyncotp.distribution")

_NO_SERVER_OPTIONS: Final = frozenset({"name", "link"})


class _Tick(enum.Enum):
    CLAIM = "claim"
    CHECK = "check"

    def __repr__(self) -> str:
        return self.name


_CLAIM: Final = _Tick.CLAIM
_CHECK: Final = _Tick.CHECK

TAKEN_OVER: Final = Shutdown("global_name_taken_over")
"""The reason an active server is stopped with when its standby finds the
name held by another actor (after a partition healed)."""


class GlobalStandby(GenServer):
    """The child behind ``global_child_spec``: claims a global name for its
    server, or stands by until the holder is gone (see the module's
    documentation). Start it through ``global_child_spec``."""

    async def init(
        self,
        global_name: str,
        server: type[GenServer],
        args: tuple[Any, ...],
        options: dict[str, Any],
        retry_delay: float,
        stop_timeout: float | None,
        check_interval: float,
    ) -> Continue:
        set_trap_exits(True)
        self.global_name = global_name
        self.server = server
        self.args = args
        self.options = options
        self.retry_delay = retry_delay
        self.stop_timeout = stop_timeout
        self.check_interval = check_interval
        self.active: Pid | None = None
        self.holder: Pid | None = None
        self.watch: MonitorRef | None = None
        self.gone: Pid | None = None  # the last holder seen ending
        return Continue(_CLAIM)

    async def handle_continue(self, arg: Any) -> None:
        await self._claim()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        """``"status"``: ``("active", server)`` or ``("standby", holder)``
        (holder None while it claims). Any other request fails the caller
        with ``ValueError``; the standby and its server carry on."""
        if request == "status":
            if self.active is not None:
                return ("active", self.active)
            return ("standby", self.holder)
        caller.fail(
            ValueError(
                f"GlobalStandby for {self.global_name!r} takes the call 'status' only, not "
                f"{safe_repr(request)}; call the server by its global name"
            )
        )
        return NOREPLY

    async def handle_info(self, message: Any) -> None:
        if message is _CLAIM:
            if self.active is None and self.watch is None:
                await self._claim()
        elif message is _CHECK:
            if self.active is not None:
                await self._check()
        elif type(message) is Down and message.ref is self.watch:
            self.watch = None
            self.gone, self.holder = self.holder, None
            logger.info(
                "global name %r: its holder %r ended (%s); claiming it",
                self.global_name,
                message.pid,
                safe_repr(message.reason),
            )
            await self._claim()
        elif type(message) is Exited and message.pid is self.active:
            raise Stop(message.reason)
        # Anything else (a late Exited of a server we gave up, a stray
        # message) is not ours to act on.

    async def terminate(self, reason: Any) -> None:
        server, self.active = self.active, None
        if server is not None and is_alive(server):
            try:
                await stop(server, SHUTDOWN, timeout=self.stop_timeout)
            except Exception as exc:  # noqa: BLE001 - it is killed with us anyway (linked)
                logger.warning(
                    "global name %r: stopping its server %r failed: %s",
                    self.global_name,
                    server,
                    safe_repr(exc),
                )

    async def _check(self) -> None:
        """While active: is the name still ours? After a partition heals,
        another node may have taken it over (it saw this one lost). Then
        this server stops (``TAKEN_OVER``) and the standby follows the new
        holder: one server per name again, as Erlang's global resolves a
        name clash by ending one of the two."""
        server = self.active
        assert server is not None
        try:
            holder = whereis(via_global(self.global_name))  # the node's mirror: no round trip
        except RuntimeError:  # no mirror (cannot happen while JetStream answered the claim)
            holder = None
        if holder is None or holder is server:
            send_after(self.check_interval, self_pid(), _CHECK)
            return
        logger.warning(
            "global name %r: taken over by %r while %r held it (a partition healed?); "
            "stopping this copy and standing by",
            self.global_name,
            holder,
            server,
        )
        self.active = None
        unlink(server)
        try:
            await stop(server, TAKEN_OVER, timeout=self.stop_timeout)
        except Exception as exc:  # noqa: BLE001 - it may have ended meanwhile
            logger.warning(
                "global name %r: stopping %r failed: %s", self.global_name, server, safe_repr(exc)
            )
        self.holder = holder
        self.watch = monitor(holder)

    async def _claim(self) -> None:
        try:
            holder = await whereis_global(self.global_name)
            if holder is None:
                server = await self.server.start(*self.args, link=True, **self.options)
                if await register_global(self.global_name, server):
                    self.active = server
                    logger.info("global name %r: %r holds it now", self.global_name, server)
                    send_after(self.check_interval, self_pid(), _CHECK)
                    return
                # Another standby won the race: give our copy up, follow theirs.
                unlink(server)
                await stop(server, SHUTDOWN, timeout=self.stop_timeout)
                holder = await whereis_global(self.global_name)
        except (nats.errors.Error, ConnectionError, TimeoutError) as exc:
            logger.warning(
                "global name %r: the registry did not answer (%s); trying again in %s s",
                self.global_name,
                safe_repr(exc),
                self.retry_delay,
            )
            send_after(self.retry_delay, self_pid(), _CLAIM)
            return
        if holder is None or holder is self.gone:
            # Freed meanwhile, or its old holder's name not deleted yet.
            send_after(self.retry_delay, self_pid(), _CLAIM)
            return
        self.holder = holder
        self.watch = monitor(holder)


def global_child_spec(
    server: type[GenServer],
    global_name: str,
    *args: Any,
    id: Any = None,  # noqa: A002 - the child spec's own name for it
    restart: Restart = Restart.PERMANENT,
    shutdown: float = 5.0,
    retry_delay: float = 0.5,
    check_interval: float = 1.0,
    **options: Any,
) -> ChildSpec:
    """A child spec that runs ``server`` as the holder of ``global_name``,
    with failover across nodes.

    Put the same spec under a supervisor on several nodes: one of them runs
    ``server.start(*args, **options)`` and holds the name, the others stand
    by and take the name over (starting their own server) when the holder
    ends or its node is lost (within the heartbeat window). ``id`` defaults
    to ``"global:<global_name>"``; ``restart`` and ``shutdown`` are the
    standby's (its server is stopped within ``shutdown`` seconds first).
    ``retry_delay`` is the seconds a standby waits before asking the
    registry again when it did not answer or a name is being freed.
    ``check_interval`` is how often an active standby checks (in its
    node's mirror of the registry, no round trip) that the name is still
    its server's: after a partition heals, the name may have been taken
    over by a standby that saw this node lost; the older copy is then
    stopped with reason ``Shutdown("global_name_taken_over")``.
    ``options`` go to ``server.start`` (``mailbox_size=``, ``timeout=``,
    ``init``'s keyword arguments); ``name`` and ``link`` are not allowed:
    the name is the global one, and the server is linked to its standby.

    The server's state does not move with the name: a standby's server
    starts afresh from ``init``, as after any restart.
    """
    if not (isinstance(server, type) and issubclass(server, GenServer)):
        raise TypeError(f"global_child_spec: server must be a GenServer class, not {server!r}")
    if not isinstance(global_name, str) or not global_name:
        raise TypeError(
            f"global_child_spec: the global name must be a non-empty str, not {global_name!r}"
        )
    taken = _NO_SERVER_OPTIONS.intersection(options)
    if taken:
        raise TypeError(
            f"global_child_spec: {sorted(taken)} cannot be given for {server.__name__}: "
            "the server holds the global name and is linked to its standby"
        )
    retry = check_delay(retry_delay, "global_child_spec", "retry_delay")
    if retry <= 0:
        raise ValueError(f"global_child_spec: retry_delay must be > 0, not {retry_delay!r}")
    stop_timeout = check_timeout(shutdown, "global_child_spec", "shutdown")
    check = check_delay(check_interval, "global_child_spec", "check_interval")
    if check <= 0:
        raise ValueError(f"global_child_spec: check_interval must be > 0, not {check_interval!r}")

    async def start() -> Pid:
        return await GlobalStandby.start(
            global_name, server, args, dict(options), retry, stop_timeout, check, link=True
        )

    return ChildSpec(
        id=f"global:{global_name}" if id is None else id,
        start=start,
        restart=restart,
        shutdown=shutdown + 1.0,
    )
