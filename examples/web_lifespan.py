"""A node inside a web app's lifespan: request handlers call supervised servers.

    pip install -e ".[asgi]" httpx && python examples/web_lifespan.py

A pure ASGI app (no framework) runs an asyncotp node in its lifespan: the
node and its supervision tree start before the first request and stop,
in reverse start order, after the last one. Request handlers run in the
server's own tasks, which never saw the lifespan's context, and still reach
the servers by their registered names: a task finds the node running on its
event loop. The program serves on 127.0.0.1, sends itself a few requests
(one of which crashes the counter, which its supervisor restarts), then
shuts the web server down and ends.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import httpx

import asyncotp
from asyncotp import (
    Caller,
    GenServer,
    NoProcess,
    RetryPolicy,
    ServerExited,
    Supervisor,
    call,
    cast,
    retry,
    serve_asgi,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def say(who: str, text: str) -> None:
    print(f"{who:<8} {text}", flush=True)


class Visits(GenServer):
    """Counts visits; a "crash" cast makes it fail, to show the restart."""

    async def init(self) -> None:
        self.count = 0
        say("visits", "started with a fresh count")

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "hit":
            self.count += 1
            return self.count
        raise ValueError(f"unknown request {request!r}")

    async def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError("the visit counter lost its storage")

    async def terminate(self, reason: Any) -> None:
        say("visits", f"stopping ({reason})")


async def respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class App:
    """A pure ASGI app; the asyncotp node lives in its lifespan."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.http(scope, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with asyncotp.node():
            await Supervisor.start([Visits.child_spec(id="visits", name="visits")], name="web")
            say("lifespan", "node and supervision tree started")
            await send({"type": "lifespan.startup.complete"})
            message = await receive()  # lifespan.shutdown: the server has stopped serving
            say("lifespan", "shutting the node down")
        await send({"type": "lifespan.shutdown.complete"})

    async def http(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path == "/hit":
            try:
                # A restart in progress shows as ServerExited / NoProcess: ride it out.
                count = await retry(call, "visits", "hit", policy=RetryPolicy(initial=0.01))
            except (ServerExited, NoProcess) as exc:
                await respond(send, 503, {"error": repr(exc)})
                return
            await respond(send, 200, {"visits": count})
        elif path == "/crash":
            cast("visits", "crash")
            await respond(send, 202, {"crashing": True})
        else:
            await respond(send, 404, {"error": f"no route {path}"})


async def main() -> None:
    # serve_asgi binds the socket and runs the lifespan startup before it
    # reports the port; cancelling it drains the requests, then runs the
    # lifespan shutdown (here: the node's).
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            functools.partial(serve_asgi, App(), "127.0.0.1", 0, access_log=False)
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(2):
                response = await client.get("/hit")
                say("client", f"GET /hit   -> {response.status_code} {response.json()}")
            response = await client.get("/crash")
            say("client", f"GET /crash -> {response.status_code} {response.json()}")
            response = await client.get("/hit")
            say("client", f"GET /hit   -> {response.status_code} {response.json()}")
        tg.cancel_scope.cancel()
    say("client", "done: the web server and the node have stopped")


if __name__ == "__main__":
    asyncio.run(main())
