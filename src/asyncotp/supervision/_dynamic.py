"""DynamicSupervisor: children added at run time, all ONE_FOR_ONE (Elixir's)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

from .._core import (
    SHUTDOWN,
    Caller,
    ChildNotFound,
    ChildSpec,
    ChildType,
    Exited,
    MaxChildren,
    Name,
    Pid,
    Restart,
    ShutdownSetting,
    Stop,
    Strategy,
    safe_repr,
    start_child_process,
)
from ._base import (
    _NO_START_LIMIT,
    _abandon,
    _check_settings,
    _Child,
    _counts,
    _default_id,
    _info,
    _refuse,
    _Req,
    _RestartLater,
    _start_error,
    _Starting,
    _StartState,
    _SupervisorBase,
)
from ._rules import needs_restart


def _check_extra_arguments(extra: object, where: str) -> tuple[object, ...]:
    if isinstance(extra, (str, bytes)) or not isinstance(extra, Sequence):
        raise TypeError(
            f"{where}: extra_arguments must be a list or tuple of the arguments to put before "
            f"every child's own start arguments, not {safe_repr(extra)}"
        )
    return tuple(extra)


def _with_extra(start: Callable[..., Awaitable[object]], extra: tuple[object, ...]) -> Any:
    """Call ``start`` with ``extra`` before its own arguments: a
    ``functools.partial`` (what ``child_spec`` builds) is called as
    ``func(*extra, *partial_args, **partial_keywords)``; any other callable
    as ``start(*extra)``."""
    if isinstance(start, functools.partial):
        return start.func(*extra, *start.args, **start.keywords)
    return start(*extra)


def _check_max_children(max_children: object, where: str) -> None:
    if max_children is not None and (
        not isinstance(max_children, int) or isinstance(max_children, bool) or max_children < 0
    ):
        raise ValueError(
            f"{where}: max_children must be None or an int >= 0, not {safe_repr(max_children)}"
        )


class DynamicSupervisor(_SupervisorBase):
    """A supervisor whose children are added at run time, all ONE_FOR_ONE.

    Example::

        pool = await DynamicSupervisor.start(max_children=100, name="workers")
        pid = await start_child(pool, Worker.child_spec(job))
        await terminate_child(pool, pid)

    Children are identified by pid: ``terminate_child(dsup, pid)``; a child
    that is restarting (waiting out its backoff, or retrying a failed start)
    is still known by the pid it last ran as, and ``terminate_child`` with
    that pid stops its restarts and removes it (as OTP and Elixir do). Beyond
    ``max_children`` running or restarting children, ``start_child`` raises
    ``MaxChildren``. Restart types, restart intensity, backoff, shutdown
    times and reports work as in ``Supervisor``. On shutdown every child is
    told to stop at once (``SHUTDOWN``), and each is killed when its own
    shutdown time, counted from that moment, runs out: stopping many slow
    children takes the longest shutdown time among them, not their sum (as
    in OTP and Elixir).

    ``extra_arguments`` (Elixir's ``:extra_arguments``) go before every
    child's own start arguments, at each start and restart: what the pool's
    children share is given once, to the pool::

        pool = await DynamicSupervisor.start(extra_arguments=[store])
        await start_child(pool, Session.child_spec(user))  # Session.init(store, user)

    A start function built by ``child_spec`` (a ``functools.partial``) is
    called as ``func(*extra_arguments, *its_args, **its_keywords)``; any
    other start function as ``start(*extra_arguments)``. A DynamicSupervisor
    has no ``auto_shutdown`` (as in OTP and Elixir): ``start_child`` refuses
    a significant child with ``ValueError``.
    """

    _kind = "dynamic supervisor"

    max_children: int | None
    extra_arguments: tuple[object, ...]
    _dyn: dict[int, _Child]
    _next_key: int
    _restarting: dict[Pid, _Child]
    """Restarting children, by the pid they last ran as."""

    async def init(
        self,
        max_children: int | None,
        max_restarts: int,
        max_seconds: float,
        starting: _Starting | None = None,
        extra_arguments: tuple[object, ...] = (),
    ) -> None:
        self._setup(max_restarts, max_seconds)
        self.max_children = max_children
        self.extra_arguments = extra_arguments
        self._dyn = {}
        self._next_key = 0
        self._restarting = {}
        if starting is not None:
            starting.pid = self._pid
            starting.children = self._by_pid
            if starting.state is _StartState.ABANDONED:  # the starter gave up before we ran
                raise Stop(SHUTDOWN)
            starting.state = _StartState.STARTED

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: Name | None = None,
        link: bool = False,
        *,
        extra_arguments: Sequence[object] = (),
        **opts: Any,
    ) -> Pid:
        """Start an empty dynamic supervisor.

        ``extra_arguments`` (Elixir's ``:extra_arguments``) go before the
        arguments of every child's start function, at each start and
        restart: see the class docs.
        """
        _check_max_children(max_children, "DynamicSupervisor.start")
        _check_settings(max_restarts, max_seconds, "DynamicSupervisor.start")
        extra = _check_extra_arguments(extra_arguments, "DynamicSupervisor.start")
        opts.setdefault("timeout", _NO_START_LIMIT)
        starting = _Starting()
        try:
            return await super().start(
                max_children,
                max_restarts,
                max_seconds,
                starting,
                extra,
                name=name,
                link=link,
                **opts,
            )
        except asyncio.CancelledError:
            # The caller was cancelled, maybe once we had started: leave
            # nothing running that nobody knows of.
            await _abandon(starting)
            raise

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        id: Hashable | None = None,  # noqa: A002 - the contract's name
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **opts: Any,
    ) -> ChildSpec:
        """A child spec for a dynamic supervisor under another supervisor.

        ``opts`` go to ``start``: ``max_children``, ``max_restarts``,
        ``max_seconds``, ``name``. ``id`` defaults to the ``name`` if one is
        given (as in Elixir), else to ``"DynamicSupervisor"``; so several
        named dynamic supervisors can sit under one parent. The settings are
        checked here, as ``start`` checks them.
        """
        where = "DynamicSupervisor.child_spec"
        _check_max_children(opts.get("max_children"), where)
        _check_settings(opts.get("max_restarts", 3), opts.get("max_seconds", 5.0), where)
        _check_extra_arguments(opts.get("extra_arguments", ()), where)
        backoff = opts.pop("backoff", None)
        significant = opts.pop("significant", False)
        extra: dict[str, Any] = {} if shutdown is None else {"shutdown": shutdown}
        return ChildSpec(
            _default_id(id, opts, "DynamicSupervisor.child_spec", "DynamicSupervisor"),
            functools.partial(cls.start, link=True, **opts),
            restart,
            type=ChildType.SUPERVISOR,
            backoff=backoff,
            significant=significant,
            **extra,
        )

    def _call_start(self, spec: ChildSpec) -> Awaitable[object]:
        extra = self.extra_arguments
        if not extra:
            return start_child_process(spec)
        return start_child_process(spec, lambda: _with_extra(spec.start, extra))

    def _children_list(self) -> list[_Child]:
        return list(self._dyn.values())

    async def _stop_all(self) -> None:
        # All at once, each within its own shutdown time from the same start.
        await self._stop_together(list(reversed(self._dyn.values())))
        self._dyn.clear()
        self._restarting.clear()
        self._token += 1

    async def handle_info(self, message: Any) -> None:
        kind = type(message)
        if kind is Exited:
            child = self._by_pid.pop(message.pid, None)
            if child is not None:
                await self._child_exited(child, message.reason)
            return
        if kind is _RestartLater:
            waiting_children: tuple[_Child, ...] = message.children
            for waiting in waiting_children:
                if (
                    self._dyn.get(waiting.key) is waiting
                    and waiting.pid is None
                    and waiting.pending == message.token
                ):
                    await self._restart_dyn(waiting, message.reason)
            return
        await super().handle_info(message)

    async def _child_exited(self, child: _Child, reason: object) -> None:
        spec = child.spec
        old_pid = child.pid
        restart = needs_restart(spec.restart, reason)
        within_intensity = self._count_restart() if restart else True
        self._report_exit(child, old_pid, reason, restarted=restart)
        if not restart:
            del self._dyn[child.key]
            return
        if not within_intensity:
            await self._give_up(child, reason)
        child.restarts += 1
        child.restarting = True
        if old_pid is not None:
            self._restarting[old_pid] = child
        delay = self._backoff_delay(child)
        if delay > 0:
            self._schedule([child], delay, reason)
            return
        await self._restart_dyn(child, reason)

    async def _restart_dyn(self, child: _Child, reason: object = None) -> None:
        last_pid = child.last_pid
        try:
            started = await self._start_one(child)
        except Exception as exc:  # noqa: BLE001 - reported and retried
            self._report(
                logging.ERROR,
                "child_start_failed",
                f"dynamic supervisor {self.pid!r}: restarting child "
                f"{safe_repr(child.spec.id)} failed: {safe_repr(exc)}; will try again",
                child,
                exc,
            )
            if not self._count_restart():
                await self._give_up(child, exc)
            child.restarts += 1
            self._schedule([child], self._backoff_delay(child), exc)
            return
        if last_pid is not None:
            self._restarting.pop(last_pid, None)
        pid = child.pid
        if started is None or pid is None:
            del self._dyn[child.key]
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
            return _refuse(
                caller,
                ValueError(
                    f"dynamic supervisor {self.pid!r} does not understand {safe_repr(request)}"
                ),
            )
        op = request[0]
        children = self._children_list()
        if op is _Req.WHICH:
            return [_info(c) for c in children]
        if op is _Req.COUNT:
            return _counts(children)
        if op is _Req.HEALTH:
            return self._snapshot("dynamic", Strategy.ONE_FOR_ONE, children)
        if op is _Req.START:
            spec = request[1]
            if not isinstance(spec, ChildSpec):
                return _refuse(
                    caller, TypeError(f"start_child: expected a ChildSpec, not {safe_repr(spec)}")
                )
            if spec.significant:
                return _refuse(
                    caller,
                    ValueError(
                        f"dynamic supervisor {self.pid!r}: start_child: child "
                        f"{safe_repr(spec.id)} is significant, but a DynamicSupervisor has no "
                        "auto_shutdown (as in OTP and Elixir); drop significant=True, or put "
                        "the child under a Supervisor with auto_shutdown"
                    ),
                )
            if self.max_children is not None and len(self._dyn) >= self.max_children:
                return _refuse(
                    caller,
                    MaxChildren(
                        f"dynamic supervisor {self.pid!r} already runs its max_children "
                        f"({self.max_children}); stop a child first or raise max_children"
                    ),
                )
            child = _Child(spec)
            try:
                pid = await self._start_one(child)
            except Exception as exc:  # noqa: BLE001 - returned to the caller as StartError
                who = f"dynamic supervisor {self.pid!r}: child {safe_repr(spec.id)}"
                if self.extra_arguments and isinstance(exc, TypeError):
                    # Most likely the start function does not take them.
                    who += (
                        f" (its start function is called with the supervisor's "
                        f"{len(self.extra_arguments)} extra_arguments before its own)"
                    )
                return _refuse(caller, _start_error(who, exc))
            if pid is not None:
                self._next_key += 1
                child.key = self._next_key
                self._dyn[child.key] = child
            return pid
        if op is _Req.TERMINATE:
            target = request[1]
            found = self._by_pid.get(target) if type(target) is Pid else None
            if found is None and type(target) is Pid:
                found = self._restarting.pop(target, None)
                if found is not None:  # stop its restarts, forget it (OTP, Elixir)
                    found.restarting = False
                    found.pending = None
                    del self._dyn[found.key]
                    return None
            if found is None:
                return _refuse(
                    caller,
                    ChildNotFound(
                        f"dynamic supervisor {self.pid!r} has no child {safe_repr(target)}; "
                        "terminate_child takes the child's pid",
                        target,
                    ),
                )
            await self._stop_one(found)
            del self._dyn[found.key]
            return None
        return _refuse(
            caller,
            ValueError(
                f"dynamic supervisor {self.pid!r}: {op.value} is not available; children are "
                "identified by pid (start_child, terminate_child)"
            ),
        )
