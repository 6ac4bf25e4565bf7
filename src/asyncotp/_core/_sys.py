"""System messages: looking into a running server, as OTP's ``sys`` module.

A client function here (``get_state``, ``replace_state``, ``suspend``,
``resume``, ``statistics``, ``trace``, ``time_callbacks``) puts a
``SysRequest`` in the server's mailbox with ``deliver_system`` (never refused
by a bounded mailbox) and waits for the answer on a future, as ``call``
does. The server loop answers it between two callbacks, in mailbox order:
a server busy in a long callback answers when the callback returns, as in
OTP. A suspended server answers only these requests; its other messages
wait, in order, until ``resume``.

Tracing and callback timing live in a ``Debug`` record that the loop holds
only while one of them is on; the loop then calls its callbacks through
``Debug.wrap``. A server that nobody traces calls them directly: tracing
costs it nothing per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeAlias, final

import attrs

from ._context import get_ident, resolve, task_on, wrong_thread
from ._errors import ActorError, CallTimeout, MailboxFull, NoProcess, ServerExited
from ._exits import label
from ._mailbox import deliver_system
from ._pid import Pid
from ._safe import safe_repr
from ._state import UNSET, Droppable, Process, proc_var
from ._validate import check_timeout

logger = logging.getLogger("asyncotp.sys")

Callback: TypeAlias = Callable[..., Awaitable[Any]]
"""An unbound callback as the loop calls it: ``fn(server, *args)``."""

DEFAULT_TIMEOUT: Final = 5.0


class SysOp(enum.Enum):
    GET_STATE = "get_state"
    REPLACE_STATE = "replace_state"
    SUSPEND = "suspend"
    RESUME = "resume"
    STATISTICS = "statistics"
    TRACE = "trace"
    TIME_CALLBACKS = "time_callbacks"


class StateHooks(Protocol):
    """What the loop asks of a server for ``get_state`` and ``replace_state``."""

    def sys_get_state(self) -> Any: ...
    def sys_replace_state(self, state: Any) -> None: ...
    def format_status(self, state: Any) -> Any: ...


@final
class MachineView:
    """A ``StateMachine``'s ``(state, data)`` as the system requests see it
    (its loop keeps them in locals): made for one request, read back after.

    ``state_function`` (``STATE_FUNCTIONS`` mode) checks a new state and
    gives its state function, kept in ``fn`` for the loop; a state it
    refuses leaves everything as it was."""

    __slots__ = ("data", "fn", "machine", "state", "state_function")

    def __init__(
        self,
        machine: Any,
        state: object,
        data: object,
        state_function: Callable[[object], Any] | None,
    ) -> None:
        self.machine = machine
        self.state = state
        self.data = data
        self.state_function = state_function
        self.fn: Any = None

    def sys_get_state(self) -> tuple[object, object]:
        return (self.state, self.data)

    def sys_replace_state(self, state: Any) -> None:
        if type(state) is not tuple or len(state) != 2:
            raise TypeError(
                f"sys.replace_state: the new state of {type(self.machine).__qualname__} must be "
                f"a (state, data) tuple, as get_state gives it, not {safe_repr(state)}"
            )
        if self.state_function is not None:
            self.fn = self.state_function(state[0])
        self.state, self.data = state

    def format_status(self, state: Any) -> Any:
        return self.machine.format_status(state)


@final
@attrs.frozen
class ServerStatistics:
    """What ``asyncotp.sys.statistics`` says about one server, at one instant.

    Counts start when the server starts. ``callback_seconds``,
    ``slowest_callback`` and ``timed_callbacks`` are None unless callback
    timing is on (``time_callbacks(server, True)``, which resets them):
    measuring costs two clock reads per message, so it is off by default.
    Times are seconds on the loop's clock (``started_at`` as ``now()``).
    """

    pid: Pid
    name: str | None
    behaviour: str
    """The server's class name."""
    started_at: float
    uptime: float
    messages_handled: int
    """Messages taken from the mailbox and handled: calls, casts and other
    messages (system requests, continuations and idle timeouts not counted).
    For a StateMachine, the events it handled, its timeouts and inserted
    events included."""
    mailbox_length: int
    suspended: bool
    tracing: bool
    callback_seconds: float | None
    """Time spent inside callbacks since timing was switched on."""
    slowest_callback: float | None
    timed_callbacks: int | None


@final
class Debug:
    """A server's tracing and timing switches and sums (only while one is on)."""

    __slots__ = ("slowest", "spent", "timed", "timing", "trace")

    def __init__(self) -> None:
        self.trace = False
        self.timing = False
        self.spent = 0.0
        self.slowest = 0.0
        self.timed = 0

    def wrap(
        self, proc: Process, cls: type, fn: Callback, shown: Callable[..., object]
    ) -> Callback:
        """``fn`` (an unbound callback) wrapped to log its message in and its
        result out (tracing) and to add up its time (timing). The loop calls
        the wrapped callbacks only while this ``Debug`` exists, so a server
        nobody traces pays nothing per message. ``shown(*args)`` is the
        message as users know it (a cast as ``Cast``)."""
        name = cls.__qualname__
        clock = proc.node.loop.time

        async def debugged(server: object, *args: Any) -> Any:
            if self.trace:
                logger.info("%s %s in: %s", name, label(proc), safe_repr(shown(*args)))
            started = clock()
            result = await fn(server, *args)
            if self.timing:
                spent = clock() - started
                self.spent += spent
                self.timed += 1
                self.slowest = max(self.slowest, spent)
            if self.trace:
                logger.info("%s %s out: %s", name, label(proc), safe_repr(result))
            return result

        return debugged


@final
class SysRequest(Droppable):
    """One system request in a server's mailbox; its answer goes to ``fut``."""

    __slots__ = ("arg", "fut", "op", "server", "timeout")

    def __init__(
        self,
        op: SysOp,
        arg: object,
        fut: asyncio.Future[Any],
        server: Process,
        timeout: float | None,
    ) -> None:
        self.op = op
        self.arg = arg
        self.fut = fut
        self.server = server
        self.timeout = timeout

    def answer(self, value: object) -> None:
        if not self.fut.done():
            self.fut.set_result(value)

    def fail(self, error: BaseException) -> None:
        if not self.fut.done():
            self.fut.set_exception(error)

    # Expirable, for the shared deadline timer.
    def done(self) -> bool:
        return self.fut.done()

    def expire(self) -> None:
        self.fail(
            CallTimeout(
                f"sys.{self.op.value}: {label(self.server)} did not answer within "
                f"{self.timeout} s; it answers between two callbacks, so it is busy in a "
                "long one: raise the timeout, or look at what it is doing",
                self.server.pid,
                self.timeout,
            )
        )

    def abandon(self, proc: Process, reason: object) -> None:
        self.fail(
            ServerExited(
                f"sys.{self.op.value}: {label(proc)} ended with reason {safe_repr(reason)} "
                "before it answered",
                proc.pid,
                reason,
            )
        )

    def dropped(self, proc: Process) -> None:  # never: system messages are not dropped
        self.fail(MailboxFull(f"sys.{self.op.value}: the request to {label(proc)} was dropped"))

    def __repr__(self) -> str:
        return f"<SysRequest {self.op.value}>"


async def handle(
    proc: Process, server: StateHooks, req: SysRequest, debug: Debug | None, handled: int
) -> Debug | None:
    """Answer ``req`` inside the server loop; return the loop's new ``Debug``.

    Never raises for a failing user hook (``format_status``, a
    ``replace_state`` function): the error goes to the requester and the
    server carries on, as in OTP. ``SUSPEND`` returns only once the server is
    resumed (or told to stop).
    """
    op = req.op
    if op is SysOp.SUSPEND:
        req.answer(None)
        return await _suspended(proc, server, debug, handled)
    if op is SysOp.RESUME:
        req.answer(None)  # resuming a server that runs is harmless, as in OTP
        return debug
    return _answer(proc, server, req, debug, handled, suspended=False)


def _answer(
    proc: Process,
    server: StateHooks,
    req: SysRequest,
    debug: Debug | None,
    handled: int,
    *,
    suspended: bool,
) -> Debug | None:
    op = req.op
    try:
        if op is SysOp.GET_STATE:
            req.answer(server.format_status(server.sys_get_state()))
        elif op is SysOp.REPLACE_STATE:
            fn: Callable[[Any], Any] = req.arg  # type: ignore[assignment]
            new_state = fn(server.sys_get_state())
            server.sys_replace_state(new_state)
            req.answer(new_state)
        elif op is SysOp.STATISTICS:
            req.answer(_statistics(proc, server, debug, handled, suspended=suspended))
        elif op is SysOp.TRACE or op is SysOp.TIME_CALLBACKS:
            debug = _switch(debug, op, req.arg is True)
            req.answer(None)
        else:
            req.answer(None)
    except Exception as exc:  # noqa: BLE001 - a user hook's error is the requester's, not the server's
        with contextlib.suppress(Exception):  # an exception refusing notes keeps its text
            exc.add_note(f"raised inside {label(proc)} answering sys.{op.value}")
        req.fail(exc)
    return debug


def _switch(debug: Debug | None, op: SysOp, on: bool) -> Debug | None:
    if debug is None:
        if not on:
            return None
        debug = Debug()
    if op is SysOp.TRACE:
        debug.trace = on
    else:
        debug.timing = on
        debug.spent, debug.slowest, debug.timed = 0.0, 0.0, 0
    return debug if debug.trace or debug.timing else None


def _statistics(
    proc: Process, server: object, debug: Debug | None, handled: int, *, suspended: bool
) -> ServerStatistics:
    timing = debug is not None and debug.timing
    now = proc.node.loop.time()
    shown = server.machine if type(server) is MachineView else server
    return ServerStatistics(
        pid=proc.pid,
        name=proc.name,
        behaviour=type(shown).__qualname__,
        started_at=proc.started_at,
        uptime=now - proc.started_at,
        messages_handled=handled,
        mailbox_length=len(proc.mailbox),
        suspended=suspended,
        tracing=debug is not None and debug.trace,
        callback_seconds=debug.spent if timing and debug is not None else None,
        slowest_callback=debug.slowest if timing and debug is not None else None,
        timed_callbacks=debug.timed if timing and debug is not None else None,
    )


def _take_system(proc: Process, start: int) -> SysRequest | None:
    """Remove and return the oldest ``SysRequest`` at or after ``start``."""
    mailbox = proc.mailbox
    for index in range(start, len(mailbox)):
        message = mailbox[index]
        if type(message) is SysRequest:
            del mailbox[index]
            return message
    return None


async def _suspended(
    proc: Process, server: StateHooks, debug: Debug | None, handled: int
) -> Debug | None:
    """A suspended server: answer system requests only, until ``RESUME`` or a
    pending exit (a stop, a shutdown); other messages stay queued, in order."""
    loop = proc.node.loop
    scanned = 0  # messages before this index hold no system request
    while proc.pending_exit is UNSET:
        if proc.maxlen is not None or scanned > len(proc.mailbox):
            scanned = 0  # a bounded mailbox may evict from the front: look again
        req = _take_system(proc, scanned)
        if req is None:
            scanned = len(proc.mailbox)
            waiter = loop.create_future()
            proc.waiter = waiter
            await waiter
            continue
        if req.op is SysOp.RESUME:
            req.answer(None)
            break
        if req.op is SysOp.SUSPEND:
            req.answer(None)
            continue
        debug = _answer(proc, server, req, debug, handled, suspended=True)
    return debug


# -- client functions --------------------------------------------------------


async def sys_request(
    server: Pid | str, op: SysOp, arg: object, timeout: float | None, operation: str
) -> Any:
    """Send one system request to ``server`` and wait for its answer."""
    if timeout is not DEFAULT_TIMEOUT:
        timeout = check_timeout(timeout, operation)
    proc = resolve(server, operation)
    if proc is None:
        raise NoProcess(f"{operation}: {safe_repr(server)} is not alive", server)
    node = proc.node
    if node.thread != get_ident():
        wrong_thread(node, operation)
    if not proc.handles_sys:
        raise TypeError(
            f"{operation}: {label(proc)} is not a GenServer, an Agent nor a StateMachine and "
            "does not answer system requests; use process_info for a plain actor"
        )
    me = proc_var.get()
    if me is proc and me.task is task_on(node.loop):
        raise ActorError(
            f"{operation}: {label(proc)} asked itself, which would wait forever; a server "
            "looks at its own state directly"
        )
    fut: asyncio.Future[Any] = node.loop.create_future()
    req = SysRequest(op, arg, fut, proc, timeout)
    deliver_system(proc, req)
    if timeout is not None:
        node.deadlines.add(req, timeout)
    return await fut


async def get_state(server: Pid | str, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """The server's state, as its ``format_status`` shows it.

    A GenServer's state is its instance attributes (a new dict each time);
    an Agent's is its value. Answered between two callbacks (and while
    suspended). ``CallTimeout`` past ``timeout``, ``NoProcess`` if it is not
    alive, ``ServerExited`` if it ends first, ``TypeError`` for an actor that
    is not a server; an exception raised by ``format_status`` is raised
    here and the server carries on. For debugging: do not build a protocol
    on it (OTP's advice too); ask with a ``call`` instead.
    """
    return await sys_request(server, SysOp.GET_STATE, None, timeout, "sys.get_state")


async def replace_state(
    server: Pid | str, fn: Callable[[Any], Any], timeout: float | None = DEFAULT_TIMEOUT
) -> Any:
    """Run ``fn(state)`` inside the server and make its result the new state;
    return the new state.

    ``fn`` gets the raw state (not ``format_status``'s view): a GenServer's
    attributes as a dict, which ``fn`` returns changed (a new dict or the
    same one); an Agent's value. If ``fn`` raises, the state is unchanged,
    the server carries on and the error is raised here (OTP's
    ``callback_failed``). Meant for debugging and upgrades: often
    between ``suspend`` and ``resume``.
    """
    if not callable(fn):
        raise TypeError(f"sys.replace_state: fn must be a callable, not {safe_repr(fn)}")
    return await sys_request(server, SysOp.REPLACE_STATE, fn, timeout, "sys.replace_state")


async def suspend(server: Pid | str, timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """Suspend the server once its running callback returns.

    A suspended server answers system requests only (``get_state``,
    ``replace_state``, ``statistics``, ``trace``, ``resume``); calls, casts
    and other messages wait in its mailbox, in order (a caller's own timeout
    still runs). A stop or a shutdown still ends it (with ``terminate``), and
    ``KILL`` always does. Suspending a suspended server does nothing.
    """
    await sys_request(server, SysOp.SUSPEND, None, timeout, "sys.suspend")


async def resume(server: Pid | str, timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """Resume a suspended server: it handles its queued messages in order.
    Resuming a server that is not suspended does nothing."""
    await sys_request(server, SysOp.RESUME, None, timeout, "sys.resume")


async def statistics(
    server: Pid | str, timeout: float | None = DEFAULT_TIMEOUT
) -> ServerStatistics:
    """A ``ServerStatistics`` record of the server (counts since it started;
    callback times while ``time_callbacks`` is on)."""
    record: ServerStatistics = await sys_request(
        server, SysOp.STATISTICS, None, timeout, "sys.statistics"
    )
    return record


async def trace(server: Pid | str, on: bool, timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """Log every message the server handles and what its callback returned.

    Records go to the ``asyncotp.sys`` logger at INFO: ``<Class> <pid> in:
    <message>`` before the callback and ``out: <result>`` after it (for a
    call, the reply; ``NOREPLY``, ``Continue(...)`` or ``IdleTimeout(...)``
    as returned), with messages shown through ``safe_repr``. A StateMachine
    logs each call of its state callback: ``in: the cast event 'go' in the
    state 'idle'`` (the state is left out for state functions, whose name
    says it; a state-enter call shows as ``state enter from <old state>``)
    and ``out:`` what the callback returned. Switch it on and off at run
    time; off, it costs the server nothing.
    """
    if type(on) is not bool:
        raise TypeError(f"sys.trace: on must be True or False, not {safe_repr(on)}")
    await sys_request(server, SysOp.TRACE, on, timeout, "sys.trace")


async def time_callbacks(
    server: Pid | str, on: bool, timeout: float | None = DEFAULT_TIMEOUT
) -> None:
    """Measure the time the server spends in its callbacks (see ``statistics``).

    Switching it on resets the sums. Off by default: it reads the loop's
    clock twice per message. A StateMachine's state callbacks are timed,
    state-enter calls included.
    """
    if type(on) is not bool:
        raise TypeError(f"sys.time_callbacks: on must be True or False, not {safe_repr(on)}")
    await sys_request(server, SysOp.TIME_CALLBACKS, on, timeout, "sys.time_callbacks")
