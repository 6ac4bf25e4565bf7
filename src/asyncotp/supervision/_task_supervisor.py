"""TaskSupervisor: a DynamicSupervisor of tasks (Elixir's ``Task.Supervisor``).

Each task is a ``TEMPORARY`` child whose ``start`` spawns the same task actor
as ``Task.start`` (``asyncotp.actors``). A task started for a caller waits
behind a gate until that caller has monitored it (and linked to it, for
``async_``), so that its result or its crash cannot slip by before the
caller is listening; a caller that gives up before (cancelled, or refused
with ``MaxChildren``) opens the gate with False, and the task ends without
running its function.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar, TypeVarTuple

from .._core import (
    ChildSpec,
    Pid,
    Restart,
    ShutdownSetting,
    calling_pid,
    fn_name,
    link,
    validate,
)
from ..actors._task import ReplyChannel, Task, check_fn, spawn_task
from ._client import start_child, which_children
from ._dynamic import DynamicSupervisor
from ._task_stream import OnTimeout, StreamResult, async_stream, check_child_shutdown

A = TypeVar("A")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class TaskSupervisor(DynamicSupervisor):
    """A supervisor of tasks, started at run time: Elixir's ``Task.Supervisor``.

    Example::

        await Supervisor.start([TaskSupervisor.child_spec(name="tasks"), ...])

        task = await TaskSupervisor.async_nolink("tasks", fetch, url)
        try:
            page = await task
        except HTTPError:
            page = None                           # its crash is an error here, not ours

        async for result in TaskSupervisor.async_stream("tasks", urls, fetch, max_concurrency=20):
            match result:
                case ("ok", page): ...
                case ("exit", reason): ...        # that one failed, or timed out

    A task supervisor is a ``DynamicSupervisor`` whose children are tasks:
    actors that run one async function, ``TEMPORARY`` (never restarted, and
    forgotten when they end). Its crash reports, ``max_children``, and the
    shutdown of every running task when it stops (``SHUTDOWN``, then
    ``KILL`` after the task's ``shutdown`` time) are the dynamic
    supervisor's. ``which_children``, ``count_children`` and
    ``terminate_child(sup, pid)`` work on it; ``TaskSupervisor.children``
    lists the running tasks.

    **Starting one.** ``await TaskSupervisor.start(name=..., max_children=...)``
    (``max_restarts``, ``max_seconds`` as for ``DynamicSupervisor``), or,
    better, ``TaskSupervisor.child_spec(name=...)`` in your supervision tree,
    so its tasks stop in order with the rest of the application.

    **Starting tasks.** ``fn`` is an async function, ``args`` its arguments
    (mypy checks them against ``fn``); ``shutdown=`` (seconds > 0,
    ``BRUTAL_KILL`` or ``INFINITY``; 5.0 by default) is how long the task
    is given to stop when its supervisor stops it: ``SHUTDOWN`` cancels its
    function at once, and its ``finally`` blocks get that long before
    ``KILL`` (a task that traps exits gets that long to finish). Beyond
    ``max_children``, each raises ``MaxChildren``.

    * ``await TaskSupervisor.start_child(sup, fn, *args)``: fire and forget;
      returns the task's pid. The result is dropped; a crash is logged by
      the supervisor. ``restart=Restart.TRANSIENT`` (or ``PERMANENT``) has
      the supervisor run ``fn(*args)`` again after a crash (or always).
    * ``await TaskSupervisor.async_(sup, fn, *args)``: a ``Task`` linked to
      the calling actor, as ``Task.start``, but supervised: its crash takes
      the caller down too (unless it traps exits).
    * ``await TaskSupervisor.async_nolink(sup, fn, *args)``: a ``Task`` not
      linked to the caller: its crash reaches the caller only as the error
      ``await task`` raises (or as a ``Down`` in ``handle_info``, for a
      GenServer that does not await). This is the one to use inside a
      GenServer, or whenever a task may fail.
    * ``TaskSupervisor.async_stream(sup, items, fn, ...)``: an async
      iterator mapping ``fn`` over ``items`` with at most ``max_concurrency``
      tasks at once; see its documentation.

    Await, yield or shut the returned tasks down with ``Task``'s functions.

    **When not to use it.** For a task whose caller must fail with it and
    that needs no limit or shutdown order, ``Task.start`` is enough. For
    work that must survive restarts and be retried with backoff, use a
    ``WorkerPool`` (``asyncotp.resilience``). A task supervisor is one
    actor: every start is a call to it, so a very hot path may want several.
    """

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        *,
        name: str | None = None,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        link: bool = False,
    ) -> Pid:
        """Start an empty task supervisor (``link=True`` links it to the
        calling actor)."""
        return await super().start(max_children, max_restarts, max_seconds, name=name, link=link)

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        *,
        id: Hashable | None = None,  # noqa: A002 - the contract's name, as in OTP
        name: str | None = None,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
    ) -> ChildSpec:
        """A child spec for a supervision tree; ``id`` defaults to ``name``,
        or ``"TaskSupervisor"``."""
        return super().child_spec(
            id=id if id is not None else (name if name is not None else "TaskSupervisor"),
            restart=restart,
            shutdown=shutdown,
            name=name,
            max_children=max_children,
            max_restarts=max_restarts,
            max_seconds=max_seconds,
        )

    # -- starting tasks --------------------------------------------------------

    @staticmethod
    async def start_child(
        sup: Pid | str,
        fn: Callable[[*Ts], Awaitable[object]],
        *args: *Ts,
        restart: Restart = Restart.TEMPORARY,
        shutdown: ShutdownSetting = 5.0,
    ) -> Pid:
        """Run ``await fn(*args)`` as a task of ``sup``, for its effects;
        return its pid. It is not linked to the caller; its result is
        dropped."""
        where = "TaskSupervisor.start_child"
        check_fn(fn, where)
        validate.instance(restart, Restart, "restart", where=where)
        spec = ChildSpec(
            fn_name(fn),
            functools.partial(spawn_task, None, None, fn, args),
            restart,
            check_child_shutdown(shutdown, where),
        )
        return await start_child(sup, spec)

    @staticmethod
    async def async_(
        sup: Pid | str,
        fn: Callable[[*Ts], Awaitable[R]],
        *args: *Ts,
        shutdown: ShutdownSetting = 5.0,
    ) -> Task[R]:
        """Run ``await fn(*args)`` as a task of ``sup``, linked to the calling
        actor (not linked when called from a plain task); return its ``Task``."""
        return await _start_task(sup, fn, args, True, shutdown, "TaskSupervisor.async_")

    @staticmethod
    async def async_nolink(
        sup: Pid | str,
        fn: Callable[[*Ts], Awaitable[R]],
        *args: *Ts,
        shutdown: ShutdownSetting = 5.0,
    ) -> Task[R]:
        """Run ``await fn(*args)`` as a task of ``sup``, not linked to the
        caller; return its ``Task``. A crash is raised by ``await task`` (or
        arrives as a ``Down``), never as an exit signal to the caller."""
        return await _start_task(sup, fn, args, False, shutdown, "TaskSupervisor.async_nolink")

    @staticmethod
    def async_stream(
        sup: Pid | str,
        items: Iterable[A] | AsyncIterable[A],
        fn: Callable[[A], Awaitable[R]],
        *,
        max_concurrency: int | None = None,
        ordered: bool = True,
        timeout: float | None = 5.0,
        on_timeout: OnTimeout = "exit",
        shutdown: ShutdownSetting = 5.0,
    ) -> AsyncGenerator[StreamResult[R], None]:
        """Map ``fn`` over ``items`` in tasks of ``sup``; an async iterator of
        one result per item.

        Example::

            async with contextlib.aclosing(
                TaskSupervisor.async_stream("tasks", urls, fetch, max_concurrency=20)
            ) as results:
                async for result in results:
                    match result:
                        case ("ok", page): ...
                        case ("exit", reason): ...

        Each result is ``("ok", value)``, or ``("exit", reason)`` when that
        item's task failed: ``reason`` is its exception (or another exit
        reason), and the consumer carries on (tasks are not linked to it:
        Elixir's ``async_stream_nolink``).

        * ``max_concurrency`` (default: the number of CPUs, as Elixir; raise
          it for I/O): never more tasks at once. It also bounds the input:
          ``items`` (an iterable or an async iterable, even an endless one)
          is pulled only as slots free up, and a slot is freed when its
          result is handed to the consumer, so at most ``max_concurrency``
          items are ever pulled ahead of it.
        * ``ordered=True``: results in the order of ``items``. A finished
          result then waits, holding its slot, for the ones before it; use
          ``ordered=False`` (results as they come) when one slow item should
          not hold the others up.
        * ``timeout`` (seconds per task, from its start; None: no limit) and
          ``on_timeout``: a task that runs out of time is killed;
          ``"exit"`` (the default) then raises ``TaskTimeout`` in the
          consumer and closes the stream, ``"kill_task"`` reports
          ``("exit", "timeout")`` for that item and goes on.
        * ``shutdown``: the tasks' shutdown time under the supervisor.

        Nothing runs until the first item is asked for. When the stream
        ends, is closed (``aclose()``, ``contextlib.aclosing``), raises, or
        its consumer is cancelled, the tasks still running are stopped
        (``SHUTDOWN``, then ``KILL`` after ``shutdown``) and the input, if
        it is a generator, is closed. A consumer that just stops iterating
        leaves that to the garbage collector: prefer ``aclosing``. Beyond
        the supervisor's ``max_children``: ``MaxChildren``.
        """
        return async_stream(
            sup,
            items,
            fn,
            max_concurrency=max_concurrency,
            ordered=ordered,
            timeout=timeout,
            on_timeout=on_timeout,
            shutdown=shutdown,
        )

    @staticmethod
    async def children(sup: Pid | str) -> list[Pid]:
        """The pids of the tasks ``sup`` runs now."""
        return [child.pid for child in await which_children(sup) if child.pid is not None]


async def _start_task(
    sup: Pid | str,
    fn: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    linked: bool,
    shutdown: ShutdownSetting,
    where: str,
) -> Task[R]:
    """Start a task under ``sup`` for the caller: the supervisor spawns it
    behind a gate; the caller links to it (``linked``) and monitors it, then
    opens the gate."""
    check_fn(fn, where)
    setting = check_child_shutdown(shutdown, where)
    owner = calling_pid()
    channel = ReplyChannel(owner)
    gate: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    spec = ChildSpec(
        fn_name(fn),
        functools.partial(spawn_task, gate, channel, fn, args),
        Restart.TEMPORARY,
        setting,
    )
    try:
        pid = await start_child(sup, spec)
        if linked and owner is not None:
            link(pid)
        channel.attach(pid)
    except BaseException:
        if not gate.done():
            gate.set_result(False)
        raise
    gate.set_result(True)
    task: Task[R] = Task(pid, channel.ref, owner, channel=channel)
    return task
