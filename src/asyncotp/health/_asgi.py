"""The health report over HTTP: a pure ASGI application, and a way to serve it.

``HealthApp(root)`` is an ASGI application with two routes:

* ``GET /health`` (liveness): 200 while the root supervisor runs, 503
  otherwise. It does not run the readiness checks, so it stays cheap.
* ``GET /ready`` (readiness): 200 only when the tree is live, no child is
  waiting to be restarted, and every readiness check passes; 503 otherwise.

Both answer with the JSON of the ``HealthReport`` (``HEAD`` gives the same
status without a body). It needs no web framework: mount it in any ASGI
framework, or serve it on its own with ``serve_health`` (which needs the
``asgi`` extra: ``pip install asyncotp[asgi]``, for uvicorn).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, TypeAlias

import anyio
from anyio.abc import TaskStatus

from .._core import (
    Node,
    Pid,
    is_supervisor,
    node_of,
    node_running,
    running_node,
    safe_repr,
    validate,
    whereis_on,
)
from ..web import serve_asgi
from ._report import _report, _watch_supervisor

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

_HEADERS: Final = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
]


class HealthApp:
    """An ASGI application serving ``/health`` and ``/ready`` for one tree.

    Example, with any ASGI framework (Starlette shown)::

        health = HealthApp("shop")             # the root supervisor's name or pid

        @contextlib.asynccontextmanager
        async def lifespan(app):
            async with asyncotp.node() as node:
                await shop.start()
                health.bind(node)
                yield

        app = Starlette(lifespan=lifespan, routes=[Mount("/ops", app=health)])
        # GET /ops/health, GET /ops/ready

    or on its own: ``await serve_health(health, port=8081)``.

    ``/health`` answers 200 while the root supervisor runs (even when it is
    too busy to answer in time: busy is not dead), 503 once it has stopped
    or given up. ``/ready`` answers 200 only when ``health_report`` finds
    the service ready. Both bodies are ``HealthReport.to_dict()`` as JSON.
    Other paths give 404, other methods 405.

    **Which node.** The app must reach the node that runs the tree. A pid
    carries its node; a name is looked up in the node the app was created
    in, or the one given to ``bind``, or the one running in the task that
    serves the request. Web frameworks often run requests in tasks that do
    not see the node started in their lifespan: create the app inside the
    node, or ``bind`` it. Until it has a node, the app answers 503.

    Mounted under a prefix, the app honours ``root_path`` (and also accepts
    paths that still carry the prefix). ``timeout`` bounds each report.
    """

    def __init__(
        self,
        root: Pid | str,
        *,
        timeout: float = 2.0,
        health_path: str = "/health",
        ready_path: str = "/ready",
    ) -> None:
        validate.pid_or_name(
            root, "root", where="HealthApp", expected="the root supervisor's Pid or registered name"
        )
        seconds = validate.duration(timeout, "timeout", where="HealthApp")  # finite: a bound
        for label, path in (("health_path", health_path), ("ready_path", ready_path)):
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"HealthApp: {label} must start with '/', not {safe_repr(path)}")
        self.root = root
        self.timeout = seconds
        self.health_path = health_path
        self.ready_path = ready_path
        self._node: Node | None = node_of(root) if type(root) is Pid else running_node()
        if self._node is not None:
            self._watch()

    def __repr__(self) -> str:
        return f"HealthApp({self.root!r}, timeout={self.timeout!r})"

    def bind(self, node: Node) -> HealthApp:
        """Use ``node`` to look up the root; returns the app itself."""
        validate.instance(node, Node, "node", where="HealthApp.bind")
        self._node = node
        self._watch()
        return self

    def _watch(self) -> None:
        """Learn the root's pid now, so that a root that ends before the first
        request is still reported as "gave up" rather than just "down"."""
        node = self._node
        if node is None or not node_running(node):
            return
        pid = self.root if type(self.root) is Pid else whereis_on(node, self.root)
        if pid is not None and is_supervisor(pid):
            _watch_supervisor(pid)

    def _current_node(self) -> Node | None:
        bound = self._node
        if bound is not None and node_running(bound):
            return bound
        running = running_node()
        if running is not None:
            self._node = running
            return running
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})

    def _route(self, scope: Scope) -> str:
        path: str = scope.get("path", "/")
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if len(path) > 1:
            path = path.rstrip("/")
        return path or "/"

    async def _http(self, scope: Scope, send: Send) -> None:
        path = self._route(scope)
        if path not in (self.health_path, self.ready_path):
            await _respond(
                send,
                404,
                {"error": f"not found; try {self.health_path} or {self.ready_path}"},
                scope,
            )
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond(
                send, 405, {"error": "method not allowed; use GET"}, scope, allow=b"GET, HEAD"
            )
            return
        node = self._current_node()
        if node is None:
            await _respond(
                send,
                503,
                {
                    "status": "down",
                    "live": False,
                    "ready": False,
                    "error": "no asyncotp node is running for this HealthApp; create it inside "
                    "the node, or call app.bind(node)",
                },
                scope,
            )
            return
        readiness = path == self.ready_path
        try:
            report = await _report(node, self.root, checks=readiness, timeout=self.timeout)
        except TypeError as exc:
            await _respond(send, 500, {"status": "error", "error": str(exc)}, scope)
            return
        ok = report.ready if readiness else report.live
        await _respond(send, 200 if ok else 503, report.to_dict(), scope)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(
    send: Send, status: int, body: dict[str, Any], scope: Scope, allow: bytes | None = None
) -> None:
    payload = json.dumps(body, default=safe_repr).encode()
    headers = [*_HEADERS, (b"content-length", str(len(payload)).encode())]
    if allow is not None:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    head = scope.get("method") == "HEAD"
    await send({"type": "http.response.body", "body": b"" if head else payload})


async def serve_health(
    app: HealthApp | Pid | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    shutdown_timeout: float = 5.0,
    access_log: bool = True,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a ``HealthApp`` (or one made for the root ``app``) with uvicorn,
    in the running event loop, until cancelled.

    Needs uvicorn (``pip install asyncotp[asgi]``). ``port=0`` picks a free
    port. The socket is bound and listening before ``serve_health`` reports
    that it has started, so a client can connect at once::

        async with anyio.create_task_group() as tg:
            port = await tg.start(serve_health, root, port=0)   # the bound port
            ...
            tg.cancel_scope.cancel()

    It can also run as an actor: ``spawn(functools.partial(serve_health,
    "shop", port=8081))``; it stops when the actor is told to (at the node's
    shutdown, for instance); in a supervision tree, use
    ``AsgiServer.child_spec(HealthApp(root), port=8081)``. Cancelling it
    shuts the server down gracefully: it stops accepting, lets the requests
    under way finish (up to ``shutdown_timeout`` seconds), and closes. It
    runs on ``serve_asgi``, whose docs say more; a taken port is a
    ``StartError`` naming the host and the port.

    Logging and signals stay the program's: uvicorn's logging configuration
    is not applied and its signal handlers are not installed (so
    ``Application.run`` keeps its own). uvicorn logs on its own loggers as
    usual (``uvicorn.error``; every request on ``uvicorn.access``, which you
    may want to quieten with ``access_log=False`` when an orchestrator
    probes often).
    """
    if not isinstance(app, HealthApp):
        app = HealthApp(app)
    await serve_asgi(
        app,
        host,
        port,
        shutdown_timeout=shutdown_timeout,
        access_log=access_log,
        task_status=task_status,
    )
