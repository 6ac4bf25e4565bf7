"""What Supervisor and DynamicSupervisor share: the child record, starting,
stopping and restarting one child, restart intensity, backoff, reports, and
the requests the client functions send."""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
from collections.abc import Awaitable, Hashable, Sequence
from typing import Any, ClassVar, Final, TypeAlias

import anyio
import attrs

from .._core import (
    BRUTAL_KILL,
    INFINITY,
    KILLED,
    NOREPLY,
    NORMAL,
    SHUTDOWN,
    Caller,
    ChildSpec,
    ChildType,
    DuplicateChild,
    Exited,
    Pid,
    Restart,
    Shutdown,
    ShutdownSetting,
    StartError,
    Stop,
    Strategy,
    adopt,
    check_name,
    deliver_system,
    drop_messages,
    is_alive,
    is_clean_exit,
    kill,
    mark_supervisor,
    now,
    on_exit,
    registered_name,
    request_stop,
    safe_repr,
    self_pid,
    send_after,
    send_exit,
    set_trap_exits,
    start_child_process,
    telemetry,
    unlink,
    wait_exit,
)
from ..actors import GenServer
from ._rules import RestartWindow

logger = logging.getLogger("asyncotp")

GAVE_UP: Final = Shutdown("reached_max_restart_intensity")
"""The exit reason of a supervisor whose restart intensity was exceeded."""

Started: TypeAlias = "Pid | tuple[Pid, Any] | None"
"""What starting a child gives: None (ignored), its pid, or ``(pid, info)``."""

# GenServer.start's init timeout for supervisors: their init starts every
# child, each bounded by its own start timeout, so the supervisor adds none.
_NO_START_LIMIT: Final = 365 * 24 * 3600.0


@attrs.frozen
class ChildInfo:
    """One child, as ``which_children`` reports it (``pid`` None: not running).

    ``restarting`` is True while the supervisor itself is bringing the child
    back: it waits out its ``Backoff``, or retries a start that failed (OTP
    shows ``restarting`` in place of the pid). Such a child has no pid, is
    not ``active`` in ``count_children``, and ``restart_child`` and
    ``delete_child`` refuse it; ``terminate_child`` ends its restarts.
    """

    id: Hashable
    pid: Pid | None
    type: ChildType
    restart: Restart
    restarting: bool = attrs.field(default=False, kw_only=True)


class AutoShutdown(enum.Enum):
    """When a supervisor shuts itself down because significant children
    ended (OTP 24's ``auto_shutdown``; see ``ChildSpec.significant``).

    Only an end a significant child came to by itself counts, and only when
    it is not restarted: a transient child that ended cleanly, a temporary
    child that ended in any way. Children the supervisor stopped (a
    ``terminate_child``, a group restart, its own shutdown) never count.
    The supervisor then stops its other children (reverse start order) and
    ends with ``SHUTDOWN``: a clean end, so a transient parent does not
    restart it, and an ``Application`` whose root it is ends with exit 0.
    """

    NEVER = "never"
    """Never (the default); significant children are refused."""
    ANY_SIGNIFICANT = "any_significant"
    """As soon as any significant child has ended."""
    ALL_SIGNIFICANT = "all_significant"
    """When the last significant child still running (or restarting) has ended."""

    def __repr__(self) -> str:
        return f"AutoShutdown.{self.name}"


@attrs.frozen
class ChildCounts:
    """``count_children``: specs, running children, and specs by type."""

    specs: int
    active: int
    supervisors: int
    workers: int


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec
    pid: Pid | None = None
    restarts: int = 0
    """Times this child was restarted after a failure."""
    backoff_attempt: int = 0
    last_failure: float | None = None
    restarting: bool = False
    """Waiting for a delayed restart (backoff) or a retry."""
    pending: int | None = None
    """The token of the delayed restart this child waits for, if any."""
    last_pid: Pid | None = None
    """The pid it last ran as (a restarting child is still known by it)."""
    key: int = 0
    """Its key in a DynamicSupervisor's table."""


_EVENTS: Final = {"supervisor_gave_up": "gave_up"}
"""Report events whose telemetry name differs (the supervisor is in the prefix)."""


class _Req(enum.Enum):
    WHICH = "which_children"
    COUNT = "count_children"
    START = "start_child"
    TERMINATE = "terminate_child"
    RESTART = "restart_child"
    DELETE = "delete_child"
    HEALTH = "health"


@attrs.frozen(eq=False)
class _RestartLater:
    """Internal message: start these children now (after a backoff), or
    (``retry``) restart again the group of ``children[0]``, whose start failed."""

    children: tuple[_Child, ...]
    token: int
    reason: object = None
    """Why they are restarted, for the restart reports."""
    retry: bool = False


class _StartState(enum.Enum):
    STARTING = "starting"
    """Starting its children: a kill cuts that short and it cleans up."""
    STOPPING = "stopping"
    """A start failed (or was cut short): it stops what it started."""
    STARTED = "started"
    """Its init returned: it serves, and stops as any server does."""
    ABANDONED = "abandoned"
    """The starter gave up before the supervisor ran."""


@attrs.define(eq=False)
class _Starting:
    """What a supervisor's ``start`` and its ``init`` share, so a cancelled
    start can stop what the supervisor started so far."""

    pid: Pid | None = None
    state: _StartState = _StartState.STARTING
    children: dict[Pid, _Child] = attrs.field(factory=dict)
    """The supervisor's running children (its own table, shared)."""
    exited: asyncio.Future[object] | None = None
    """Resolved with the supervisor's exit reason, watched from its init on
    (so an end that comes before ``start`` returns is not missed)."""


async def _abandon(starting: _Starting) -> None:
    """The starter was cancelled: end the supervisor it was starting and
    wait until it and what it started have stopped (shielded: a
    cancellation is being handled)."""
    pid = starting.pid
    if pid is None:
        starting.state = _StartState.ABANDONED  # init will end as soon as it runs
        return
    if starting.state is _StartState.STARTING:
        kill(pid)  # cuts init short, as the start timeout does; init cleans up
    elif starting.state is _StartState.STARTED:
        request_stop(pid, SHUTDOWN)  # it serves already: an orderly stop
    with anyio.CancelScope(shield=True):
        await wait_exit(pid, None)
        # Children it still held when it ended were told to stop (see
        # _SupervisorBase._stop_orphans): wait for them too.
        for child in list(starting.children):
            await wait_exit(child, None)


def _gave_up(reason: object) -> bool:
    """Whether ``reason`` is ``GAVE_UP``, comparing no user object (a reason
    may be anything, with any ``__eq__``)."""
    if reason is GAVE_UP:
        return True
    if type(reason) is not Shutdown:
        return False
    detail = reason.detail
    return type(detail) is str and detail == GAVE_UP.detail


def _start_error(who: str, exc: BaseException) -> StartError:
    """A StartError whose cause is the underlying error, one level deep
    (a GenServer's own StartError is unwrapped)."""
    cause: BaseException = exc
    if isinstance(exc, StartError) and exc.__cause__ is not None:
        cause = exc.__cause__
    reason = exc.reason if isinstance(exc, StartError) else exc
    error = StartError(f"{who} failed to start: {safe_repr(reason)}", reason)
    error.__cause__ = cause
    return error


def _refuse(caller: Caller, error: BaseException) -> Any:
    """Answer ``caller`` with ``error``: its ``call`` raises it."""
    caller.fail(error)
    return NOREPLY


def _check_settings(max_restarts: object, max_seconds: object, where: str) -> None:
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise ValueError(
            f"{where}: max_restarts must be an int >= 0, not {safe_repr(max_restarts)}"
        )
    if not _finite_seconds(max_seconds) or not max_seconds > 0:  # type: ignore[operator]
        # OTP's invalid_period: the restart window is a finite, positive time.
        raise ValueError(
            f"{where}: max_seconds must be a finite number of seconds > 0 (the restart "
            f"intensity window), not {safe_repr(max_seconds)}"
        )


def _seconds(value: object) -> float | None:
    """``value`` as a float if it is a number of seconds that a float can
    hold (NaN and the infinities included); None otherwise."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        return None


def _finite_seconds(value: object) -> bool:
    """Whether ``value`` is a finite number (not NaN, not an infinity, not
    an int too large for a float)."""
    seconds = _seconds(value)
    return seconds is not None and math.isfinite(seconds)


def _check_timeout(timeout: object, where: str, name: str = "timeout") -> None:
    """A timeout is None or ``math.inf`` (no limit), or seconds >= 0."""
    if timeout is None:
        return
    seconds = _seconds(timeout)
    if seconds is None or not seconds >= 0:  # `not >=` also refuses NaN
        raise ValueError(
            f"{where}: {name} must be None (no limit) or seconds >= 0, not {safe_repr(timeout)}"
        )


def _default_id(
    child_id: Hashable | None, opts: dict[str, Any], where: str, default: str
) -> Hashable:
    """A supervisor's child id: ``child_id`` if given, else its registered
    ``name`` (Elixir's rule), else ``default``."""
    if child_id is not None:
        return child_id
    name: object = opts.get("name")
    if name is None:
        return default
    check_name(name, where)
    assert isinstance(name, Hashable)
    return name


def _info(child: _Child) -> ChildInfo:
    """``child`` as ``which_children`` shows it."""
    spec = child.spec
    restarting = child.pid is None and child.restarting
    return ChildInfo(spec.id, child.pid, spec.type, spec.restart, restarting=restarting)


def _counts(children: Sequence[_Child]) -> ChildCounts:
    return ChildCounts(
        specs=len(children),
        active=sum(1 for c in children if c.pid is not None),
        supervisors=sum(1 for c in children if c.spec.type is ChildType.SUPERVISOR),
        workers=sum(1 for c in children if c.spec.type is ChildType.WORKER),
    )


def _check_specs(children: object, where: str) -> list[ChildSpec]:
    if isinstance(children, (str, bytes)) or not isinstance(children, Sequence):
        raise TypeError(f"{where}: children must be a list of ChildSpec, not {safe_repr(children)}")
    specs = list(children)
    seen: set[Hashable] = set()
    for spec in specs:
        if not isinstance(spec, ChildSpec):
            raise TypeError(
                f"{where}: every child must be a ChildSpec (for example "
                f"MyServer.child_spec(...)), not {safe_repr(spec)}"
            )
        if spec.id in seen:
            raise DuplicateChild(
                f"{where}: two children have the id {safe_repr(spec.id)}; ids must be unique",
                spec.id,
            )
        seen.add(spec.id)
    return specs


class _SupervisorBase(GenServer):
    """What both supervisors share: starting, stopping and restarting one
    child, restart intensity, backoff, and reports."""

    _asyncotp_child_type: ClassVar[ChildType] = ChildType.SUPERVISOR
    _kind: ClassVar[str] = "supervisor"
    """How reports name this kind of supervisor."""

    max_restarts: int
    max_seconds: float
    _window: RestartWindow
    _by_pid: dict[Pid, _Child]
    _token: int
    _pid: Pid

    def _setup(self, max_restarts: int, max_seconds: float) -> None:
        self._pid = self_pid()
        mark_supervisor()
        set_trap_exits(True)
        self.max_restarts = max_restarts
        self.max_seconds = float(max_seconds)
        self._window = RestartWindow(max_restarts, float(max_seconds))
        self._by_pid = {}
        self._token = 0
        on_exit(self._pid, self._stop_orphans)

    def _stop_orphans(self, reason: object) -> None:
        """When the supervisor has ended with ``NORMAL`` still holding
        children, tell them to stop: ``NORMAL`` does not travel over links,
        so they would outlive it. That happens when its starter gives up
        just as its init returns (the server then ends without running
        ``terminate``); every other end stops the children, or reaches them
        over the links."""
        if reason is NORMAL and self._by_pid:
            for pid in reversed(list(self._by_pid)):
                request_stop(pid, SHUTDOWN)

    @property
    def pid(self) -> Pid:
        return self._pid

    # -- reports -----------------------------------------------------------

    def _report(
        self,
        level: int,
        event: str,
        message: str,
        child: _Child | None,
        reason: object = None,
        *args: object,
        **more: object,
    ) -> None:
        """Log a supervisor report; ``message % args`` is only formatted when
        the logger keeps the record (restarts are a hot path). Also emits the
        report's telemetry event (``("asyncotp", "supervisor", event)``)
        when someone listens."""
        if telemetry.ANY:
            self._emit(_EVENTS.get(event, event), child, reason)
        if not logger.isEnabledFor(level):
            return
        extra: dict[str, object] = {
            "event": event,
            "supervisor": self.pid,
            "supervisor_name": registered_name(self._pid),
            "child_id": child.spec.id if child is not None else None,
            "child_pid": child.pid if child is not None else None,
            "reason": reason,
            "restart_count": child.restarts if child is not None else None,
            "restarts_in_window": self._window.count(now()),
        }
        extra.update(more)
        exc_info = None
        if isinstance(reason, BaseException) and level >= logging.ERROR:
            exc_info = (type(reason), reason, reason.__traceback__)
        # The asyncotp logger's filter makes every argument safe to format.
        logger.log(level, message, *args, exc_info=exc_info, extra=extra)

    def _report_exit(
        self, child: _Child, old_pid: Pid | None, reason: object, restarted: bool
    ) -> None:
        """Report that ``child`` (``old_pid``) ended with ``reason``, in the
        same words and at the same level in both supervisors.

        A child that ended cleanly (``NORMAL``, ``SHUTDOWN``, ``Shutdown(...)``)
        and is not restarted (a transient or temporary child done with its
        work) is routine: DEBUG, where OTP reports nothing. Every other end
        is an ERROR report, as OTP's ``child_terminated``: an abnormal end,
        or a permanent child that ended at all (it is restarted).
        """
        spec = child.spec
        clean_and_done = not restarted and is_clean_exit(reason)
        child.pid = old_pid
        self._report(
            logging.DEBUG if clean_and_done else logging.ERROR,
            "child_terminated",
            "%s %r: child %r (%r) ended with %r%s",
            child,
            reason,
            self._kind,
            self._pid,
            spec.id,
            old_pid,
            reason,
            "" if restarted else f"; {spec.restart!r}, not restarted",
        )
        child.pid = None

    def _emit(self, event: str, child: _Child | None, reason: object = None) -> None:
        """Emit ``("asyncotp", "supervisor", event)`` (docs/telemetry.md)."""
        telemetry.execute(
            ("asyncotp", "supervisor", event),
            {
                "restarts": child.restarts if child is not None else 0,
                "restarts_in_window": self._window.count(now()),
            },
            {
                "supervisor": self._pid,
                "supervisor_name": registered_name(self._pid),
                "child_id": child.spec.id if child is not None else None,
                "child_pid": (child.pid or child.last_pid) if child is not None else None,
                "reason": reason,
            },
        )

    # -- one child ---------------------------------------------------------

    def _call_start(self, spec: ChildSpec) -> Awaitable[object]:
        """Call ``spec``'s start function (a DynamicSupervisor adds its
        ``extra_arguments``)."""
        return start_child_process(spec)

    async def _start_one(self, child: _Child) -> Started:
        """Start ``child``; link to it and become its parent.

        Returns what the start function returned: None (``ignore``), the
        child's pid, or a ``(pid, info)`` pair (OTP's ``{ok, Pid, Info}``),
        which ``start_child`` and ``restart_child`` hand back as they are.
        """
        spec = child.spec
        result = await self._call_start(spec)
        if result is None:
            # Ignored: not running, and no longer restarting either.
            child.pid = None
            child.restarting = False
            child.pending = None
            return None
        pid: object = result
        if type(result) is tuple and len(result) == 2:  # (pid, info)
            pid = result[0]
        if type(pid) is not Pid:
            raise TypeError(
                f"the start function of child {safe_repr(spec.id)} returned "
                f"{safe_repr(result)}; it must return the Pid of the started actor, a "
                "(pid, info) pair, or None to ignore the child"
            )
        child.pid = pid
        child.last_pid = pid
        self._by_pid[pid] = child
        child.restarting = False
        child.pending = None
        # Link to it and become its parent; one that died before we could
        # link arrives as an exit with NOPROC.
        adopt(pid)
        if telemetry.ANY:
            self._emit("child_started", child)
        return result  # type: ignore[return-value]  # a Pid or a (Pid, info) pair, checked above

    async def _stop_one(self, child: _Child) -> None:
        """Stop a running child as its spec says: SHUTDOWN, wait, then KILL."""
        pid = child.pid
        if pid is None:
            return
        self._by_pid.pop(pid, None)
        child.pid = None
        unlink(pid)
        if is_alive(pid):
            shutdown: ShutdownSetting = child.spec.shutdown
            if shutdown is BRUTAL_KILL:
                kill(pid)
                await wait_exit(pid, None)
            else:
                send_exit(pid, SHUTDOWN)
                if shutdown is INFINITY:
                    await wait_exit(pid, None)
                elif not await wait_exit(pid, float(shutdown)):
                    self._kill_late(child, pid)
                    await wait_exit(pid, None)
        self._flush_exits(pid)
        if telemetry.ANY:
            self._emit("child_shutdown", child, SHUTDOWN)

    def _kill_late(self, child: _Child, pid: Pid) -> None:
        """Report and kill a child that outlived its shutdown time."""
        child.pid = pid
        self._report(
            logging.ERROR,
            "child_killed",
            f"supervisor {self._pid!r}: child {safe_repr(child.spec.id)} ({pid!r}) did not "
            f"stop within its shutdown time of {child.spec.shutdown} s; killing it",
            child,
            KILLED,
        )
        child.pid = None
        kill(pid)

    async def _stop_together(self, children: Sequence[_Child]) -> None:
        """Stop ``children`` all at once, as OTP's and Elixir's dynamic
        supervisors do: each gets ``SHUTDOWN`` now (``KILL`` for
        ``BRUTAL_KILL``), each is killed when its own shutdown time, counted
        from now for all of them, runs out, and this returns once every one
        has ended. Stopping many slow children takes the longest shutdown
        time among them, not their sum.
        """
        start = now()
        timed: list[tuple[float, int, _Child, Pid]] = []
        last: list[Pid] = []  # waited for without a limit, after the timed ones
        stopped: set[Pid] = set()
        for child in children:
            pid = child.pid
            if pid is None:
                continue
            self._by_pid.pop(pid, None)
            child.pid = None
            stopped.add(pid)
            unlink(pid)
            shutdown: ShutdownSetting = child.spec.shutdown
            if shutdown is BRUTAL_KILL:
                kill(pid)
                last.append(pid)
                continue
            send_exit(pid, SHUTDOWN)
            if shutdown is INFINITY:
                last.append(pid)
            else:
                timed.append((start + float(shutdown), len(timed), child, pid))
        # Waiting for them in deadline order, each wait ending by its own
        # deadline, kills every child exactly when its time runs out.
        timed.sort(key=lambda entry: (entry[0], entry[1]))
        for deadline, _, child, pid in timed:
            if not await wait_exit(pid, max(0.0, deadline - now())):
                self._kill_late(child, pid)
            last.append(pid)
        for pid in last:
            await wait_exit(pid, None)
            self._flush_exits(pid)
        if telemetry.ANY:
            for child in children:
                if child.last_pid is not None and child.last_pid in stopped:
                    self._emit("child_shutdown", child, SHUTDOWN)

    def _flush_exits(self, pid: Pid) -> None:
        drop_messages(lambda m: type(m) is Exited and m.pid is pid)

    def _count_restart(self) -> bool:
        return self._window.add(now())

    def _backoff_delay(self, child: _Child) -> float:
        backoff = child.spec.backoff
        if backoff is None:
            return 0.0
        t = now()
        if child.last_failure is not None and t - child.last_failure >= backoff.reset_after:
            child.backoff_attempt = 0
        child.last_failure = t
        delay = backoff.delay(child.backoff_attempt, random.random())
        child.backoff_attempt += 1
        return delay

    async def _give_up(self, child: _Child, reason: object) -> None:
        self._report(
            logging.ERROR,
            "supervisor_gave_up",
            f"supervisor {self.pid!r} gave up: more than {self.max_restarts} restarts within "
            f"{self.max_seconds} s (last: child {safe_repr(child.spec.id)} ended with "
            f"{safe_repr(reason)}); stopping all its children",
            child,
            reason,
        )
        await self._stop_all()
        raise Stop(GAVE_UP)

    async def _stop_all(self) -> None:
        raise NotImplementedError

    def _recent(self) -> int:
        return self._window.count(now())

    def _snapshot(
        self, kind: str, strategy: Strategy, children: Sequence[_Child]
    ) -> dict[str, Any]:
        """The supervisor as ``supervisor_health`` reports it."""
        return {
            "kind": kind,
            "pid": self.pid,
            "name": registered_name(self._pid),
            "strategy": strategy,
            "restarts_in_window": self._recent(),
            "max_restarts": self.max_restarts,
            "max_seconds": self.max_seconds,
            "children": [
                {
                    "id": c.spec.id,
                    "pid": c.pid,
                    "type": c.spec.type,
                    "restart": c.spec.restart,
                    "restarts": c.restarts,
                    "state": "running"
                    if c.pid is not None
                    else ("restarting" if c.restarting else "stopped"),
                }
                for c in children
            ],
        }

    async def terminate(self, reason: Any) -> None:
        await self._stop_all()

    def _schedule(
        self,
        children: Sequence[_Child],
        delay: float,
        reason: object = None,
        *,
        retry: bool = False,
    ) -> None:
        """Restart ``children`` after ``delay`` seconds (``reason``: why, for
        the restart reports); ``retry``: restart the group of ``children[0]``
        again, as its strategy says, because its start failed."""
        self._token += 1
        for child in children:
            child.restarting = True
            child.pending = self._token
        message = _RestartLater(tuple(children), self._token, reason, retry)
        if math.isinf(delay):
            return  # a backoff without a cap grew past any time: it waits until told
        if delay > 0:
            send_after(delay, self.pid, message)
        else:
            deliver_system(self._pid, message)
