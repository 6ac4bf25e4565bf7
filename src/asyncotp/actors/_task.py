"""Task: run one function concurrently, as an actor, and get its result.

Built on the runtime's own primitives, as Elixir builds its ``Task``: a task
is an actor spawned (and linked) by its caller; the caller monitors it; the
task sends its result to the caller's mailbox as a ``TaskReply`` carrying
the monitor's reference, and a crash arrives as that monitor's ``Down``.
``await`` is a selective ``receive`` of one or the other. A caller that is a
plain task (no mailbox) gets the same outcome through a future instead.

``ReplyChannel``, ``run_task``, ``spawn_task`` and the ``check_*``
validators are shared with ``TaskSupervisor`` (``asyncotp.supervision``),
which starts the same actors under a supervisor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Generator, Sequence
from typing import Any, Generic, Literal, TypeAlias, TypeVar, TypeVarTuple, overload

import attrs

from .._core import (
    BRUTAL_KILL,
    INFINITY,
    KILLED,
    NOPROC,
    SHUTDOWN,
    ActorError,
    Down,
    MonitorRef,
    Pid,
    ReceiveTimeout,
    ShutdownSetting,
    Stop,
    TaskExited,
    TaskTimeout,
    calling_pid,
    deliver_system,
    demonitor,
    drop_messages,
    fn_name,
    kill,
    monitor,
    now,
    on_exit,
    receive,
    self_pid,
    send_exit,
    spawn,
    unlink,
    validate,
    wait_exit,
)

T_co = TypeVar("T_co", covariant=True)
"""What a task's function returns: a ``Task`` only gives it out (covariant)."""
R = TypeVar("R")
D = TypeVar("D")
Ts = TypeVarTuple("Ts")

Outcome: TypeAlias = "tuple[Literal['ok'], Any] | tuple[Literal['exit'], object]"
"""How a task ended: ``("ok", result)`` or ``("exit", reason)``."""


@attrs.frozen
class TaskReply:
    """The message a task sends its caller: ``value`` is what the task's
    function returned, ``ref`` is the task's ``ref``.

    ``await task`` takes it from the caller's mailbox. A ``GenServer`` that
    starts tasks without awaiting them receives it in ``handle_info``, and
    then the ``Down`` of the same ``ref`` (unless it calls
    ``demonitor(ref, flush=True)``); a ``Down`` without a reply before it
    means that the task failed.
    """

    ref: MonitorRef
    value: object


class ReplyChannel:
    """Where one task's result goes, and whether its owner still wants it.

    An actor owner gets ``TaskReply(ref, value)`` in its mailbox (its monitor
    on the task delivers the ``Down``); a plain-task owner has no mailbox, so
    the outcome resolves ``outcome`` (the exit reason through the task's exit
    callback). ``active = False`` is Erlang's alias deactivation: a result
    that comes later is dropped at the source and never reaches a mailbox.
    """

    __slots__ = ("active", "outcome", "owner", "ref")

    def __init__(self, owner: Pid | None) -> None:
        self.owner = owner
        self.ref = MonitorRef()  # the monitor's own reference, for an actor owner
        self.active = True
        self.outcome: asyncio.Future[Outcome] | None = None
        if owner is None:
            self.outcome = asyncio.get_running_loop().create_future()

    def reply(self, value: object) -> None:
        """In the task: hand ``value`` to the owner, if it still wants it."""
        if not self.active:
            return
        if self.owner is not None:
            deliver_system(self.owner, TaskReply(self.ref, value))
        else:
            self._resolve(("ok", value))

    def exited(self, reason: object) -> None:
        """The task's exit callback (plain-task owners)."""
        if self.active:
            self._resolve(("exit", reason))

    def _resolve(self, outcome: Outcome) -> None:
        fut = self.outcome
        if fut is not None and not fut.done():
            fut.set_result(outcome)

    def attach(self, pid: Pid) -> None:
        """In the owner, right after the task was started (before it can run
        its function): monitor it, or watch its exit for a plain task."""
        if self.owner is not None:
            self.ref = monitor(pid)
        elif not on_exit(pid, self.exited):
            self.exited(NOPROC)


async def run_task(
    gate: asyncio.Future[bool] | None,
    channel: ReplyChannel | None,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
) -> None:
    """The body of every task actor: wait for the starter's go (``gate``, for
    a task started by a supervisor on the caller's behalf), run ``fn(*args)``
    and hand its result to ``channel`` (None: nobody wants it)."""
    if gate is not None and not await gate:
        return  # the starter gave up before the task could begin
    try:
        result = await fn(*args)
    except Stop:
        raise
    except Exception as exc:
        exc.add_note(f"in the task {self_pid()!r} running {fn_name(fn)}")
        raise
    if channel is not None:
        channel.reply(result)


async def spawn_task(
    gate: asyncio.Future[bool] | None,
    channel: ReplyChannel | None,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
) -> Pid:
    """A child spec's ``start``: spawn the task actor, unlinked (its
    supervisor adopts it)."""
    return spawn(run_task, gate, channel, fn, args)


def check_fn(fn: object, where: str) -> None:
    """``fn`` must be an async function (a coroutine object, a class, a sync
    function are refused with a hint: see ``validate.async_entry``)."""
    validate.async_entry(fn, "fn", where=where, usage="an async function")


def check_timeout(timeout: object, where: str) -> float | None:
    """None or seconds >= 0; ``math.inf`` means None (no limit)."""
    return validate.duration(
        timeout, "timeout", where=where, optional=True, zero=True, unlimited=True
    )


def check_shutdown(shutdown: object, where: str) -> ShutdownSetting:
    """Seconds >= 0, ``BRUTAL_KILL`` or ``INFINITY``."""
    if shutdown is BRUTAL_KILL or shutdown is INFINITY:
        return shutdown
    if not validate.is_number(shutdown):
        validate.fail(
            ValueError, shutdown, "shutdown", "seconds >= 0, BRUTAL_KILL or INFINITY", where=where
        )
    return validate.duration(shutdown, "shutdown", where=where, zero=True)


def _exit_error(pid: Pid, reason: object) -> BaseException:
    """What the owner raises for a task that ended with ``reason``: the task's
    own exception, or ``TaskExited``."""
    if isinstance(reason, BaseException):
        return reason
    try:
        shown = repr(reason)
    except Exception:  # noqa: BLE001 - a reason's broken __repr__ must not hide the exit
        shown = f"<{type(reason).__qualname__} object>"
    return TaskExited(f"the task {pid!r} ended with reason {shown} before it replied", pid, reason)


def _match(refs: Collection[MonitorRef]) -> Callable[[object], bool]:
    def match(message: object) -> bool:
        kind = type(message)
        return (kind is TaskReply or kind is Down) and message.ref in refs  # type: ignore[attr-defined]

    return match


@attrs.frozen(eq=False)
class Task(Generic[T_co]):
    """A function run concurrently as an actor, and the way to its result.

    Example::

        async def fetch(url: str) -> bytes: ...

        async def main() -> None:
            task = Task.start(fetch, "https://example.com")   # runs concurrently
            other = await do_something_else()
            page = await task                                  # its result, or its error

    ``Task.start(fn, *args)`` runs ``await fn(*args)`` in a new actor and
    returns at once with a ``Task[T]``, ``T`` being what ``fn`` returns (mypy
    checks ``args`` against ``fn``). This is Elixir's ``Task.async``.

    **Getting the result.** A task gives its result (or its error) once, to
    the first of these that receives it; each is also a method
    (``task.await_(timeout=1.0)``):

    * ``await task`` / ``await Task.await_(task, timeout=5.0)``: the result.
      If the task raised, its exception is re-raised here; if it ended
      otherwise (killed, shut down), ``TaskExited`` with ``.reason``. Past
      ``timeout`` (None: no limit): ``TaskTimeout``, a ``TimeoutError``; as
      in Elixir the task is then no longer awaitable and a late result is
      dropped, but the task itself keeps running: stop it with
      ``Task.shutdown``, or let the error end the caller (the link then
      stops the task).
    * ``await Task.yield_(task, timeout=5.0)``: the result, or None if the
      task has not finished within ``timeout``; the task keeps running and
      can be yielded, awaited or shut down again. Pass ``default=`` to tell
      "not finished" from a task that returned None.
    * ``await Task.shutdown(task, timeout=5.0)``: stop it (exit signal
      ``SHUTDOWN``, ``KILL`` after ``timeout``; ``BRUTAL_KILL`` kills at
      once) and return its result if it came in first, else None (or
      ``default=``). A task that had already failed raises, as with await.
    * ``await Task.await_many(tasks, timeout=5.0)``: the results in the
      order of ``tasks``; the first failure is raised at once; one timeout
      for all.

    Only the caller that started a task (its *owner*) can await, yield or
    shut it down: the result is in its mailbox. Once the task has given its
    result or its error, or ``await_`` has timed out, or it was shut down,
    nothing about it is left in that mailbox (neither the ``TaskReply`` nor
    the monitor's ``Down``), and a result that comes later is dropped before
    it reaches the mailbox.

    **Links.** Started from an actor, the task is linked to it, as Elixir's
    ``Task.async``: if the task crashes, the caller crashes with the same
    reason (unless it traps exits: then ``await`` re-raises the task's error
    and an ``Exited`` arrives too); if the caller crashes, the task stops.
    Think of a task as a part of its caller that runs concurrently, not as a
    way to isolate errors: to survive a task's crash, start it with
    ``TaskSupervisor.async_nolink``, or catch the error inside ``fn``.
    Started from a plain task of the node (a test body, a web request
    handler: not an actor), the task is not linked (there is nothing to link
    to); its crash reaches the caller only as the error ``await`` raises, and
    it is logged.

    **Inside a GenServer**, do not await a long task in a callback: the
    server answers nothing meanwhile. Start it (with
    ``TaskSupervisor.async_nolink``, so that its crash does not take the
    server down), keep ``task.ref``, and handle ``TaskReply(ref, value)``
    and ``Down(ref, pid, reason)`` in ``handle_info``.

    **Supervision.** ``Task.start`` tasks are not supervised: the node stops
    them at its end, but nothing limits how many run or reports them in the
    tree. Under load, or for work that must be stopped in order with the
    rest of the application, start tasks under a ``TaskSupervisor`` in the
    supervision tree.

    **When not to use it.** For work that nobody waits for, use
    ``TaskSupervisor.start_child`` (fire and forget). For state that lives
    on, or a service answering requests, use a ``GenServer`` or an
    ``Agent``. For many items with bounded concurrency, use
    ``TaskSupervisor.async_stream``. Do not await a task from another
    asyncio task than its owner's (``asyncio.gather(task_a, task_b)`` runs
    each await in a helper task that shares the owner's mailbox): use
    ``Task.await_many``.
    """

    pid: Pid
    """The task's actor."""
    ref: MonitorRef
    """The reference its ``TaskReply`` and its ``Down`` carry."""
    owner: Pid | None
    """The actor that started it, or None if a plain task did."""
    _channel: ReplyChannel = attrs.field(alias="channel", repr=False)

    # -- starting ----------------------------------------------------------

    @staticmethod
    def start(fn: Callable[[*Ts], Awaitable[R]], *args: *Ts) -> Task[R]:
        """Run ``await fn(*args)`` as a new actor, linked to the calling actor
        (not linked when called from a plain task); return its ``Task``.

        Never waits. ``fn`` must be an async function (``TypeError``)."""
        check_fn(fn, "Task.start")
        owner = calling_pid()
        channel = ReplyChannel(owner)
        pid = spawn(run_task, None, channel, fn, args, link=owner is not None)
        channel.attach(pid)
        task: Task[R] = Task(pid, channel.ref, owner, channel=channel)
        return task

    # -- the owner's side ----------------------------------------------------

    def _check_owner(self, where: str, *, unused: bool = True) -> None:
        """Only the owner may touch the task; ``unused``: and only while it
        has not given its result yet."""
        if type(self) is not Task:
            raise TypeError(f"{where}: expected a Task, not {self!r}")
        owner = self.owner
        if owner is not None and calling_pid() is not owner:
            caller = calling_pid()
            raise ActorError(
                f"{where}: {self!r} was started by {owner!r}, and only that actor can await, "
                f"yield or shut it down (its result goes to that actor's mailbox), not "
                f"{'a plain task' if caller is None else repr(caller)}; send the result on "
                "from there"
            )
        if unused and not self._channel.active:
            raise ActorError(
                f"{where}: {self!r} has already been awaited, shut down or timed out; a "
                "task gives its result once (Task.yield_ can ask again until it does)"
            )

    async def _outcome(self, timeout: float | None) -> Outcome | None:
        """The task's outcome, or None if it does not come within ``timeout``
        (nothing is consumed then)."""
        channel = self._channel
        fut = channel.outcome
        if fut is not None:
            if not fut.done():
                if timeout == 0:
                    return None
                done, _ = await asyncio.wait((fut,), timeout=timeout)
                if not done:
                    return None
            return fut.result()
        try:
            message = await receive(_match((channel.ref,)), timeout)
        except ReceiveTimeout:
            return None
        return self._settle(message)

    def _settle(self, message: TaskReply | Down) -> Outcome:
        """An outcome from the owner's mailbox: after a reply the monitor goes,
        with a ``Down`` it may already have sent."""
        if type(message) is TaskReply:
            demonitor(self.ref, flush=True)
            return ("ok", message.value)
        assert type(message) is Down
        return ("exit", message.reason)

    def _close(self) -> None:
        """Give up on the result: a late one is dropped at the source, and
        nothing about this task is left in the owner's mailbox."""
        channel = self._channel
        channel.active = False
        if channel.outcome is None:
            demonitor(self.ref)
            drop_messages(_match((self.ref,)))  # a reply, or a Down, already there

    def _result(self, outcome: Outcome) -> Any:
        self._channel.active = False
        if outcome[0] == "ok":
            return outcome[1]
        raise _exit_error(self.pid, outcome[1])

    async def await_(self, timeout: float | None = 5.0) -> T_co:
        """The task's result; see the class documentation.

        Raises the task's own exception if it raised, ``TaskExited`` if it
        ended otherwise, ``TaskTimeout`` past ``timeout`` seconds (None: no
        limit; the task keeps running)."""
        self._check_owner("Task.await_")
        limit = check_timeout(timeout, "Task.await_")
        outcome = await self._outcome(limit)
        if outcome is None:
            self._close()
            raise TaskTimeout(
                f"the task {self.pid!r} ({self.ref!r}) did not reply within {limit} s; it "
                "keeps running: stop it with Task.shutdown, or raise the timeout",
                self.pid,
                limit,
            )
        result: T_co = self._result(outcome)
        return result

    def __await__(self) -> Generator[Any, None, T_co]:
        """``await task`` is ``await Task.await_(task)`` (timeout 5 s)."""
        return self.await_().__await__()

    @overload
    async def yield_(self, timeout: float | None = 5.0) -> T_co | None: ...
    @overload
    async def yield_(self, timeout: float | None = 5.0, *, default: D) -> T_co | D: ...
    async def yield_(self, timeout: float | None = 5.0, *, default: object = None) -> object:
        """The task's result if it comes within ``timeout`` seconds, else
        ``default``; the task keeps running and can be asked again.

        A task that failed raises, as with ``await_``."""
        self._check_owner("Task.yield_")
        outcome = await self._outcome(check_timeout(timeout, "Task.yield_"))
        if outcome is None:
            return default
        return self._result(outcome)

    @overload
    async def shutdown(self, timeout: ShutdownSetting = 5.0) -> T_co | None: ...
    @overload
    async def shutdown(self, timeout: ShutdownSetting = 5.0, *, default: D) -> T_co | D: ...
    async def shutdown(self, timeout: ShutdownSetting = 5.0, *, default: object = None) -> object:
        """Stop the task and return its result if it came in first, else
        ``default``.

        Unlinks it, sends it the exit signal ``SHUTDOWN`` and waits up to
        ``timeout`` seconds (``INFINITY``: as long as it takes) before
        ``KILL``; ``BRUTAL_KILL`` kills it at once. A task that had already
        failed before it was stopped raises its error, as with ``await_``.
        A task already awaited (or timed out) is stopped, and ``default``
        returned."""
        self._check_owner("Task.shutdown", unused=False)
        setting = check_shutdown(timeout, "Task.shutdown")
        active = self._channel.active
        pid = self.pid
        if self.owner is not None:
            unlink(pid)
        if setting is BRUTAL_KILL:
            kill(pid)
        else:
            send_exit(pid, SHUTDOWN)
            wait = None if setting is INFINITY else float(setting)
            if not await wait_exit(pid, wait):
                kill(pid)
        await wait_exit(pid, None)
        if not active:
            return default
        # The task has ended: its reply or its Down (or the future) is there.
        outcome = await self._outcome(0)
        self._close()
        if outcome is None:
            return default
        if outcome[0] == "exit" and (outcome[1] is SHUTDOWN or outcome[1] is KILLED):
            return default  # stopped by this shutdown (or by its supervisor's)
        return self._result(outcome)

    # -- many tasks ----------------------------------------------------------

    @staticmethod
    async def await_many(tasks: Sequence[Task[R]], timeout: float | None = 5.0) -> list[R]:
        """The results of ``tasks``, in their order, within one ``timeout``.

        Raises at once when any task fails (its exception, or
        ``TaskExited``), and ``TaskTimeout`` past ``timeout``; either way
        none of them can be awaited any more, and those still running keep
        running (as with ``await_``)."""
        limit = check_timeout(timeout, "Task.await_many")
        tasks = list(tasks)
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"Task.await_many: expected Tasks, not {task!r}")
            task._check_owner("Task.await_many")  # noqa: SLF001 - the class's own handles
        if not tasks:
            return []
        owners = {task.owner for task in tasks}
        if len(owners) > 1:
            raise ActorError(
                "Task.await_many: the tasks were started by different callers (an actor and "
                "a plain task); await them separately"
            )
        pending = {task.ref: task for task in tasks}
        results: dict[MonitorRef, Any] = {}
        deadline = None if limit is None else now() + limit
        try:
            while pending:
                remaining = None if deadline is None else max(0.0, deadline - now())
                done = await _next_outcomes(pending, remaining)
                if not done:
                    first = next(iter(pending.values()))
                    raise TaskTimeout(
                        f"Task.await_many: {len(pending)} of {len(tasks)} task(s) did not reply "
                        f"within {limit} s (the first: {first.pid!r}); they keep running: stop "
                        "them with Task.shutdown, or raise the timeout",
                        first.pid,
                        limit,
                    )
                for ref, outcome in done:
                    task = pending.pop(ref)
                    results[ref] = task._result(outcome)  # noqa: SLF001 - the class's own handles
        finally:
            for task in pending.values():
                task._close()  # noqa: SLF001 - the class's own handles
        return [results[task.ref] for task in tasks]


async def _next_outcomes(
    pending: dict[MonitorRef, Task[Any]], timeout: float | None
) -> list[tuple[MonitorRef, Outcome]]:
    """The outcomes of some pending tasks, waiting up to ``timeout`` for the
    first; empty past it."""
    first = next(iter(pending.values()))
    if first.owner is None:
        futures: dict[asyncio.Future[Outcome], MonitorRef] = {}
        for ref, task in pending.items():
            fut = task._channel.outcome  # noqa: SLF001 - the class's own handles
            assert fut is not None  # a plain-task owner's channel
            futures[fut] = ref
        ready = [(ref, fut.result()) for fut, ref in futures.items() if fut.done()]
        if ready or timeout == 0:
            return ready
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return [(futures[fut], fut.result()) for fut in done]
    try:
        message = await receive(_match(pending), timeout)
    except ReceiveTimeout:
        return []
    task = pending[message.ref]
    return [(message.ref, task._settle(message))]  # noqa: SLF001 - the class's own handles
