"""GenServer: the client/server behaviour, with ``call``, ``cast`` and ``stop``.

This module holds the class users subclass: its default callbacks, ``start``
and ``child_spec``. The loop that runs the callbacks, and ``call``, ``cast``
and ``stop``, are the runtime's (``asyncotp._core._server``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ClassVar, Generic, ParamSpec, Protocol, cast, overload

from .._core import (
    Backoff,
    Caller,
    ChildSpec,
    ChildType,
    Continue,
    IdleTimeout,
    Ignore,
    Name,
    NoReply,
    Overflow,
    Pid,
    Rep,
    Req,
    Restart,
    ShutdownSetting,
    calling_pid,
    safe_repr,
    start_server,
)
from ._callbacks import check_async_callbacks

P = ParamSpec("P")

logger = logging.getLogger("asyncotp")


def _slots(cls: type) -> list[str]:
    """The attribute names ``cls`` and its bases keep in ``__slots__``."""
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and name not in names:
                names.append(name)
    return names


class _Init(Protocol[P]):
    """What ``start`` and ``child_spec`` see of a server class: an instance
    whose ``init`` takes ``P``. Matching ``cls`` against ``Callable[[],
    _Init[P]]`` lets mypy read ``init``'s parameters off the class."""

    def init(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[object]: ...


class GenServer(Generic[Req, Rep]):
    """A server actor: state in ``self``, requests handled one at a time.

    Example::

        class Counter(GenServer):
            async def init(self, start: int = 0) -> None:
                self.count = start

            async def handle_call(self, request, caller):
                if request == "get":
                    return self.count
                raise ValueError(f"unknown request {request!r}")

            async def handle_cast(self, request) -> None:
                self.count += request

        pid = await Counter.start(5, name="counter")
        cast(pid, 2)
        assert await call("counter", "get") == 7

    Client API: ``Cls.start`` (and ``Cls.child_spec`` for supervisors),
    ``call``, ``cast``, ``send``, ``stop``. Callbacks (all async, all
    optional but the ones you use):

    * ``init(*args, **kwargs)``: runs before ``start`` returns. Raise (or
      ``raise Stop(reason)``) to refuse to start: ``start`` raises
      ``StartError``. Return ``IGNORE`` to not start (``start`` returns
      None, a supervisor keeps the child as not running), ``Continue(arg)``
      to finish setting up in ``handle_continue`` once ``start`` has
      returned, or ``IdleTimeout(seconds)``.
    * ``handle_call(request, caller)``: its return value is the reply.
      Return ``NOREPLY`` to answer later with ``caller.reply(value)``.
      ``raise Stop(reason, reply=value)`` replies, then stops;
      ``return Continue(arg, reply=value)`` and
      ``return IdleTimeout(seconds, reply=value)`` reply, then continue or
      arm an idle timeout (without ``reply=``, answer later as with
      ``NOREPLY``).
    * ``handle_cast(request)``: fire-and-forget requests.
    * ``handle_info(message)``: every other message (``send``, ``Down``,
      ``Exited``, timers, ``TIMEOUT`` when an idle timeout runs out). The
      default logs and drops it.
    * ``handle_continue(arg)``: runs right after a callback that returned
      ``Continue(arg)``, before any other message (OTP's
      ``{continue, Arg}``).
    * ``terminate(reason)``: runs when the server stops (``Stop``, a crash in
      a callback, a shutdown from its supervisor, ``stop()``), not after
      ``KILL``.

    ``handle_cast``, ``handle_info`` and ``handle_continue`` return None, or
    ``Continue(arg)``, or ``IdleTimeout(seconds)``: "if no message arrives
    within ``seconds``, call ``handle_info(TIMEOUT)``", cancelled by the
    next message (OTP's ``{noreply, State, Timeout}``). Anything else they
    return crashes the server with a ``TypeError`` naming the callback.

    Introspection (``asyncotp.sys``): ``get_state``, ``replace_state``,
    ``suspend``/``resume``, ``statistics``, ``trace``; override
    ``format_status`` to hide secrets from ``get_state`` and crash reports.

    Requests are handled one at a time, in arrival order. A running callback
    is never interrupted by a shutdown or ``stop()``: they are handled as soon
    as it returns, ahead of queued requests (whose callers get
    ``ServerExited``). Only ``KILL`` (a supervisor's, once the child's
    shutdown time runs out) cuts a callback short; a callback that shields
    itself from cancellation cannot be killed.

    Types: ``GenServer[Req, Rep]`` types the server by its call requests
    and its replies (a bare ``GenServer`` is ``GenServer[Any, Any]``)::

        class Counter(GenServer[CounterRequest, int]):
            async def handle_call(self, request: CounterRequest, caller: Caller) -> int: ...

    ``start`` then returns a ``Pid[CounterRequest, int]``, on which ``call``
    checks the request and returns an ``int``; ``handle_call`` must accept
    every ``Req`` and return a ``Rep`` (``Rep | NoReply`` if it returns
    ``NOREPLY``). ``start(*args, **kwargs)`` and ``child_spec`` are checked
    against ``init``'s parameters, except when one of their own options
    (``name=``, ``link=``, ``id=``, ...) is passed: Python's typing cannot
    add keyword-only parameters to a ``ParamSpec``, so then only the
    options are checked (write a typed start function of your own, as in
    docs/genserver.md, section 11). Casts are not typed by ``Req``.

    A callback defined without ``async`` (``def handle_call``) is refused
    at the ``class`` statement with a ``TypeError`` naming it.

    Exit signals: a server that does not trap exits stops (running
    ``terminate``) when a linked actor ends abnormally; one that calls
    ``set_trap_exits(True)`` in ``init`` gets them as ``Exited`` messages,
    except from its parent (its supervisor), whose exit signal always means
    "stop".
    """

    _asyncotp_child_type: ClassVar[ChildType] = ChildType.WORKER

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse, at the class statement, a callback that is not async: the
        mistake would otherwise surface as a crash at the first message."""
        super().__init_subclass__(**kwargs)
        check_async_callbacks(cls, GenServer)

    async def init(self, *args: Any, **kwargs: Any) -> Continue | IdleTimeout | Ignore | None:
        """Set up the server's state; the default accepts no arguments."""
        if args or kwargs:
            raise TypeError(
                f"{type(self).__qualname__}.init takes the arguments given to start() "
                f"({safe_repr(args)}, {safe_repr(kwargs)}); define `async def init(self, ...)` "
                "to accept them"
            )
        return None

    async def handle_call(self, request: Req, caller: Caller) -> Rep | NoReply:
        """Answer a ``call``; the default crashes the server, as Elixir's does."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received the call {safe_repr(request)} but defines no "
            "handle_call; define `async def handle_call(self, request, caller)`"
        )

    async def handle_cast(self, request: Any) -> Continue | IdleTimeout | None:
        """Handle a ``cast``; the default crashes the server, as Elixir's does."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received the cast {safe_repr(request)} but defines no "
            "handle_cast; define `async def handle_cast(self, request)`"
        )

    async def handle_info(self, message: Any) -> Continue | IdleTimeout | None:
        """Handle any other message; the default logs it and drops it."""
        if logger.isEnabledFor(logging.WARNING):
            # The record carries the message formatted: a handler formatting
            # it later cannot meet a failing repr.
            logger.warning(
                "%s %r received an unexpected message and dropped it: %s; define handle_info "
                "to handle it",
                type(self).__qualname__,
                calling_pid(),
                safe_repr(message),
            )
        return None

    async def terminate(self, reason: Any) -> None:
        """Clean up when the server stops; the default does nothing."""

    async def handle_continue(self, arg: Any) -> Continue | IdleTimeout | None:
        """Run the continuation a callback asked for with ``Continue(arg)``.

        It runs right after that callback, before any queued message, and
        may itself return ``Continue`` or ``IdleTimeout``. The default
        crashes the server: a server that returns ``Continue`` defines it.
        """
        raise NotImplementedError(
            f"{type(self).__qualname__} {calling_pid()!r} asked to continue with "
            f"{safe_repr(arg)} but defines no handle_continue; define "
            "`async def handle_continue(self, arg)`"
        )

    # -- asyncotp.sys hooks ---------------------------------------------------

    def format_status(self, state: Any) -> Any:
        """The state as ``asyncotp.sys.get_state`` and crash reports show it.

        ``state`` is what ``sys_get_state`` returns (for a GenServer, a new
        dict of its attributes). Override it to hide secrets or shorten a
        large state: return a changed copy, e.g.
        ``{**state, "password": "***"}``. The default shows it as it is. It
        runs inside the server; if it raises, ``get_state`` raises that error
        and a crash report shows a placeholder.
        """
        return state

    def sys_get_state(self) -> Any:
        """The raw state ``asyncotp.sys`` works on: a new dict of the
        instance's attributes (its ``__slots__`` included). Behaviours built
        on GenServer override this and ``sys_replace_state`` (an ``Agent``'s
        state is its value)."""
        state = dict(getattr(self, "__dict__", {}))
        for slot in _slots(type(self)):
            if hasattr(self, slot):
                state[slot] = getattr(self, slot)
        return state

    def sys_replace_state(self, state: Any) -> None:
        """Make ``state`` (a dict of attribute names to values, as
        ``sys_get_state`` returns) the instance's attributes: the ones it
        names are set, the others deleted; used by
        ``asyncotp.sys.replace_state``."""
        if type(state) is not dict or not all(type(key) is str for key in state):
            raise TypeError(
                f"sys.replace_state: the new state of {type(self).__qualname__} must be a dict "
                f"of attribute names to values, as get_state gives it, not {safe_repr(state)}"
            )
        for name in self.sys_get_state():
            if name not in state:
                delattr(self, name)
        for name, value in state.items():
            setattr(self, name, value)

    # -- client side ----------------------------------------------------------

    @overload
    @classmethod
    async def start(
        cls: Callable[[], _Init[P]], *args: P.args, **kwargs: P.kwargs
    ) -> Pid[Req, Rep]: ...
    @overload
    @classmethod
    async def start(
        cls,
        *args: Any,
        name: Name | None,
        link: bool = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> Pid[Req, Rep]: ...
    @overload
    @classmethod
    async def start(
        cls,
        *args: Any,
        name: Name | None = ...,
        link: bool,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> Pid[Req, Rep]: ...
    @overload
    @classmethod
    async def start(
        cls,
        *args: Any,
        name: Name | None = ...,
        link: bool = ...,
        mailbox_size: int | None,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> Pid[Req, Rep]: ...
    @overload
    @classmethod
    async def start(
        cls,
        *args: Any,
        name: Name | None = ...,
        link: bool = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> Pid[Req, Rep]: ...
    @overload
    @classmethod
    async def start(
        cls,
        *args: Any,
        name: Name | None = ...,
        link: bool = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None,
        **kwargs: Any,
    ) -> Pid[Req, Rep]: ...
    @classmethod  # type: ignore[misc]  # the implementation's cls is the class; overload 1's a factory
    async def start(
        cls,
        *args: Any,
        name: Name | None = None,
        link: bool = False,
        mailbox_size: int | None = None,
        overflow: Overflow = Overflow.REJECT,
        timeout: float | None = 5.0,
        **kwargs: Any,
    ) -> Pid[Req, Rep]:
        """Spawn the server and wait until ``init(*args, **kwargs)`` has returned.

        If ``init`` raises or takes longer than ``timeout`` seconds (> 0;
        None or ``math.inf``: no limit), ``start`` raises ``StartError`` (its
        ``__cause__`` is the error, a ``TimeoutError`` for the timeout) and
        nothing is left running or registered; so too when the task calling
        ``start`` is cancelled (the ``CancelledError`` goes through).
        ``link=True`` links the server to the calling actor.

        Typed: returns a ``Pid[Req, Rep]``. mypy checks ``args`` and
        ``kwargs`` against ``init`` (the first overload); a call that also
        passes one of the options above matches the other overloads, which
        check the options but not ``init``'s arguments (PEP 612 allows no
        parameter after ``*args: P.args``).

        If ``init`` returns ``IGNORE``, the server has ended (its name is free
        again) when ``start`` returns None. The annotation says ``Pid``, the
        case of every server that never ignores; a caller of a server that
        may ignore checks ``if pid is None``.
        """
        pid = await start_server(
            cls(),
            args,
            kwargs,
            name=name,
            link=link,
            mailbox_size=mailbox_size,
            overflow=overflow,
            timeout=timeout,
            has_terminate=cls.terminate is not GenServer.terminate,
        )
        return cast("Pid", pid)  # None after IGNORE: see above

    @overload
    @classmethod
    def child_spec(cls: Callable[[], _Init[P]], *args: P.args, **kwargs: P.kwargs) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None,
        restart: Restart = ...,
        shutdown: ShutdownSetting | None = ...,
        backoff: Backoff | None = ...,
        name: Name | None = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = ...,
        restart: Restart,
        shutdown: ShutdownSetting | None = ...,
        backoff: Backoff | None = ...,
        name: Name | None = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = ...,
        restart: Restart = ...,
        shutdown: ShutdownSetting | None,
        backoff: Backoff | None = ...,
        name: Name | None = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = ...,
        restart: Restart = ...,
        shutdown: ShutdownSetting | None = ...,
        backoff: Backoff | None,
        name: Name | None = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = ...,
        restart: Restart = ...,
        shutdown: ShutdownSetting | None = ...,
        backoff: Backoff | None = ...,
        name: Name | None,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = ...,
        restart: Restart = ...,
        shutdown: ShutdownSetting | None = ...,
        backoff: Backoff | None = ...,
        name: Name | None = ...,
        mailbox_size: int | None,
        overflow: Overflow = ...,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = ...,
        restart: Restart = ...,
        shutdown: ShutdownSetting | None = ...,
        backoff: Backoff | None = ...,
        name: Name | None = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow,
        timeout: float | None = ...,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @overload
    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = ...,
        restart: Restart = ...,
        shutdown: ShutdownSetting | None = ...,
        backoff: Backoff | None = ...,
        name: Name | None = ...,
        mailbox_size: int | None = ...,
        overflow: Overflow = ...,
        timeout: float | None,
        **kwargs: Any,
    ) -> ChildSpec: ...
    @classmethod  # type: ignore[misc]  # the implementation's cls is the class; overload 1's a factory
    def child_spec(
        cls,
        *args: Any,
        id: Hashable | None = None,  # noqa: A002 - the contract's name, as in OTP
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **kwargs: Any,
    ) -> ChildSpec:
        """A child spec that starts this server linked to its supervisor.

        ``id`` defaults to the class name. Other keyword arguments (``name=``,
        ``mailbox_size=``, ... and ``init``'s own) go to ``start`` at every
        (re)start. ``backoff=`` and ``significant=`` are taken by the spec
        itself.

        Typed as ``start``: ``args`` and ``kwargs`` are checked against
        ``init`` when no option (``id=``, ``restart=``, ``name=``, ...) is
        passed; with options, only the options are.
        """
        backoff = kwargs.pop("backoff", None)
        significant = kwargs.pop("significant", False)
        start = functools.partial(cls.start, *args, link=True, **kwargs)
        extra: dict[str, Any] = {}
        if shutdown is not None:
            extra["shutdown"] = shutdown
        return ChildSpec(
            cls.__name__ if id is None else id,
            start,
            restart,
            type=cls._asyncotp_child_type,
            backoff=backoff,
            significant=significant,
            **extra,
        )
