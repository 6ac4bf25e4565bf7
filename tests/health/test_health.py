"""Health and readiness: the report, readiness checks, and the ASGI app over
real HTTP.

The HTTP tests start uvicorn on 127.0.0.1 with port 0 through
``serve_health`` (which reports the bound port once the socket listens), talk
to it with httpx, and shut it down by cancelling it. The other tests
synchronise on monitors (``watch``), call round trips and events; the only
waits are the report's own timeouts, kept short, where a timeout is the rule
under test.
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

import asyncotp
from asyncotp import (
    GAVE_UP,
    NORMAL,
    Backoff,
    Caller,
    GenServer,
    Pid,
    Strategy,
    Supervisor,
    call,
    cast,
    spawn,
    stop,
    which_children,
)
from asyncotp.health import (
    TREE_CHECK,
    CheckResult,
    HealthApp,
    ReadinessServer,
    health_report,
    ready_when,
    remove_ready_check,
    serve_health,
)
from tests.helpers import watch

# -- helpers ---------------------------------------------------------------------------


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request

    async def handle_cast(self, request: Any) -> None:
        raise RuntimeError(f"crash on request: {request!r}")


class Database(ReadinessServer):
    """Ready only while "connected"; ``handle_call`` is overridden on purpose."""

    async def init(self, connected: bool = False) -> None:
        self.connected = connected
        self.gate: asyncio.Event | None = None

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "connect":
            self.connected = True
        elif request == "disconnect":
            self.connected = False
        return request

    async def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError("lost the database")
        if isinstance(request, asyncio.Event):
            await request.wait()  # busy until the test sets it

    async def ready(self) -> bool | tuple[bool, str]:
        if not self.connected:
            return False, "no connection to db:5432"
        return True


async def crash(server: Pid | str) -> object:
    """Crash a Worker or Database; return once it has ended (its exit reason)."""
    pid = server if isinstance(server, Pid) else asyncotp.whereis(server)
    assert pid is not None
    ended = await watch(pid)
    cast(pid, "crash")
    return await ended


def check(report: asyncotp.health.HealthReport, name: str) -> CheckResult:
    for result in report.checks:
        if result.name == name:
            return result
    raise AssertionError(f"no check {name!r} in {report.checks!r}")


@contextlib.asynccontextmanager
async def serving(app: HealthApp | Pid | str) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with uvicorn on a free loopback port; a client for it."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_health, app, host="127.0.0.1", port=0))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=10.0, trust_env=False
        ) as client:
            yield client
        tg.cancel_scope.cancel()


# -- the report on the tree ---------------------------------------------------------------


async def test_a_healthy_tree_is_live_and_ready_and_shows_every_supervisor_and_child(
    node: asyncotp.Node,
) -> None:
    inner = Supervisor.child_spec(
        [Worker.child_spec(id="a"), Worker.child_spec(id="b", name="bee")],
        id="inner",
        strategy=Strategy.ONE_FOR_ALL,
    )
    root = await Supervisor.start(
        [Worker.child_spec(id="first"), inner], name="root", max_restarts=4, max_seconds=9.0
    )
    report = await health_report("root")
    assert (report.live, report.ready) == (True, True)
    tree = report.root
    assert (tree.pid, tree.name, tree.state, tree.strategy) == (
        root,
        "root",
        "running",
        Strategy.ONE_FOR_ONE,
    )
    assert (tree.restarts_in_window, tree.max_restarts, tree.max_seconds) == (0, 4, 9.0)
    walked = [(path, child.state, child.restarts) for path, child in tree.walk()]
    assert walked == [
        (("first",), "running", 0),
        (("inner",), "running", 0),
        (("inner", "a"), "running", 0),
        (("inner", "b"), "running", 0),
    ]
    nested = tree.children[1].supervisor
    assert nested is not None
    assert nested.strategy is Strategy.ONE_FOR_ALL
    assert nested.children[1].name == "bee"
    assert [c.name for c in report.checks] == [TREE_CHECK]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["status"] == "up"
    assert data["root"]["children"][1]["supervisor"]["children"][1]["name"] == "bee"


async def test_a_restarted_child_shows_its_restarts_and_the_restarts_in_the_window(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([Worker.child_spec(id="w", name="w")], max_restarts=5)
    await crash("w")
    await crash("w")
    report = await health_report(root)  # queued after both Exited: the restarts are done
    child = report.root.children[0]
    assert (child.state, child.restarts) == ("running", 2)
    assert report.root.restarts_in_window == 2
    assert report.ready is True


async def test_a_child_waiting_for_a_delayed_restart_makes_the_tree_unready_but_live(
    node: asyncotp.Node,
) -> None:
    inner = Supervisor.child_spec(
        [
            Worker.child_spec(
                id="slow", name="slow", backoff=Backoff(initial=60.0, max=60.0, jitter=0)
            )
        ],
        id="inner",
    )
    root = await Supervisor.start([inner])
    await crash("slow")
    report = await health_report(root)
    assert (report.live, report.ready) == (True, False)
    paths = {path: child.state for path, child in report.root.walk()}
    assert paths[("inner", "slow")] == "restarting"
    tree = check(report, TREE_CHECK)
    assert not tree.ok
    assert tree.detail == "inner/slow is waiting to be restarted"


async def test_a_root_that_gave_up_is_reported_as_such_and_is_not_live(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start(
        [Worker.child_spec(id="w", name="w")], name="shop", max_restarts=0
    )
    assert (await health_report("shop")).live  # the report now knows the root
    ended = await watch(root)
    cast("w", "boom")
    assert await ended == GAVE_UP
    report = await health_report("shop")
    assert (report.live, report.ready) == (False, False)
    assert (report.root.state, report.root.exit_reason) == ("gave_up", GAVE_UP)
    assert (
        check(report, TREE_CHECK).detail == "the root supervisor 'shop' gave up (too many restarts)"
    )
    assert report.to_dict()["status"] == "down"


async def test_a_root_that_stopped_is_down_with_its_exit_reason(node: asyncotp.Node) -> None:
    root = await Supervisor.start([Worker.child_spec(id="w")])
    await health_report(root)
    await stop(root)
    report = await health_report(root, checks=False)
    assert (report.live, report.ready) == (False, None)
    assert (report.root.state, report.root.exit_reason) == ("down", NORMAL)


async def test_a_root_name_nobody_holds_is_down(node: asyncotp.Node) -> None:
    report = await health_report("nobody")
    assert (report.live, report.ready, report.root.state) == (False, False, "down")
    assert check(report, TREE_CHECK).detail == "the root supervisor 'nobody' is not running"


async def test_a_root_that_is_not_a_supervisor_is_refused(node: asyncotp.Node) -> None:
    server = await Worker.start()
    with pytest.raises(TypeError, match="is not a supervisor; pass the pid or name"):
        await health_report(server)
    with pytest.raises(ValueError, match="timeout must be seconds > 0"):
        await health_report(server, timeout=0)


async def test_an_unresponsive_nested_supervisor_is_shown_and_makes_the_tree_unready(
    node: asyncotp.Node,
) -> None:
    # A nested supervisor busy starting a child (its init waits on a gate)
    # cannot answer: the report says so within its timeout.
    gate = asyncio.Event()

    class SlowStart(GenServer):
        async def init(self) -> None:
            await gate.wait()

    inner = Supervisor.child_spec([], id="inner", name="inner")
    root = await Supervisor.start([inner])
    starting = asyncio.ensure_future(asyncotp.start_child("inner", SlowStart.child_spec()))
    report = await health_report(root, timeout=0.5)
    assert report.root.children[0].supervisor is not None
    assert report.root.children[0].supervisor.state == "unresponsive"
    assert (report.live, report.ready) == (True, False)
    assert check(report, TREE_CHECK).detail == "inner is unresponsive"
    gate.set()
    await starting


# -- readiness servers ---------------------------------------------------------------------


async def test_a_readiness_server_decides_readiness_through_a_call(node: asyncotp.Node) -> None:
    root = await Supervisor.start([Database.child_spec(id="db", name="db")])
    report = await health_report(root)
    assert report.ready is False
    db = check(report, "db")
    assert (db.ok, db.detail, db.pid) == (False, "no connection to db:5432", asyncotp.whereis("db"))
    assert await call("db", "connect") == "connect"  # its own handle_call still works
    report = await health_report(root)
    assert report.ready is True
    assert check(report, "db") == CheckResult("db", True, "", asyncotp.whereis("db"))


async def test_a_subclass_of_a_readiness_server_with_its_own_handle_call_still_answers(
    node: asyncotp.Node,
) -> None:
    class Replica(Database):
        async def handle_call(self, request: Any, caller: Caller) -> Any:
            if request == "role":
                return "replica"
            return await super().handle_call(request, caller)

    pid = await Replica.start(True, name="replica")
    assert await call(pid, "role") == "replica"
    assert await call(pid, "disconnect") == "disconnect"
    root = await Supervisor.start([])
    assert check(await health_report(root), "replica").ok is False


async def test_a_ready_callback_that_raises_fails_its_check_and_the_server_lives_on(
    node: asyncotp.Node,
) -> None:
    class Broken(ReadinessServer):
        async def ready(self) -> bool | tuple[bool, str]:
            raise OSError("probe failed")

    pid = await Broken.start(name="broken")
    root = await Supervisor.start([])
    result = check(await health_report(root), "broken")
    assert (result.ok, result.detail) == (False, "Broken.ready() raised OSError('probe failed')")
    assert asyncotp.is_alive(pid)


async def test_a_ready_callback_returning_something_else_fails_naming_the_value(
    node: asyncotp.Node,
) -> None:
    class Sloppy(ReadinessServer):
        async def ready(self) -> Any:
            return "yes"

    await Sloppy.start(name="sloppy")
    root = await Supervisor.start([])
    detail = check(await health_report(root), "sloppy").detail
    assert detail == "Sloppy.ready() returned 'yes'; it must return a bool or a pair (bool, detail)"


async def test_a_server_stuck_in_a_callback_fails_its_check_by_not_answering_in_time(
    node: asyncotp.Node,
) -> None:
    db = await Database.start(True, name="db")
    root = await Supervisor.start([])
    busy = asyncio.Event()
    cast(db, busy)
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await health_report(root, timeout=0.05)
    assert loop.time() - started < 1.0
    result = check(report, "db")
    assert not result.ok
    assert (
        result.detail
        == f"{db!r} did not answer within the report's timeout (0.05 s): it is busy or blocked"
    )
    busy.set()
    assert check(await health_report(root), "db").ok


async def test_a_named_server_that_crashed_stays_unready_until_one_starts_under_its_name(
    node: asyncotp.Node,
) -> None:
    await Database.start(True, name="db")
    root = await Supervisor.start([])
    await crash("db")
    result = check(await health_report(root), "db")
    assert not result.ok
    assert result.detail.startswith("Database 'db' is down (it ended with RuntimeError(")
    await Database.start(True, name="db")
    assert check(await health_report(root), "db").ok


async def test_a_server_that_stops_cleanly_withdraws_its_check(node: asyncotp.Node) -> None:
    db = await Database.start(False, name="db")
    root = await Supervisor.start([])
    assert not check(await health_report(root), "db").ok
    await stop(db)
    report = await health_report(root)
    assert [c.name for c in report.checks] == [TREE_CHECK]
    assert report.ready is True


async def test_unnamed_servers_are_named_after_their_place_in_the_tree(
    node: asyncotp.Node,
) -> None:
    inner = Supervisor.child_spec([Database.child_spec(True, id="primary")], id="storage")
    root = await Supervisor.start([inner])
    loose = await Database.start(True)
    names = [c.name for c in (await health_report(root)).checks]
    assert names == [TREE_CHECK, f"Database#{loose.number}", "storage/primary"]


# -- readiness functions -------------------------------------------------------------------


async def test_ready_when_runs_sync_and_async_checks_and_explains_failures(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([])
    migrated = asyncio.Event()

    async def cache_warm() -> tuple[bool, str]:
        return False, "3 of 10 partitions loaded"

    def broken() -> bool:
        raise KeyError("config")

    ready_when("migrations", migrated.is_set)
    ready_when("cache", cache_warm)
    ready_when("broken", broken)
    ready_when("sloppy", lambda: "yes")  # type: ignore[arg-type, return-value]
    report = await health_report(root)
    assert [(c.name, c.ok, c.detail) for c in report.checks] == [
        (TREE_CHECK, True, "every supervisor answered; no child is restarting"),
        ("broken", False, "raised KeyError('config')"),
        ("cache", False, "3 of 10 partitions loaded"),
        ("migrations", False, ""),
        (
            "sloppy",
            False,
            "the check returned 'yes'; it must return a bool or a pair (bool, detail)",
        ),
    ]
    migrated.set()
    for name in ("cache", "broken", "sloppy"):
        assert remove_ready_check(name)
    assert (await health_report(root)).ready is True
    assert not remove_ready_check("cache")


async def test_a_check_slower_than_the_report_timeout_fails_at_the_deadline(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([])
    never = asyncio.Event()
    ready_when("slow", never.wait)
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await health_report(root, timeout=0.05)
    assert loop.time() - started < 1.0
    assert check(report, "slow").detail == "did not finish within the report's timeout (0.05 s)"


async def test_ready_when_refuses_a_taken_name_and_a_coroutine(node: asyncotp.Node) -> None:
    ready_when("x", lambda: True)
    with pytest.raises(ValueError, match="'x' already exists"):
        ready_when("x", lambda: True)
    with pytest.raises(ValueError, match="already exists"):
        ready_when(TREE_CHECK, lambda: True)

    async def up() -> bool:
        return True

    with pytest.raises(TypeError, match="pass the function"):
        ready_when("y", up())  # type: ignore[arg-type]


# -- over HTTP -------------------------------------------------------------------------------


async def test_health_answers_200_while_the_root_runs_and_503_once_it_has_stopped(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([Worker.child_spec(id="w")], name="shop")
    async with serving("shop") as client:
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert (body["status"], body["live"], body["ready"]) == ("up", True, None)
        assert body["root"]["name"] == "shop"
        assert body["root"]["children"][0]["id"] == "w"

        await stop(root)
        response = await client.get("/health")
        assert response.status_code == 503
        assert response.json()["root"]["state"] == "down"


async def test_ready_answers_200_only_when_every_readiness_check_passes(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([Database.child_spec(id="db", name="db")])
    async with serving(HealthApp(root)) as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert {"name": "db", "ok": False, "detail": "no connection to db:5432"}.items() <= (
            body["checks"][1].items()
        )
        assert (await client.get("/health")).status_code == 200  # not ready, but alive

        await call("db", "connect")
        response = await client.get("/ready")
        assert response.status_code == 200
        assert response.json()["ready"] is True


async def test_unknown_paths_get_404_other_methods_405_and_head_no_body(
    node: asyncotp.Node,
) -> None:
    await Supervisor.start([], name="shop")
    async with serving("shop") as client:
        missing = await client.get("/metrics")
        assert missing.status_code == 404
        assert "/health" in missing.json()["error"]
        refused = await client.post("/health")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"
        head = await client.head("/ready")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) > 0
        assert (await client.get("/health/")).status_code == 200


async def test_serve_health_runs_as_an_actor_and_stops_with_the_node(
    node: asyncotp.Node,
) -> None:
    await Supervisor.start([], name="shop")
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def health_server() -> None:
        async with anyio.create_task_group() as tg:
            port.set_result(await tg.start(functools.partial(serve_health, "shop", port=0)))

    spawn(health_server, name="health_server")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"http://127.0.0.1:{await port}/health")
    assert response.status_code == 200
    # The node fixture then checks that the node's shutdown stopped the
    # server and left no task behind.


async def test_the_app_honours_root_path_when_mounted_under_a_prefix(
    node: asyncotp.Node,
) -> None:
    await Supervisor.start([], name="shop")
    health = HealthApp("shop", health_path="/live")

    async def router(scope: Any, receive: Any, send: Any) -> None:
        """A framework's mount, in miniature: /ops/... goes to the health app."""
        if scope["type"] == "http" and scope["path"].startswith("/ops/"):
            await health({**scope, "root_path": "/ops"}, receive, send)
            return
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/ops/live")).status_code == 200
        assert (await client.get("/ops/ready")).status_code == 200
        assert (await client.get("/ops/health")).status_code == 404
        assert (await client.get("/elsewhere")).status_code == 418


async def test_an_app_without_a_node_answers_503_until_it_is_bound(node: asyncotp.Node) -> None:
    await Supervisor.start([], name="shop")
    outside = contextvars.Context()  # a task that does not see the node
    app = outside.run(HealthApp, "shop")

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    response = await asyncio.create_task(get("/health"), context=outside.copy())
    assert response.status_code == 503
    assert "app.bind(node)" in response.json()["error"]
    app.bind(node)
    response = await asyncio.create_task(get("/health"), context=outside.copy())
    assert response.status_code == 200


async def test_the_app_rejects_bad_settings(node: asyncotp.Node) -> None:
    with pytest.raises(TypeError, match="root must be the root supervisor's Pid or registered"):
        HealthApp(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="health_path must start with '/'"):
        HealthApp("shop", health_path="health")
    with pytest.raises(ValueError, match="timeout must be seconds > 0"):
        HealthApp("shop", timeout=-1)


async def test_which_children_and_the_report_agree(node: asyncotp.Node) -> None:
    root = await Supervisor.start([Worker.child_spec(id="a"), Worker.child_spec(id="b")])
    infos = await which_children(root)
    report = await health_report(root)
    assert [(i.id, i.pid) for i in infos] == [(c.id, c.pid) for c in report.root.children]


async def test_a_dynamic_supervisor_and_its_children_appear_in_the_tree(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([asyncotp.DynamicSupervisor.child_spec(id="pool", name="pool")])
    first = await asyncotp.start_child("pool", Database.child_spec(True))
    second = await asyncotp.start_child("pool", Database.child_spec(False))
    report = await health_report(root)
    pool = report.root.children[0].supervisor
    assert pool is not None
    assert [(c.pid, c.state) for c in pool.children] == [(first, "running"), (second, "running")]
    # Two children with the same id: their checks are told apart by pid.
    results = {c.name: c.ok for c in report.checks}
    assert results[f"pool/Database#{first.number}"] is True
    assert results[f"pool/Database#{second.number}"] is False
