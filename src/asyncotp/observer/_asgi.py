"""The live dashboard: a pure ASGI application, and a way to serve it.

``DashboardApp(root=None)`` serves, relative to where it is mounted:

* ``GET /``: the page (plain HTML, CSS and JavaScript shipped in the
  package, nothing fetched from elsewhere): the supervision trees drawn as
  trees, updated live, restarts flashing, a child's details on click, the
  busiest actors and a sparkline of restarts over time.
* ``GET /api/snapshot``: ``snapshot().to_dict()`` as JSON.
* ``GET /api/events``: server-sent events, one ``snapshot`` event (the same
  JSON) every ``interval`` seconds, and at once when a supervisor reports a
  crash or a restart.

It needs no web framework: mount it in any ASGI framework next to
``HealthApp``, or serve it on its own with ``serve_dashboard`` (which needs
the ``asgi`` extra: ``pip install asyncotp[asgi]``, for uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any, Final, TypeAlias

import anyio
from anyio.abc import TaskStatus

from .._core import ActorError, Node, Pid, node_of, node_running, now, running_node, validate
from ..web import serve_asgi
from ._reports import on_supervisor_report, waker
from ._snapshot import snapshot

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

_STATIC: Final = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/static/dashboard.css": ("dashboard.css", b"text/css; charset=utf-8"),
    "/static/dashboard.js": ("dashboard.js", b"text/javascript; charset=utf-8"),
}
_SNAPSHOT_PATH: Final = "/api/snapshot"
_EVENTS_PATH: Final = "/api/events"
_NO_NODE: Final = (
    "no asyncotp node is running for this DashboardApp; create it inside the node, or call "
    "app.bind(node)"
)


def _static(filename: str) -> bytes:
    return resources.files("asyncotp.observer").joinpath("static", filename).read_bytes()


class DashboardApp:
    """An ASGI application: a live web dashboard of the node's supervision trees.

    Example, next to the health endpoints (Starlette shown)::

        dashboard = DashboardApp()               # every tree of the node
        health = HealthApp("shop")

        @contextlib.asynccontextmanager
        async def lifespan(app):
            async with asyncotp.node() as node:
                await shop.start()
                dashboard.bind(node)
                health.bind(node)
                yield

        app = Starlette(lifespan=lifespan, routes=[
            Mount("/ops/dashboard", app=dashboard), Mount("/ops", app=health),
        ])

    or on its own: ``await serve_dashboard(port=8765)``, then open
    ``http://127.0.0.1:8765/``.

    ``root`` (a supervisor's pid or registered name) shows only the tree
    under it; None shows every tree of the node. ``interval`` is the period
    of the event stream (a supervisor's report pushes a snapshot at once
    besides); ``timeout`` bounds each snapshot (a supervisor that does not
    answer in time shows as unresponsive).

    **Which node.** As ``HealthApp``: a pid carries its node; otherwise the
    app uses the node it was created in, or the one given to ``bind``, or the
    one running in the task that serves the request. Until it has one, it
    answers 503. Mounted under a prefix, the app honours ``root_path``; the
    page uses relative links, so it works under any prefix.

    The page and the JSON say what the actors are; serve them on a loopback
    or an internal address only, as any operations endpoint.
    """

    def __init__(
        self, root: Pid | str | None = None, *, interval: float = 0.5, timeout: float = 1.0
    ) -> None:
        if root is not None:
            validate.pid_or_name(
                root, "root", where="DashboardApp", expected="None or a supervisor's Pid or name"
            )
        self.root = root
        self.interval = validate.duration(interval, "interval", where="DashboardApp")
        self.timeout = validate.duration(timeout, "timeout", where="DashboardApp")
        self._node: Node | None = node_of(root) if type(root) is Pid else running_node()
        self._streams: set[Callable[[], None]] = set()
        self._generation = 0
        self._reports = 0  # supervisor reports heard by the streams
        self._latest: tuple[Node, int, float, bytes] | None = None
        self._files: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"DashboardApp({self.root!r}, interval={self.interval!r})"

    def bind(self, node: Node) -> DashboardApp:
        """Show ``node``; returns the app itself."""
        validate.instance(node, Node, "node", where="DashboardApp.bind")
        self._node = node
        return self

    def close(self) -> None:
        """End the event streams open now (a server shutting down calls it,
        so that it need not wait for the browsers to go away). The app keeps
        serving: a browser reconnects to a new stream."""
        self._generation += 1
        for wake in list(self._streams):
            wake()

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
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send, self)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})

    def _route(self, scope: Scope) -> str:
        path: str = scope.get("path", "/")
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if path in ("", "/index.html"):
            return "/"
        if len(path) > 1:
            path = path.rstrip("/")
        return path or "/"

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = self._route(scope)
        known = path in _STATIC or path in (_SNAPSHOT_PATH, _EVENTS_PATH)
        if not known:
            await _respond_json(send, 404, {"error": "not found; the dashboard is at /"}, scope)
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond_json(
                send, 405, {"error": "method not allowed; use GET"}, scope, allow=b"GET, HEAD"
            )
            return
        if path in _STATIC:
            raw: str = scope.get("path", "/")
            if path == "/" and not raw.endswith(("/", "/index.html")):
                # Mounted at /ops/dashboard and asked for it without the slash:
                # the page's relative links need the slash.
                query: bytes = scope.get("query_string", b"")
                location = raw + "/" + ("?" + query.decode("latin-1") if query else "")
                await _respond(send, 307, b"", b"text/plain", scope, location=location.encode())
                return
            filename, content_type = _STATIC[path]
            body = self._files.get(filename)
            if body is None:
                body = self._files[filename] = _static(filename)
            await _respond(send, 200, body, content_type, scope)
            return
        node = self._current_node()
        if node is None:
            await _respond_json(send, 503, {"error": _NO_NODE}, scope)
            return
        if path == _SNAPSHOT_PATH:
            try:
                snap = await snapshot(node, root=self.root, timeout=self.timeout)
            except (TypeError, ActorError) as exc:
                await _respond_json(send, 500, {"error": str(exc)}, scope)
                return
            await _respond_json(send, 200, snap.to_dict(), scope)
            return
        await self._events(scope, receive, send, node)

    async def _events(self, scope: Scope, receive: Receive, send: Send, node: Node) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # no proxy buffering (nginx)
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        wake = asyncio.Event()
        wake_stream = waker(wake)

        def listener() -> None:
            self._reports += 1
            wake_stream()

        generation = self._generation
        self._streams.add(listener)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
                with on_supervisor_report(listener):
                    await send(_frame(None, {"interval": self.interval}, retry=1000))
                    while generation == self._generation and node_running(node):
                        wake.clear()
                        try:
                            body = await self._snapshot_event(node)
                        except (TypeError, ActorError) as exc:
                            await send(_frame("failure", {"error": str(exc)}))
                            break
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                        with anyio.move_on_after(self.interval):
                            await wake.wait()
                tg.cancel_scope.cancel()
        finally:
            self._streams.discard(listener)
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b""})

    async def _snapshot_event(self, node: Node) -> bytes:
        """A ``snapshot`` event. Streams share the latest one while it is less
        than half an interval old and no supervisor has reported since, so
        that many open pages do not each ask every supervisor every tick."""
        latest = self._latest
        clock = now()
        if (
            latest is not None
            and latest[0] is node
            and latest[1] == self._reports
            and clock - latest[2] < self.interval / 2
        ):
            return latest[3]
        reports = self._reports
        snap = await snapshot(node, root=self.root, timeout=self.timeout)
        body: bytes = _frame("snapshot", snap.to_dict())["body"]
        self._latest = (node, reports, clock, body)
        return body


def _frame(event: str | None, data: dict[str, Any], retry: int | None = None) -> Message:
    """One server-sent event, as an ASGI body chunk."""
    lines = []
    if retry is not None:
        lines.append(f"retry: {retry}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, default=repr, separators=(",", ":")))
    text = "\n".join(lines) + "\n\n"
    return {"type": "http.response.body", "body": text.encode(), "more_body": True}


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive()).get("type") != "http.disconnect":
        pass
    scope.cancel()


async def _lifespan(receive: Receive, send: Send, app: DashboardApp) -> None:
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            app.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    scope: Scope,
    *,
    allow: bytes | None = None,
    location: bytes | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
    ]
    if allow is not None:
        headers.append((b"allow", allow))
    if location is not None:
        headers.append((b"location", location))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    head = scope.get("method") == "HEAD"
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _respond_json(
    send: Send, status: int, body: dict[str, Any], scope: Scope, allow: bytes | None = None
) -> None:
    payload = json.dumps(body, default=repr).encode()
    await _respond(send, status, payload, b"application/json", scope, allow=allow)


async def serve_dashboard(
    app: DashboardApp | Pid | str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    shutdown_timeout: float = 5.0,
    access_log: bool = True,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a ``DashboardApp`` (or one made for the root ``app``: None for
    every tree) with uvicorn, in the running event loop, until cancelled.

    Needs uvicorn (``pip install asyncotp[asgi]``). ``port=0`` picks a free
    port; the socket listens before ``serve_dashboard`` reports the bound
    port, so a browser can connect at once::

        async with anyio.create_task_group() as tg:
            port = await tg.start(serve_dashboard, None, port=0)
            print(f"http://127.0.0.1:{port}/")

    It can run as an actor: ``spawn(functools.partial(serve_dashboard,
    port=8765))`` stops with the node. Cancelling it ends the open event
    streams and shuts the server down gracefully. As ``serve_health``, it
    leaves logging and signals to the program (uvicorn logs each request on
    ``uvicorn.access`` unless ``access_log=False``). It runs on
    ``serve_asgi``; in a supervision tree use
    ``AsgiServer.child_spec(DashboardApp(), port=8765,
    on_shutdown=...)``, passing the app's ``close`` as ``on_shutdown``.
    """
    if not isinstance(app, DashboardApp):
        app = DashboardApp(app)
    await serve_asgi(
        app,
        host,
        port,
        shutdown_timeout=shutdown_timeout,
        access_log=access_log,
        on_shutdown=app.close,
        task_status=task_status,
    )
