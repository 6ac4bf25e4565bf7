"""Supervisor: a fixed list of children, restarted by strategy (OTP's supervisor)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from .._core import (
    SHUTDOWN,
    ActorError,
    Caller,
    ChildNotFound,
    ChildSpec,
    ChildType,
    DuplicateChild,
    Exited,
    Name,
    Pid,
    Restart,
    ShutdownSetting,
    StartError,
    Stop,
    Strategy,
    kill,
    on_exit,
    process_info,
    safe_repr,
    wait_exit,
)
from ._base import (
    _NO_START_LIMIT,
    AutoShutdown,
    Started,
    _abandon,
    _check_settings,
    _check_specs,
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
from ._rules import needs_restart, plan_restart


def _check_auto_shutdown(mode: object, children: Sequence[ChildSpec], where: str) -> None:
    """``mode`` is an AutoShutdown; with NEVER no child may be significant
    (OTP refuses that combination: such a child could never take effect)."""
    if not isinstance(mode, AutoShutdown):
        raise TypeError(
            f"{where}: auto_shutdown must be an AutoShutdown member (NEVER, ANY_SIGNIFICANT or "
            f"ALL_SIGNIFICANT), not {safe_repr(mode)}"
        )
    if mode is AutoShutdown.NEVER:
        for spec in children:
            if spec.significant:
                raise ValueError(_never_significant(where, spec.id))


def _never_significant(where: str, child_id: Hashable) -> str:
    return (
        f"{where}: child {safe_repr(child_id)} is significant, but auto_shutdown is "
        "AutoShutdown.NEVER; pass auto_shutdown=AutoShutdown.ANY_SIGNIFICANT or "
        "ALL_SIGNIFICANT to the supervisor, or drop significant=True (OTP refuses this "
        "combination too)"
    )


def _resolve(future: asyncio.Future[object]) -> Callable[[object], None]:
    def resolve(reason: object) -> None:
        if not future.done():
            future.set_result(reason)

    return resolve


def _check_strategy(strategy: object, where: str) -> None:
    if not isinstance(strategy, Strategy):
        raise TypeError(f"{where}: strategy must be a Strategy member, not {safe_repr(strategy)}")


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

    A restart that fails part way (a child of the group fails to start)
    counts once more and is tried again, after that child's backoff if it
    has one, as OTP does: the group of the child that failed (every child
    under ``ONE_FOR_ALL``; it and those after it under ``REST_FOR_ONE``) is
    stopped where it runs, in reverse order, and started again in order.
    Meanwhile that child is restarting: ``restart_child`` and
    ``delete_child`` refuse it, ``terminate_child`` ends the retries.

    Shutdown: a supervisor traps exits. Told to shut down (by its parent, the
    node, or ``stop``), it stops its children in reverse start order, each
    with ``SHUTDOWN``, waiting up to that child's ``shutdown`` time, then
    ``KILL``.

    A child's start function may return None: as OTP's ``ignore``, the child
    keeps its spec but does not run (a temporary child is forgotten). It may
    also return ``(pid, info)`` (OTP's ``{ok, Pid, Info}``): the supervisor
    keeps the pid, and ``start_child`` / ``restart_child`` return the pair.
    Beyond OTP, a child spec may carry a ``Backoff`` that delays its
    restarts; meanwhile ``which_children`` shows it ``restarting``.

    Significant children (OTP 24): with ``auto_shutdown`` set to
    ``AutoShutdown.ANY_SIGNIFICANT`` or ``ALL_SIGNIFICANT``, children whose
    spec says ``significant=True`` (transient or temporary ones) shut the
    supervisor down, with ``SHUTDOWN``, when they end by themselves and are
    not restarted: see ``AutoShutdown``. With the default ``NEVER`` a
    significant child is refused.

    Reports go to the logger ``asyncotp`` with structured ``extra`` fields:
    ``event`` (``child_terminated``, ``child_restarted``, ``child_start_failed``,
    ``child_killed``, ``supervisor_gave_up``, ``supervisor_auto_shutdown``),
    ``supervisor``,
    ``supervisor_name``, ``child_id``, ``child_pid``, ``reason``,
    ``restart_count`` and ``restarts_in_window``.
    """

    strategy: Strategy
    auto_shutdown: AutoShutdown
    _children: list[_Child]

    async def init(
        self,
        children: Sequence[ChildSpec],
        strategy: Strategy,
        max_restarts: int,
        max_seconds: float,
        starting: _Starting | None = None,
        auto_shutdown: AutoShutdown = AutoShutdown.NEVER,
    ) -> None:
        self._setup(max_restarts, max_seconds)
        self.strategy = strategy
        self.auto_shutdown = auto_shutdown
        self._children = []
        if starting is None:
            starting = _Starting()
        starting.pid = self._pid
        starting.children = self._by_pid
        if starting.exited is not None:
            on_exit(self._pid, _resolve(starting.exited))
        if starting.state is _StartState.ABANDONED:  # the starter gave up before we ran
            raise Stop(SHUTDOWN)
        for spec in children:
            child = _Child(spec)
            self._children.append(child)
            try:
                pid = await self._start_one(child)
            except BaseException as exc:
                self._children.remove(child)
                starting.state = _StartState.STOPPING
                cancelled = isinstance(exc, asyncio.CancelledError)
                if not cancelled:
                    self._report(
                        logging.ERROR,
                        "child_start_failed",
                        f"supervisor {self.pid!r}: child {safe_repr(spec.id)} failed to "
                        f"start: {safe_repr(exc)}; stopping the children already started",
                        child,
                        exc,
                    )
                # Killed (the start's timeout) or abandoned (the starter was
                # cancelled) while a child was in its init: that child dies
                # first, then the others stop in reverse start order.
                await self._kill_half_started()
                await self._stop_all()
                if cancelled:
                    raise
                raise StartError(
                    f"supervisor {self.pid!r} could not start child {safe_repr(spec.id)}: "
                    f"{safe_repr(exc)}",
                    exc,
                ) from exc
            if pid is None and spec.restart is Restart.TEMPORARY:
                self._children.remove(child)  # OTP forgets a temporary child that is ignored
        starting.state = _StartState.STARTED

    async def _kill_half_started(self) -> None:
        """Kill the actors this supervisor started linked but does not know
        as children: a child cut off in the middle of its init (its start
        was cancelled, so nobody holds its pid). A GenServer in init defers
        exit signals, so without this it would outlive its supervisor until
        its init returned."""
        info = process_info(self._pid)
        if info is None:
            return
        strays = []
        for pid in info.links:
            other = process_info(pid)
            if other is not None and other.parent is self._pid and pid not in self._by_pid:
                kill(pid)
                strays.append(pid)
        for pid in strays:
            await wait_exit(pid, None)
            self._flush_exits(pid)

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        children: Sequence[ChildSpec],
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: Name | None = None,
        link: bool = False,
        *,
        auto_shutdown: AutoShutdown = AutoShutdown.NEVER,
        **opts: Any,
    ) -> Pid:
        """Start a supervisor and its children, in order.

        If a child fails to start, those already started are stopped in
        reverse order and ``start`` raises ``StartError``. ``opts`` are
        ``GenServer.start``'s (``mailbox_size``, ``overflow``, ``timeout``:
        none by default, each child's start has its own).

        If the task that awaits ``start`` is cancelled, the supervisor stops
        what it started (a child in the middle of its init is killed, the
        others stop in reverse start order), its name is free again, and
        then the cancellation goes on; the same happens past ``timeout``.
        """
        return await cls._start_with(
            _Starting(),
            children,
            strategy,
            max_restarts,
            max_seconds,
            name=name,
            link=link,
            auto_shutdown=auto_shutdown,
            **opts,
        )

    @classmethod
    async def _start_with(
        cls,
        starting: _Starting,
        children: Sequence[ChildSpec],
        strategy: Strategy,
        max_restarts: int,
        max_seconds: float,
        *,
        name: Name | None,
        link: bool,
        auto_shutdown: AutoShutdown,
        **opts: Any,
    ) -> Pid:
        """``start``, sharing ``starting`` with the supervisor's init (an
        ``Application`` learns its root's exit reason through it)."""
        specs = _check_specs(children, "Supervisor.start")
        _check_strategy(strategy, "Supervisor.start")
        _check_settings(max_restarts, max_seconds, "Supervisor.start")
        _check_auto_shutdown(auto_shutdown, specs, "Supervisor.start")
        opts.setdefault("timeout", _NO_START_LIMIT)
        try:
            return await super().start(
                specs,
                strategy,
                max_restarts,
                max_seconds,
                starting,
                auto_shutdown,
                name=name,
                link=link,
                **opts,
            )
        except asyncio.CancelledError:
            # The caller was cancelled: leave nothing behind, as the start's
            # timeout does, then let the cancellation through.
            await _abandon(starting)
            raise
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
        ``max_seconds``, ``name``. ``id`` defaults to the ``name`` if one is
        given (as in Elixir), else to ``"Supervisor"``. The children and the
        settings are checked here, as ``start`` checks them: a bad spec is
        refused when it is made, not when its parent starts it.
        """
        where = "Supervisor.child_spec"
        _check_specs(children, where)
        _check_strategy(opts.get("strategy", Strategy.ONE_FOR_ONE), where)
        _check_settings(opts.get("max_restarts", 3), opts.get("max_seconds", 5.0), where)
        _check_auto_shutdown(opts.get("auto_shutdown", AutoShutdown.NEVER), children, where)
        backoff = opts.pop("backoff", None)
        significant = opts.pop("significant", False)
        extra: dict[str, Any] = {} if shutdown is None else {"shutdown": shutdown}
        return ChildSpec(
            _default_id(id, opts, "Supervisor.child_spec", "Supervisor"),
            functools.partial(cls.start, children, link=True, **opts),
            restart,
            type=ChildType.SUPERVISOR,
            backoff=backoff,
            significant=significant,
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
            f"supervisor {self.pid!r} has no child with id {safe_repr(child_id)}; "
            "which_children() lists its children",
            child_id,
        )

    def _restarting_error(self, child_id: Hashable, operation: str) -> ActorError:
        """OTP's ``{error, restarting}``: the supervisor itself is bringing the
        child back (after a backoff, or retrying a start that failed)."""
        return ActorError(
            f"supervisor {self.pid!r}: child {safe_repr(child_id)} is restarting (waiting out "
            f"its backoff, or retrying a start that failed), so {operation} is refused; wait "
            "for the restart (asyncotp.testing.wait_for_restart, which_children), or "
            f"terminate_child it first to stop restarting it, then {operation}"
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
            if message.retry:
                await self._retry(message.children[0], message.token, message.reason)
            else:
                await self._start_group(message.children, message.token, message.reason)
            return
        await super().handle_info(message)

    async def _child_exited(self, child: _Child, reason: object) -> None:
        spec = child.spec
        old_pid = child.pid
        child.pid = None
        if not needs_restart(spec.restart, reason):
            self._report_exit(child, old_pid, reason, restarted=False)
            if spec.restart is Restart.TEMPORARY:
                self._children.remove(child)
            if spec.significant and self._auto_shutdown_due():
                self._report(
                    logging.INFO,
                    "supervisor_auto_shutdown",
                    "supervisor %r: significant child %r ended with %r; %r, so it shuts down",
                    child,
                    reason,
                    self.pid,
                    spec.id,
                    reason,
                    self.auto_shutdown,
                )
                raise Stop(SHUTDOWN)
            return
        within_intensity = self._count_restart()
        self._report_exit(child, old_pid, reason, restarted=True)
        if not within_intensity:
            await self._give_up(child, reason)
        group = await self._stop_group(child)
        child.restarts += 1
        delay = self._backoff_delay(child)
        if delay > 0:
            self._schedule(group, delay, reason)
            return
        await self._start_group(group, None, reason)

    async def _stop_group(self, failed: _Child) -> tuple[_Child, ...]:
        """Carry out the first half of ``failed``'s restart plan (OTP's
        strategy): stop the running children of its group in reverse start
        order and forget the temporary ones. Return the group to start
        again, in start order, each flagged as restarting.

        Children are told apart by identity, not by id: the restart path
        never calls a user's ``__eq__``.
        """
        plan = plan_restart(
            self.strategy,
            [(c, c.pid is not None, c.spec.restart) for c in self._children],
            failed,
        )
        for other in plan.stop:
            await self._stop_one(other)
        for other in plan.remove:
            self._children.remove(other)
        group = plan.start
        for other in group:
            other.restarting = True
        return group

    def _auto_shutdown_due(self) -> bool:
        """Whether a significant child's own end shuts this supervisor down."""
        if self.auto_shutdown is AutoShutdown.ANY_SIGNIFICANT:
            return True
        if self.auto_shutdown is AutoShutdown.ALL_SIGNIFICANT:
            return not any(
                c.spec.significant and (c.pid is not None or c.restarting) for c in self._children
            )
        return False

    def _has(self, child: _Child) -> bool:
        return any(c is child for c in self._children)

    async def _start_group(
        self, group: Sequence[_Child], token: int | None, reason: object = None
    ) -> None:
        """Start the children of ``group`` that are not running, in order;
        with a ``token``, only those still waiting for that delayed restart.
        ``reason`` (why they restart) goes into the restart reports.

        If one fails to start, the restart counts toward the intensity and
        is tried again (after that child's backoff, if any) as OTP does: the
        group of the child that failed is restarted as a whole, as its
        strategy says (see ``_retry``).
        """
        present = set(map(id, self._children))
        for child in group:
            if child.pid is not None or id(child) not in present:
                continue
            if token is not None and child.pending != token:
                continue
            try:
                started = await self._start_one(child)
            except Exception as exc:  # noqa: BLE001 - any start failure is reported and retried
                self._report(
                    logging.ERROR,
                    "child_start_failed",
                    f"supervisor {self.pid!r}: restarting child {safe_repr(child.spec.id)} "
                    f"failed: {safe_repr(exc)}; will try again",
                    child,
                    exc,
                )
                if not self._count_restart():
                    await self._give_up(child, exc)
                child.restarts += 1
                self._retry_later(child, exc)
                return
            if started is None:
                continue  # ignored: it keeps its spec and does not run
            self._report(
                logging.INFO,
                "child_restarted",
                "supervisor %r: restarted child %r as %r",
                child,
                reason,
                self.pid,
                child.spec.id,
                child.pid,
            )

    def _retry_later(self, failed: _Child, exc: Exception) -> None:
        """Schedule another restart of ``failed``'s group (OTP's try_again).

        Meanwhile ``failed`` and the children of its group that are not
        running wait as restarting; those its group restarted already keep
        running until the retry stops them.
        """
        waiting = [failed]
        plan = plan_restart(
            self.strategy,
            [(c, c.pid is not None, c.spec.restart) for c in self._children],
            failed,
        )
        waiting += [c for c in plan.start if c is not failed]
        waiting = [c for c in waiting if c.pid is None]
        self._schedule(waiting, self._backoff_delay(failed), exc, retry=True)

    async def _retry(self, failed: _Child, token: int, reason: object) -> None:
        """Restart ``failed``'s group again after its start failed (OTP's
        try_again_restart): under ONE_FOR_ALL the children restarted already
        are stopped (reverse order) and all start again; under REST_FOR_ONE
        the group is ``failed`` and the children after it. Nothing happens
        if ``failed`` was terminated or deleted meanwhile."""
        if failed.pending != token or failed.pid is not None or not self._has(failed):
            return
        group = await self._stop_group(failed)
        await self._start_group(group, None, reason)

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if not (isinstance(request, tuple) and request and isinstance(request[0], _Req)):
            return _refuse(
                caller,
                ValueError(
                    f"supervisor {self.pid!r} does not understand the call "
                    f"{safe_repr(request)}; use which_children, count_children, start_child, "
                    "terminate_child, restart_child or delete_child"
                ),
            )
        op = request[0]
        if op is _Req.WHICH:
            return [_info(c) for c in self._children]
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
                        f"supervisor {self.pid!r}: child {safe_repr(child_id)} is running "
                        f"({child.pid!r}); terminate_child first"
                    )
                if child.restarting:
                    raise self._restarting_error(child_id, "restart_child")
                try:
                    return await self._start_one(child)
                except Exception as exc:  # noqa: BLE001 - any start failure becomes StartError
                    error = _start_error(
                        f"supervisor {self.pid!r}: child {safe_repr(child_id)}", exc
                    )
                    raise error from error.__cause__
            # _Req.DELETE
            if child.pid is not None:
                raise ActorError(
                    f"supervisor {self.pid!r}: child {safe_repr(child_id)} is running "
                    f"({child.pid!r}); terminate_child before delete_child"
                )
            if child.restarting:
                raise self._restarting_error(child_id, "delete_child")
            child.restarting = False
            child.pending = None
            self._children.remove(child)
            return None  # noqa: TRY300 - every branch returns from inside the try
        except Exception as exc:  # noqa: BLE001 - a refused request fails the call, not us
            return _refuse(caller, exc)

    async def _do_start_child(self, spec: ChildSpec) -> Started:
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start_child: expected a ChildSpec, not {safe_repr(spec)}")
        if spec.significant and self.auto_shutdown is AutoShutdown.NEVER:
            raise ValueError(_never_significant(f"supervisor {self.pid!r}: start_child", spec.id))
        existing = self._find(spec.id)
        if existing is not None:
            raise DuplicateChild(
                f"supervisor {self.pid!r} already has a child with id {safe_repr(spec.id)}"
                + (f" ({existing.pid!r})" if existing.pid is not None else " (not running)")
                + "; pick another id, or delete_child it first",
                spec.id,
                existing.pid,
            )
        child = _Child(spec)
        try:
            pid = await self._start_one(child)
        except Exception as exc:  # noqa: BLE001 - any start failure becomes StartError
            error = _start_error(f"supervisor {self.pid!r}: child {safe_repr(spec.id)}", exc)
            raise error from error.__cause__
        if pid is None and spec.restart is Restart.TEMPORARY:
            return None  # OTP forgets a temporary child that chose to be ignored
        self._children.append(child)
        return pid

    def _health(self) -> dict[str, Any]:
        return self._snapshot("supervisor", self.strategy, self._children)
