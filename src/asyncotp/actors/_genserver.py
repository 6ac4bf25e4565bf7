"""GenServer: the client/server behaviour, with ``call``, ``cast`` and ``stop``.

This module holds the class users subclass: its default callbacks, ``start``
and ``child_spec``. The loop that runs the callbacks, and ``call``, ``cast``
and ``stop``, are the runtime's (``asyncotp._core._server``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ClassVar, Generic, ParamSpec, Protocol, overload

from .._core import (
    Backoff,
    Caller,
    ChildSpec,
    ChildType,
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
      ``StartError``.
    * ``handle_call(request, caller)``: its return value is the reply.
      Return ``NOREPLY`` to answer later with ``caller.reply(value)``.
      ``raise Stop(reason, reply=value)`` replies, then stops.
    * ``handle_cast(request)``: fire-and-forget requests.
    * ``handle_info(message)``: every other message (``send``, ``Down``,
      ``Exited``, timers). The default logs and drops it.
    * ``terminate(reason)``: runs when the server stops (``Stop``, a crash in
      a callback, a shutdown from its supervisor, ``stop()``), not after
      ``KILL``.

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

    async def init(self, *args: Any, **kwargs: Any) -> None:
        """Set up the server's state; the default accepts no arguments."""
        if args or kwargs:
            raise TypeError(
                f"{type(self).__qualname__}.init takes the arguments given to start() "
                f"({safe_repr(args)}, {safe_repr(kwargs)}); define `async def init(self, ...)` "
                "to accept them"
            )

    async def handle_call(self, request: Req, caller: Caller) -> Rep | NoReply:
        """Answer a ``call``; the default crashes the server, as Elixir's does."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received the call {safe_repr(request)} but defines no "
            "handle_call; define `async def handle_call(self, request, caller)`"
        )

    async def handle_cast(self, request: Any) -> None:
        """Handle a ``cast``; the default crashes the server, as Elixir's does."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received the cast {safe_repr(request)} but defines no "
            "handle_cast; define `async def handle_cast(self, request)`"
        )

    async def handle_info(self, message: Any) -> None:
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

    async def terminate(self, reason: Any) -> None:
        """Clean up when the server stops; the default does nothing."""

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
        """
        return await start_server(
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
