"""AsgiServer and serve_asgi: uvicorn as a supervised child, over real HTTP.

Each test serves a small pure-ASGI app on 127.0.0.1 (port 0, or a port taken
on purpose) and talks to it with httpx. Requests are held in flight by a
gate the test opens; the drain is observed through the server's own log
records (an event per record) and the supervisor's stop, never by sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

import asyncotp
from asyncotp import (
    KILL,
    AsgiServer,
    AsgiStats,
    Pid,
    StartError,
    Supervisor,
    send_exit,
    serve_asgi,
    stop,
    which_children,
)
from tests.helpers import wait, watch

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class App:
    """``/ok`` answers at once; ``/slow`` waits until the test opens the gate."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.entered = 0
        self.entered_changed = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan: not supported, and "auto" lets it be
        if scope["path"] == "/slow":
            self.entered += 1
            self.entered_changed.set()
            await self.opened.wait()
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def until_entered(self, count: int) -> None:
        while self.entered < count:
            self.entered_changed.clear()
            await self.entered_changed.wait()


class Records(logging.Handler):
    """The ``asyncotp`` logger's records, with an event per ``event`` name."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.events: dict[str, asyncio.Event] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.seen(getattr(record, "event", "")).set()

    def seen(self, event: str) -> asyncio.Event:
        return self.events.setdefault(event, asyncio.Event())

    def of(self, event: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "event", "") == event]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("asyncotp")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10.0, trust_env=False)


async def refused(port: int) -> bool:
    """Whether a new connection to the port is refused."""
    async with client(port) as fresh:
        try:
            await fresh.get("/ok")
        except httpx.ConnectError:
            return True
    return False


async def server_of(sup: Pid | str) -> tuple[Pid, AsgiStats]:
    [child] = [c for c in await which_children(sup) if c.id == "asgi_server"]
    assert child.pid is not None
    return child.pid, await AsgiServer.statistics(child.pid)


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


# -- under a supervisor ------------------------------------------------------------------


async def test_a_child_serves_under_a_supervisor_and_refuses_connections_once_stopped(
    node: asyncotp.Node, records: Records
) -> None:
    sup = await Supervisor.start([AsgiServer.child_spec(App(), port=0)], name="web")
    pid, stats = await server_of(sup)
    assert (stats.host, stats.accepting, stats.in_flight, stats.cut) == ("127.0.0.1", True, 0, 0)
    async with client(stats.port) as http:
        response = await wait(http.get("/ok"))
    assert (response.status_code, response.text) == (200, "/ok")
    assert (await AsgiServer.statistics(pid)).handled == 1
    await wait(stop(sup))
    assert await wait(refused(stats.port))
    [stopped] = records.of("asgi_stopped")
    assert "stopped cleanly" in stopped.getMessage()


async def test_shutdown_stops_accepting_at_once_and_drains_requests_in_flight(
    node: asyncotp.Node, records: Records
) -> None:
    app = App()
    sup = await Supervisor.start([AsgiServer.child_spec(app, port=0, shutdown_timeout=5.0)])
    _, stats = await server_of(sup)
    async with client(stats.port) as http:
        slow = [asyncio.ensure_future(http.get("/slow")) for _ in range(3)]
        await wait(app.until_entered(3))
        stopping = asyncio.ensure_future(stop(sup))
        await wait(records.seen("asgi_draining").wait())
        # Shutdown has begun: new connections are refused while the three
        # requests are still being answered, and the supervisor still waits.
        assert await wait(refused(stats.port))
        assert not stopping.done()
        assert not any(task.done() for task in slow)
        app.opened.set()
        responses = await wait(asyncio.gather(*slow))
        await wait(stopping)
    assert [r.status_code for r in responses] == [200, 200, 200]
    [draining] = records.of("asgi_draining")
    assert draining.in_flight == 3  # type: ignore[attr-defined]
    [stopped] = records.of("asgi_stopped")
    assert "stopped cleanly (3 request(s) drained" in stopped.getMessage()
    assert records.of("asgi_drain_timeout") == []


async def test_a_drain_that_times_out_cuts_the_rest_and_reports_how_many(
    node: asyncotp.Node, records: Records
) -> None:
    app = App()
    sup = await Supervisor.start([AsgiServer.child_spec(app, port=0, shutdown_timeout=0.2)])
    _, stats = await server_of(sup)
    async with client(stats.port) as http:
        slow = [asyncio.ensure_future(http.get("/slow")) for _ in range(2)]
        await wait(app.until_entered(2))
        await wait(stop(sup))
        outcomes = await wait(asyncio.gather(*slow, return_exceptions=True))
    assert all(
        isinstance(o, httpx.HTTPError) or (isinstance(o, httpx.Response) and o.status_code == 500)
        for o in outcomes
    ), outcomes
    assert records.of("asgi_stopped") == []
    [timeout] = records.of("asgi_drain_timeout")
    assert timeout.cut == 2  # type: ignore[attr-defined]
    assert "2 request(s) cut" in timeout.getMessage()


async def test_a_killed_server_frees_its_port_and_is_restarted_on_the_same_port(
    node: asyncotp.Node,
) -> None:
    port = free_port()
    sup = await Supervisor.start([AsgiServer.child_spec(App(), port=port)])
    pid, _ = await server_of(sup)
    ended = await watch(pid)
    send_exit(pid, KILL)
    assert await wait(ended) is asyncotp.KILLED
    async with client(port) as http:
        # The supervisor has restarted it by the time which_children answers.
        new_pid, stats = await server_of(sup)
        assert new_pid != pid
        assert stats.port == port
        response = await wait(http.get("/ok"))
    assert response.status_code == 200
    await wait(stop(sup))


async def test_a_server_whose_uvicorn_ends_on_its_own_crashes_and_is_restarted(
    node: asyncotp.Node, records: Records
) -> None:
    # uvicorn's limit_max_requests makes it end by itself after one request.
    spec = AsgiServer.child_spec(App(), port=0, uvicorn_options={"limit_max_requests": 1})
    sup = await Supervisor.start([spec])
    pid, stats = await server_of(sup)
    ended = await watch(pid)
    async with client(stats.port) as http:
        assert (await wait(http.get("/ok"))).status_code == 200
    reason = await wait(ended)
    assert isinstance(reason, RuntimeError)
    assert "uvicorn stopped on its own" in str(reason)
    new_pid, new_stats = await server_of(sup)
    assert new_pid != pid
    assert new_stats.accepting
    await wait(stop(sup))


# -- starting --------------------------------------------------------------------------


async def test_a_taken_port_is_a_start_error_naming_host_and_port(node: asyncotp.Node) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(StartError) as direct:
            await AsgiServer.start(App(), "127.0.0.1", port)
        assert f"could not listen on 127.0.0.1:{port}" in str(direct.value)
        assert "choose another port" in str(direct.value)
        with pytest.raises(StartError) as in_tree:
            await Supervisor.start([AsgiServer.child_spec(App(), port=port)])
        assert "could not start child 'asgi_server'" in str(in_tree.value)
        assert f"could not listen on 127.0.0.1:{port}: Address already in use" in str(in_tree.value)
        assert "init failed" not in str(in_tree.value)  # the bind error itself, not wrapped
        with pytest.raises(StartError, match=f"could not listen on 127.0.0.1:{port}"):
            await serve_asgi(App(), "127.0.0.1", port)
    assert asyncotp.registered() == []


async def test_a_failed_lifespan_startup_is_a_start_error_and_never_a_system_exit(
    node: asyncotp.Node,
) -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(StartError, match=r"lifespan startup failed on http://127\.0\.0\.1:"):
        await AsgiServer.start(failing, port=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"port": -1}, ValueError, "port must be an int from 0"),
        ({"port": "80"}, ValueError, "port must be an int from 0"),
        ({"host": 1}, TypeError, "host"),
        ({"shutdown_timeout": math.nan}, ValueError, "shutdown_timeout"),
        ({"shutdown_timeout": -1.0}, ValueError, "shutdown_timeout"),
        ({"uvicorn_options": {"port": 1}}, ValueError, "may not set port"),
        ({"uvicorn_options": [1]}, TypeError, "uvicorn_options must be a mapping"),
        ({"on_shutdown": 1}, TypeError, "on_shutdown must be a plain function"),
        ({"on_shutdown": asyncio.sleep}, TypeError, "it is called, not awaited"),
        ({"timeout": -1.0}, ValueError, "timeout"),
    ],
)
def test_bad_arguments_are_refused_by_the_child_spec_naming_them(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        AsgiServer.child_spec(App(), **kwargs)


def test_an_app_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="app must be an ASGI application"):
        AsgiServer.child_spec("main:app")  # type: ignore[arg-type]


def test_the_child_spec_gives_the_supervisor_time_for_the_drain() -> None:
    spec = AsgiServer.child_spec(App(), shutdown_timeout=20.0)
    assert (spec.id, spec.shutdown) == ("asgi_server", 26.0)
    assert AsgiServer.child_spec(App(), id="api", shutdown=3.0).shutdown == 3.0


# -- serve_asgi in a task group ------------------------------------------------------------


async def test_serve_asgi_installs_no_signal_handlers_and_drains_when_cancelled(
    node: asyncotp.Node, records: Records
) -> None:
    app = App()
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    server_scope = anyio.CancelScope()

    async def serving(*, task_status: anyio.abc.TaskStatus[int]) -> None:
        with server_scope:
            await serve_asgi(app, "127.0.0.1", 0, task_status=task_status)

    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serving)
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
        async with client(port) as http:
            slow = asyncio.ensure_future(http.get("/slow"))
            await wait(app.until_entered(1))
            server_scope.cancel()
            await wait(records.seen("asgi_draining").wait())
            assert not slow.done()
            app.opened.set()
            response = await wait(slow)
    assert response.status_code == 200
    assert len(records.of("asgi_stopped")) == 1
    assert await wait(refused(port))


async def test_on_shutdown_runs_when_the_drain_begins_and_its_error_does_not_stop_it(
    node: asyncotp.Node, records: Records
) -> None:
    calls: list[bool] = []

    def on_shutdown() -> None:
        calls.append(records.seen("asgi_draining").is_set())
        raise RuntimeError("the hook broke")

    server = await AsgiServer.start(App(), port=0, on_shutdown=on_shutdown)
    await wait(stop(server))
    assert calls == [True]  # once, after the draining record
    assert len(records.of("asgi_stopped")) == 1
    assert any("on_shutdown raised" in r.getMessage() for r in records.records)


async def test_serve_health_and_serve_dashboard_run_on_the_same_runner(
    node: asyncotp.Node,
) -> None:
    # One implementation of "uvicorn in the program": a taken port is the same
    # StartError whichever of them is asked to serve.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(StartError, match=f"could not listen on 127.0.0.1:{port}"):
            await asyncotp.serve_health("root", port=port)
        with pytest.raises(StartError, match=f"could not listen on 127.0.0.1:{port}"):
            await asyncotp.serve_dashboard(port=port)
