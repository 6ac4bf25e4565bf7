"""Supervisor and DynamicSupervisor, built on the framework's own GenServer."""

from __future__ import annotations

import enum
import functools
import logging
import random
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Final

import attrs

from .._core import (
    BRUTAL_KILL,
    INFINITY,
    KILLED,
    SHUTDOWN,
    ActorError,
    Caller,
    ChildSpec,
    ChildType,
    DuplicateChild,
    Exited,
    MaxChildren,
    NoProcess,
    Pid,
    Restart,
    Shutdown,
    ShutdownSetting,
    StartError,
    Stop,
    Strategy,
    adopt,
    call,
    deliver_system,
    drop_messages,
    is_alive,
    is_clean_exit,
    kill,
    mark_supervisor,
    now,
    registered_name,
    self_pid,
    send_after,
    send_exit,
    set_trap_exits,
    unlink,
    wait_exit,
)
from ..actors import GenServer
from ._rules import RestartWindow, needs_restart, plan_restart

logger = logging.getLogger("asyncotp")

GAVE_UP: Final = Shutdown("reached_max_restart_intensity")
"""The exit reason of a supervisor whose restart intensity was exceeded."""

# GenServer.start's init timeout for supervisors: their init starts every
# child, each bounded by its own start timeout, so the supervisor adds none.
_NO_START_LIMIT: Final = 365 * 24 * 3600.0


class ChildNotFound(NoProcess):
    """The supervisor has no child with that id (or pid)."""


@attrs.frozen
class ChildInfo:
    """One child, as ``which_children`` reports it (``pid`` None: not running)."""

    id: Hashable
    pid: Pid | None
    type: ChildType
    restart: Restart


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


class _Req(enum.Enum):
    WHICH = "which_children"
    COUNT = "count_children"
    START = "start_child"
    TERMINATE = "terminate_child"
    RESTART = "restart_child"
    DELETE = "delete_child"
    HEALTH = "health"


@attrs.frozen
class _RestartLater:
    """Internal message: start these children now (after a backoff or a failed start)."""

    ids: tuple[Hashable, ...]
    token: int
    reason: object = None
    """Why they are restarted, for the restart reports."""


@attrs.frozen
class _Failure:
    """A reply that carries an error for the client function to raise."""

    error: BaseException


def _start_error(who: str, exc: BaseException) -> StartError:
    """A StartError whose cause is the underlying error, one level deep
    (a GenServer's own StartError is unwrapped)."""
    cause: BaseException = exc
    if isinstance(exc, StartError) and exc.__cause__ is not None:
        cause = exc.__cause__
    reason = exc.reason if isinstance(exc, StartError) else exc
    error = StartError(f"{who} failed to start: {reason!r}", reason)
    error.__cause__ = cause
    return error


def _unwrap(reply: object) -> Any:
    if type(reply) is _Failure:
        raise reply.error
    return reply


def _check_settings(max_restarts: object, max_seconds: object, where: str) -> None:
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise ValueError(f"{where}: max_restarts must be an int >= 0, not {max_restarts!r}")
    if (
        not isinstance(max_seconds, (int, float))
        or isinstance(max_seconds, bool)
        or not max_seconds > 0
    ):
        raise ValueError(f"{where}: max_seconds must be a number > 0, not {max_seconds!r}")


class _SupervisorBase(GenServer):
    """What both supervisors share: starting, stopping and restarting one
    child, restart intensity, backoff, and reports."""

    _asyncotp_child_type: ClassVar[ChildType] = ChildType.SUPERVISOR

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
        the logger keeps the record (restarts are a hot path)."""
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
        logger.log(level, message, *args, exc_info=exc_info, extra=extra)

    # -- one child ---------------------------------------------------------

    async def _start_one(self, child: _Child) -> Pid | None:
        """Start ``child``; link to it and become its parent. None: ``ignore``."""
        spec = child.spec
        pid = await spec.start()
        if pid is None:
            child.pid = None
            return None
        if type(pid) is not Pid:
            raise TypeError(
                f"the start function of child {spec.id!r} returned {pid!r}; it must return "
                "the Pid of the started actor (or None to ignore the child)"
            )
        child.pid = pid
        self._by_pid[pid] = child
        child.restarting = False
        child.pending = None
        # Link to it and become its parent; one that died before we could
        # link arrives as an exit with NOPROC.
        adopt(pid)
        return pid

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
                    child.pid = pid
                    self._report(
                        logging.ERROR,
                        "child_killed",
                        f"supervisor {self._pid!r}: child {child.spec.id!r} ({pid!r}) did not "
                        f"stop within its shutdown time of {shutdown} s; killing it",
                        child,
                        KILLED,
                    )
                    child.pid = None
                    kill(pid)
                    await wait_exit(pid, None)
        self._flush_exits(pid)

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
            f"{self.max_seconds} s (last: child {child.spec.id!r} ended with {reason!r}); "
            "stopping all its children",
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
        children: list[_Child],
        keys: tuple[Hashable, ...],
        delay: float,
        reason: object = None,
    ) -> None:
        """Restart ``children`` (known by ``keys``) after ``delay`` seconds
        (``reason``: why, for the restart reports)."""
        self._token += 1
        for child in children:
            child.restarting = True
            child.pending = self._token
        message = _RestartLater(keys, self._token, reason)
        if delay > 0:
            send_after(delay, self.pid, message)
        else:
            deliver_system(self._pid, message)


class Supervisor(_SupervisorBase):
    """A supervisor: starts children in order, restarts them when they fail,
    stops them in reverse order.

    Example::

        root = await Supervisor.start(
            [
                Database.child_spec(url, id="db"),
                Cache.child_spec(id="cache"),
                ChildSpec(id="api", start=partial(Api.start, port=8080), shutdown=10.0),
            ],
            strategy=Strategy.REST_FOR_ONE,
            max_restarts=3,
            max_seconds=5.0,
            name="root",
        )

    Strategies: ``ONE_FOR_ONE`` restarts the failed child; ``ONE_FOR_ALL``
    stops the others (reverse start order) and restarts all (start order);
    ``REST_FOR_ONE`` does that for the failed child and those started after
    it. Restart types: ``PERMANENT`` children are always restarted,
    ``TRANSIENT`` ones only after an abnormal end, ``TEMPORARY`` ones never
    (and are forgotten).

    Restart intensity: more than ``max_restarts`` restarts within
    ``max_seconds`` make the supervisor stop all its children and end with
    ``Shutdown("reached_max_restart_intensity")``, which its own supervisor
    then handles. A restart of several children (one_for_all, rest_for_one)
    counts once.

    Shutdown: a supervisor traps exits. Told to shut down (by its parent, the
    node, or ``stop``), it stops its children in reverse start order, each
    with ``SHUTDOWN``, waiting up to that child's ``shutdown`` time, then
    ``KILL``.

    A child's start function may return None: as OTP's ``ignore``, the child
    keeps its spec but does not run. Beyond OTP, a child spec may carry a
    ``Backoff`` that delays its restarts.

    Reports go to the logger ``asyncotp`` with structured ``extra`` fields:
    ``event`` (``child_terminated``, ``child_restarted``, ``child_start_failed``,
    ``child_killed``, ``supervisor_gave_up``), ``supervisor``,
    ``supervisor_name``, ``child_id``, ``child_pid``, ``reason``,
    ``restart_count`` and ``restarts_in_window``.
    """

    strategy: Strategy
    _children: list[_Child]

    async def init(
        self,
        children: Sequence[ChildSpec],
        strategy: Strategy,
        max_restarts: int,
        max_seconds: float,
    ) -> None:
        self._setup(max_restarts, max_seconds)
        self.strategy = strategy
        self._children = []
        for spec in children:
            child = _Child(spec)
            self._children.append(child)
            try:
                await self._start_one(child)
            except BaseException as exc:
                self._children.remove(child)
                self._report(
                    logging.ERROR,
                    "child_start_failed",
                    f"supervisor {self.pid!r}: child {spec.id!r} failed to start: {exc!r}; "
                    "stopping the children already started",
                    child,
                    exc,
                )
                await self._stop_all()
                raise StartError(
                    f"supervisor {self.pid!r} could not start child {spec.id!r}: {exc!r}", exc
                ) from exc

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        children: Sequence[ChildSpec],
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
        link: bool = False,
        **opts: Any,
    ) -> Pid:
        """Start a supervisor and its children, in order.

        If a child fails to start, those already started are stopped in
        reverse order and ``start`` raises ``StartError``. ``opts`` are
        ``GenServer.start``'s (``mailbox_size``, ``overflow``).
        """
        specs = _check_specs(children, "Supervisor.start")
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"Supervisor.start: strategy must be a Strategy member, not {strategy!r}"
            )
        _check_settings(max_restarts, max_seconds, "Supervisor.start")
        opts.setdefault("timeout", _NO_START_LIMIT)
        try:
            return await super().start(
                specs, strategy, max_restarts, max_seconds, name=name, link=link, **opts
            )
        except StartError as exc:
            cause = exc.__cause__
            if isinstance(cause, StartError):
                raise StartError(str(cause), cause.reason) from cause.__cause__
            raise

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        children: Sequence[ChildSpec],
        id: Hashable | None = None,  # noqa: A002 - the contract's name
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **opts: Any,
    ) -> ChildSpec:
        """A child spec for a nested supervisor (type SUPERVISOR, shutdown INFINITY).

        ``opts`` go to ``start``: ``strategy``, ``max_restarts``,
        ``max_seconds``, ``name``.
        """
        backoff = opts.pop("backoff", None)
        extra: dict[str, Any] = {} if shutdown is None else {"shutdown": shutdown}
        return ChildSpec(
            "Supervisor" if id is None else id,
            functools.partial(cls.start, children, link=True, **opts),
            restart,
            type=ChildType.SUPERVISOR,
            backoff=backoff,
            **extra,
        )

    # -- helpers -----------------------------------------------------------

    def _find(self, child_id: Hashable) -> _Child | None:
        for child in self._children:
            if child.spec.id == child_id:
                return child
        return None

    def _not_found(self, child_id: Hashable) -> ChildNotFound:
        return ChildNotFound(
            f"supervisor {self.pid!r} has no child with id {child_id!r}; which_children() "
            "lists its children",
            child_id,
        )

    async def _stop_all(self) -> None:
        for child in reversed(self._children):
            if child.pid is not None:
                await self._stop_one(child)
            child.restarting = False

    # -- callbacks -----------------------------------------------------------

    async def handle_info(self, message: Any) -> None:
        kind = type(message)
        if kind is Exited:
            child = self._by_pid.pop(message.pid, None)
            if child is not None:
                await self._child_exited(child, message.reason)
            return
        if kind is _RestartLater:
            await self._start_group(message.ids, message.token, message.reason)
            return
        await super().handle_info(message)

    async def _child_exited(self, child: _Child, reason: object) -> None:
        spec = child.spec
        old_pid = child.pid
        child.pid = None
        if not needs_restart(spec.restart, reason):
            level = logging.INFO if is_clean_exit(reason) else logging.ERROR
            child.pid = old_pid
            self._report(
                level,
                "child_terminated",
                "supervisor %r: child %r (%r) ended with %r; %r, not restarted",
                child,
                reason,
                self.pid,
                spec.id,
                old_pid,
                reason,
                spec.restart,
            )
            child.pid = None
            if spec.restart is Restart.TEMPORARY:
                self._children.remove(child)
            return
        within_intensity = self._count_restart()
        child.pid = old_pid
        self._report(
            logging.ERROR,
            "child_terminated",
            "supervisor %r: child %r (%r) ended with %r",
            child,
            reason,
            self.pid,
            spec.id,
            old_pid,
            reason,
        )
        child.pid = None
        if not within_intensity:
            await self._give_up(child, reason)
        plan = plan_restart(
            self.strategy,
            [(c.spec.id, c.pid is not None, c.spec.restart) for c in self._children],
            spec.id,
        )
        for child_id in plan.stop:
            other = self._find(child_id)
            if other is not None:
                await self._stop_one(other)
        for child_id in plan.remove:
            other = self._find(child_id)
            if other is not None:
                self._children.remove(other)
        for child_id in plan.start:
            other = self._find(child_id)
            if other is not None:
                other.restarting = True
        child.restarts += 1
        delay = self._backoff_delay(child)
        if delay > 0:
            self._schedule(self._found(plan.start), plan.start, delay, reason)
            return
        await self._start_group(plan.start, None, reason)

    def _found(self, ids: tuple[Hashable, ...]) -> list[_Child]:
        return [c for c in (self._find(i) for i in ids) if c is not None]

    async def _start_group(
        self, ids: tuple[Hashable, ...], token: int | None, reason: object = None
    ) -> None:
        """Start the children ``ids`` that are not running, in order; with a
        ``token``, only those still waiting for that delayed restart.
        ``reason`` (why they restart) goes into the restart reports."""
        for index, child_id in enumerate(ids):
            child = self._find(child_id)
            if child is None or child.pid is not None:
                continue
            if token is not None and child.pending != token:
                continue
            try:
                pid = await self._start_one(child)
            except Exception as exc:  # noqa: BLE001 - any start failure is reported and retried
                child.restarting = True
                self._report(
                    logging.ERROR,
                    "child_start_failed",
                    f"supervisor {self.pid!r}: restarting child {child_id!r} failed: {exc!r}; "
                    "will try again",
                    child,
                    exc,
                )
                if not self._count_restart():
                    await self._give_up(child, exc)
                child.restarts += 1
                rest = ids[index:]
                self._schedule(self._found(rest), rest, self._backoff_delay(child), exc)
                return
            self._report(
                logging.INFO,
                "child_restarted",
                "supervisor %r: restarted child %r as %r",
                child,
                reason,
                self.pid,
                child_id,
                pid,
            )

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if not (isinstance(request, tuple) and request and isinstance(request[0], _Req)):
            return _Failure(
                ValueError(
                    f"supervisor {self.pid!r} does not understand the call {request!r}; use "
                    "which_children, count_children, start_child, terminate_child, "
                    "restart_child or delete_child"
                )
            )
        op = request[0]
        if op is _Req.WHICH:
            return [
                ChildInfo(c.spec.id, c.pid, c.spec.type, c.spec.restart) for c in self._children
            ]
        if op is _Req.COUNT:
            return _counts(self._children)
        if op is _Req.HEALTH:
            return self._health()
        try:
            if op is _Req.START:
                return await self._do_start_child(request[1])
            child_id = request[1]
            child = self._find(child_id)
            if child is None:
                raise self._not_found(child_id)
            if op is _Req.TERMINATE:
                child.restarting = False
                child.pending = None
                await self._stop_one(child)
                if child.spec.restart is Restart.TEMPORARY:
                    self._children.remove(child)
                return None
            if op is _Req.RESTART:
                if child.pid is not None:
                    raise ActorError(
                        f"supervisor {self.pid!r}: child {child_id!r} is running "
                        f"({child.pid!r}); terminate_child first"
                    )
                return await self._start_one(child)
            # _Req.DELETE
            if child.pid is not None:
                raise ActorError(
                    f"supervisor {self.pid!r}: child {child_id!r} is running "
                    f"({child.pid!r}); terminate_child before delete_child"
                )
            child.restarting = False
            child.pending = None
            self._children.remove(child)
            return None  # noqa: TRY300 - every branch returns from inside the try
        except (ActorError, StartError, TypeError, ValueError) as exc:
            return _Failure(exc)
        except Exception as exc:  # noqa: BLE001 - a child's start function failed
            return _Failure(StartError(f"supervisor {self.pid!r}: {exc!r}", exc))

    async def _do_start_child(self, spec: ChildSpec) -> Pid | None:
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start_child: expected a ChildSpec, not {spec!r}")
        existing = self._find(spec.id)
        if existing is not None:
            raise DuplicateChild(
                f"supervisor {self.pid!r} already has a child with id {spec.id!r}"
                + (f" ({existing.pid!r})" if existing.pid is not None else " (not running)")
                + "; pick another id, or delete_child it first",
                spec.id,
                existing.pid,
            )
        child = _Child(spec)
        try:
            pid = await self._start_one(child)
        except Exception as exc:  # noqa: BLE001 - any start failure becomes StartError
            raise _start_error(f"supervisor {self.pid!r}: child {spec.id!r}", exc) from None
        if pid is None and spec.restart is Restart.TEMPORARY:
            return None  # OTP forgets a temporary child that chose to be ignored
        self._children.append(child)
        return pid

    def _health(self) -> dict[str, Any]:
        return self._snapshot("supervisor", self.strategy, self._children)


def _counts(children: Sequence[_Child]) -> ChildCounts:
    return ChildCounts(
        specs=len(children),
        active=sum(1 for c in children if c.pid is not None),
        supervisors=sum(1 for c in children if c.spec.type is ChildType.SUPERVISOR),
        workers=sum(1 for c in children if c.spec.type is ChildType.WORKER),
    )


def _check_specs(children: object, where: str) -> list[ChildSpec]:
    if isinstance(children, (str, bytes)) or not isinstance(children, Sequence):
        raise TypeError(f"{where}: children must be a list of ChildSpec, not {children!r}")
    specs = list(children)
    seen: set[Hashable] = set()
    for spec in specs:
        if not isinstance(spec, ChildSpec):
            raise TypeError(
                f"{where}: every child must be a ChildSpec (for example "
                f"MyServer.child_spec(...)), not {spec!r}"
            )
        if spec.id in seen:
            raise DuplicateChild(
                f"{where}: two children have the id {spec.id!r}; ids must be unique", spec.id
            )
        seen.add(spec.id)
    return specs


class DynamicSupervisor(_SupervisorBase):
    """A supervisor whose children are added at run time, all ONE_FOR_ONE.

    Example::

        pool = await DynamicSupervisor.start(max_children=100, name="workers")
        pid = await start_child(pool, Worker.child_spec(job))
        await terminate_child(pool, pid)

    Children are identified by pid: ``terminate_child(dsup, pid)``. Beyond
    ``max_children`` running or restarting children, ``start_child`` raises
    ``MaxChildren``. Restart types, restart intensity, backoff, shutdown
    times and reports work as in ``Supervisor``. On shutdown every child is
    told to stop at once, then each is waited for up to its shutdown time.
    """

    max_children: int | None
    _dyn: dict[int, _Child]
    _next_key: int

    async def init(self, max_children: int | None, max_restarts: int, max_seconds: float) -> None:
        self._setup(max_restarts, max_seconds)
        self.max_children = max_children
        self._dyn = {}
        self._next_key = 0

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
        link: bool = False,
        **opts: Any,
    ) -> Pid:
        """Start an empty dynamic supervisor."""
        if max_children is not None and (
            not isinstance(max_children, int) or isinstance(max_children, bool) or max_children < 0
        ):
            raise ValueError(
                f"DynamicSupervisor.start: max_children must be None or an int >= 0, "
                f"not {max_children!r}"
            )
        _check_settings(max_restarts, max_seconds, "DynamicSupervisor.start")
        opts.setdefault("timeout", _NO_START_LIMIT)
        return await super().start(
            max_children, max_restarts, max_seconds, name=name, link=link, **opts
        )

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        id: Hashable | None = None,  # noqa: A002 - the contract's name
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **opts: Any,
    ) -> ChildSpec:
        """A child spec for a dynamic supervisor under another supervisor."""
        extra: dict[str, Any] = {} if shutdown is None else {"shutdown": shutdown}
        return ChildSpec(
            "DynamicSupervisor" if id is None else id,
            functools.partial(cls.start, link=True, **opts),
            restart,
            type=ChildType.SUPERVISOR,
            **extra,
        )

    def _children_list(self) -> list[_Child]:
        return list(self._dyn.values())

    async def _stop_all(self) -> None:
        children = [c for c in reversed(self._dyn.values()) if c.pid is not None]
        waits = []
        for child in children:
            pid = child.pid
            assert pid is not None
            if child.spec.shutdown is not BRUTAL_KILL and is_alive(pid):
                send_exit(pid, SHUTDOWN)
            waits.append(child)
        for child in waits:
            await self._stop_one(child)
        self._dyn.clear()
        self._token += 1

    async def handle_info(self, message: Any) -> None:
        kind = type(message)
        if kind is Exited:
            child = self._by_pid.pop(message.pid, None)
            if child is not None:
                await self._child_exited(child, message.reason)
            return
        if kind is _RestartLater:
            for key in message.ids:
                child = self._dyn.get(key)
                if child is not None and child.pid is None and child.pending == message.token:
                    await self._restart_dyn(key, child, message.reason)
            return
        await super().handle_info(message)

    def _key_of(self, child: _Child) -> int:
        for key, c in self._dyn.items():
            if c is child:
                return key
        raise LookupError(child)

    async def _child_exited(self, child: _Child, reason: object) -> None:
        key = self._key_of(child)
        spec = child.spec
        old_pid = child.pid
        restart = needs_restart(spec.restart, reason)
        within_intensity = self._count_restart() if restart else True
        self._report(
            logging.ERROR if not is_clean_exit(reason) else logging.INFO,
            "child_terminated",
            "dynamic supervisor %r: child %r (%r) ended with %r%s",
            child,
            reason,
            self.pid,
            old_pid,
            spec.id,
            reason,
            "" if restart else f"; {spec.restart!r}, not restarted",
        )
        child.pid = None
        if not restart:
            del self._dyn[key]
            return
        if not within_intensity:
            await self._give_up(child, reason)
        child.restarts += 1
        child.restarting = True
        delay = self._backoff_delay(child)
        if delay > 0:
            self._schedule([child], (key,), delay, reason)
            return
        await self._restart_dyn(key, child, reason)

    async def _restart_dyn(self, key: int, child: _Child, reason: object = None) -> None:
        try:
            pid = await self._start_one(child)
        except Exception as exc:  # noqa: BLE001 - reported and retried
            self._report(
                logging.ERROR,
                "child_start_failed",
                f"dynamic supervisor {self.pid!r}: restarting child {child.spec.id!r} failed: "
                f"{exc!r}; will try again",
                child,
                exc,
            )
            if not self._count_restart():
                await self._give_up(child, exc)
            child.restarts += 1
            self._schedule([child], (key,), self._backoff_delay(child), exc)
            return
        if pid is None:
            del self._dyn[key]
            return
        self._report(
            logging.INFO,
            "child_restarted",
            "dynamic supervisor %r: restarted child %r as %r",
            child,
            reason,
            self.pid,
            child.spec.id,
            pid,
        )

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if not (isinstance(request, tuple) and request and isinstance(request[0], _Req)):
            return _Failure(
                ValueError(f"dynamic supervisor {self.pid!r} does not understand {request!r}")
            )
        op = request[0]
        children = self._children_list()
        if op is _Req.WHICH:
            return [ChildInfo(c.spec.id, c.pid, c.spec.type, c.spec.restart) for c in children]
        if op is _Req.COUNT:
            return _counts(children)
        if op is _Req.HEALTH:
            return self._snapshot("dynamic", Strategy.ONE_FOR_ONE, children)
        if op is _Req.START:
            spec = request[1]
            if not isinstance(spec, ChildSpec):
                return _Failure(TypeError(f"start_child: expected a ChildSpec, not {spec!r}"))
            if self.max_children is not None and len(self._dyn) >= self.max_children:
                return _Failure(
                    MaxChildren(
                        f"dynamic supervisor {self.pid!r} already runs its max_children "
                        f"({self.max_children}); stop a child first or raise max_children"
                    )
                )
            child = _Child(spec)
            try:
                pid = await self._start_one(child)
            except Exception as exc:  # noqa: BLE001 - returned to the caller as StartError
                return _Failure(
                    _start_error(f"dynamic supervisor {self.pid!r}: child {spec.id!r}", exc)
                )
            if pid is not None:
                self._next_key += 1
                self._dyn[self._next_key] = child
            return pid
        if op is _Req.TERMINATE:
            target = request[1]
            found = self._by_pid.get(target) if type(target) is Pid else None
            if found is None:
                return _Failure(
                    ChildNotFound(
                        f"dynamic supervisor {self.pid!r} has no child {target!r}; "
                        "terminate_child takes the child's pid",
                        target,
                    )
                )
            key = self._key_of(found)
            await self._stop_one(found)
            del self._dyn[key]
            return None
        return _Failure(
            ValueError(
                f"dynamic supervisor {self.pid!r}: {op.value} is not available; children are "
                "identified by pid (start_child, terminate_child)"
            )
        )


# -- client functions ----------------------------------------------------------


async def which_children(sup: Pid | str) -> list[ChildInfo]:
    """The children of a supervisor, in start order (``pid`` None: not running)."""
    result: list[ChildInfo] = _unwrap(await call(sup, (_Req.WHICH,), None))
    return result


async def count_children(sup: Pid | str) -> ChildCounts:
    """How many specs, running children, supervisors and workers ``sup`` has."""
    result: ChildCounts = _unwrap(await call(sup, (_Req.COUNT,), None))
    return result


async def start_child(sup: Pid | str, spec: ChildSpec) -> Pid:
    """Add ``spec`` to ``sup`` and start it (last in the start order).

    ``DuplicateChild`` for a taken id; ``StartError`` if it fails to start;
    ``MaxChildren`` past a dynamic supervisor's limit.
    """
    result: Pid = _unwrap(await call(sup, (_Req.START, spec), None))
    return result


async def terminate_child(sup: Pid | str, child: Hashable) -> None:
    """Stop a child (by id; by pid for a DynamicSupervisor) as its spec says.

    A Supervisor keeps the spec (pid None) unless the child is temporary.
    """
    _unwrap(await call(sup, (_Req.TERMINATE, child), None))


async def restart_child(sup: Pid | str, child_id: Hashable) -> Pid:
    """Start again a child that is not running; return its new pid."""
    result: Pid = _unwrap(await call(sup, (_Req.RESTART, child_id), None))
    return result


async def delete_child(sup: Pid | str, child_id: Hashable) -> None:
    """Forget the spec of a child that is not running."""
    _unwrap(await call(sup, (_Req.DELETE, child_id), None))


async def supervisor_health(sup: Pid | str, timeout: float | None = 5.0) -> dict[str, Any]:
    """A snapshot of a supervisor for health reports (see ``asyncotp.health``)."""
    result: dict[str, Any] = _unwrap(await call(sup, (_Req.HEALTH,), timeout))
    return result
