"""A web service inside the supervision tree, stopped without losing a request.

    pip install -e ".[asgi]"
    python examples/web_service.py --port 8080

then try ``curl 'http://127.0.0.1:8080/work?ms=500'``, open
http://127.0.0.1:8080/dashboard/ (the live tree), or read
http://127.0.0.1:8080/ops/ready; Ctrl-C or ``kill -TERM`` stops it.

The tree, in start order (a supervisor stops its children in reverse):

    web_service (Application, one_for_one)
    |-- dead_letters   a DeadLetterQueue: jobs the pool could not finish
    |-- work           a WorkerPool: the work behind each request
    `-- http           an AsgiServer (uvicorn) serving the app below

The server is listed last on purpose: it starts accepting only once the
pool is up, and on SIGTERM it stops first. It closes its listening socket at
once (new connections are refused), lets every request in flight finish, the
pool still running behind them, and only then does the supervisor stop the
pool. Listed first, the pool would be torn down under requests still running,
which would get 503s.

Routes (a pure ASGI app: no web framework needed):

* ``GET /work?ms=N``: runs a job in the pool that takes N milliseconds;
  answers 200 with its result, or 503 if the pool is gone;
* ``GET /ops/health`` and ``/ops/ready``: the ``HealthApp`` of the tree;
* ``GET /dashboard/``: the live ``DashboardApp``;
* ``GET /stats``: the server's and the pool's statistics as JSON.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import anyio
import attrs

from asyncotp import (
    Application,
    AsgiServer,
    DashboardApp,
    DeadLetterQueue,
    HealthApp,
    NoProcess,
    Overloaded,
    ServerExited,
    WorkerPool,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NAME = "web_service"
MAX_WORK_MS = 10_000


async def work(ms: int) -> dict[str, int]:
    """The job a request hands to the pool: here, just time spent."""
    await anyio.sleep(ms / 1000)
    return {"slept_ms": ms}


async def respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class Service:
    """The service's ASGI app: its own routes, and two apps mounted by prefix."""

    def __init__(self) -> None:
        # Created outside the node: each finds the node running on the event
        # loop of the request it serves.
        self.health = HealthApp(NAME)
        self.dashboard = DashboardApp(NAME)
        self.mounts: list[tuple[str, ASGIApp]] = [
            ("/ops", self.health),
            ("/dashboard", self.dashboard),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        path: str = scope["path"]
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                # ASGI mounting: the prefix moves to root_path, path stays whole.
                mounted = {**scope, "root_path": scope.get("root_path", "") + prefix}
                await app(mounted, receive, send)
                return
        if scope["type"] != "http":
            return
        if path == "/work":
            await self.work(scope, send)
        elif path == "/stats":
            server = await AsgiServer.statistics("http")
            pool = await WorkerPool.statistics("work")
            await respond(send, 200, {"server": attrs.asdict(server), "pool": attrs.asdict(pool)})
        elif path == "/":
            await respond(send, 200, {"routes": ["/work?ms=N", "/ops/health", "/ops/ready",
                                                 "/dashboard/", "/stats"]})  # fmt: skip
        else:
            await respond(send, 404, {"error": f"no route {path}; try /"})

    async def work(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            ms = int(query.get("ms", ["0"])[0])
        except ValueError:
            ms = -1
        if not 0 <= ms <= MAX_WORK_MS:
            await respond(send, 400, {"error": f"ms must be an int from 0 to {MAX_WORK_MS}"})
            return
        try:
            result = await WorkerPool.run("work", ms)
        except Overloaded as exc:
            await respond(send, 429, {"error": str(exc)})
        except (NoProcess, ServerExited) as exc:  # the pool is gone: what ordering prevents
            await respond(send, 503, {"error": f"the worker pool is not running: {exc}"})
        else:
            await respond(send, 200, result)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def application(host: str, port: int, shutdown_timeout: float) -> Application:
    service = Service()
    return Application(
        NAME,
        [
            DeadLetterQueue.child_spec(id="dead_letters", name="dead_letters"),
            WorkerPool.child_spec(
                work,
                id="work",
                name="work",
                dead_letters="dead_letters",
                size=64,
                max_attempts=1,
                worker_shutdown=1.0,
                shutdown=2.0,
            ),
            # Last: started after the pool, stopped (and drained) before it.
            AsgiServer.child_spec(
                service,
                host,
                port,
                id="http",
                name="http",
                shutdown_timeout=shutdown_timeout,
                access_log=False,  # one line per request is too many here
                on_shutdown=service.dashboard.close,  # end the dashboard's live streams
            ),
        ],
        shutdown_timeout=shutdown_timeout + 10.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        help="seconds the requests in flight get to finish at shutdown",
    )
    args = parser.parse_args()
    application(args.host, args.port, args.shutdown_timeout).run()


if __name__ == "__main__":
    main()
