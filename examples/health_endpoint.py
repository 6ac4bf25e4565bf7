"""Health and readiness over HTTP: ``/health`` and ``/ready`` for a supervision tree.

    python examples/health_endpoint.py        (needs uvicorn: pip install 'asyncotp[asgi]')

The tree:

    shop (one_for_one)
    |-- db      a ReadinessServer: ready only once its (simulated) connection is up
    `-- cache   a plain worker

plus a ``ready_when`` check, "migrations", that passes once they have run.

What happens: the health endpoint is served by uvicorn on a free loopback
port, and the program queries it with a minimal HTTP client, printing each
answer. /health is 200 from the start (the root supervisor runs); /ready is
503 until the database has connected and the migrations have run. Then the
database crashes: its supervisor restarts it, and /ready is 503 again until
the new connection is up. Finally the root supervisor is stopped: /health
turns 503 and the program ends.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

import anyio

from asyncotp import (
    Caller,
    Down,
    GenServer,
    Supervisor,
    call,
    cast,
    monitor,
    receive,
    run,
    send_after,
    stop,
)
from asyncotp.health import ReadinessServer, ready_when, serve_health

CONNECT_TIME = 1.0  # seconds the simulated database takes to connect


class Database(ReadinessServer):
    """Connects in the background after it starts; ready once connected."""

    async def init(self, url: str) -> None:
        self.url = url
        self.connected = False
        send_after(CONNECT_TIME, "db", "connected")  # the connection comes up later

    async def handle_info(self, message: Any) -> None:
        if message == "connected":
            self.connected = True

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return f"rows for {request!r}"

    async def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise ConnectionResetError("the database dropped the connection")

    async def ready(self) -> bool | tuple[bool, str]:
        if not self.connected:
            return False, f"connecting to {self.url}"
        return True


class Cache(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return None


async def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """A minimal HTTP/1.1 GET (what a load balancer or kubelet would send)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


class SupervisorNarrator(logging.Handler):
    """Prints the supervisor's reports in one line each, from their structured fields."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        child = getattr(record, "child_id", None)
        if event == "child_terminated":
            print(f"   [supervisor] {child!r} crashed: {getattr(record, 'reason', None)!r}")
        elif event == "child_restarted":
            print(f"   [supervisor] restarted {child!r}")


def tree_line(node: dict[str, Any]) -> str:
    if node["state"] != "running":
        return f"{node['name']} {node['state']} (exit reason {node['exit_reason']})"
    parts = [
        f"{child['id']} {child['state']} ({child['restarts']} restarts)"
        for child in node["children"]
    ]
    return f"{node['name']} {node['state']}: " + ", ".join(parts)


async def show(port: int, path: str) -> None:
    status, body = await get(port, path)
    line = f"GET {path:<7} -> {status}"
    if path == "/health":
        print(f"{line}  live={body['live']}  tree: {tree_line(body['root'])}", flush=True)
        return
    failing = [f"{c['name']}: {c['detail'] or 'not yet'}" for c in body["checks"] if not c["ok"]]
    verdict = "ready" if body["ready"] else "NOT READY (" + "; ".join(failing) + ")"
    print(f"{line}  {verdict}", flush=True)


async def wait_until_ready(port: int) -> None:
    """Poll /ready as an orchestrator would, every 0.1 s."""
    polls = 1
    while (await get(port, "/ready"))[0] != 200:
        polls += 1
        await asyncio.sleep(0.1)
    print(f"   ...ready after {polls} polls of /ready", flush=True)


async def main() -> None:
    asyncotp_log = logging.getLogger("asyncotp")
    asyncotp_log.addHandler(SupervisorNarrator())
    asyncotp_log.setLevel(logging.INFO)
    asyncotp_log.propagate = False  # the narrator replaces the tracebacks
    root = await Supervisor.start(
        [Database.child_spec("db:5432", id="db", name="db"), Cache.child_spec(id="cache")],
        name="shop",
    )
    migrated = asyncio.Event()
    ready_when("migrations", migrated.is_set)

    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_health, "shop", port=0))
        print(f"health endpoint listening on http://127.0.0.1:{port}", flush=True)

        print("\n-- just started: alive, not ready yet", flush=True)
        await show(port, "/health")
        await show(port, "/ready")

        print("\n-- the migrations run; the database connects", flush=True)
        migrated.set()
        await wait_until_ready(port)
        await show(port, "/ready")
        print(f"   query: {await call('db', 'SELECT 1')}", flush=True)

        print("\n-- the database crashes; its supervisor restarts it", flush=True)
        ref = monitor("db")
        cast("db", "crash")
        await receive(lambda m: isinstance(m, Down) and m.ref is ref)
        await show(port, "/ready")
        await show(port, "/health")
        await wait_until_ready(port)
        await show(port, "/ready")

        print("\n-- the root supervisor stops", flush=True)
        await stop(root)
        await show(port, "/health")
        tg.cancel_scope.cancel()  # stop the HTTP server
    print("\ndone: the server is closed and the tree has stopped", flush=True)


if __name__ == "__main__":
    run(main)
