"""Nodes on different servers of a NATS cluster (three ``nats-server``
processes joined by routes on loopback): calls, casts and monitors cross
the routes; killing the server a node is connected to, under traffic, moves
that node to another server of the cluster (the servers advertise each
other to clients) without either node being declared lost.

What is lost when a server dies: the casts published while the moved node
was disconnected or not yet subscribed again (at most once, as documented);
calls made meanwhile fail with ``NodeUnreachable`` or ``CallTimeout``. What
is kept: the node's links and monitors (no node was declared lost, the
outage being shorter than the heartbeat window), and the order of what
arrives, with no duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import asyncotp
from asyncotp import NORMAL, Down, call, cast, receive
from asyncotp.distribution import (
    NodeUnreachable,
    nodes,
    register_global,
    statistics,
    via_global,
    whereis_global,
    whereis_remote,
)
from tests.distribution.conftest import NATS_SERVER
from tests.distribution.helpers import (
    NatsServer,
    NodeProcess,
    fast_cluster,
    free_port,
    hosts,
    until,
)
from tests.distribution.node_script import Echo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def _routes(server: NatsServer) -> int:
    url = f"http://127.0.0.1:{server.monitor_port}/routez"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
        return int(json.load(answer)["num_routes"])
    return -1


def _start_routed(tmp_path: Path, jetstream: bool) -> list[NatsServer]:
    cluster_ports = [free_port() for _ in range(3)]
    servers: list[NatsServer] = []
    try:
        for i, port in enumerate(cluster_ports):
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in cluster_ports if p != port)
            server = NatsServer(
                NATS_SERVER,
                tmp_path / f"s{i}",
                *("--cluster_name", "asyncotp-test", "-n", f"s{i}"),
                *("--cluster", f"nats://127.0.0.1:{port}", "--routes", routes),
                jetstream=jetstream,
            )
            servers.append(server)
            server.start_process()
        for server in servers:  # JetStream's health needs its peers: start them all first
            server.wait_ready()
        deadline = time.monotonic() + 10
        while any(_routes(server) < 2 for server in servers):
            if time.monotonic() > deadline:
                raise RuntimeError("the three nats-servers did not route to each other in 10 s")
            time.sleep(0.05)
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


@contextlib.contextmanager
def _routed_servers(tmp_path: Path, *, jetstream: bool) -> Iterator[list[NatsServer]]:
    """Three servers, each routed to the other two, ready once every one
    has both its routes (and, with JetStream, says it is healthy). Nine
    free ports are picked before any is bound, so two may collide: a server
    that exits at start is retried on fresh ports (twice at most)."""
    if not shutil.which(NATS_SERVER):
        pytest.skip("nats-server is not installed (Debian: apt-get install nats-server)")
    for attempt in range(3):
        try:
            servers = _start_routed(tmp_path / f"try{attempt}", jetstream)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield servers
    finally:
        for server in servers:
            server.kill()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three routed servers without JetStream."""
    with _routed_servers(tmp_path, jetstream=False) as servers:
        yield servers


@pytest.fixture
def nats_js_cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three routed servers forming a JetStream cluster."""
    with _routed_servers(tmp_path, jetstream=True) as servers:
        yield servers


async def test_nodes_on_different_servers_of_a_cluster_call_cast_and_monitor_each_other(
    nats_cluster: list[NatsServer], prefix: str
) -> None:
    first, second, _third = nats_cluster
    far = NodeProcess("far", second.url, prefix)
    try:
        await far.ready()
        async with hosts(fast_cluster(first.url, prefix), "near") as (near,):

            async def across() -> Any:
                echo = await whereis_remote("far", "echo")
                assert echo is not None
                assert "far" in nodes()
                assert await call(echo, "hi") == ("echo", "hi")
                for i in range(100):
                    cast(echo, i)
                assert await call(echo, "seen") == list(range(100))
                ref = asyncotp.monitor(echo)
                assert await call(echo, "quit") == "bye"
                down = await receive(lambda m: isinstance(m, Down) and m.ref is ref, timeout=5)
                return down.reason

            assert await near.on(lambda: _in_actor(across)) is NORMAL
    finally:
        far.close()


async def _in_actor(fn: Any) -> Any:
    """Run ``fn()`` in an actor of the current node and return its result."""
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def body() -> None:
        try:
            done.set_result(await fn())
        except BaseException as exc:
            done.set_exception(exc)
            raise

    asyncotp.spawn(body)
    return await done


async def test_killing_a_nodes_server_under_traffic_moves_it_to_another_server_of_the_cluster(
    nats_cluster: list[NatsServer], prefix: str
) -> None:
    first, second, _third = nats_cluster
    # A 3 s window: the moved node is back well within it, so nobody is lost.
    far = NodeProcess("far", second.url, prefix, "window=3")
    try:
        await far.ready()
        cluster = fast_cluster(first.url, prefix, heartbeat_window=3.0)
        async with hosts(cluster, "near") as (near,):

            async def traffic() -> dict[str, Any]:
                echo = await whereis_remote("far", "echo")
                assert echo is not None
                ref = asyncotp.monitor(echo)
                sent = 0
                for _ in range(200):
                    cast(echo, sent)
                    sent += 1
                await call(echo, "seen")  # all 200 are there: the cluster is in use
                second.kill()  # the far node's server dies under the traffic
                killed = time.monotonic()
                failed_calls = 0
                while True:  # keep casting, and call until the far node answers again
                    for _ in range(20):
                        cast(echo, sent)
                        sent += 1
                    try:
                        await call(echo, "ping", timeout=0.5)
                        break
                    except (NodeUnreachable, asyncotp.CallTimeout):
                        failed_calls += 1
                        await asyncio.sleep(0.05)
                back = time.monotonic() - killed
                after = list(range(sent, sent + 200))
                for i in after:
                    cast(echo, i)
                sent += 200
                seen = await call(echo, "seen")
                # The monitor set before the server died is still in place:
                # nothing fired it, and the far actor's end does.
                nodes_lost = statistics().nodes_lost
                info = asyncotp.process_info(asyncotp.self_pid())
                assert info is not None
                assert info.mailbox_length == 0  # no Down(..., NOCONNECTION) came
                assert await call(echo, "quit") == "bye"
                down = await receive(lambda m: isinstance(m, Down) and m.ref is ref, timeout=5)
                return {
                    "seen": seen,
                    "after": after,
                    "back": back,
                    "failed_calls": failed_calls,
                    "down": down.reason,
                    "nodes_lost": nodes_lost,
                }

            got = await near.on(lambda: _in_actor(traffic))
            seen: list[int] = got["seen"]
            # In order, no duplicates; the first 200 and everything cast
            # after the far node answered again arrived; only casts sent
            # during the outage may be missing.
            assert seen == sorted(set(seen))
            assert seen[:200] == list(range(200))
            assert seen[-200:] == got["after"]
            assert got["back"] < 3.0
            assert got["nodes_lost"] == 0, got
            assert got["down"] is NORMAL
    finally:
        far.close()


async def test_the_global_registry_works_across_the_servers_of_a_jetstream_cluster(
    nats_js_cluster: list[NatsServer], prefix: str
) -> None:
    first, second, third = nats_js_cluster
    async with (
        hosts(fast_cluster(first.url, prefix), "a") as (a,),
        hosts(fast_cluster(second.url, prefix), "b") as (b,),
        hosts(fast_cluster(third.url, prefix), "c") as (c,),
    ):

        async def race() -> bool:
            return await register_global("only", await Echo.start())

        won = await asyncio.gather(a.on(race), b.on(race), c.on(race))
        assert sorted(won) == [False, False, True]  # exactly one node holds it
        owner = (a, b, c)[won.index(True)]
        pid = await owner.on(lambda: Echo.start(name=via_global("svc")))
        assert pid is not None
        for host in (a, b, c):

            async def reach() -> Any:
                await until(lambda: asyncotp.whereis(via_global("svc")) is not None)
                assert await whereis_global("only") is not None
                return await call(via_global("svc"), "hi")

            assert await host.on(reach) == ("echo", "hi")
