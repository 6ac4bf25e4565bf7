"""uvicorn as a part of the program: bound up front, stopped by the tree.

One implementation of "run an ASGI application with uvicorn inside an
asyncotp program", shared by ``serve_asgi`` (a coroutine for a task group
or an actor), ``AsgiServer`` (the supervised child) and the health and
dashboard servers built on them. What it does that ``uvicorn.run`` or a bare
``Server.serve()`` does not:

* the listening socket is bound before anything reports "started", so a
  port that is taken is a ``StartError`` naming the host and the port, and
  ``port=0`` reports the port it got;
* uvicorn installs no signal handlers and applies no logging configuration:
  signals are the program's (``Application.run`` owns SIGINT and SIGTERM);
* on shutdown the listening socket is closed at once (new connections are
  refused), idle keep-alive connections are closed, and the requests in
  flight get up to ``shutdown_timeout`` seconds to finish; the requests
  that were still running then are cancelled and counted, and the log says
  "stopped cleanly" only when none was;
* a failed lifespan startup (uvicorn's ``sys.exit``) is an error of the
  server, never a ``SystemExit`` that would end the whole program.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import anyio
import attrs
from anyio.abc import TaskStatus

from .._core import StartError, now, safe_repr, validate

if TYPE_CHECKING:
    import uvicorn

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("asyncotp")

LIFESPAN_GRACE: Final = 5.0
"""Seconds the application's lifespan shutdown gets after the drain, before
the server is forced; ``AsgiServer.child_spec`` adds it (and a little more)
to ``shutdown_timeout`` for the supervisor's own shutdown time."""

_RESERVED: Final = frozenset(
    {"app", "host", "port", "uds", "fd", "log_config", "timeout_graceful_shutdown", "access_log"}
)
"""uvicorn options the runner sets itself; ``uvicorn_options`` may not."""


@attrs.frozen
class AsgiStats:
    """What an ASGI server run by asyncotp has done so far (a frozen record).

    ``host`` and ``port`` are where it listens (the port it got when asked
    for port 0); ``accepting`` is False once its shutdown has begun;
    ``in_flight`` counts HTTP requests and websocket sessions under way;
    ``handled`` those that ended (with any status); ``cut`` those cancelled
    because the drain ran out of time.
    """

    host: str
    port: int
    accepting: bool
    in_flight: int
    handled: int
    cut: int


class _Counter:
    """An ASGI wrapper that counts requests in flight, and those cut."""

    __slots__ = ("_app", "cut", "draining", "handled", "in_flight")

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.in_flight = 0
        self.handled = 0
        self.cut = 0
        self.draining = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._app(scope, receive, send)
        except asyncio.CancelledError:
            if self.draining:
                self.cut += 1
            raise
        finally:
            self.in_flight -= 1
            self.handled += 1


@contextlib.contextmanager
def _no_signal_capture() -> Iterator[None]:
    """uvicorn's ``capture_signals`` replaced: the program owns its signals."""
    yield


def _import_uvicorn(where: str) -> Any:
    try:
        import uvicorn  # noqa: PLC0415 - optional dependency (the asgi extra)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{where} needs uvicorn: pip install 'asyncotp[asgi]' (or serve the application "
            "with the ASGI server of your choice)"
        ) from exc
    return uvicorn


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_options(
    app: object,
    host: object,
    port: object,
    shutdown_timeout: object,
    uvicorn_options: Mapping[str, Any] | None,
    on_shutdown: object,
    where: str,
) -> float:
    """Validate the runner's arguments (before anything starts); returns
    ``shutdown_timeout`` as a float."""
    if not callable(app):
        raise TypeError(
            f"{where}: app must be an ASGI application (an async callable taking scope, "
            f"receive, send), not {safe_repr(app)}"
        )
    validate.text(host, "host", where=where)
    if type(port) is not int or not 0 <= port <= 65535:
        raise ValueError(
            f"{where}: port must be an int from 0 (any free port) to 65535, not {safe_repr(port)}"
        )
    seconds = validate.duration(shutdown_timeout, "shutdown_timeout", where=where, zero=True)
    if uvicorn_options is not None:
        if not isinstance(uvicorn_options, Mapping):
            raise TypeError(
                f"{where}: uvicorn_options must be a mapping of uvicorn.Config arguments, "
                f"not {safe_repr(uvicorn_options)}"
            )
        taken = sorted(str(key) for key in uvicorn_options if key in _RESERVED)
        if taken:
            raise ValueError(
                f"{where}: uvicorn_options may not set {', '.join(taken)}; use {where}'s own "
                "arguments (host, port, shutdown_timeout, access_log)"
            )
    if on_shutdown is not None and (
        not callable(on_shutdown) or validate.is_async_callable(on_shutdown)
    ):
        raise TypeError(
            f"{where}: on_shutdown must be a plain function (it is called, not awaited, when "
            f"the drain begins), not {safe_repr(on_shutdown)}"
        )
    return seconds


def bind(host: str, port: int, where: str) -> socket.socket:
    """The listening socket, or a ``StartError`` naming the host and the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        detail = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = (
            "another program (or another server of this one) listens there; stop it or "
            "choose another port (port=0 picks a free one)"
            if exc.errno in _ADDRESS_IN_USE
            else "check that the host is an address of this machine"
        )
        raise StartError(
            f"{where} could not listen on {host}:{port}: {detail}; {hint}", exc
        ) from exc


class Runner:
    """One uvicorn server: ``open`` binds and starts it, ``drain`` stops it
    gracefully, ``force`` ends it at once (idempotent, synchronous)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        shutdown_timeout: float,
        access_log: bool = True,
        uvicorn_options: Mapping[str, Any] | None = None,
        on_shutdown: Callable[[], object] | None = None,
        where: str = "serve_asgi",
        sock: socket.socket | None = None,
    ) -> None:
        self.shutdown_timeout = check_options(
            app, host, port, shutdown_timeout, uvicorn_options, on_shutdown, where
        )
        self.host = host
        self.port = port
        self.where = where
        self.counter = _Counter(app)
        self.on_shutdown = on_shutdown
        self._access_log = access_log
        self._options = dict(uvicorn_options or {})
        self._sock = sock  # bound by the caller (AsgiServer.start), or by open()
        self._server: uvicorn.Server | None = None
        self.serving: asyncio.Task[None] | None = None
        self.accepting = False

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    def statistics(self) -> AsgiStats:
        counter = self.counter
        return AsgiStats(
            host=self.host,
            port=self.port,
            accepting=self.accepting,
            in_flight=counter.in_flight,
            handled=counter.handled,
            cut=counter.cut,
        )

    async def open(self) -> int:
        """Bind, start uvicorn, and return once it accepts connections (after
        the application's lifespan startup); returns the bound port."""
        uvicorn = _import_uvicorn(self.where)
        sock = self._sock
        if sock is None:
            sock = self._sock = bind(self.host, self.port, self.where)
        self.port = sock.getsockname()[1]
        started = asyncio.Event()
        try:
            config = uvicorn.Config(
                self.counter,
                host=self.host,
                port=self.port,
                log_config=None,
                access_log=self._access_log,
                timeout_graceful_shutdown=self.shutdown_timeout,
                **{"lifespan": "auto", **self._options},
            )
            server = uvicorn.Server(config)
            server.capture_signals = _no_signal_capture
            original_startup = server.startup

            async def startup(sockets: list[socket.socket] | None = None) -> None:
                await original_startup(sockets=sockets)
                if server.started:
                    started.set()

            server.startup = startup
            self._server = server
            self.serving = asyncio.ensure_future(self._serve(server, sock))
        except BaseException:
            sock.close()
            raise
        waiter = asyncio.ensure_future(started.wait())
        try:
            await asyncio.wait((waiter, self.serving), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self.force()
            raise
        finally:
            waiter.cancel()
        if not started.is_set():
            error = self.serving.exception() if not self.serving.cancelled() else None
            self.force()
            raise StartError(
                f"{self.where} on {self.url} failed to start: "
                f"{safe_repr(error) if error is not None else 'uvicorn ended at once'}",
                error,
            ) from error
        self.accepting = True
        logger.info(
            "ASGI server listening on %s",
            self.url,
            extra={"event": "asgi_started", "url": self.url},
        )
        return self.port

    async def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit:
            # uvicorn ends a failed lifespan startup with sys.exit: an error of
            # this server, not of the program.
            raise RuntimeError(
                f"the application's lifespan startup failed on {self.url} (uvicorn's log on "
                "'uvicorn.error' says why)"
            ) from None
        finally:
            self.accepting = False
            sock.close()

    def _stop_accepting(self) -> None:
        self.accepting = False
        server = self._server
        if server is not None:
            for listener in getattr(server, "servers", ()):
                listener.close()
        if self._sock is not None:
            self._sock.close()

    async def drain(self) -> bool:
        """Stop accepting, let the requests in flight finish within
        ``shutdown_timeout`` seconds, cut the rest; True when none was cut.

        Not shielded: a caller that is cancelled (a ``KILL``) forces the
        server at once and the cancellation goes on."""
        server, serving = self._server, self.serving
        if server is None or serving is None or serving.done():
            self.force()
            return True
        counter = self.counter
        counter.draining = True
        self._stop_accepting()
        waiting = counter.in_flight
        logger.info(
            "ASGI server on %s shutting down: stopped accepting new connections; draining %d "
            "request(s) in flight (up to %s s)",
            self.url,
            waiting,
            _seconds(self.shutdown_timeout),
            extra={"event": "asgi_draining", "url": self.url, "in_flight": waiting},
        )
        if self.on_shutdown is not None:
            try:
                self.on_shutdown()
            except Exception as exc:  # noqa: BLE001 - a hook's error must not stop the drain
                logger.error(  # noqa: TRY400 - the error is in the message
                    "ASGI server on %s: on_shutdown raised %s; draining anyway",
                    self.url,
                    safe_repr(exc),
                )
        started = now()
        server.should_exit = True
        try:
            await asyncio.wait((serving,), timeout=self.shutdown_timeout + LIFESPAN_GRACE)
        except BaseException:
            self.force()
            raise
        forced = not serving.done()
        if forced:
            self.force()
            await asyncio.wait((serving,), timeout=1.0)  # the cancellation force() sent
        cut = counter.cut + counter.in_flight
        elapsed = now() - started
        extra = {"url": self.url, "drained": waiting - cut, "cut": cut}
        if cut == 0 and not forced:
            logger.info(
                "ASGI server on %s stopped cleanly (%d request(s) drained in %.2f s)",
                self.url,
                waiting,
                elapsed,
                extra={"event": "asgi_stopped", **extra},
            )
            return True
        if forced:
            logger.error(
                "ASGI server on %s did not stop within %s s (the application's lifespan "
                "shutdown hung?): forced, %d request(s) cut",
                self.url,
                _seconds(self.shutdown_timeout + LIFESPAN_GRACE),
                cut,
                extra={"event": "asgi_forced", **extra},
            )
        else:
            logger.warning(
                "ASGI server on %s: the drain timed out after %s s; %d request(s) cut, %d "
                "finished; give it a longer shutdown_timeout if they should have finished",
                self.url,
                _seconds(self.shutdown_timeout),
                cut,
                max(waiting - cut, 0),
                extra={"event": "asgi_drain_timeout", **extra},
            )
        return False

    def force(self) -> None:
        """End the server at once: listeners closed, requests cancelled."""
        self._stop_accepting()
        server, serving = self._server, self.serving
        if server is not None:
            server.should_exit = True
            server.force_exit = True
        if serving is not None and not serving.done():
            serving.cancel()
            _end_lifespan(server)


def _end_lifespan(server: Any) -> None:
    """Tell the application's lifespan to end (uvicorn skips it when forced),
    so that its task does not wait forever; nothing waits for the answer."""
    lifespan = getattr(server, "lifespan", None)
    queue = getattr(lifespan, "receive_queue", None)
    started = getattr(lifespan, "startup_event", None)
    ended = getattr(lifespan, "shutdown_event", None)
    if queue is None or started is None or ended is None:
        return  # no lifespan protocol (lifespan="off"), or another uvicorn
    if started.is_set() and not ended.is_set() and not getattr(lifespan, "error_occurred", True):
        queue.put_nowait({"type": "lifespan.shutdown"})


_ADDRESS_IN_USE: Final = frozenset({98, 48, 10048})
"""EADDRINUSE on Linux, macOS and Windows."""


def _seconds(value: float) -> str:
    return "no limit" if math.isinf(value) else f"{value:g}"


async def serve_asgi(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    shutdown_timeout: float = 10.0,
    access_log: bool = True,
    uvicorn_options: Mapping[str, Any] | None = None,
    on_shutdown: Callable[[], object] | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI application ``app`` with uvicorn, in the running event
    loop, until cancelled; then drain it gracefully.

    Needs uvicorn (``pip install 'asyncotp[asgi]'``). The socket is bound
    and uvicorn has run the application's lifespan startup before
    ``serve_asgi`` reports the port (``port=0`` picks a free one), so a
    client can connect at once::

        async with anyio.create_task_group() as tg:
            port = await tg.start(serve_asgi, app, "127.0.0.1", 0)
            ...
            tg.cancel_scope.cancel()    # drains, then returns

    In a supervision tree use ``AsgiServer.child_spec(app, ...)``, which
    runs the same code as a supervised child.

    A port that is taken (or a host that is not this machine's) raises
    ``StartError`` naming the host and the port. Cancellation stops the
    server gracefully: the listening socket closes at once (new connections
    are refused), idle keep-alive connections close, the requests in flight
    get ``shutdown_timeout`` seconds to finish (0: none), the rest are
    cancelled and counted in the log; then the application's lifespan
    shutdown runs. The drain is shielded from the cancellation that asked
    for it and bounded (``shutdown_timeout`` plus 5 s for the lifespan).
    ``on_shutdown()`` is called when the drain begins: end server-sent
    event streams and websockets there, or they are cut at the deadline.

    Signals and logging stay the program's: uvicorn installs no signal
    handlers (``Application.run`` owns SIGINT and SIGTERM) and applies no
    logging configuration; it logs on ``uvicorn.error``, and every request
    on ``uvicorn.access`` unless ``access_log=False``. ``uvicorn_options``
    are further ``uvicorn.Config`` arguments (``lifespan``, ``http``,
    ``limit_concurrency``, ``proxy_headers``, ...). If uvicorn ends on its
    own (its lifespan startup failed, say), ``serve_asgi`` raises
    ``RuntimeError`` (``StartError`` if it had not yet started).
    """
    runner = Runner(
        app,
        host=host,
        port=port,
        shutdown_timeout=shutdown_timeout,
        access_log=access_log,
        uvicorn_options=uvicorn_options,
        on_shutdown=on_shutdown,
    )
    bound = await runner.open()
    serving = runner.serving
    assert serving is not None
    try:
        task_status.started(bound)
        await asyncio.shield(serving)
    except BaseException:
        if not serving.done():
            with anyio.CancelScope(shield=True):
                await runner.drain()
        raise
    finally:
        runner.force()
    raise RuntimeError(f"serve_asgi: the ASGI server on {runner.url} stopped on its own")
