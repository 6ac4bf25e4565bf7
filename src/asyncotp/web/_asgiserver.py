"""``AsgiServer``: an ASGI application served by uvicorn as a supervised child."""

from __future__ import annotations

import enum
import functools
import socket
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final

import attrs

from .._core import (
    ChildSpec,
    Pid,
    Restart,
    ShutdownSetting,
    call,
    deliver,
    on_exit,
    safe_repr,
    self_pid,
    validate,
)
from ..actors import Caller, GenServer
from ._uvicorn import LIFESPAN_GRACE, ASGIApp, AsgiStats, Runner, bind, check_options


class _Op(enum.Enum):
    STATISTICS = "statistics"


_SHUTDOWN_MARGIN: Final = 1.0
"""Seconds the supervisor waits beyond the drain and the lifespan grace
before it kills the server (the default ``shutdown`` of the child spec)."""


@attrs.frozen(eq=False)  # never compared: it carries a user error
class _ServingEnded:
    """uvicorn's task ended while the server was not stopping."""

    error: BaseException | None


class AsgiServer(GenServer):
    """An ASGI application served with uvicorn as a child of a supervisor.

    Example, a web service whose requests are worked on by a pool::

        app = Application("shop", [
            DeadLetterQueue.child_spec(name="dead_letters"),
            WorkerPool.child_spec(handle, dead_letters="dead_letters", name="work"),
            AsgiServer.child_spec(web_app, "0.0.0.0", 8080, shutdown_timeout=20.0),
        ])
        app.run()

    **Where to put it in the child list: after everything its requests
    use.** A supervisor starts its children in order and stops them in
    reverse order, so the server listed last starts accepting requests only
    once the pool and the queues are up, and at shutdown (SIGTERM to an
    ``Application``) it stops first: it stops accepting at once, lets the
    requests in flight finish while the pool behind them still runs, and
    only when it has ended does the supervisor stop the pool. Listed before
    the pool, the pool would be torn down under the requests still running.
    With ``Strategy.REST_FOR_ONE`` a restart of the pool also restarts the
    server behind it (refusing connections for that moment) instead of
    answering with errors; with ``ONE_FOR_ONE`` it keeps serving.

    **Start.** ``start`` (and so the supervisor's start of the child)
    returns once the socket listens and the application's lifespan startup
    has run. A port that is taken is a ``StartError`` naming the host and
    the port (a supervisor then stops the children it started and fails to
    start, so ``Application.run`` exits 1). ``port=0`` picks a free port:
    ``(await AsgiServer.statistics(pid)).port`` tells which.

    **Shutdown.** On ``SHUTDOWN`` (or ``stop``) the server closes its
    listening socket (new connections are refused), closes idle keep-alive
    connections, and gives the requests in flight ``shutdown_timeout``
    seconds; those still running then are cancelled. The log says
    ``stopped cleanly`` only when every request finished, and otherwise how
    many were cut (logger ``asyncotp``; events ``asgi_stopped``,
    ``asgi_drain_timeout``). The child spec's ``shutdown`` defaults to
    ``shutdown_timeout`` + 6 s, time for the drain and the application's
    lifespan shutdown, so the supervisor does not kill a server that is
    draining; keep the ``Application``'s ``shutdown_timeout`` above the sum
    of its children's. A ``KILL`` ends the server at once.

    **Crashes.** If uvicorn ends on its own (the lifespan startup failed
    on a restart, say), the server crashes with a ``RuntimeError`` and its
    supervisor restarts it like any child.

    Signals and logging are the program's: uvicorn installs no signal
    handlers and applies no logging configuration (see ``serve_asgi``,
    which runs the same code in a task group instead of a tree).
    """

    runner: Runner

    async def init(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        shutdown_timeout: float,
        access_log: bool,
        uvicorn_options: Mapping[str, Any] | None,
        on_shutdown: Callable[[], object] | None,
        sock: socket.socket,
    ) -> None:
        runner = Runner(
            app,
            host=host,
            port=port,
            shutdown_timeout=shutdown_timeout,
            access_log=access_log,
            uvicorn_options=uvicorn_options,
            on_shutdown=on_shutdown,
            where="AsgiServer",
            sock=sock,
        )
        self.runner = runner
        await runner.open()
        me = self_pid()
        on_exit(me, lambda _reason: runner.force())  # a KILL skips terminate
        serving = runner.serving
        if serving is not None:
            serving.add_done_callback(lambda task: self._ended(me, task))

    def _ended(self, me: Pid, task: Any) -> None:
        if self.runner.counter.draining:
            return
        error = None if task.cancelled() else task.exception()
        deliver(me, _ServingEnded(error))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request is _Op.STATISTICS:
            return self.runner.statistics()
        raise ValueError(
            f"AsgiServer on {self.runner.url}: unknown request {safe_repr(request)}; use "
            "AsgiServer.statistics(server)"
        )

    async def handle_info(self, message: Any) -> None:
        if type(message) is _ServingEnded:
            cause = message.error
            raise RuntimeError(
                f"AsgiServer on {self.runner.url}: uvicorn stopped on its own"
                + (f" ({safe_repr(cause)})" if cause is not None else "")
            ) from cause
        await super().handle_info(message)

    async def terminate(self, reason: Any) -> None:
        await self.runner.drain()

    # -- client side ----------------------------------------------------------

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        shutdown_timeout: float = 10.0,
        access_log: bool = True,
        uvicorn_options: Mapping[str, Any] | None = None,
        on_shutdown: Callable[[], object] | None = None,
        name: str | None = None,
        link: bool = False,
        timeout: float | None = 10.0,
    ) -> Pid:
        """Start serving ``app`` on ``host``:``port``; returns once it listens.

        ``timeout`` bounds the start (the application's lifespan startup
        included). The other arguments are ``serve_asgi``'s.
        """
        check_options(
            app, host, port, shutdown_timeout, uvicorn_options, on_shutdown, "AsgiServer.start"
        )
        # Bound here, in the caller, so that a taken port is this StartError
        # itself rather than the cause of init's.
        sock = bind(host, port, "AsgiServer")
        try:
            return await super().start(
                app,
                host,
                port,
                shutdown_timeout=shutdown_timeout,
                access_log=access_log,
                uvicorn_options=uvicorn_options,
                on_shutdown=on_shutdown,
                sock=sock,
                name=name,
                link=link,
                timeout=timeout,
            )
        except BaseException:
            sock.close()  # init failed (or never ran): nothing else will close it
            raise

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        shutdown_timeout: float = 10.0,
        id: Hashable = "asgi_server",  # noqa: A002 - the contract's name, as in OTP
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        access_log: bool = True,
        uvicorn_options: Mapping[str, Any] | None = None,
        on_shutdown: Callable[[], object] | None = None,
        name: str | None = None,
        timeout: float | None = 10.0,
    ) -> ChildSpec:
        """A child spec serving ``app``; list it after the children its
        requests use (see the class's docs).

        ``shutdown`` (the supervisor's patience) defaults to
        ``shutdown_timeout`` + 6 s: the drain, the lifespan shutdown, a margin.
        """
        seconds = check_options(
            app,
            host,
            port,
            shutdown_timeout,
            uvicorn_options,
            on_shutdown,
            "AsgiServer.child_spec",
        )
        validate.check_timeout(timeout, "AsgiServer.child_spec")
        start = functools.partial(
            cls.start,
            app,
            host,
            port,
            shutdown_timeout=seconds,
            access_log=access_log,
            uvicorn_options=uvicorn_options,
            on_shutdown=on_shutdown,
            name=name,
            link=True,
            timeout=timeout,
        )
        if shutdown is None:
            shutdown = seconds + LIFESPAN_GRACE + _SHUTDOWN_MARGIN
        return ChildSpec(id, start, restart, shutdown=shutdown)

    @staticmethod
    async def statistics(server: Pid | str, timeout: float | None = 5.0) -> AsgiStats:
        """Where ``server`` listens and what it has served so far."""
        stats: AsgiStats = await call(server, _Op.STATISTICS, timeout=timeout)
        return stats
