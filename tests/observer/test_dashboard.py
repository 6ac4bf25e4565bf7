"""``DashboardApp`` over real HTTP: the page, ``/api/snapshot`` and the
server-sent events of ``/api/events``.

The tests start uvicorn on 127.0.0.1 with port 0 through ``serve_dashboard``
(which reports the bound port once the socket listens), talk to it with
httpx, and stop it by cancelling it. Restarts are caused with the kit's
``crash`` and waited for with ``wait_for_restart``; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import TaskStatus

import asyncotp
from asyncotp import Caller, GenServer, Pid, Supervisor, spawn, whereis
from asyncotp.observer import DashboardApp, serve_dashboard
from asyncotp.testing import crash, wait_for_restart
from tests.helpers import WAIT


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def start_shop() -> Pid:
    payments = Supervisor.child_spec(
        [Worker.child_spec(id="gateway", name="gateway"), Worker.child_spec(id="ledger")],
        id="payments",
        name="payments",
    )
    return await Supervisor.start([Worker.child_spec(id="prices"), payments], name="shop")


@contextlib.asynccontextmanager
async def serving(app: DashboardApp | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with uvicorn on a free loopback port; a client for it."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_dashboard, app, host="127.0.0.1", port=0))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=10.0, trust_env=False
        ) as client:
            yield client
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def events(
    client: httpx.AsyncClient, url: str = "/api/events"
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[str]]]:
    """The event stream at ``url``: the response, and its lines (closed on exit,
    so that no generator is left for the garbage collector to finish)."""
    async with client.stream("GET", url) as response:
        lines = response.aiter_lines()
        try:
            yield response, lines
        finally:
            await lines.aclose()  # type: ignore[attr-defined]


async def next_event(lines: AsyncIterator[str]) -> tuple[str, dict[str, Any]]:
    """The next server-sent event with a name: (name, its JSON data)."""
    event = None
    async for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event is not None:
            return event, json.loads(line[len("data: ") :])
    raise AssertionError("the event stream ended")


def find(tree: dict[str, Any], child_id: str) -> dict[str, Any]:
    child: dict[str, Any]
    for child in tree["children"]:
        if child["id"] == child_id:
            return child
        if "supervisor" in child:
            with contextlib.suppress(LookupError):
                return find(child["supervisor"], child_id)
    raise LookupError(child_id)


async def test_the_page_and_its_files_are_served_from_the_package(node: asyncotp.Node) -> None:
    await start_shop()
    async with serving() as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert 'src="static/dashboard.js"' in page.text
        assert 'href="static/dashboard.css"' in page.text
        assert "http" not in page.text.replace("http://www.w3.org", "")  # nothing from elsewhere
        script = await client.get("/static/dashboard.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert 'new EventSource("api/events")' in script.text
        style = await client.get("/static/dashboard.css")
        assert style.headers["content-type"].startswith("text/css")
        assert ".card.flash" in style.text
        assert (await client.get("/index.html")).text == page.text
        head = await client.head("/")
        assert (head.status_code, head.content) == (200, b"")
        missing = await client.get("/static/other.js")
        assert missing.status_code == 404
        refused = await client.post("/api/snapshot")
        assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")


async def test_the_json_endpoint_serves_the_snapshot_and_shows_a_restart(
    node: asyncotp.Node,
) -> None:
    shop = await start_shop()
    async with serving() as client:
        response = await client.get("/api/snapshot")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        data = response.json()
        (tree,) = data["trees"]
        assert (tree["name"], tree["pid"]) == ("shop", shop.number)
        assert [c["id"] for c in tree["children"]] == ["prices", "payments"]
        assert [c["id"] for c in find(tree, "payments")["supervisor"]["children"]] == [
            "gateway",
            "ledger",
        ]
        assert find(tree, "gateway")["restarts"] == 0
        assert data["totals"]["supervisors"] == 2

        old = whereis("gateway")
        assert old is not None
        await crash(old)
        new = await wait_for_restart("payments", "gateway", old)
        data = (await client.get("/api/snapshot")).json()
        gateway = find(data["trees"][0], "gateway")
        assert (gateway["restarts"], gateway["pid"]) == (1, new.number)
        assert data["totals"]["restarts"] == 1


async def test_the_event_stream_pushes_a_snapshot_at_once_on_a_restart(
    node: asyncotp.Node,
) -> None:
    await start_shop()
    # A long interval: a snapshot that arrives quickly was pushed by the report.
    async with (
        serving(DashboardApp(interval=30.0)) as client,
        events(client) as (response, lines),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        with anyio.fail_after(WAIT):
            event, data = await next_event(lines)
        assert event == "snapshot"
        assert find(data["trees"][0], "gateway")["restarts"] == 0
        old = whereis("gateway")
        assert old is not None
        await crash(old)
        with anyio.fail_after(WAIT):  # far below the 30 s interval
            while find(data["trees"][0], "gateway")["restarts"] == 0:
                event, data = await next_event(lines)
        assert event == "snapshot"
        assert find(data["trees"][0], "gateway")["pid"] != old.number


async def test_open_pages_share_the_latest_snapshot_until_a_supervisor_reports(
    node: asyncotp.Node,
) -> None:
    await start_shop()
    async with (
        serving(DashboardApp(interval=30.0)) as client,
        events(client) as (_first, one),
        events(client) as (_second, two),
    ):
        with anyio.fail_after(WAIT):
            _, seen_by_one = await next_event(one)
            _, seen_by_two = await next_event(two)
        assert seen_by_two["taken_at"] == seen_by_one["taken_at"]  # one snapshot for both
        old = whereis("gateway")
        assert old is not None
        await crash(old)
        with anyio.fail_after(WAIT):  # the report makes both take a fresh one
            for lines in (one, two):
                data = seen_by_one
                while find(data["trees"][0], "gateway")["restarts"] == 0:
                    _, data = await next_event(lines)


async def test_the_event_stream_sends_a_snapshot_every_interval(node: asyncotp.Node) -> None:
    await start_shop()
    async with (
        serving(DashboardApp(interval=0.05)) as client,
        events(client) as (_response, lines),
    ):
        with anyio.fail_after(WAIT):
            first = await next_event(lines)
            second = await next_event(lines)
        assert first[0] == second[0] == "snapshot"
        assert second[1]["taken_at"] > first[1]["taken_at"]


async def test_stopping_the_server_ends_the_open_streams_at_once(node: asyncotp.Node) -> None:
    await start_shop()
    server = anyio.CancelScope()
    stopped = asyncio.Event()

    async def serve(*, task_status: TaskStatus[int]) -> None:
        with server:
            await serve_dashboard(None, port=0, task_status=task_status)
        stopped.set()

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve)
        async with (
            httpx.AsyncClient(timeout=10.0, trust_env=False) as client,
            events(client, f"http://127.0.0.1:{port}/api/events") as (_response, lines),
        ):
            with anyio.fail_after(WAIT):
                await next_event(lines)
            server.cancel()
            # uvicorn waits up to its graceful timeout (5 s) for a response
            # still under way; the app ends its streams when the server stops.
            with anyio.fail_after(3.0):
                async for _line in lines:
                    pass
                await stopped.wait()


async def test_serve_dashboard_runs_as_an_actor_and_stops_with_the_node(
    node: asyncotp.Node,
) -> None:
    await start_shop()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def dashboard_server() -> None:
        async with anyio.create_task_group() as tg:
            port.set_result(await tg.start(functools.partial(serve_dashboard, "shop", port=0)))

    spawn(dashboard_server, name="dashboard")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"http://127.0.0.1:{await port}/api/snapshot")
    assert [tree["name"] for tree in response.json()["trees"]] == ["shop"]
    # The node fixture checks that the node's shutdown stopped the server.


async def test_a_root_that_is_not_a_supervisor_is_an_error_on_both_endpoints(
    node: asyncotp.Node,
) -> None:
    await start_shop()
    async with serving(DashboardApp("gateway")) as client:
        response = await client.get("/api/snapshot")
        assert response.status_code == 500
        assert "is not a supervisor" in response.json()["error"]
        async with events(client) as (_response, lines):
            with anyio.fail_after(WAIT):
                event, data = await next_event(lines)
        assert event == "failure"
        assert "is not a supervisor" in data["error"]


async def test_mounted_under_a_prefix_the_app_honours_root_path(node: asyncotp.Node) -> None:
    await start_shop()
    dashboard = DashboardApp()

    async def router(scope: Any, receive: Any, send: Any) -> None:
        """A framework's mount, in miniature: /ops/dashboard/... goes to the app."""
        if scope["type"] == "http" and scope["path"].startswith("/ops/dashboard"):
            await dashboard({**scope, "root_path": "/ops/dashboard"}, receive, send)
            return
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/ops/dashboard/")).status_code == 200
        redirect = await client.get("/ops/dashboard")
        assert (redirect.status_code, redirect.headers["location"]) == (307, "/ops/dashboard/")
        snap = await client.get("/ops/dashboard/api/snapshot")
        assert snap.json()["trees"][0]["name"] == "shop"
        assert (await client.get("/ops/dashboard/static/dashboard.css")).status_code == 200
        assert (await client.get("/elsewhere")).status_code == 418


async def test_an_app_without_a_node_answers_503_until_it_is_bound(node: asyncotp.Node) -> None:
    await start_shop()
    outside = contextvars.Context()  # a task that does not see the node
    app = outside.run(DashboardApp)

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    response = await asyncio.create_task(get("/api/snapshot"), context=outside.copy())
    assert response.status_code == 503
    assert "app.bind(node)" in response.json()["error"]
    page = await asyncio.create_task(get("/"), context=outside.copy())
    assert page.status_code == 200  # the page itself needs no node
    app.bind(node)
    response = await asyncio.create_task(get("/api/snapshot"), context=outside.copy())
    assert response.status_code == 200


async def test_the_app_rejects_bad_settings(node: asyncotp.Node) -> None:
    with pytest.raises(TypeError, match="root must be None or a supervisor's Pid or name"):
        DashboardApp(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be seconds > 0"):
        DashboardApp(interval=0)
    with pytest.raises(ValueError, match="timeout must be seconds > 0"):
        DashboardApp(timeout=-1)
    with pytest.raises(TypeError, match="node must be a Node"):
        DashboardApp().bind("node")  # type: ignore[arg-type]
    assert repr(DashboardApp("shop")) == "DashboardApp('shop', interval=0.5)"
